"""Tests for csresearch.survival.fit_discrete (discrete-time cloglog proportional hazards).

Oracles:
* a direct maximum-likelihood fit written here (scipy.optimize on the cloglog
  Bernoulli log-likelihood) over a design built here independently (patsy's
  natural cubic regression spline ``cr`` with the same knots -- a different
  basis of the same function space -- plus pandas dummies), with a Hessian
  from finite differences of the analytic gradient;
* statsmodels GLM(Binomial, CLogLog) on that design (cluster-robust SEs);
* the data-generating value of a simulated continuous-time proportional
  hazards model and fit_cox on the same (start, stop] rows.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.api as sm
from scipy import optimize

from csresearch import survival as sv
from csresearch.attainment import episodes
from csresearch.data import load
from csresearch.models import EXPOSURE, Engine, model_frame, panel_exposure, strata_of
from csresearch.survival import fit_cox, fit_discrete, lr_test
from csresearch.world import WorldConfig, generate

COLS = ["coef", "se", "hr", "ci_low", "ci_high", "z", "p"]


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def simulate_panel(n_acc: int, months: int, seed: int, beta=(0.5, -0.4), shape=1.3, scale=0.02,
                   seg_effect=(0.0, 0.3, 0.6)) -> pd.DataFrame:
    """Account-month panel from a continuous-time Weibull PH model.

    h(t | x) = scale * shape * t^(shape-1) * exp(b1 x1(t) + b2 x2 + segment), t in
    months; x1 changes every month (constant within it), x2 is fixed.  Each
    account is followed from tenure 0 for a random number of whole months
    (administrative censoring at a month boundary) or until the event.  The
    event row's ``stop`` is the exact event time (for fit_cox); the grouped-time
    model only uses which month it fell in.
    """
    rng = np.random.default_rng(seed)
    acc = np.repeat(np.arange(n_acc), months)
    mon = np.tile(np.arange(months, dtype=float), n_acc)
    seg_a = rng.integers(0, 3, n_acc)
    x1 = rng.normal(size=n_acc * months)
    x2 = rng.binomial(1, 0.4, n_acc).astype(float)[acc]
    risk = np.exp(beta[0] * x1 + beta[1] * x2 + np.asarray(seg_effect)[seg_a][acc])

    def H0(t):
        return scale * t**shape

    dH = risk * (H0(mon + 1) - H0(mon))
    E = rng.exponential(size=n_acc)[acc]
    cum = np.cumsum(dH.reshape(n_acc, months), axis=1).ravel()
    prev = cum - dH
    follow = rng.integers(months // 2, months + 1, n_acc)[acc]
    at_risk = (prev < E) & (mon < follow)
    event = at_risk & (cum >= E)
    with np.errstate(invalid="ignore"):
        t_event = ((H0(mon) + (E - prev) / risk) / scale) ** (1 / shape)
    df = pd.DataFrame({
        "account_id": np.char.add("acc-", acc.astype(str)),
        "segment": np.array(["enterprise", "mid", "smb"])[seg_a][acc],
        "start": mon,
        "stop": np.where(event, t_event, mon + 1.0),
        "event": event.astype(int),
        "tenure_months": mon,
        "x1": x1,
        "x2": x2,
    })
    return df[at_risk].reset_index(drop=True)


@pytest.fixture(scope="module")
def small():
    return simulate_panel(700, 12, seed=11)


# ---------------------------------------------------------------------------
# independent implementation
# ---------------------------------------------------------------------------


def independent_design(df, res, covariates, strata=None):
    """[cr spline basis of log1p(time) (spans the intercept) | strata dummies | covariates]."""
    knots = np.log1p(np.asarray(res.info["baseline_knots"]))
    x = np.log1p(df[res.info["time"]].to_numpy(float))
    if len(knots) >= 3:
        B = np.asarray(patsy.dmatrix(
            "cr(x, knots=inner, lower_bound=lo, upper_bound=hi) - 1",
            {"x": x, "inner": tuple(knots[1:-1]), "lo": knots[0], "hi": knots[-1]},
        ))
    else:
        B = np.column_stack([np.ones_like(x), x][: 1 + res.info["baseline_df"]])
    parts = [B]
    if strata is not None:
        parts.append(pd.get_dummies(df[strata], drop_first=True).to_numpy(float))
    parts.append(df[covariates].to_numpy(float))
    return np.column_stack(parts)


def cloglog_ll_grad(b, X, y):
    """Bernoulli log-likelihood with P = 1 - exp(-exp(Xb)) and its gradient (plain formulas)."""
    m = np.exp(X @ b)
    p = 1 - np.exp(-m)
    ll = np.sum(y * np.log(p) - (1 - y) * m)
    dl_deta = y * m * np.exp(-m) / p - (1 - y) * m
    return ll, X.T @ dl_deta, dl_deta


def direct_mle(X, y):
    n = len(y)
    # start: constant hazard cloglog(ybar) (the cr basis sums to one)
    b0 = np.linalg.lstsq(X, np.full(n, np.log(-np.log1p(-y.mean()))), rcond=None)[0]

    def f(b):
        ll, g, _ = cloglog_ll_grad(b, X, y)
        return -ll / n, -g / n

    opt = optimize.minimize(f, b0, jac=True, method="BFGS", options={"gtol": 1e-11, "maxiter": 5000})
    b = opt.x
    # finite-difference Hessian of the log-likelihood from the analytic gradient
    h = 1e-5
    H = np.empty((len(b), len(b)))
    for j in range(len(b)):
        e = np.zeros(len(b))
        e[j] = h
        H[:, j] = (cloglog_ll_grad(b + e, X, y)[1] - cloglog_ll_grad(b - e, X, y)[1]) / (2 * h)
    H = (H + H.T) / 2
    return b, H, cloglog_ll_grad(b, X, y)[0]


# ---------------------------------------------------------------------------
# 1. against a direct maximum-likelihood fit
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["statsmodels", "numpy"])
def test_matches_direct_mle(small, engine):
    cov = ["x1", "x2"]
    res = fit_discrete(small, "event", cov, "tenure_months", strata="segment", engine=engine)
    a = res.info
    assert res.method == "discrete_cloglog" and a["engine"].startswith(engine)
    assert list(res.summary.columns) == COLS and res.summary.index.name == "covariate" and list(res.summary.index) == cov
    assert a["converged"] and a["baseline_df"] == 6 and res.n == len(small)
    assert res.events == small["event"].sum() and a["n_params"] == 1 + 6 + 2 + 2
    # documented knots: 7 quantiles (5% .. 95%) of log1p(time) over the event rows
    x_ev = np.log1p(small.loc[small["event"] == 1, "tenure_months"].to_numpy())
    expect = np.unique(np.quantile(x_ev, np.linspace(0.05, 0.95, 7)))
    np.testing.assert_allclose(np.log1p(a["baseline_knots"]), expect, rtol=1e-12)

    X = independent_design(small, res, cov, strata="segment")
    y = small["event"].to_numpy(float)
    b, H, ll = direct_mle(X, y)
    np.testing.assert_allclose(res.summary["coef"], b[-2:], atol=1e-5)
    assert res.loglik == pytest.approx(ll, abs=1e-7)
    V = np.linalg.inv(-H)
    np.testing.assert_allclose(res.summary["se"], np.sqrt(np.diag(V))[-2:], rtol=1e-4)
    np.testing.assert_allclose(np.array(a["vcov_naive"]), V[-2:, -2:], rtol=1e-4, atol=1e-10)
    assert res.vcov.equals(a["vcov_naive"]) and not a["robust"] and a["n_clusters"] is None
    # the table is derived consistently from coef and se
    z = sv._checks._z(0.05)
    np.testing.assert_allclose(res.summary["hr"], np.exp(res.summary["coef"]))
    np.testing.assert_allclose(res.summary["ci_low"], np.exp(res.summary["coef"] - z * res.summary["se"]))
    np.testing.assert_allclose(res.summary["ci_high"], np.exp(res.summary["coef"] + z * res.summary["se"]))
    np.testing.assert_allclose(res.summary["z"], res.summary["coef"] / res.summary["se"])
    # loglik_null = the baseline-only model on the same baseline design
    _, _, ll0 = direct_mle(X[:, :-2], y)
    assert a["loglik_null"] == pytest.approx(ll0, abs=1e-7)


def test_engines_agree_with_strata_and_cluster(small):
    kw = dict(strata="segment", cluster="account_id", baseline_df=4)
    r_sm = fit_discrete(small, "event", ["x1", "x2"], "tenure_months", engine="statsmodels", **kw)
    r_np = fit_discrete(small, "event", ["x1", "x2"], "tenure_months", engine="numpy", **kw)
    np.testing.assert_allclose(r_np.summary["coef"], r_sm.summary["coef"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(r_np.summary["se"], r_sm.summary["se"], rtol=1e-7)
    assert r_np.loglik == pytest.approx(r_sm.loglik, rel=1e-10)
    assert r_np.info["loglik_null"] == pytest.approx(r_sm.info["loglik_null"], rel=1e-10)
    np.testing.assert_allclose(np.array(r_np.vcov), np.array(r_sm.vcov), rtol=1e-6, atol=1e-12)
    for key in ("vcov_naive", "baseline_coef"):
        np.testing.assert_allclose(np.array(r_np.info[key]), np.array(r_sm.info[key]), rtol=1e-6, atol=1e-12)
    # "auto" is statsmodels at this size
    auto = fit_discrete(small, "event", ["x1", "x2"], "tenure_months", **kw)
    assert auto.info["engine"] == r_sm.info["engine"]


def test_numpy_engine_chunks(small, monkeypatch):
    """Many chunks (incl. a short last one) give the same fit as one chunk."""
    kw = dict(strata="segment", cluster="account_id", engine="numpy")
    one = fit_discrete(small, "event", ["x1", "x2"], "tenure_months", **kw)
    monkeypatch.setattr(sv.discrete, "_DISCRETE_CHUNK_CELLS", 997 * 11)  # 997 rows per chunk
    monkeypatch.setattr(sv.discrete, "_GROUPED_CHUNK_ROWS", 997)
    many = fit_discrete(small, "event", ["x1", "x2"], "tenure_months", **kw)
    np.testing.assert_allclose(many.summary["coef"], one.summary["coef"], rtol=1e-10)
    np.testing.assert_allclose(many.summary["se"], one.summary["se"], rtol=1e-9)
    assert many.loglik == pytest.approx(one.loglik, rel=1e-12)


def test_the_covariates_are_read_in_place_and_centred_as_the_copy_was(small, monkeypatch):
    """The fit reads the frame's float columns where they are (no n x p copy beside the frame), centred a block at a
    time to the values of the centred copy, and gives the fit that copy gave."""
    cov = ["x1", "x2"]
    _, _, X, _ = sv.discrete._discrete_data(small, "event", cov, "tenure_months", [], "fit_discrete")
    assert all(np.shares_memory(X.columns[j], small[c].to_numpy()) for j, c in enumerate(cov))
    copy = np.asfortranarray(small[cov].to_numpy(dtype=float))
    copy -= copy.mean(axis=0)
    assert X.shape == copy.shape
    np.testing.assert_array_equal(X[0:len(copy)], copy)
    np.testing.assert_array_equal(X[101:2003], copy[101:2003])
    np.testing.assert_array_equal(X[:, 1], copy[:, 1])
    before = small[cov].to_numpy().copy()
    kw = dict(strata="segment", cluster="account_id", engine="numpy")
    in_place = fit_discrete(small, "event", cov, "tenure_months", **kw)
    np.testing.assert_array_equal(small[cov].to_numpy(), before)  # read, never written
    monkeypatch.setattr(sv.discrete, "_Centred", lambda cols: (lambda m: m - m.mean(axis=0))(
        np.asfortranarray(np.column_stack(cols))))
    copied = fit_discrete(small, "event", cov, "tenure_months", **kw)
    np.testing.assert_allclose(in_place.summary[COLS].to_numpy(), copied.summary[COLS].to_numpy(), rtol=1e-13)
    assert in_place.loglik == pytest.approx(copied.loglik, rel=1e-14)


@pytest.mark.parametrize("exposure", [None, "exposure"])
def test_grouped_passes_equal_the_row_blocks(partial, monkeypatch, exposure):
    """A panel's few (tenure, stratum) keys let the numpy engine sum by key (the baseline lookup); that fit is the
    one built from the design's rows (no lookup), in chunks of either kind, to rounding."""
    kw = dict(strata="segment", cluster="account_id", engine="numpy", exposure=exposure, baseline_df=4)
    frame = partial.assign(tenure_months=np.floor(partial["tenure_months"]))
    calls = []
    real = sv.discrete._discrete_eval_grouped
    monkeypatch.setattr(sv.discrete, "_discrete_eval_grouped", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(sv.discrete, "_GROUPED_CHUNK_ROWS", 1009)
    grouped = fit_discrete(frame, "event", ["x1", "x2"], "tenure_months", **kw)
    assert calls, "the lookup path was not taken"
    n_grouped = len(calls)
    monkeypatch.setattr(sv.discrete, "_baseline_lookup", lambda *a: None)
    rows = fit_discrete(frame, "event", ["x1", "x2"], "tenure_months", **kw)
    assert len(calls) == n_grouped  # built from the rows, not by key
    np.testing.assert_allclose(grouped.summary["coef"], rows.summary["coef"], rtol=1e-11)
    np.testing.assert_allclose(grouped.summary["se"], rows.summary["se"], rtol=1e-10)
    np.testing.assert_allclose(np.array(grouped.vcov), np.array(rows.vcov), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(grouped.info["baseline_coef"], rows.info["baseline_coef"], rtol=1e-10, atol=1e-12)
    assert grouped.loglik == pytest.approx(rows.loglik, rel=1e-13)
    assert grouped.info["loglik_null"] == pytest.approx(rows.info["loglik_null"], rel=1e-13)


def test_grouped_cluster_scores_do_not_need_rows_in_account_order(partial, monkeypatch):
    """The clustered sandwich of the grouped passes sums each chunk's scores over the range of clusters the chunk
    holds (a panel's rows come by account: a short range); on rows in any order the range is the whole book and the
    fit is the same; its codes are int32 and the fit holds neither the times nor the strata once keyed."""
    kw = dict(strata="segment", cluster="account_id", engine="numpy", exposure="exposure", baseline_df=4)
    frame = partial.assign(tenure_months=np.floor(partial["tenure_months"]))
    monkeypatch.setattr(sv.discrete, "_GROUPED_CHUNK_ROWS", 997)
    designs = []
    real = sv.discrete._discrete_eval_grouped
    monkeypatch.setattr(sv.discrete, "_discrete_eval_grouped", lambda d, *a: designs.append(d) or real(d, *a))
    in_order = fit_discrete(frame, "event", ["x1", "x2"], "tenure_months", **kw)
    d = designs[-1]
    assert d.x is None and d.codes is None and d.lookup[0].dtype == np.int32 and d.n == len(frame)
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    other = fit_discrete(shuffled, "event", ["x1", "x2"], "tenure_months", **kw)
    np.testing.assert_allclose(other.summary["coef"], in_order.summary["coef"], rtol=1e-10)
    np.testing.assert_allclose(np.array(other.vcov), np.array(in_order.vcov), rtol=1e-9, atol=1e-15)
    assert sv.discrete._small_codes(np.arange(5, dtype=np.int64), 5).dtype == np.int32


def test_grouped_rank_check_sees_the_design_the_rows_make(partial, monkeypatch):
    """With a baseline lookup the rank check's R comes from the keys and the within-key covariates: its R'R is the
    design's D'D (the R factor of the rows), and it flags the same collinear covariates."""
    frame = partial.assign(tenure_months=np.floor(partial["tenure_months"]))
    seen = []
    real = sv.discrete._discrete_rank_check
    monkeypatch.setattr(sv.discrete, "_discrete_rank_check", lambda R, *a, **k: seen.append(R) or real(R, *a, **k))
    grouped_r = []
    real_r = sv.discrete._grouped_r
    monkeypatch.setattr(sv.discrete, "_grouped_r", lambda d: grouped_r.append(1) or real_r(d))
    monkeypatch.setattr(sv.discrete, "_DISCRETE_CHUNK_CELLS", 3000)  # several chunks of rows
    kw = dict(strata="segment", engine="numpy", baseline_df=4)
    fit_discrete(frame, "event", ["x1", "x2"], "tenure_months", **kw)
    assert grouped_r, "the grouped rank check was not taken"
    with monkeypatch.context() as m:
        m.setattr(sv.discrete, "_baseline_lookup", lambda *a: None)
        fit_discrete(frame, "event", ["x1", "x2"], "tenure_months", **kw)
    assert len(grouped_r) == 1
    by_key, by_rows = seen
    np.testing.assert_allclose(by_key.T @ by_key, by_rows.T @ by_rows, rtol=1e-9, atol=1e-9)
    # the same collinear covariates are found without the rows
    seg = frame.assign(is_smb=(frame["segment"] == frame["segment"].iloc[0]).astype(float))
    with pytest.raises(ValueError, match=r"collinear.*\['is_smb'\]"):
        fit_discrete(seg, "event", ["x1", "is_smb"], "tenure_months", **kw)
    with pytest.raises(ValueError, match=r"collinear.*\['lt'\]"):
        fit_discrete(frame.assign(lt=np.log1p(frame["tenure_months"])), "event", ["x1", "lt"], "tenure_months", **kw)
    with pytest.raises(ValueError, match=r"collinear.*\['x3'\]"):
        fit_discrete(frame.assign(x3=2 * frame["x1"] - frame["x2"]), "event", ["x1", "x2", "x3"], "tenure_months",
                     **kw)
    assert len(grouped_r) == 4


# ---------------------------------------------------------------------------
# 2. simulation: recovers the continuous-time log hazard ratio, agrees with Cox
# ---------------------------------------------------------------------------


def test_recovers_true_hazard_ratio_and_matches_cox():
    truth = np.array([0.5, -0.4])
    df = simulate_panel(3000, 24, seed=5, beta=truth)
    assert 1500 < df["event"].sum() < 4000
    res = fit_discrete(df, "event", ["x1", "x2"], "tenure_months", strata="segment", cluster="account_id",
                       engine="numpy")
    assert res.info["converged"]
    err = (res.summary["coef"].to_numpy() - truth) / res.summary["se"].to_numpy()
    assert np.all(np.abs(err) < 3), err
    cox = fit_cox(df, "stop", "event", ["x1", "x2"], entry="start", strata="segment")
    # same estimand, same rows: within a few percent of each other (and well within one SE)
    np.testing.assert_allclose(res.summary["coef"], cox.summary["coef"], rtol=0.03)
    assert np.all(np.abs(res.summary["coef"] - cox.summary["coef"]) < 0.3 * cox.summary["se"])
    np.testing.assert_allclose(np.sqrt(np.diag(res.info["vcov_naive"])), cox.summary["se"], rtol=0.05)



# ---------------------------------------------------------------------------
# 3. cluster-robust sandwich by hand
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["statsmodels", "numpy"])
def test_cluster_sandwich_by_hand(small, engine):
    cov = ["x1", "x2"]
    res = fit_discrete(small, "event", cov, "tenure_months", strata="segment", cluster="account_id",
                       baseline_df=3, engine=engine)
    a = res.info
    X = independent_design(small, res, cov, strata="segment")
    y = small["event"].to_numpy(float)
    b, H, _ = direct_mle(X, y)
    _, _, u = cloglog_ll_grad(b, X, y)
    scores = pd.DataFrame(X * u[:, None]).groupby(small["account_id"].to_numpy()).sum().to_numpy()
    G, (n, k) = scores.shape[0], X.shape
    bread = np.linalg.inv(-H)
    c = G / (G - 1) * (n - 1) / (n - k)
    V = c * bread @ (scores.T @ scores) @ bread
    assert a["robust"] and a["n_clusters"] == G == small["account_id"].nunique()
    assert a["cluster_correction"] == pytest.approx(c, rel=1e-14) and a["n_params"] == k
    np.testing.assert_allclose(np.array(res.vcov), V[-2:, -2:], rtol=1e-4)
    np.testing.assert_allclose(res.summary["se"], np.sqrt(np.diag(V))[-2:], rtol=1e-4)
    # the naive variance is still reported, and differs (x1 varies within accounts)
    assert not a["vcov_naive"].equals(res.vcov)
    # and it is what statsmodels' own cluster covariance gives on this design
    codes = pd.factorize(small["account_id"])[0]
    ref = sm.GLM(y, X, family=sm.families.Binomial(link=sm.families.links.CLogLog())).fit(
        method="newton", start_params=b, tol=1e-12, cov_type="cluster", cov_kwds={"groups": codes})
    np.testing.assert_allclose(res.summary["se"], ref.bse[-2:], rtol=1e-5)


# ---------------------------------------------------------------------------
# 4. strata, likelihood-ratio tests, baseline options, errors
# ---------------------------------------------------------------------------


def test_strata_are_per_stratum_intercepts(small):
    df = small.assign(seg_mid=(small["segment"] == "mid").astype(float),
                      seg_smb=(small["segment"] == "smb").astype(float))
    kw = {"engine": "numpy"}
    strat = fit_discrete(df, "event", ["x1", "x2"], "tenure_months", strata="segment", **kw)
    dummies = fit_discrete(df, "event", ["x1", "x2", "seg_mid", "seg_smb"], "tenure_months", **kw)
    plain = fit_discrete(df, "event", ["x1", "x2"], "tenure_months", **kw)
    np.testing.assert_allclose(strat.summary["coef"], dummies.summary["coef"].iloc[:2], rtol=1e-7)
    np.testing.assert_allclose(strat.summary["se"], dummies.summary["se"].iloc[:2], rtol=1e-6)
    assert strat.loglik == pytest.approx(dummies.loglik, rel=1e-11)
    terms = strat.info["baseline_terms"]
    assert terms[-2:] == ("strata[mid]", "strata[smb]") and "strata[enterprise]" not in terms
    np.testing.assert_allclose(strat.info["baseline_coef"][-2:], dummies.summary["coef"].iloc[2:], rtol=1e-6)
    assert strat.info["strata"] == ("segment",) and plain.info["strata"] is None
    # the segments differ in hazard (simulated 0, 0.3, 0.6): strata improve the fit
    assert strat.loglik - plain.loglik > 5
    assert len(plain.info["baseline_terms"]) == len(terms) - 2
    # a list of strata columns: one intercept per combination
    df["half"] = np.where(df["x2"] > 0, "b", "a")
    two = fit_discrete(df, "event", ["x1"], "tenure_months", strata=["segment", "half"], **kw)
    assert sum(t.startswith("strata[") for t in two.info["baseline_terms"]) == 5
    assert "strata[enterprise, b]" in two.info["baseline_terms"]


@pytest.fixture(scope="module")
def nested(small):
    full = fit_discrete(small, "event", ["x1", "x2"], "tenure_months", strata="segment")
    reduced = fit_discrete(small, "event", ["x1"], "tenure_months", strata="segment")
    return full, reduced


def test_loglik_attrs_give_the_lr_statistic(small, nested):
    """The statistic lr_test would compute, against statsmodels' llf."""
    full, reduced = nested
    assert reduced.info["loglik_null"] == pytest.approx(full.info["loglik_null"], rel=1e-12)
    X = independent_design(small, full, ["x1", "x2"], strata="segment")
    y = small["event"].to_numpy(float)
    fam = sm.families.Binomial(link=sm.families.links.CLogLog())
    ll = [sm.GLM(y, X[:, :j], family=fam).fit(tol=1e-13).llf for j in range(X.shape[1] - 2, X.shape[1] + 1)]
    assert full.info["loglik_null"] == pytest.approx(ll[0], abs=1e-6)
    assert 2 * (full.loglik - reduced.loglik) == pytest.approx(2 * (ll[2] - ll[1]), abs=1e-5)
    assert full.loglik > reduced.loglik > full.info["loglik_null"]


def test_lr_test_accepts_discrete_fits(nested):
    full, reduced = nested
    out = lr_test(full, reduced)
    assert out["df"] == 1
    assert out["statistic"] == pytest.approx(2 * (full.loglik - reduced.loglik))
    out0 = lr_test(full)
    assert out0["df"] == 2
    assert out0["statistic"] == pytest.approx(2 * (full.loglik - full.info["loglik_null"]))


def test_baseline_df_options(small):
    y = small["event"].to_numpy(float)
    x = np.log1p(small["tenure_months"].to_numpy())
    fam = sm.families.Binomial(link=sm.families.links.CLogLog())
    # df 0: constant hazard = plain cloglog GLM with an intercept
    r0 = fit_discrete(small, "event", ["x1"], "tenure_months", baseline_df=0)
    ref = sm.GLM(y, sm.add_constant(small[["x1"]].to_numpy()), family=fam).fit(method="newton", tol=1e-12)
    np.testing.assert_allclose(r0.summary["coef"], ref.params[1:], rtol=1e-8)
    assert r0.info["baseline_terms"] == ("Intercept",) and r0.info["baseline_knots"] == ()
    # df 1: linear in log1p(time) (Weibull-like)
    r1 = fit_discrete(small, "event", ["x1"], "tenure_months", baseline_df=1)
    ref = sm.GLM(y, np.column_stack([np.ones_like(x), x, small["x1"]]), family=fam).fit(method="newton", tol=1e-12)
    np.testing.assert_allclose(r1.summary["coef"], ref.params[2:], rtol=1e-8)
    assert r1.loglik == pytest.approx(ref.llf, rel=1e-11)
    # more flexible baselines fit at least as well
    r6 = fit_discrete(small, "event", ["x1"], "tenure_months")
    assert r6.loglik >= r1.loglik - 1e-9 >= r0.loglik - 2e-9
    # only 4 distinct event times: knots are merged with a warning
    coarse = small.assign(t4=np.minimum(small["tenure_months"] // 3, 3.0))
    with pytest.warns(RuntimeWarning, match="distinct knot"):
        rc = fit_discrete(coarse, "event", ["x1"], "t4", baseline_df=6)
    assert rc.info["baseline_df"] < 6 and len(rc.info["baseline_knots"]) == rc.info["baseline_df"] + 1


def test_errors(small):
    f = fit_discrete
    args = ("event", ["x1", "x2"], "tenure_months")
    with pytest.raises(KeyError, match="nope"):
        f(small, "event", ["x1", "nope"], "tenure_months")
    bad = small.copy()
    bad.loc[[3, 5, 8], "x2"] = np.nan
    with pytest.raises(ValueError, match=r"'x2' has 3 missing"):
        f(bad, *args)
    bad = small.copy()
    bad.loc[4, "tenure_months"] = np.nan
    with pytest.raises(ValueError, match=r"'tenure_months' has 1 missing"):
        f(bad, *args)
    bad = small.copy()
    bad.loc[2, "account_id"] = None
    with pytest.raises(ValueError, match=r"'account_id' has 1 missing"):
        f(bad, *args, cluster="account_id")
    with pytest.raises(ValueError, match=r"zero variance.*\['k'\]"):
        f(small.assign(k=1.0), "event", ["x1", "k"], "tenure_months")
    with pytest.raises(ValueError, match="must be 0/1"):
        f(small.assign(event=small["event"] * 2), *args)
    with pytest.raises(ValueError, match="no events"):
        f(small.assign(event=0), *args)
    with pytest.raises(ValueError, match="negative"):
        f(small.assign(tenure_months=small["tenure_months"] - 1), *args)
    with pytest.raises(TypeError, match="non-numeric"):
        f(small, "event", ["x1", "segment"], "tenure_months")
    with pytest.raises(ValueError, match="baseline_df"):
        f(small, *args, baseline_df=-1)
    with pytest.raises(ValueError, match="engine"):
        f(small, *args, engine="R")
    # a covariate that is constant within strata is collinear with the strata intercepts
    seg = small.assign(is_smb=(small["segment"] == "smb").astype(float))
    with pytest.raises(ValueError, match=r"collinear.*\['is_smb'\]"):
        f(seg, "event", ["x1", "is_smb"], "tenure_months", strata="segment")
    # ... and a function of time with the baseline
    with pytest.raises(ValueError, match=r"collinear.*\['lt'\]"):
        f(small.assign(lt=np.log1p(small["tenure_months"])), "event", ["x1", "lt"], "tenure_months")
    # a stratum without events has an infinite intercept
    noev = small[~((small["segment"] == "mid") & (small["event"] == 1))]
    with pytest.raises(ValueError, match=r"\['mid'\].*no events"):
        f(noev, *args, strata="segment")


def test_separation_and_non_convergence(small):
    # a covariate that is 1 exactly on the event rows: the MLE is at infinity
    # (depending on rounding the information matrix becomes exactly singular
    # -> ValueError, or Newton runs off -> RuntimeWarning; both name it)
    df = small.assign(sep=small["event"].astype(float))
    for engine in ("numpy", "statsmodels"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fit_discrete(df, "event", ["x1", "sep"], "tenure_months", engine=engine)
                msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
            except ValueError as exc:
                msgs = [str(exc)]
        assert any("separation" in m for m in msgs), (engine, msgs)
    # running out of iterations is reported
    with pytest.warns(RuntimeWarning, match="did not converge"):
        res = fit_discrete(small, "event", ["x1", "x2"], "tenure_months", engine="numpy", max_iter=1)
    assert not res.info["converged"] and res.info["iterations"] == 1


# ---------------------------------------------------------------------------
# 5. exposure: log(exposure) offset for partial intervals
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def partial(small):
    """``small`` with an exposure column: the event rows' time to the event, a third of the other rows partial."""
    rng = np.random.default_rng(3)
    n = len(small)
    expo = np.where(rng.random(n) < 0.3, rng.uniform(0.02, 1.0, n), 1.0)
    expo = np.where(small["event"] == 1, small["stop"] - small["start"], expo)
    return small.assign(exposure=expo)


def simulate_partial_rows(n_acc: int, seed: int, beta=(0.5, -0.4), rate=0.03, months=24) -> pd.DataFrame:
    """Panel whose rows have lengths L (months), constant hazard within a row: P(event) = 1 - exp(-L rate e^{xb}).

    The accounts with x2 = 1 have rows of random length U(0.1, 1) (billed at odd dates), the others whole
    months: without the exposure the x2 coefficient absorbs log E[L] ~ -0.6.
    """
    rng = np.random.default_rng(seed)
    x2 = rng.binomial(1, 0.5, n_acc).astype(float)
    L = np.where(x2[:, None] == 1, rng.uniform(0.1, 1.0, (n_acc, months)), 1.0)
    x1 = rng.normal(size=(n_acc, months))
    p = -np.expm1(-L * rate * np.exp(beta[0] * x1 + beta[1] * x2[:, None]))
    ev = rng.random((n_acc, months)) < p
    first = np.where(ev.any(axis=1), ev.argmax(axis=1), months)
    keep = (np.arange(months)[None, :] <= first[:, None]).ravel()
    df = pd.DataFrame({
        "account_id": np.repeat(np.arange(n_acc), months),
        "event": ev.ravel().astype(int),
        "tenure_months": (np.cumsum(L, axis=1) - L).ravel(),
        "exposure": L.ravel(),
        "x1": x1.ravel(),
        "x2": np.repeat(x2, months),
    })
    return df[keep].reset_index(drop=True)


def cloglog_glm(X, y, offset=None, groups=None):
    """statsmodels GLM(Binomial, CLogLog) with the offset, Newton from its IRLS estimate; cluster SEs if grouped."""
    fam = sm.families.Binomial(link=sm.families.links.CLogLog())
    start = sm.GLM(y, X, family=fam, offset=offset).fit(tol=1e-13).params
    kw = {} if groups is None else {"cov_type": "cluster", "cov_kwds": {"groups": groups}}
    return sm.GLM(y, X, family=fam, offset=offset).fit(method="newton", start_params=start, tol=1e-13, **kw)


@pytest.mark.parametrize("engine", ["statsmodels", "numpy"])
def test_exposure_matches_statsmodels_offset(partial, engine):
    """fit_discrete(exposure=) is statsmodels' GLM(..., offset=log exposure) on the same design."""
    cov = ["x1", "x2"]
    res = fit_discrete(partial, "event", cov, "tenure_months", strata="segment", cluster="account_id",
                       engine=engine, exposure="exposure")
    assert res.info["exposure"] == "exposure" and res.info["converged"] and res.info["engine"].startswith(engine)
    X = independent_design(partial, res, cov, strata="segment")
    y = partial["event"].to_numpy(float)
    off = np.log(partial["exposure"].to_numpy())
    ref = cloglog_glm(X, y, off, groups=pd.factorize(partial["account_id"])[0])
    np.testing.assert_allclose(res.summary["coef"], ref.params[-2:], rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.summary["se"], ref.bse[-2:], rtol=0, atol=1e-6)
    assert res.loglik == pytest.approx(ref.llf, abs=1e-6)
    naive = cloglog_glm(X, y, off)
    np.testing.assert_allclose(np.sqrt(np.diag(res.info["vcov_naive"])), naive.bse[-2:], rtol=0, atol=1e-6)
    assert res.info["loglik_null"] == pytest.approx(cloglog_glm(X[:, :-2], y, off).llf, abs=1e-6)
    # the offset is not a no-op here
    plain = fit_discrete(partial, "event", cov, "tenure_months", strata="segment", cluster="account_id",
                         engine=engine)
    assert plain.info["exposure"] is None and abs(plain.loglik - res.loglik) > 10


def test_exposure_engines_agree_in_chunks(partial, monkeypatch):
    """The offset follows the rows of every chunk (incl. a short last one) of the numpy engine."""
    kw = dict(strata="segment", cluster="account_id", exposure="exposure")
    r_sm = fit_discrete(partial, "event", ["x1", "x2"], "tenure_months", engine="statsmodels", **kw)
    monkeypatch.setattr(sv.discrete, "_DISCRETE_CHUNK_CELLS", 997 * 11)  # 997 rows per chunk
    r_np = fit_discrete(partial, "event", ["x1", "x2"], "tenure_months", engine="numpy", **kw)
    np.testing.assert_allclose(r_np.summary["coef"], r_sm.summary["coef"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(r_np.summary["se"], r_sm.summary["se"], rtol=1e-7)
    assert r_np.loglik == pytest.approx(r_sm.loglik, rel=1e-10)
    assert r_np.info["loglik_null"] == pytest.approx(r_sm.info["loglik_null"], rel=1e-10)
    np.testing.assert_allclose(r_np.info["baseline_coef"], r_sm.info["baseline_coef"], rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("engine", ["statsmodels", "numpy"])
def test_exposure_unit_moves_only_the_intercept(partial, engine):
    kw = dict(strata="segment", cluster="account_id", engine=engine)
    args = ("event", ["x1", "x2"], "tenure_months")
    months = fit_discrete(partial, *args, exposure="exposure", **kw)
    days = fit_discrete(partial.assign(days=partial["exposure"] * 30.4375), *args, exposure="days", **kw)
    np.testing.assert_allclose(days.summary["coef"], months.summary["coef"], rtol=1e-7)
    np.testing.assert_allclose(days.summary["se"], months.summary["se"], rtol=1e-6)
    assert days.loglik == pytest.approx(months.loglik, rel=1e-10)
    b_m, b_d = np.array(months.info["baseline_coef"]), np.array(days.info["baseline_coef"])
    assert b_d[0] == pytest.approx(b_m[0] - np.log(30.4375), abs=1e-6)
    np.testing.assert_allclose(b_d[1:], b_m[1:], rtol=1e-6, atol=1e-8)
    # an exposure of one everywhere is the model without exposure
    ones = fit_discrete(partial.assign(one=1.0), *args, exposure="one", **kw)
    plain = fit_discrete(partial, *args, **kw)
    np.testing.assert_allclose(ones.summary.to_numpy(), plain.summary.to_numpy(), rtol=1e-10)
    assert ones.loglik == pytest.approx(plain.loglik, rel=1e-12)


def test_exposure_recovers_the_hazard_ratio_of_partial_rows():
    """Rows of different lengths: with the exposure the planted log hazard ratios come back; without, x2 (whose
    rows are shorter) is biased by about log E[L] = log 0.55."""
    truth = np.array([0.5, -0.4])
    df = simulate_partial_rows(4000, seed=8, beta=truth)
    kw = dict(cluster="account_id", engine="numpy")
    res = fit_discrete(df, "event", ["x1", "x2"], "tenure_months", exposure="exposure", **kw)
    err = (res.summary["coef"].to_numpy() - truth) / res.summary["se"].to_numpy()
    assert np.all(np.abs(err) < 3), err
    plain = fit_discrete(df, "event", ["x1", "x2"], "tenure_months", **kw)
    assert plain.summary.loc["x2", "coef"] - truth[1] < -0.4
    assert abs(plain.summary.loc["x2", "coef"] - truth[1]) > 10 * abs(res.summary.loc["x2", "coef"] - truth[1])


def test_exposure_errors(partial):
    f = fit_discrete
    args = ("event", ["x1", "x2"], "tenure_months")
    with pytest.raises(KeyError, match="nope"):
        f(partial, *args, exposure="nope")
    for value in (0.0, -0.5):
        bad = partial.copy()
        bad.loc[[2, 7], "exposure"] = value
        with pytest.raises(ValueError, match=r"exposure column 'exposure' has 2 non-positive value\(s\) \(zero or "
                                             rf"negative\) out of {len(bad)} rows"):
            f(bad, *args, exposure="exposure")
    bad = partial.copy()
    bad.loc[[1, 4, 9], "exposure"] = np.nan
    with pytest.raises(ValueError, match=r"column 'exposure' has 3 missing value\(s\)"):
        f(bad, *args, exposure="exposure")
    bad.loc[[1, 4, 9], "exposure"] = np.inf
    with pytest.raises(ValueError, match=r"exposure column 'exposure' has 3 non-finite"):
        f(bad, *args, exposure="exposure")
    with pytest.raises(TypeError, match=r"exposure column 'segment' has non-numeric"):
        f(partial, *args, exposure="segment")


# ---------------------------------------------------------------------------
# 6. the exposure on the attainment panel: Engine.panel, and against Cox on generated worlds
# ---------------------------------------------------------------------------

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
MONTH = 365.25 / 12


def test_engine_panel_passes_the_exposure(small):
    """Above the Cox limit the panel model weights each row by its length in months, (stop - start) / MONTH."""
    frame = small.copy()
    fit = Engine(cox_max_rows=10).panel(frame, ["x1", "x2"], "segment")
    assert frame.equals(small)  # the caller's frame is not changed
    assert fit.method == "discrete_cloglog" and fit.info["exposure"] == EXPOSURE
    kw = dict(strata="segment", cluster="account_id", engine="numpy")  # the study's engine fits with numpy
    ref = fit_discrete(small.assign(e=(small["stop"] - small["start"]) / MONTH), "event", ["x1", "x2"],
                       "tenure_months", exposure="e", **kw)
    pd.testing.assert_frame_equal(fit.summary, ref.summary)
    assert fit.loglik == ref.loglik
    np.testing.assert_array_equal(panel_exposure(small), (small["stop"] - small["start"]) / MONTH)
    # an exposure column of the frame is used as it is
    ones = Engine(cox_max_rows=10).panel(small.assign(**{EXPOSURE: 1.0}), ["x1", "x2"], "segment")
    plain = fit_discrete(small, "event", ["x1", "x2"], "tenure_months", **kw)
    np.testing.assert_allclose(ones.summary["coef"], plain.summary["coef"], rtol=1e-10)
    # up to the limit: Cox, which needs no exposure
    assert Engine().panel(small, ["x1", "x2"], "segment").method == "cox"


def attainment_frame(path) -> pd.DataFrame:
    """The attainment model's rows, as ``time_varying_effect`` takes them: the months with an attainment."""
    ep = episodes(load(path))
    return model_frame(ep, ["attainment"], rows=ep["attainment"].notna().to_numpy())


def attainment_coefs(frame: pd.DataFrame) -> dict:
    """The attainment coefficient by Cox (coef and se) and by the discrete model without and with the exposure."""
    strata = strata_of(frame)
    cox = fit_cox(frame, "stop", "event", ["attainment"], entry="start", strata=strata, cluster="account_id")
    plain = fit_discrete(frame, "event", ["attainment"], "tenure_months", strata=strata, cluster="account_id")
    expo = Engine(cox_max_rows=0).panel(frame, ["attainment"], strata)
    assert expo.info["exposure"] == EXPOSURE and EXPOSURE not in frame.columns
    return {"cox": cox.params["attainment"], "se_cox": cox.summary.loc["attainment", "se"],
            "plain": plain.params["attainment"], "exposure": expo.params["attainment"]}


@pytest.fixture(scope="module")
def truncated_world(tmp_path_factory):
    path = tmp_path_factory.mktemp("truncated") / "world"
    generate(WorldConfig(n_accounts=3000, seed=1, observed_from="2024-01-01"), path)
    return attainment_frame(path)


def test_exposure_on_a_left_truncated_world_is_cox(truncated_world):
    """A snapshot from 2024-01-01: the accounts already running enter on 2023-12-31, so their first row is one
    day long (a whole month without the exposure).  With the exposure the coefficient is Cox's within one Cox
    SE.  (Which of the two discrete fits is the closer to Cox varies with the seed: both are within 0.2 SE, the
    exposure moving the attainment coefficient by ~0.001; the simulation test above is where the offset shows.)"""
    frame = truncated_world
    e = panel_exposure(frame)
    assert (e < 0.1).mean() > 0.01 and (e < 0.9).mean() > 0.03  # the entry rows, the churn months
    c = attainment_coefs(frame)
    assert abs(c["exposure"] - c["cox"]) < c["se_cox"]


def test_exposure_on_the_default_world_is_cox():
    """The bundled sample (the default world): accounts start on any day of the month, so an account's first
    month is half a month on average -- but the attainment model starts at the first goal, a later, whole month,
    so only the churn months and the last (censored) month are partial there."""
    ep = episodes(load(SAMPLE))
    first = panel_exposure(ep.groupby("account_id", sort=False).head(1))
    assert 0.4 < first.mean() < 0.6
    c = attainment_coefs(attainment_frame(SAMPLE))
    assert abs(c["exposure"] - c["cox"]) < c["se_cox"]
