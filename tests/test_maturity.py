"""The maturity model three ways, and the health-score audit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from csresearch import health, maturity
from csresearch.models import AnalysisError
from csresearch.attainment import episodes
from csresearch.data import load
from csresearch.survival import concordance, fit_cox


@pytest.fixture(scope="module")
def sample():
    ds = load("data/sample")
    return ds, episodes(ds)


@pytest.mark.parametrize("answers, level, missing", [
    ({}, 1, ["usage_tracked"]),
    ({"features_pitched": True, "usage_tracked": True}, 2, ["goals_recorded", "playbooks_per_goal"]),
    ({"usage_tracked": True, "goals_recorded": True}, 2, ["playbooks_per_goal"]),
    ({"usage_tracked": True, "goals_recorded": True, "playbooks_per_goal": True, "ecosystem_mapped": True,
      "early_health_indicators": True}, 4, ["partial_value_recorded"]),
    ({k: True for k in maturity.PRACTICES}, 5, []),
    ({"partial_value_recorded": True}, 1, ["usage_tracked"]),  # a level needs every level below it
])
def test_assessed_level_from_the_questionnaire(answers, level, missing):
    res = maturity.assess(answers)
    assert res["level"] == level and res["missing"] == missing
    assert res["next_step"] == maturity.NEXT_STEP[level] and res["reason"].startswith(f"Level {level}")


def test_questionnaire_errors_name_the_key():
    with pytest.raises(maturity.MaturityError, match="unknown practice\\(s\\) usage"):
        maturity.assess({"usage": True})
    with pytest.raises(maturity.MaturityError, match="true or false for goals_recorded"):
        maturity.assess({"goals_recorded": "yes"})


def test_inferred_level_from_what_the_data_holds(sample):
    ds, _ = sample
    assert maturity.infer(ds)["level"] == 5
    no_progress = ds.__class__(**{**ds.__dict__, "goal_progress": None})
    assert maturity.infer(no_progress)["level"] == 3
    one_shot = ds.goal_progress.groupby("goal_id").tail(1)
    assert maturity.infer(ds.__class__(**{**ds.__dict__, "goal_progress": one_shot}), "health_score")["level"] == 4
    usage_only = ds.__class__(**{**ds.__dict__, "goals": None, "goal_progress": None})
    assert maturity.infer(usage_only)["level"] == 2
    assert maturity.infer(ds.__class__(**{**usage_only.__dict__, "usage": None}))["level"] == 1


def test_the_ladder_climbs_on_the_synthetic_world(sample):
    ds, panel = sample
    lad = maturity.ladder(ds, panel, health_score_metric="health_score", bootstrap=200, seed=1)
    assert lad["level"].tolist() == [2, 3, 4, 5]
    assert lad.attrs["folds"] == maturity.CV_FOLDS and lad.attrs["repeats"] == maturity.CV_REPEATS
    c = lad["c_index"].to_numpy()
    assert c[3] > c[0] + 0.02 and np.all(np.diff(c) > -0.005)
    assert lad.loc[3, "gain_ci_low"] > 0  # partial value buys foresight beyond level 4, out of sample
    # the planted attainment effect (HR 0.2): level 5 over level 2 (usage only), interval above 0
    assert lad.loc[3, "gain_over_usage"] > 0.02 and lad.loc[3, "gain_over_usage_ci_low"] > 0
    assert (lad["ci_low"] < lad["c_index"]).all() and (lad["c_index"] < lad["ci_high"]).all()
    np.testing.assert_allclose(lad["gain"].iloc[1:], np.diff(c))
    np.testing.assert_allclose(lad["gain_over_usage"].iloc[1:], c[1:] - c[0])
    assert (lad["gain_over_usage_ci_low"].iloc[1] == pytest.approx(lad["gain_ci_low"].iloc[1]))
    # in-sample C is optimistic: it is higher than the cross-validated C at every level
    assert (lad["optimism"] > 0).all()
    np.testing.assert_allclose(lad["optimism"], lad["c_index_in_sample"] - lad["c_index"])
    # the fast bootstrap's point estimate is exactly Harrell's C
    ep, features = maturity.ladder_features(ds, panel, health_score_metric="health_score")
    score = np.log1p(ep["usage_active_users"].to_numpy())
    point, draws = maturity._bootstrap_c(ep, [score], "segment", 20, 3)
    assert point[0] == pytest.approx(concordance(ep, "stop", "event", score, entry="start", strata="segment")["c_index"],
                                     abs=1e-12)
    assert draws.shape == (20, 1) and draws.std() > 0


def test_the_in_sample_column_is_the_c_of_the_model_fitted_on_all_accounts(sample):
    ds, panel = sample
    lad = maturity.ladder(ds, panel, health_score_metric="health_score", bootstrap=0)
    ep, features = maturity.ladder_features(ds, panel, health_score_metric="health_score")
    cols = features[5]
    fit = fit_cox(ep, "stop", "event", cols, entry="start", strata="segment", cluster="account_id")
    score = ep[cols].to_numpy() @ fit.summary.loc[cols, "coef"].to_numpy()
    c = concordance(ep, "stop", "event", score, entry="start", strata="segment")["c_index"]
    assert lad.loc[3, "c_index_in_sample"] == pytest.approx(c, abs=1e-9)


def test_account_folds_keep_every_account_in_one_fold(sample):
    ds, panel = sample
    fold = maturity._account_folds(panel["account_id"], 5, np.random.SeedSequence(3))
    per_account = pd.Series(fold).groupby(panel["account_id"].to_numpy()).nunique()
    assert (per_account == 1).all()
    sizes = pd.Series(fold).groupby(panel["account_id"].to_numpy()).first().value_counts()
    assert sorted(sizes.index) == [0, 1, 2, 3, 4] and sizes.max() - sizes.min() <= 1


def test_on_a_world_without_an_attainment_effect_partial_value_buys_nothing(tmp_path):
    """Attainment has no effect on churn (usage has): in sample every added feature still raises C, out of sample
    the gain of level 5 over level 4 is not distinguishable from none."""
    from csresearch.world import WorldConfig, generate

    generate(WorldConfig(n_accounts=4000, seed=2026, log_hr_attainment=0.0, log_hr_engagement=-0.3), tmp_path,
             fmt="parquet")
    lad = maturity.ladder(load(tmp_path), health_score_metric="health_score", bootstrap=200, seed=1)
    step = lad.loc[3]
    assert step["gain_ci_low"] < 0 < step["gain_ci_high"] and abs(step["gain"]) < 0.005
    assert np.all(np.diff(lad["c_index_in_sample"]) > -1e-3)  # in sample, the ladder climbs
    assert (lad["optimism"] > 0).all()
def test_the_noisy_health_score_is_decoration(sample):
    ds, panel = sample
    table, res = health.audit(ds, "health_score", panel=panel)
    assert res["verdict"] == "decoration" and "decoration" in res["sentence"]
    assert res["ci_low"] <= 1 <= res["ci_high"]
    assert len(table) == 5 and table["account_months"].sum() == res["n_rows"]


def test_a_score_built_from_attainment_is_informative(sample):
    ds, panel = sample
    rng = np.random.default_rng(0)
    # a health score that reads each account's attainment at the start of the month (plus noise), recorded monthly
    att = panel[["account_id", "month", "attainment"]].rename(columns={"month": "date"})
    att["value"] = np.clip(np.round(100 * att["attainment"] + rng.normal(0, 5, len(att))), 0, 100)
    att["metric"] = "outcome_score"
    usage = pd.concat([ds.usage, att[["account_id", "date", "metric", "value"]]], ignore_index=True)
    with_score = ds.__class__(**{**ds.__dict__, "usage": usage})
    _, res = health.audit(with_score, "outcome_score", usage_metrics=["active_users", "logins", "reports_created"])
    assert res["verdict"] == "informative" and res["hr_per_sd"] < 1 and res["lr_test_p"] < 0.001


def test_audit_errors_are_plain(sample):
    ds, _ = sample
    with pytest.raises(AnalysisError, match="not a metric of the usage table"):
        health.audit(ds, "nps")


def test_ladder_works_without_progress_rows_and_without_bootstrap(sample):
    ds, _ = sample
    no_progress = ds.__class__(**{**ds.__dict__, "goal_progress": None})
    ep, features = maturity.ladder_features(no_progress)
    assert (ep["attainment"] == 0).all() and (ep["progress_moved"] == 0).all()
    lad = maturity.ladder(ds, bootstrap=0)
    assert lad["ci_low"].isna().all() and lad["gain_ci_low"].isna().all() and lad["c_index"].notna().all()
    assert lad["c_index_in_sample"].notna().all()


def test_progress_moved_follows_lag_days(sample):
    ds, _ = sample
    ep0, _ = maturity.ladder_features(ds)
    ep120, _ = maturity.ladder_features(ds, lag_days=120)
    assert abs(ep0["progress_moved"].mean() - ep120["progress_moved"].mean()) < 0.15  # still progress, not regression


def test_a_ladder_too_large_to_bootstrap_keeps_its_point_estimates(sample, monkeypatch):
    ds, panel = sample
    full = maturity.ladder(ds, panel, health_score_metric="health_score", bootstrap=0, seed=1)
    monkeypatch.setattr(maturity, "MAX_BOOTSTRAP_CELLS", 1000)
    lad = maturity.ladder(ds, panel, health_score_metric="health_score", bootstrap=50, seed=1)
    np.testing.assert_allclose(lad["c_index"], full["c_index"])
    np.testing.assert_allclose(lad["c_index_in_sample"], full["c_index_in_sample"])
    assert lad["ci_low"].isna().all() and lad.attrs["bootstrap"] == 0
    assert "no confidence intervals" in lad.attrs["note"] and "table of churn months by accounts" in lad.attrs["note"]


def test_the_ladder_fits_with_the_engine_it_is_given(sample):
    from csresearch.models import Engine

    ds, panel = sample
    kw = dict(health_score_metric="health_score", bootstrap=20, seed=1)
    # the study's engine decides the model (cox_max_rows) and the intervals' level (alpha), not the arguments
    given = maturity.ladder(ds, panel, engine=Engine(alpha=0.2, cox_max_rows=0), alpha=0.05, cox_max_rows=10**9, **kw)
    same = maturity.ladder(ds, panel, alpha=0.2, cox_max_rows=0, **kw)
    pd.testing.assert_frame_equal(given, same)
    default = maturity.ladder(ds, panel, **kw)
    assert not np.allclose(given["ci_low"].dropna(), default["ci_low"].dropna())


def test_the_ladder_plot_starts_at_the_coin_toss():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from csresearch import plots

    c = np.array([0.54, 0.555, 0.56, 0.585])
    table = pd.DataFrame({"level": [2, 3, 4, 5], "c_index": c, "ci_low": c - 0.02, "ci_high": c + 0.02,
                          "c_index_in_sample": c + 0.01})
    ax = plots.ladder(table, level=0.9)
    lo, hi = ax.get_ylim()
    assert lo <= 0.5 < 0.605 <= hi  # small gains are drawn against the whole way from a coin toss
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in ax.get_lines())
    assert "90% CI" in ax.get_ylabel() and "cross-validated" in ax.get_ylabel()
    plt.close("all")
