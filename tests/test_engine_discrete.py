"""The discrete-time model fitted on the engine (``csresearch.engine.discrete.fit_discrete``, DuckDB and Spark)
equals ``csresearch.survival.fit_discrete`` on the same rows: coefficients, SEs, hazard ratios, intervals,
covariances, log-likelihoods and the ``info`` fields, and the same errors.

Spark data stays small (each aggregate is a Spark job of ~0.3-1 s); tables come from Parquet files, as a panel in
an engine would, or from ``ibis.memtable`` with ``con``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from csresearch import survival as sv
from csresearch.engine.discrete import fit_discrete, rcs_basis_exprs
from csresearch.survival.discrete import _rcs_basis, _rcs_knots

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
#: the engines' sums differ from numpy's in rounding only; the converged fits agree to ~1e-10 (measured ~1e-11)
RTOL = 1e-8


def assert_same_fit(got, ref):
    """``got`` (engine) is ``ref`` (pandas): every summary column, the covariances, the log-likelihoods, the
    counts and every ``info`` field but the engine's name."""
    assert got.method == ref.method == "discrete_cloglog"
    assert list(got.summary.index) == list(ref.summary.index)
    assert list(got.summary.columns) == list(ref.summary.columns)
    for col in ["coef", "se", "hr", "ci_low", "ci_high", "z"]:
        np.testing.assert_allclose(got.summary[col], ref.summary[col], rtol=RTOL, atol=0, err_msg=col)
    np.testing.assert_allclose(got.summary["p"], ref.summary["p"], rtol=1e-6, atol=1e-300)
    scale = np.abs(ref.vcov.to_numpy()).max()
    np.testing.assert_allclose(got.vcov.to_numpy(), ref.vcov.to_numpy(), rtol=0, atol=RTOL * scale)
    assert list(got.vcov.index) == list(ref.vcov.index) and list(got.vcov.columns) == list(ref.vcov.columns)
    vn = ref.info["vcov_naive"].to_numpy()
    np.testing.assert_allclose(got.info["vcov_naive"].to_numpy(), vn, rtol=0, atol=RTOL * np.abs(vn).max())
    assert got.loglik == pytest.approx(ref.loglik, rel=1e-10)
    assert got.info["loglik_null"] == pytest.approx(ref.info["loglik_null"], rel=1e-10)
    assert (got.n, got.events) == (ref.n, ref.events)
    assert set(got.info) == set(ref.info)
    for key in ["n_clusters", "robust", "converged", "iterations", "alpha", "strata", "cluster", "time",
                "baseline_df", "baseline_terms", "n_params", "exposure"]:
        assert got.info[key] == ref.info[key], key
    np.testing.assert_allclose(got.info["baseline_knots"], ref.info["baseline_knots"], rtol=1e-12)
    np.testing.assert_allclose(got.info["baseline_coef"], ref.info["baseline_coef"], rtol=RTOL, atol=RTOL)
    if ref.info["cluster_correction"] is None:
        assert got.info["cluster_correction"] is None
    else:
        assert got.info["cluster_correction"] == pytest.approx(ref.info["cluster_correction"], rel=1e-15)
    assert got.info["engine"].startswith("ibis ")


def on_engine(con, df: pd.DataFrame, path: Path):
    """``df`` as a table of ``con`` read from a Parquet file (no local relation for Spark to fold)."""
    df.to_parquet(path, index=False)
    return con.read_parquet(str(path))


@pytest.fixture(scope="module")
def sample_panel() -> pd.DataFrame:
    """The bundled sample's account-month panel: rows with an attainment, the exposure in months."""
    from csresearch.attainment import episodes
    from csresearch.data import load
    from csresearch.models import panel_exposure

    ep = episodes(load(SAMPLE))
    ep = ep[ep["attainment"].notna()].reset_index(drop=True)
    ep["exposure"] = panel_exposure(ep)
    return ep[["account_id", "segment", "event", "tenure_months", "attainment", "exposure"]]


def small_panel(seed: int = 3, accounts: int = 250, months: int = 12) -> pd.DataFrame:
    """A person-period panel from a discrete PH model: accounts leave at their event or after ``months``;
    ``x1`` varies by row, ``x2`` (bool) and ``x3`` by account."""
    rng = np.random.default_rng(seed)
    x2 = rng.random(accounts) < 0.4
    x3 = rng.integers(1, 6, accounts).astype(float)
    rows = []
    for a in range(accounts):
        for t in range(months):
            x1 = rng.normal()
            p = 1 - np.exp(-np.exp(-3.0 + 0.3 * np.log1p(t) + 0.5 * x1 - 0.6 * x2[a] + 0.2 * x3[a]))
            ev = rng.random() < p
            rows.append((a, float(t), x1, bool(x2[a]), x3[a], int(ev)))
            if ev:
                break
    return pd.DataFrame(rows, columns=["account", "t", "x1", "x2", "x3", "ev"])


def test_sample_panel_equals_the_pandas_fit(any_con, sample_panel, tmp_path):
    """(a) The studies' model on the sample panel: attainment, strata by segment, clustered by account, exposure."""
    kw = dict(strata="segment", cluster="account_id", exposure="exposure")
    ref = sv.fit_discrete(sample_panel, "event", ["attainment"], "tenure_months", engine="numpy", **kw)
    got = fit_discrete(on_engine(any_con, sample_panel, tmp_path / "panel.parquet"), "event", ["attainment"],
                       "tenure_months", **kw)
    assert_same_fit(got, ref)
    assert got.info["strata"] == ("segment",) and got.info["robust"] and got.info["n_clusters"] > 1000
    assert got.info["baseline_df"] == 6 and len(got.info["baseline_terms"]) == 1 + 6 + 2


@pytest.mark.parametrize("baseline_df", [0, 1])
def test_several_covariates_without_strata_cluster_or_exposure(any_con, baseline_df):
    """(b) baseline_df 0 (constant hazard) and 1 (linear in log1p(time)), three covariates (one boolean), no
    strata, cluster or exposure; the table is a memtable run on ``con``."""
    df = small_panel()
    covs = ["x1", "x2", "x3"]
    ref = sv.fit_discrete(df, "ev", covs, "t", baseline_df=baseline_df, engine="numpy")
    got = fit_discrete(ibis.memtable(df), "ev", covs, "t", baseline_df=baseline_df, con=any_con)
    assert_same_fit(got, ref)
    assert got.info["baseline_terms"] == (("Intercept",) if baseline_df == 0 else ("Intercept", "log1p(t)"))
    assert not got.info["robust"] and got.info["cluster_correction"] is None


def _error_cases():
    df = small_panel(accounts=120)
    constant = df.assign(c=2.0)
    collinear = df.assign(c=2.0 * df["x1"] - 3.0 * df["x3"] + 1.0)
    missing = df.assign(c=np.where(np.arange(len(df)) % 50 == 0, np.nan, df["x1"]))
    no_events = df.assign(s=np.where(df["x3"] == 5.0, "b", "a"), c=df["x1"])
    no_events.loc[no_events["s"] == "b", "ev"] = 0
    return [
        pytest.param(constant, {}, "zero variance", id="constant"),
        pytest.param(collinear, {}, r"collinear: \['c'\]", id="collinear"),
        pytest.param(missing, {}, "missing value", id="missing"),
        pytest.param(no_events, {"strata": "s"}, r"\['b'\].*no events", id="stratum-without-events"),
    ]


@pytest.mark.parametrize("df, kw, match", _error_cases())
def test_errors_are_those_of_the_pandas_fit(any_con, df, kw, match):
    """(c) A constant covariate, a linear combination of covariates (a singular design; on the engine judged from
    the Gram matrix), a missing value, a stratum without events: the same ValueError, the same message."""
    covs = ["x1", "x3", "c"]
    with pytest.raises(ValueError, match=match) as ref:
        sv.fit_discrete(df, "ev", covs, "t", engine="numpy", **kw)
    with pytest.raises(ValueError) as got:
        fit_discrete(ibis.memtable(df), "ev", covs, "t", con=any_con, **kw)
    assert str(got.value) == str(ref.value)


def test_separation_is_reported(any_con):
    """(c) A covariate non-zero only on event rows has its MLE at infinity: the fit runs into exp() overflow on
    the engine (inf, NaN; Spark's ANSI mode) without failing and reports it as the pandas fit does -- a
    ValueError (singular information) or a RuntimeWarning, both naming separation (see test_discrete)."""
    df = small_panel(accounts=120)
    rng = np.random.default_rng(0)
    df["c"] = np.where(df["ev"] == 1, rng.random(len(df)) + 0.5, 0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = fit_discrete(ibis.memtable(df), "ev", ["x1", "c"], "t", baseline_df=0, max_iter=4, con=any_con)
            msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        except ValueError as exc:
            fit, msgs = None, [str(exc)]
    assert any("separation" in m for m in msgs), msgs
    if fit is not None:
        assert not fit.info["converged"] and fit.summary.loc["c", "coef"] > 10


def test_column_and_type_errors_before_any_query():
    """Missing columns and non-numeric covariates are found from the schema, as the pandas fit's KeyError and
    TypeError."""
    df = small_panel(accounts=20).assign(name="a")
    table = ibis.memtable(df)
    with pytest.raises(KeyError, match="nope"):
        fit_discrete(table, "ev", ["x1", "nope"], "t")
    with pytest.raises(TypeError, match="non-numeric"):
        fit_discrete(table, "ev", ["x1", "name"], "t")
    with pytest.raises(TypeError, match="Ibis table"):
        fit_discrete(df, "ev", ["x1"], "t")


@pytest.mark.parametrize("df_spline", [2, 6])
def test_spline_basis_expressions_equal_rcs_basis(any_con, df_spline):
    """The engine's spline columns are ``_rcs_basis`` (the pandas fit's basis), below, between and beyond the
    knots."""
    rng = np.random.default_rng(5)
    x = np.concatenate([[0.0], rng.uniform(0, 4, 300), [10.0]])
    knots, used = _rcs_knots(rng.uniform(0.2, 3.5, 80), df_spline, "test")
    assert used == df_spline and len(knots) == df_spline + 1
    expected = np.empty((len(x), df_spline))
    _rcs_basis(x.copy(), knots, expected)
    table = ibis.memtable(pd.DataFrame({"i": np.arange(len(x)), "x": x}))
    cols = rcs_basis_exprs(table["x"], knots)
    got = any_con.execute(table.select("i", **{f"b{j}": c for j, c in enumerate(cols)}).order_by("i"))
    assert got.shape[1] == 1 + df_spline
    np.testing.assert_allclose(got[[f"b{j}" for j in range(df_spline)]].to_numpy(), expected, rtol=1e-13,
                               atol=1e-13)
    assert np.abs(expected[:, 1:]).max() > 0.01  # the non-linear terms are not all zero


def test_two_strata_columns_and_an_integer_cluster():
    """Strata of two columns (text and integer: sorted as pandas sorts them, labelled "hi, 1") and an integer
    cluster id, with exposure and a 3-df spline (DuckDB only: the Spark paths are the tests above)."""
    from csresearch.engine import connect

    df = small_panel(accounts=300)
    df["g"] = np.where(df["x3"] > 2, "hi", "lo")
    df["i"] = (df["account"] % 3).astype("int64")
    df["e"] = np.where(df["t"] == 0, 0.5, 1.0)
    kw = dict(strata=["g", "i"], cluster="account", exposure="e", baseline_df=3)
    ref = sv.fit_discrete(df, "ev", ["x1", "x3"], "t", engine="numpy", **kw)
    got = fit_discrete(ibis.memtable(df), "ev", ["x1", "x3"], "t", con=connect("duckdb"), **kw)
    assert_same_fit(got, ref)
    assert got.info["baseline_terms"][-5:] == ("strata[hi, 1]", "strata[hi, 2]", "strata[lo, 0]", "strata[lo, 1]",
                                               "strata[lo, 2]")


def test_frame_table_lets_the_frame_go_after_the_block(any_con):
    from csresearch.engine.backend import frame_table

    def views():
        return ({t.name for t in any_con._session.catalog.listTables()} if any_con.name == "pyspark" else set())

    before = views()
    with frame_table(any_con, pd.DataFrame({"a": [1.0, 2.0, 4.5]})) as t:
        assert float(any_con.execute(t.a.sum())) == 7.5
        assert len(views() - before) == (1 if any_con.name == "pyspark" else 0)
    assert views() == before
