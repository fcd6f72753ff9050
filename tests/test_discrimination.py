"""Out-of-sample discrimination and calibration: the estimators against brute force, and the analysis on the sample
(planted attainment effect) and on a world where attainment has no effect."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from csresearch import params as P
from csresearch import plots
from csresearch.analyses import REGISTRY, discrimination, outcomes_vs_usage
from csresearch.context import StudyContext
from csresearch.models import AnalysisError
from csresearch.survival import (bootstrap_concordance, breslow_baseline, brier_score, calibration_fit,
                                 calibration_table, concordance, cumulative_dynamic_auc, cumulative_hazard_at,
                                 grouped_folds, ipcw_weights)
from csresearch.world import WorldConfig, generate

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def _ctx(data_dir=SAMPLE, **kw) -> StudyContext:
    values = {"data_dir": str(data_dir), "study": "t", "health_score_metric": "health_score", **kw}
    return StudyContext.build(P.validate(values, "test"))


@pytest.fixture(scope="module")
def sample():
    ctx = _ctx()
    return ctx, discrimination.run(ctx)


@pytest.fixture(scope="module")
def enterprise():
    return _ctx(segment="enterprise")


def _censored(n=300, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n)
    t = rng.exponential(np.exp(-score))
    c = rng.exponential(1.5, size=n)
    frame = pd.DataFrame({"time": np.minimum(t, c), "event": (t <= c).astype(int), "score": score})
    if ties:
        frame["time"] = np.ceil(frame["time"] * 20) / 20
        frame["score"] = np.round(frame["score"], 1)
    return frame


# ---------------------------------------------------------------------------------------------- the estimators
def test_td_auc_without_censoring_is_the_empirical_auc_of_case_control_pairs():
    f = _censored(400).assign(event=1)
    times = [0.2, 0.5, 1.0]
    out = cumulative_dynamic_auc(f, "time", "event", "score", times)
    for t, row in zip(times, out.itertuples()):
        cases = f.loc[f["time"] <= t, "score"].to_numpy()
        controls = f.loc[f["time"] > t, "score"].to_numpy()
        diff = cases[:, None] - controls[None, :]
        brute = ((diff > 0) + 0.5 * (diff == 0)).mean()
        assert row.auc == pytest.approx(brute, abs=1e-12)
        assert (row.cases, row.controls) == (len(cases), len(controls))


def test_td_auc_with_censoring_weights_cases_by_the_censoring_km():
    from lifelines import KaplanMeierFitter

    f = _censored(300, seed=4, ties=False)
    t = 0.6
    km = KaplanMeierFitter().fit(f["time"], 1 - f["event"])
    case = (f["event"] == 1) & (f["time"] <= t)
    g_before = km.survival_function_at_times(f.loc[case, "time"] - 1e-9).to_numpy()
    cases, controls = f.loc[case, "score"].to_numpy(), f.loc[f["time"] > t, "score"].to_numpy()
    w = 1 / g_before
    brute = (w[:, None] * (cases[:, None] > controls[None, :])).sum() / (w.sum() * len(controls))
    assert cumulative_dynamic_auc(f, "time", "event", "score", [t])["auc"].iloc[0] == pytest.approx(brute, rel=1e-9)
    weights = ipcw_weights(f, "time", "event", t)
    assert (weights[(f["event"] == 0) & (f["time"] <= t)] == 0).all()
    assert weights[f["time"] > t].nunique() == 1


def test_brier_without_censoring_is_the_mean_squared_error():
    f = _censored(500, seed=2).assign(event=1)
    risk = 1 / (1 + np.exp(-f["score"]))
    y = (f["time"] <= 0.5).astype(float)
    out = brier_score(f, "time", "event", risk.to_numpy(), 0.5)
    assert out["brier"] == pytest.approx(((y - risk) ** 2).mean(), abs=1e-12)
    assert out["n"] == out["known"] == len(f)


def test_calibration_of_true_risks_has_intercept_0_and_slope_1():
    rng = np.random.default_rng(8)
    n = 20_000
    risk = 1 / (1 + np.exp(-rng.normal(-1, 1, n)))
    event = rng.random(n) < risk
    f = pd.DataFrame({"time": np.where(event, 0.5, 2.0), "event": 1, "risk": risk})
    fit = calibration_fit(f, "time", "event", "risk", 1.0)
    assert fit["intercept"] == pytest.approx(0, abs=0.05) and fit["slope"] == pytest.approx(1, abs=0.05)
    table = calibration_table(f, "time", "event", "risk", 1.0)
    assert len(table) == 10 and table["n"].sum() == n
    assert np.allclose(table["observed"], table["mean_predicted"], atol=0.03)
    assert (table["ci_low"] <= table["observed"]).all() and (table["observed"] <= table["ci_high"]).all()
    too_spread = calibration_fit(f.assign(risk=1 / (1 + np.exp(-2 * np.log(risk / (1 - risk))))), "time", "event",
                                 "risk", 1.0)
    assert too_spread["slope"] == pytest.approx(0.5, abs=0.05)


def test_breslow_baseline_is_the_brute_force_sum_over_risk_sets():
    rng = np.random.default_rng(3)
    n = 200
    f = pd.DataFrame({"start": rng.integers(0, 5, n).astype(float), "s": rng.choice(["a", "b"], n),
                      "lp": rng.normal(size=n), "event": rng.integers(0, 2, n)})
    f["stop"] = f["start"] + rng.integers(1, 10, n)
    base = breslow_baseline(f, "stop", "event", "lp", entry="start", strata="s")
    for s, curve in base.groupby("stratum"):
        g = f[f["s"] == s]
        cum = 0.0
        for u in sorted(g.loc[g["event"] == 1, "stop"].unique()):
            at_risk = (g["start"] < u) & (g["stop"] >= u)
            cum += ((g["stop"] == u) & (g["event"] == 1)).sum() / np.exp(g.loc[at_risk, "lp"]).sum()
            assert curve.loc[curve["time"] == u, "cumhaz"].iloc[0] == pytest.approx(cum, rel=1e-12)
    first = base.groupby("stratum")["time"].min()
    at = cumulative_hazard_at(base, [first["a"] - 0.5, first["a"], 99.0], ["a", "a", "b"])
    assert at[0] == 0 and at[1] == base.loc[base["stratum"] == "a", "cumhaz"].iloc[0]
    assert at[2] == base.loc[base["stratum"] == "b", "cumhaz"].iloc[-1]


def test_a_stratum_without_events_has_a_zero_baseline_and_an_unknown_one_is_an_error():
    f = pd.DataFrame({"stop": [1.0, 2, 3, 4, 5, 6], "event": [1, 0, 1, 0, 0, 0], "s": ["a", "a", "a", "b", "b", "b"],
                      "lp": 0.0})
    base = breslow_baseline(f, "stop", "event", "lp", strata="s")
    assert set(base["stratum"]) == {"a"} and base.attrs["strata"] == ["a", "b"]
    at = cumulative_hazard_at(base, [2.5, 2.5, 9.0], ["a", "b", "b"])
    assert at[0] > 0 and at[1] == 0.0 and at[2] == 0.0
    with pytest.raises(ValueError, match="no baseline for stratum 'c'"):
        cumulative_hazard_at(base, [1.0], ["c"])


def _panel(n_acc=120, seed=1):
    """Monthly (start, stop] rows per account (strata, tied times and scores), with churn at the last row."""
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(n_acc):
        months = rng.integers(1, 12)
        churn = rng.random() < 0.6
        seg = "x" if a % 3 else "y"
        for m in range(months):
            rows.append({"account_id": f"a{a}", "segment": seg, "start": 30.0 * m, "stop": 30.0 * (m + 1),
                         "event": int(churn and m == months - 1), "s1": rng.integers(0, 4), "s2": rng.normal()})
    return pd.DataFrame(rows)


def test_bootstrap_concordance_is_exactly_c_on_each_resample():
    f = _panel()
    scores = f[["s1", "s2"]].astype(float)
    point, draws = bootstrap_concordance(f, "stop", "event", scores, cluster="account_id", entry="start",
                                         strata="segment", n_boot=3, seed=9)
    for col in scores:
        assert point[col] == pytest.approx(concordance(f, "stop", "event", col, entry="start",
                                                       strata="segment")["c_index"], abs=1e-12)
    # the first resample, rebuilt by copying accounts
    rng = np.random.default_rng(9)
    ids = pd.unique(f["account_id"])
    pick = rng.integers(0, len(ids), (3, len(ids)))[0]
    copy = pd.concat([f[f["account_id"] == ids[a]].assign(account_id=f"c{k}") for k, a in enumerate(pick)])
    for col in scores:
        assert draws[col].iloc[0] == pytest.approx(concordance(copy, "stop", "event", col, entry="start",
                                                               strata="segment")["c_index"], abs=1e-12)
    # above the table limit: resamples of a subsample, rescaled around the full-data C
    point2, sub = bootstrap_concordance(f, "stop", "event", scores, cluster="account_id", entry="start",
                                        strata="segment", n_boot=200, seed=9, max_cells=2_000)
    assert point2.equals(point) and 2 <= sub.attrs["subsample"] < len(ids)
    assert abs(sub["s2"].median() - point["s2"]) < 3 * sub["s2"].std()
    with pytest.raises(ValueError, match="overlap"):
        bootstrap_concordance(f.assign(start=(f["start"] - 15).clip(lower=0)), "stop", "event", scores,
                              cluster="account_id", entry="start", n_boot=1)


def test_folds_keep_every_row_of_an_account_together_and_spread_churners():
    f = _panel(200)
    churned = f.groupby("account_id")["event"].transform("max")
    fold = grouped_folds(f["account_id"], 5, seed=3, balance=churned)
    assert (pd.Series(fold).groupby(f["account_id"].to_numpy()).nunique() == 1).all()
    per_account = pd.DataFrame({"fold": fold, "churned": churned}).groupby(f["account_id"].to_numpy()).first()
    assert np.ptp(per_account["fold"].value_counts().to_numpy()) <= 1
    assert np.ptp(per_account.loc[per_account["churned"] == 1, "fold"].value_counts().to_numpy()) <= 1
    assert (grouped_folds(f["account_id"], 5, seed=3, balance=churned) == fold).all()
    assert not (grouped_folds(f["account_id"], 5, seed=4, balance=churned) == fold).all()


# ---------------------------------------------------------------------------------------------- the analysis
def test_the_analysis_is_one_module_and_one_registry_line_after_outcomes_vs_usage():
    names = [m.NAME for m in REGISTRY]
    assert names[names.index("outcomes_vs_usage") + 1] == "discrimination"


def test_on_the_sample_outcomes_rank_better_out_of_sample(sample):
    ctx, res = sample
    rec = res.record["discrimination"]
    f = res.findings[0]
    assert (f.id, f.verdict) == ("outcomes_vs_usage", "supported")
    assert f.method == discrimination.METHOD and "cross-validation grouped by account" in f.method
    assert rec["delta_c"]["ci_low"] > 0 and f.estimate == rec["delta_c"]["estimate"]
    assert f.claim.startswith("On accounts the models had not seen") and "ΔC = +" in f.claim
    assert set(rec["c_index"]) == set(rec["in_sample"]) == set(rec["optimism"]) == set(discrimination.MODELS)
    for m in discrimination.MODELS:
        ci = rec["c_index_ci"][m]
        assert ci["ci_low"] < rec["c_index"][m] < ci["ci_high"]
        assert rec["optimism"][m] == pytest.approx(rec["in_sample"][m] - rec["c_index"][m])
        assert -0.01 < rec["optimism"][m] < 0.03  # a handful of coefficients on tens of thousands of rows
    assert rec["c_index"]["both"] > rec["c_index"]["usage"] > 0.5
    assert (rec["folds"], rec["seed"], rec["model"]) == (5, ctx.seed, "cox")
    assert rec["n_events"] >= 10 and rec["n_accounts"] > 3000
    for months in ("3", "6", "12"):
        assert rec["td_auc"][months]["both"] > 0.5
    cal = rec["calibration"]
    assert 0.6 < cal["slope"] < 1.5
    assert (cal["horizon_days"], cal["landmark_days"]) == (365, 90)
    assert cal["brier"] < 0.25 and cal["brier_null"] < 0.25
    assert len(cal["table"]) == 10 and not any(r["suppressed"] for r in cal["table"])
    assert res.findings[0].claim in res.text and "in sample" in res.text.lower()


def test_results_record_and_figures(sample):
    ctx, res = sample
    for fig in res.figures:
        ax = fig.draw()
        assert fig.alt and ax.get_title()
    ax = res.figures[0].draw()
    assert ax.get_xlim()[0] == 0.5
    assert {"discrimination", "calibration"} <= {f.name for f in res.figures}
    small = discrimination.run(_ctx(min_cell=400))
    table = small.record["discrimination"]["calibration"]["table"]
    assert all(r["suppressed"] and r["observed"] != r["observed"] for r in table)  # ~356 accounts a tenth < 400
    assert plots.risk_calibration(pd.DataFrame(table)).get_title()


def test_on_a_world_where_attainment_has_no_effect_the_claim_is_not_supported(tmp_path):
    generate(WorldConfig(n_accounts=3000, seed=11, log_hr_attainment=0.0, log_hr_engagement=0.5), tmp_path)
    res = discrimination.run(_ctx(tmp_path))
    f = res.findings[0]
    assert f.verdict != "supported"
    assert f.verdict == "not_supported" and f.headline == "Usage ranks churn risk better than outcomes."


def test_too_few_events_is_a_plain_reason(enterprise):
    ctx = enterprise
    panel = ctx.panel.copy()
    churn = np.flatnonzero(panel["event"].to_numpy() == 1)
    panel.loc[panel.index[churn[5:]], "event"] = 0
    with pytest.raises(AnalysisError, match="fewer than the 10 needed"):
        discrimination.cross_validated(ctx.ds, panel=panel, usage_metrics=ctx.usage_metrics, survival=ctx.survival)


def test_without_usage_the_finding_is_not_estimable_from_this_analysis(tmp_path):
    from csresearch import report

    generate(WorldConfig(n_accounts=300, seed=5), tmp_path)
    (tmp_path / "usage.csv").unlink()
    ctx = _ctx(tmp_path)
    out = report.run_analysis(ctx, discrimination)
    assert out.not_estimated == "no usage table"
    assert [(f.id, f.verdict, f.reason) for f in out.findings] == [("outcomes_vs_usage", "not_estimable",
                                                                    "no usage table")]
    assert not report.run_analysis(ctx, outcomes_vs_usage).findings


def test_the_discrete_time_path_ranks_but_does_not_calibrate(enterprise):
    from csresearch.models import Engine

    ctx = enterprise
    table, info = discrimination.cross_validated(ctx.ds, panel=ctx.panel, usage_metrics=ctx.usage_metrics,
                                                 engine=Engine(cox_max_rows=1_000), survival=ctx.survival,
                                                 n_boot=50)
    assert info["model"] == "discrete" and "Cox path only" in info["calibration"]["not_estimated"]
    assert 0.5 < info["c_index"]["both"] < 1 and np.isfinite(table["c_index"]).all()
    rec, _, cal_table = discrimination.record(ctx, info)
    assert cal_table is None and rec["calibration"]["horizon_days"] == 365
    assert "Calibration was not estimated: calibration is computed on the Cox path only" in " ".join(
        discrimination._text(ctx, rec))


def test_a_large_book_is_cross_validated_on_a_sample_of_accounts(enterprise):
    ctx = enterprise
    _, info = discrimination.cross_validated(ctx.ds, panel=ctx.panel, usage_metrics=ctx.usage_metrics,
                                             survival=ctx.survival, n_boot=20, max_rows=6_000)
    sample = info["sample"]
    assert sample["accounts"] < sample["of_accounts"]
    assert info["n_accounts"] == sample["accounts"] and info["n_rows"] <= 6_500


def test_without_covariates_the_baseline_is_a_coin_toss_and_not_fitted(enterprise):
    ctx = enterprise
    table, info = discrimination.cross_validated(ctx.ds, panel=ctx.panel, usage_metrics=ctx.usage_metrics,
                                                 covariates=[], survival=ctx.survival, n_boot=20)
    assert info["covariates"] == [] and info["c_index"]["baseline"] == info["in_sample"]["baseline"] == 0.5
    assert info["c_index_ci"]["baseline"] == {"ci_low": None, "ci_high": None}
    rec, _, _ = discrimination.record(ctx, info)
    assert "coin toss, and no model was fitted" in " ".join(discrimination._text(ctx, rec))
