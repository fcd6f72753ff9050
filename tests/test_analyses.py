"""Churn versus attainment on the synthetic world, whose truth is known."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from csresearch import analyses as A
from csresearch.attainment import episodes
from csresearch.data import load
from csresearch.landmarks import landmark_table
from csresearch.models import AnalysisError, account_covariates
from csresearch.world import WorldConfig, generate


@pytest.fixture(scope="module")
def sample():
    ds = load("data/sample")
    truth = json.load(open("data/sample/truth.json"))
    return ds, truth, episodes(ds)


def test_time_varying_model_recovers_the_planted_hazard_ratio(sample):
    ds, truth, panel = sample
    fit, res = A.time_varying_effect(ds, panel=panel)
    hr = truth["effects"]["attainment_full_vs_none"]["hr"]
    assert res["ci_low"] <= hr <= res["ci_high"]
    assert res["stratified_by"] == "segment" and res["covariates"] == ["log_arr"]
    known = panel[panel["attainment"].notna()]  # accounts enter at their first goal
    assert res["n_events"] == int(known["event"].sum()) and res["n_accounts"] == known["account_id"].nunique()
    assert res["n_rows"] == len(known) < len(panel)
    # log ARR is planted too
    arr = truth["effects"]["log_arr"]["hr"]
    assert fit.summary.loc["log_arr", "ci_low"] <= arr <= fit.summary.loc["log_arr", "ci_high"]
    json.dumps(res)


def test_naive_analysis_is_biased_in_the_expected_direction(sample):
    ds, truth, panel = sample
    _, tv = A.time_varying_effect(ds, panel=panel)
    _, naive = A.naive_effect(ds)
    assert naive["label"] == A.NAIVE_LABEL
    truth_hr = truth["effects"]["attainment_full_vs_none"]["hr"]
    assert naive["ci_high"] < truth_hr and naive["hr"] < tv["hr"] / 2  # final attainment exaggerates the benefit


def test_landmark_analysis_uses_accounts_active_at_the_landmark(sample):
    ds, truth, _ = sample
    _, res = A.landmark_effect(ds, 180)
    st = ds.accounts
    end = st["end_date"].fillna(ds.as_of)
    active = int(((end - st["start_date"]).dt.days > 180).sum())
    assert res["n_at_risk"] == active
    assert res["ci_low"] <= truth["effects"]["attainment_full_vs_none"]["hr"] <= res["ci_high"]
    assert res["landmark_days"] == 180


def test_km_by_attainment_group_at_a_landmark(sample):
    ds, _, _ = sample
    km, res = A.attainment_km(ds, 365, threshold=0.5)
    assert set(km["group"]) == set(res["groups"])
    assert sum(g["n"] for g in res["groups"].values()) == landmark_table(ds, 365)["account_id"].size
    assert res["logrank"]["df"] == len(res["groups"]) - 1
    assert res["logrank"]["p"] < 0.05
    final = km.sort_values("time").groupby("group")["survival"].last()
    assert final["attained"] > final["none"]


def test_usage_versus_outcome_head_to_head(sample):
    ds, _, panel = sample
    table, res = A.usage_vs_outcome(ds, panel=panel)
    c = res["c_index"]
    assert set(c) == {"usage", "attainment", "both"}
    assert 0.5 < c["usage"] < c["attainment"] <= c["both"] + 0.005
    assert res["lr_test_p"] < 0.001 and res["lr_df"] == 1
    assert "active_users" in res["usage_metrics"]
    assert list(table["model"]) == ["usage", "attainment", "both"]


def test_dose_response_spline_against_linear(sample):
    ds, _, panel = sample
    curve, res = A.dose_response(ds, panel=panel)
    assert curve["attainment"].iloc[0] == 0 and curve["hr"].iloc[0] == pytest.approx(1.0)
    assert (curve["ci_low"] <= curve["hr"]).all() and (curve["hr"] <= curve["ci_high"]).all()
    assert res["hr_at"]["1"] < 0.6
    assert res["lr_df"] == len(res["knots"])  # centred cr basis has len(knots) + 1 columns, linear has 1
    assert res["lr_nonlinearity_p"] > 0.01  # the world's effect is log-linear in attainment: no bend expected
    with pytest.raises(AnalysisError, match="knots"):
        A.dose_response(ds, panel=panel, knots=[0.5, 1.2])


def test_schoenfeld_events_match_the_published_example():
    # Schoenfeld (1983) / Collett: HR 0.7, two-sided 5%, 80% power, 1:1 -> 247 events
    assert math.ceil(A.schoenfeld_events(0.7)) == 247


def test_sample_size_table():
    t = A.sample_size(0.5, [0.2])
    row = t.iloc[0]
    assert row["n_per_arm_control"] == 388  # two proportions 0.5 vs 0.4 (Cohen's h), alpha 0.05, power 0.8
    assert row["churn_treated"] == pytest.approx(0.4)
    t2 = A.sample_size(0.2, [0.05, 0.10])
    assert t2["n_total_logrank"].iloc[0] > t2["n_total_logrank"].iloc[1] > 0
    with pytest.raises(AnalysisError):
        A.sample_size(1.5)


def test_lag_days_changes_what_is_known(sample):
    ds, _, _ = sample
    fit, lagged = A.time_varying_effect(ds, lag_days=60)
    assert lagged["lag_days"] == 60 and lagged["ci_high"] < 1
    current = A.time_varying_effect(ds)[1]
    assert lagged["coef"] != current["coef"] and lagged["n_rows"] < current["n_rows"]  # later entry: goal + 60 days
    lag_panel = episodes(ds, lag_days=60)
    from csresearch.attainment import account_attainment

    pts = lag_panel[["account_id", "period_start"]].assign(date=lag_panel["period_start"] - pd.Timedelta(days=60))
    direct = account_attainment(ds.goals, ds.goal_progress, pts)["attainment"].to_numpy()
    # the panel (an engine's weighted mean) and the numpy pairs sum the goals in their own order: equal to rounding
    np.testing.assert_allclose(lag_panel["attainment"].to_numpy(), direct, rtol=1e-14, atol=0)


def test_left_truncated_snapshot_still_recovers_the_truth(tmp_path):
    truth = generate(WorldConfig(n_accounts=4000, seed=31, observed_from="2024-01-01"), tmp_path, fmt="parquet")
    ds = load(tmp_path)
    assert ds.observed_from == pd.Timestamp("2024-01-01")
    _, res = A.time_varying_effect(ds)
    assert res["ci_low"] <= truth["effects"]["attainment_full_vs_none"]["hr"] <= res["ci_high"]
    panel = episodes(ds)
    started_before = ds.accounts.set_index("account_id")["start_date"] < pd.Timestamp("2023-12-31")
    first_start = panel.groupby("account_id")["start"].min()
    assert (first_start[started_before[first_start.index]] > 0).all()  # they enter late, not at tenure 0


def _mini(tmp_path, end_dates, with_goals=True):
    n = len(end_dates)
    acc = pd.DataFrame({"account_id": [f"a{i}" for i in range(n)], "segment": "smb",
                        "start_date": "2024-01-01", "end_date": end_dates, "arr": 1000 + 10 * np.arange(n)})
    acc.to_csv(tmp_path / "accounts.csv", index=False)
    if with_goals:
        goals = pd.DataFrame({"goal_id": [f"g{i}" for i in range(n)], "account_id": acc["account_id"], "metric": "leads",
                              "baseline": 0.0, "target": 10.0, "set_date": "2024-01-01"})
        goals.to_csv(tmp_path / "goals.csv", index=False)
        prog = pd.DataFrame({"goal_id": goals["goal_id"], "date": "2024-02-01", "value": np.arange(n) % 11})
        prog.to_csv(tmp_path / "goal_progress.csv", index=False)
    (tmp_path / "dataset.yaml").write_text("as_of: '2024-12-31'\n")
    return load(tmp_path)


def test_degenerate_data_gets_plain_reasons(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    no_churn = _mini(tmp_path / "a", [""] * 40)
    with pytest.raises(AnalysisError, match="0 churn events"):
        A.time_varying_effect(no_churn)
    no_goals = _mini(tmp_path / "b", ["2024-06-01"] * 40, with_goals=False)
    with pytest.raises(AnalysisError, match="no goals table"):
        A.naive_effect(no_goals)


def test_covariates_are_checked(sample):
    ds, _, _ = sample
    with pytest.raises(AnalysisError, match="no column 'revenue'"):
        account_covariates(ds, ["revenue"])
    frame, names, warnings = account_covariates(ds, ["log_arr", "seats", "segment"])
    assert names == ["log_arr", "seats", "segment_mid_market", "segment_smb"] and not warnings


def test_separation_is_reported_not_estimated(tmp_path):
    """If no account with attainment ever churns, the hazard ratio has no finite estimate: say so."""
    n = 60
    acc = pd.DataFrame({"account_id": [f"a{i}" for i in range(n)], "segment": "smb", "start_date": "2024-01-01",
                        "end_date": ["2024-05-15" if i % 2 else "" for i in range(n)], "arr": 1000.0 + np.arange(n)})
    acc.to_csv(tmp_path / "accounts.csv", index=False)
    goals = pd.DataFrame({"goal_id": [f"g{i}" for i in range(n)], "account_id": acc["account_id"], "metric": "leads",
                          "baseline": 0.0, "target": 10.0, "set_date": "2024-01-01"})
    goals.to_csv(tmp_path / "goals.csv", index=False)
    # churners never progress; stayers reach their goal at once
    prog = pd.DataFrame({"goal_id": goals["goal_id"], "date": "2024-02-01", "value": [0.0 if i % 2 else 10.0 for i in range(n)]})
    prog.to_csv(tmp_path / "goal_progress.csv", index=False)
    (tmp_path / "dataset.yaml").write_text("as_of: '2024-12-31'\n")
    with pytest.raises(AnalysisError, match="separates"):
        A.time_varying_effect(load(tmp_path))


def test_the_headline_models_share_one_attainment_frame_and_never_write_into_it(monkeypatch):
    """A study builds the attainment frame once per usage adjustment: the headline without usage, then one frame for
    the usage-adjusted headline, the proportional-hazards check, the segments, the dose-response and both
    usage-versus-outcome comparisons; each model gives what it gives on its own frame, and the shared frame is
    what a fresh build gives after all of them ran (nothing was added to it or changed in it)."""
    from csresearch import context as context_module, params, report
    from csresearch.analyses import attainment_effect, discrimination, outcomes_vs_usage, partial_value, segment_effects
    from csresearch.attainment_models import attainment_frame, attainment_rows, proportional_hazards_check

    ctx = context_module.StudyContext.build(params.validate({"data_dir": "data/sample", "study": "t", "bootstrap": 20},
                                                            "t"))
    built = []
    monkeypatch.setattr(context_module, "attainment_rows",
                        lambda *a, **k: built.append(a[3]) or attainment_rows(*a, **k))
    errors: list[dict] = []
    results = {m.NAME: report.run_analysis(ctx, m, errors) for m in (attainment_effect, segment_effects, partial_value,
                                                                      outcomes_vs_usage, discrimination)}
    usage = ctx.headline_usage
    assert usage and built == [None, usage]
    assert not errors and all(f.verdict != "not_estimable" for r in results.values() for f in r.findings)
    shared = ctx.model_frame(usage)
    fresh = attainment_frame(ctx.ds, ctx.panel, ctx["covariates"], usage)
    # the study's frame has let its raw usage columns go once its features were computed from them
    raw = [f"usage_{m}" for m in usage]
    assert set(raw) <= set(fresh.data.columns) and not set(raw) & set(shared.data.columns)
    pd.testing.assert_frame_equal(shared.data, fresh.data.drop(columns=raw))
    assert (shared.covariates, shared.features) == (fresh.covariates, fresh.features)

    # each model as it is fitted on its own frame of the panel
    alone = proportional_hazards_check(ctx.ds, panel=ctx.panel, covariates=ctx["covariates"], usage_metrics=usage)
    record = results["attainment_effect"].record["attainment_effect"]
    assert record["proportional_hazards"]["ratio_per_doubling"] == pytest.approx(alone["ratio_per_doubling"], rel=1e-9)
    assert record["usage_adjusted"]["n_rows"] == len(fresh.data)
    table = results["segment_effects"].tables["segment_effects"].set_index("segment")
    assert len(table) == len(ctx.ds.segments) >= 2
    for seg in ctx.ds.segments:
        _, e = A.time_varying_effect(ctx.ds.for_segment(seg), panel=ctx.panel[ctx.panel["segment"] == seg],
                                     covariates=ctx["covariates"], usage_metrics=usage)
        assert table.loc[seg, "hr"] == pytest.approx(e["hr"], rel=1e-9)
        assert table.loc[seg, "n_events"] == e["n_events"]
    _, info = A.usage_vs_outcome(ctx.ds, panel=ctx.panel, usage_metrics=ctx.usage_metrics)
    assert results["outcomes_vs_usage"].record["usage_vs_outcome"]["c_index"] == pytest.approx(info["c_index"], rel=1e-9)


@pytest.mark.parametrize("days", [45, 90, 365])
def test_usage_at_a_landmark_is_the_panel_rows_usage_and_mean_so_far(sample, days):
    """The landmark's usage (one sum per account, no copy of the panel) is what the running features of the whole
    panel give the row that covers the landmark."""
    from csresearch.attainment_models import _usage_at
    from csresearch.models import model_frame, usage_features, usage_history

    ds, _, panel = sample
    metrics = sorted(c[6:] for c in panel.columns if c.startswith("usage_"))
    got, names = _usage_at(panel, metrics, days)
    frame = model_frame(panel, [f"usage_{m}" for m in metrics])
    want_names = [*usage_features(frame, metrics), *usage_history(frame, metrics)]
    cover = (frame["start"] < days) & (frame["stop"] >= days)
    want = frame.loc[cover, ["account_id", *want_names]].dropna().drop_duplicates("account_id").set_index("account_id")
    assert names == want_names and len(got) > 100
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
