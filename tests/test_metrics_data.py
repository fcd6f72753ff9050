"""Classification of metrics by data (csresearch.metrics.by_data) on the bundled sample world and small inputs."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import statsmodels.api as sm  # noqa: E402

from csresearch.models import AnalysisError  # noqa: E402
from csresearch.data import load  # noqa: E402
from csresearch.metrics import DATA_COLUMNS, classify_by_data, data_verdict  # noqa: E402
from csresearch.metrics.by_data import (attributability_state, kpi_changes, relevance_state,  # noqa: E402
                                        usage_index, usage_wide, within_ols)
from csresearch.survival import concordance  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def ds():
    return load(SAMPLE)


@pytest.fixture(scope="module")
def truth():
    return json.loads((SAMPLE / "truth.json").read_text())


@pytest.fixture(scope="module")
def classified(ds):
    return classify_by_data(ds)


def _flag(v) -> bool:
    return v is not pd.NA and bool(v)


def _axis(v) -> str:
    """A table's axis state in words: yes (True), no (False), unclear (NA)."""
    return "unclear" if v is pd.NA else ("yes" if v else "no")


# ---------------------------------------------------------------------------------------------------------
# planted roles on the sample world (seed 2026, 4000 accounts)
# ---------------------------------------------------------------------------------------------------------
def test_planted_roles_recovered(classified, truth):
    table, _ = classified
    t = table.set_index("metric")
    roles = {k: v["role"] for k, v in truth["metrics"]["kpis"].items()}
    gold = [k for k, r in roles.items() if r == "goldilocks"]
    hits = [k for k in gold if t.loc[k, "verdict"] == "goldilocks"]
    # every planted Goldilocks KPI on this seed (benchmarks/bench_metric_roles.py gives the rate over 20 seeds)
    assert len(hits) == len(gold), t.loc[gold, ["verdict", "relevance_hr", "relevance_q"]]
    assert all(_flag(t.loc[k, "attributable"]) for k in gold)
    assert not any(t.loc[k, "verdict"] == "papa" for k in gold)
    # the planted Papa Bear predicts churn, but 4,000 accounts cannot rule out that usage moves it by the minimum
    # effect (0.05 attainment points per month per SD): the data cannot tell Papa Bear from Goldilocks
    r = t.loc["company_revenue"]
    assert _flag(r["relevant"]) and _axis(r["attributable"]) == "unclear" and r["verdict"] == "inconclusive"
    assert r["attrib_ci_high"] > 0.0005 and "could be Goldilocks or Papa Bear" in r["rationale"]
    # the planted Mama Bear and noise: their HRs beyond usage are near 1, but not precise enough to rule out HR 0.95
    for m in ("reports_created", "health_score"):
        assert _axis(t.loc[m, "relevant"]) == "unclear" and t.loc[m, "verdict"] == "inconclusive"
        assert t.loc[m, "relevance_ci_low"] < 1 < t.loc[m, "relevance_ci_high"]
    assert _flag(t.loc["reports_created", "attributable"]) and _axis(t.loc["health_score", "attributable"]) == "no"
    assert t.loc["logins", "verdict"] in ("mama", "leading_indicator", "inconclusive")  # a vendor metric: never goldilocks
    # the baseline usage metric is moved by usage by definition; the world gives it no churn effect of its own
    # beyond the outcomes it moves, so whether it stays relevant beyond ARR varies by seed
    assert t.loc["active_users", "verdict"] in ("leading_indicator", "mama", "inconclusive")


def test_table_shape_and_invariants(classified, ds):
    table, summary = classified
    assert tuple(table.columns) == DATA_COLUMNS
    n_kpis = ds.goals["metric"].nunique()
    assert (table["kind"] == "kpi").sum() == n_kpis and (table["kind"] == "usage").sum() == 4
    assert list(table["kind"]) == ["kpi"] * n_kpis + ["usage"] * 4
    ok = table["relevance_hr"].notna()
    assert (table.loc[ok, "relevance_ci_low"] <= table.loc[ok, "relevance_hr"]).all()
    assert (table.loc[ok, "relevance_hr"] <= table.loc[ok, "relevance_ci_high"]).all()
    assert (table.loc[ok, "relevance_q"] >= table.loc[ok, "relevance_p"] - 1e-12).all()
    a = table["attrib_effect"].notna()
    assert (table.loc[a, "attrib_ci_low"] <= table.loc[a, "attrib_effect"]).all()
    assert (table.loc[a, "attrib_q"] >= table.loc[a, "attrib_p"] - 1e-12).all()
    assert (table["n_events"] >= 10).all() and (table["n_accounts"] >= 30).all()
    base = table.set_index("metric").loc["active_users"]
    assert math.isnan(base["c_gain"]) and math.isnan(base["attrib_effect"]) and _flag(base["attributable"])
    assert "by definition" in base["rationale"]
    # the gain in C is measured on the same rows as the baseline model
    np.testing.assert_allclose(table["c_full"] - table["c_baseline"], table["c_gain"], equal_nan=True)
    assert table["rationale"].str.len().gt(40).all()
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text)["verdicts"]["company_revenue"] == "inconclusive"
    assert summary["baseline"] == ["active_users"] and summary["stratified_by"] == "segment"
    assert summary["counts"]["goldilocks"] == int((table["verdict"] == "goldilocks").sum())


def test_minimum_effect_is_what_keeps_health_score_out(ds, classified):
    """health_score moves with usage by a statistically detectable trace (0.2% per SD, q < 0.05 over 80k
    account-months); only the minimum effect keeps it from being called attributable."""
    table, _ = classified
    h = table.set_index("metric").loc["health_score"]
    assert h["attrib_effect"] < 0.01 and h["attrib_q"] < 0.05
    assert _axis(h["attributable"]) == "no"  # the whole interval lies below the minimum effect: a precise no
    loose, _ = classify_by_data(ds, min_usage_effect=0.0, kpis=["company_revenue"])
    assert _flag(loose.set_index("metric").loc["health_score", "attributable"])


def test_without_baseline_adjustment_reports_created_looks_relevant(tmp_path):
    """Where usage itself acts on churn, reports_created 'predicts' churn exactly as far as usage does: the reason
    relevance is judged beyond the usage baseline."""
    from csresearch.data import load
    from csresearch.world import WorldConfig, generate

    generate(WorldConfig(n_accounts=4000, seed=2026, log_hr_engagement=-0.4), tmp_path, fmt="parquet")
    world = load(tmp_path)
    table, summary = classify_by_data(world, adjust_for_baseline=False, kpis=["company_revenue"])
    r = table.set_index("metric").loc["reports_created"]
    assert r["relevance_hr"] < 1 and r["relevance_q"] < 0.05
    assert r["verdict"] == "leading_indicator"
    assert summary["adjust_for_baseline"] is False
    adjusted, _ = classify_by_data(world, kpis=["company_revenue"])
    a = adjusted.set_index("metric").loc["reports_created"]
    # beyond usage its HR is 1.00, but the interval (about 0.85 to 1.18) cannot rule out a small effect either way
    assert a["relevance_q"] > 0.5 and _axis(a["relevant"]) == "unclear" and a["verdict"] == "inconclusive"
    assert "could be a leading indicator or Mama Bear" in a["rationale"]


def test_insufficient_data_and_thresholds(ds):
    table, _ = classify_by_data(ds, min_events=10 ** 6, kpis=["otif_pct"], usage_metrics=["active_users", "logins"])
    assert (table["verdict"] == "insufficient_data").all()
    assert table["rationale"].str.contains("fewer than").all()
    assert table["relevant"].isna().all()


def test_catalog_vendor_owned_kpi_is_never_goldilocks(ds):
    catalog = pd.DataFrame({"name": ["otif_pct"], "owner": ["vendor"]})
    table, _ = classify_by_data(ds, catalog=catalog, kpis=["otif_pct"], usage_metrics=["active_users"])
    row = table.set_index("metric").loc["otif_pct"]
    assert row["owner"] == "vendor" and row["verdict"] == "leading_indicator"


def test_quadrant_mapping():
    assert data_verdict("kpi", "customer", True, True) == "goldilocks"
    assert data_verdict("kpi", "customer", True, False) == "papa"
    assert data_verdict("kpi", "customer", False, True) == "mama"
    assert data_verdict("kpi", "customer", False, False) == "noise"
    assert data_verdict("usage", "vendor", True, True) == "leading_indicator"
    assert data_verdict("usage", "vendor", True, False) == "leading_indicator"
    assert data_verdict("usage", "vendor", False, True) == "mama"
    assert data_verdict("usage", "vendor", False, False) == "noise"
    # an unclear axis (None or pd.NA) gives a class only when the class does not depend on it
    for rel, att in ((None, True), (None, False), (True, None), (False, None), (None, None), (pd.NA, True)):
        assert data_verdict("kpi", "customer", rel, att) == "inconclusive"
    assert data_verdict("usage", "vendor", True, None) == "leading_indicator"
    for rel, att in ((None, True), (None, False), (False, None), (None, None)):
        assert data_verdict("usage", "vendor", rel, att) == "inconclusive"


def test_axis_states_from_the_interval():
    # relevance: significant and at least the minimum; no = the interval inside exp(-m)..exp(m); else unclear
    assert relevance_state(0.40, 0.25, 0.65, 0.001, alpha=0.05, min_log_hr=0.05) is True
    assert relevance_state(1.30, 1.05, 1.60, 0.01, alpha=0.05, min_log_hr=0.05) is True  # either direction
    assert relevance_state(0.69, 0.37, 1.28, 0.40, alpha=0.05, min_log_hr=0.05) is None  # real effect, wide interval
    assert relevance_state(1.00, 0.97, 1.03, 0.90, alpha=0.05, min_log_hr=0.05) is False  # precise null
    assert relevance_state(0.98, 0.95, 1.01, 0.20, alpha=0.05, min_log_hr=0.05) is None  # reaches HR 0.951
    assert relevance_state(0.97, 0.955, 0.985, 0.001, alpha=0.05, min_log_hr=0.05) is False  # significant, trivial
    # attributability: one-sided, only a positive effect of at least the minimum counts
    assert attributability_state(0.003, 0.004, 0.001, alpha=0.05, minimum=0.0005) is True
    assert attributability_state(0.0002, 0.0011, 0.74, alpha=0.05, minimum=0.0005) is None
    assert attributability_state(0.0001, 0.0004, 0.80, alpha=0.05, minimum=0.0005) is False
    assert attributability_state(-0.003, -0.001, 0.001, alpha=0.05, minimum=0.0005) is False  # against usage
    assert attributability_state(0.0027, 0.004, 0.001, alpha=0.05, minimum=0.05) is False  # trivial, precise


def test_real_effect_with_a_wide_interval_is_inconclusive(ds):
    """On smb alone (about 300 accounts with the goal) a planted Goldilocks KPI has HR 0.66 with an interval
    reaching 1.36: the data cannot tell whether it predicts renewal, so it is not called Mama Bear."""
    table, _ = classify_by_data(ds.for_segment("smb"), kpis=["schedule_variance_days"], usage_metrics=["active_users"])
    r = table.set_index("metric").loc["schedule_variance_days"]
    assert r["relevance_hr"] < 0.8 and r["relevance_ci_low"] < 1 < r["relevance_ci_high"]
    assert _axis(r["relevant"]) == "unclear" and _flag(r["attributable"]) and r["verdict"] == "inconclusive"
    assert "The data cannot tell whether it predicts renewal" in r["rationale"]
    assert (f"HR {r['relevance_hr']:.2f} per full attainment, 95% CI {r['relevance_ci_low']:.2f} to "
            f"{r['relevance_ci_high']:.2f}") in r["rationale"]
    assert "could be Goldilocks or Mama Bear" in r["rationale"]
    # the interval follows alpha: at alpha 0.2 the rationale quotes an 80% CI
    narrow, _ = classify_by_data(ds.for_segment("smb"), kpis=["schedule_variance_days"], usage_metrics=["active_users"],
                                 alpha=0.2)
    assert "80% CI" in narrow.set_index("metric").loc["schedule_variance_days", "rationale"]


def test_precise_nulls_place_papa_mama_and_noise(ds):
    """When the margins are as wide as the intervals are precise, the same data place the planted roles: a null the
    interval rules out is a no, and a class follows."""
    table, _ = classify_by_data(ds, min_log_hr=0.35, min_kpi_effect=0.002, kpis=["company_revenue", "otif_pct"])
    t = table.set_index("metric")
    assert t.loc["company_revenue", "verdict"] == "papa" and _axis(t.loc["company_revenue", "attributable"]) == "no"
    assert t.loc["otif_pct", "verdict"] == "goldilocks"
    assert t.loc["reports_created", "verdict"] == "mama" and _axis(t.loc["reports_created", "relevant"]) == "no"
    assert t.loc["health_score", "verdict"] == "noise"
    assert "does not predict churn beyond log active_users" in t.loc["reports_created", "rationale"]
    assert "HR 0.70 to 1.42" in t.loc["reports_created", "rationale"]


# ---------------------------------------------------------------------------------------------------------
# degenerate input
# ---------------------------------------------------------------------------------------------------------
def test_degenerate_inputs(ds):
    with pytest.raises(AnalysisError, match="no usage table"):
        classify_by_data(dataclasses.replace(ds, usage=None))
    with pytest.raises(AnalysisError, match="not in the usage table"):
        classify_by_data(ds, baseline="seats_used")
    with pytest.raises(AnalysisError, match="has no 'active_users'"):
        classify_by_data(dataclasses.replace(ds, usage=ds.usage[ds.usage["metric"] != "active_users"]))
    with pytest.raises(AnalysisError, match="no account churned"):
        classify_by_data(dataclasses.replace(ds, accounts=ds.accounts.assign(end_date=pd.NaT)))
    with pytest.raises(AnalysisError, match="KPIs with no goal"):
        classify_by_data(ds, kpis=["nps"])
    with pytest.raises(AnalysisError, match="alpha"):
        classify_by_data(ds, alpha=1.5)


def test_without_goals_only_usage_metrics(ds):
    table, summary = classify_by_data(dataclasses.replace(ds, goals=None, goal_progress=None))
    assert set(table["kind"]) == {"usage"}
    assert any("no goals table" in w for w in summary["warnings"])
    assert table.set_index("metric").loc["reports_created", "verdict"] in ("mama", "inconclusive")


def test_other_baseline(ds):
    table, summary = classify_by_data(ds, baseline="logins", kpis=["company_revenue", "otif_pct"])
    t = table.set_index("metric")
    assert summary["baseline"] == ["logins"]
    assert math.isnan(t.loc["logins", "c_gain"]) and "by definition" in t.loc["logins", "rationale"]
    assert t.loc["otif_pct", "attrib_effect"] > 0


# ---------------------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------------------
def test_within_ols_matches_dummy_regression():
    rng = np.random.default_rng(7)
    n_g, per = 60, 8
    g = np.repeat(np.arange(n_g), per)
    alpha = rng.normal(size=n_g)[g]
    x = rng.normal(size=g.size) + alpha  # correlated with the fixed effect
    z = rng.normal(size=g.size)
    y = 2.0 + 0.7 * x - 0.3 * z + 3 * alpha + rng.normal(size=g.size)
    df = pd.DataFrame({"y": y, "x": x, "z": z, "g": g})
    res = within_ols(df, "y", ["x", "z"], fe="g", cluster="g")
    dummies = pd.get_dummies(df["g"], dtype=float)
    ref = sm.OLS(df["y"], pd.concat([df[["x", "z"]], dummies], axis=1)).fit()
    assert res["coef"] == pytest.approx(ref.params["x"], rel=1e-9)
    assert res["ci_low"] < 0.7 < res["ci_high"]
    assert res["n_clusters"] == n_g and res["n_obs"] == g.size


def test_kpi_changes_by_hand(ds):
    wide = usage_wide(ds, ["active_users"])
    wide["_u"] = usage_index(wide, ["active_users"])
    one = ds.goals[ds.goals["goal_id"] == "g-000001"]
    small = dataclasses.replace(ds, goals=one, goal_progress=ds.goal_progress[ds.goal_progress["goal_id"] == "g-000001"])
    ch = kpi_changes(small, wide[wide["account_id"] == one["account_id"].iloc[0]][["account_id", "date", "_u"]])
    prog = small.goal_progress.sort_values("date")
    g = one.iloc[0]
    att = np.clip((prog["value"].to_numpy() - g["baseline"]) / (g["target"] - g["baseline"]), 0, 1)
    months = np.diff(prog["date"].to_numpy()).astype("timedelta64[D]").astype(float) / (365.25 / 12)
    np.testing.assert_allclose(ch["change"], np.diff(att) / months)
    # usage between the 1st and 2nd measurement: periods that began in [prev, date)
    r = ch.iloc[0]
    u = wide[(wide["account_id"] == g["account_id"]) & (wide["date"] >= r["prev_date"]) & (wide["date"] < r["date"])]
    assert r["usage"] == pytest.approx(u["_u"].mean())


def test_quadrant_plot(classified):
    from csresearch import plots

    table, _ = classified
    axes = plots.metric_quadrants(table)
    assert len(axes) == 2
    assert axes[0].get_title() == "Customer KPIs"
    plt.close("all")
