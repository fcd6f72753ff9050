"""Verdicts that follow the evidence: worlds with a known truth, tiny segments, data floors, E-values, pooling."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest

from csresearch import params as P
from csresearch import report
from csresearch.analyses.segment_effects import pool
from csresearch.findings import Floors, interval_verdict, steady_verdict
from csresearch.models import usage_history
from csresearch.sensitivity import evalue
from csresearch.world import WorldConfig, generate


def _study(folder, **kw):
    return report.run(P.validate({"data_dir": str(folder), "study": "t", "bootstrap": 0, **kw}, "test"))


def _found(r):
    return {f["id"]: f for f in r.results["findings"]}


@pytest.fixture(scope="module")
def null_world(tmp_path_factory):
    """Attainment has no effect on churn, and nothing else ties the two (engagement moves usage and progress only)."""
    path = tmp_path_factory.mktemp("null") / "world"
    generate(WorldConfig(n_accounts=3000, seed=11, log_hr_attainment=0.0), path, fmt="parquet")
    return path


@pytest.fixture(scope="module")
def strong_world(tmp_path_factory):
    path = tmp_path_factory.mktemp("strong") / "world"
    generate(WorldConfig(n_accounts=3000, seed=12, log_hr_attainment=math.log(0.3)), path, fmt="parquet")
    return path


# ---------------------------------------------------------------------------------------------- the rules
def test_margins_turn_a_precise_null_into_not_supported():
    assert interval_verdict(0.95, 1.04, null=1.0, direction="below", margin=0.9) == "not_supported"
    assert interval_verdict(0.80, 1.04, null=1.0, direction="below", margin=0.9) == "inconclusive"
    assert interval_verdict(0.60, 0.85, null=1.0, direction="below", margin=0.9) == "supported"
    # a real but negligible effect (the whole interval within the margin) is no claim
    assert interval_verdict(0.93, 0.98, null=1.0, direction="below", margin=0.9) == "not_supported"
    assert interval_verdict(0.0001, 0.0004, null=0.0, direction="above", margin=0.01) == "not_supported"
    assert interval_verdict(-0.002, 0.03, null=0.0, direction="above", margin=0.01) == "inconclusive"
    assert steady_verdict(0.95, 1.05, null=1.0, margin=(0.9, 1 / 0.9)) == "supported"
    assert steady_verdict(0.6, 0.9, null=1.0, margin=(0.9, 1 / 0.9)) == "not_supported"
    assert steady_verdict(0.7, 1.3, null=1.0, margin=(0.9, 1 / 0.9)) == "inconclusive"


def test_data_floors_name_the_shortfall():
    floors = Floors(min_events_per_parameter=10, min_group_accounts=20)
    assert "only 3 churn events for 2 model terms" in floors.reason(events=3, parameters=2)
    assert "only 7 accounts with goals reached" in floors.reason(events=500, parameters=2,
                                                               groups={"with goals reached": 7})
    assert "standard error is 45%" in floors.reason(events=500, parameters=2, se=0.45, se_naive=1.0)
    assert floors.reason(events=500, parameters=2, groups={"x": 50}, se=0.9, se_naive=1.0) is None


def test_evalues_match_the_published_example():
    """VanderWeele & Ding (2017): RR 3.9 (95% CI 1.8 to 8.7) has E-value 7.26, 3.0 for the lower limit."""
    e = evalue(3.9, 1.8, 8.7)
    assert e["point"] == pytest.approx(7.26, abs=0.01) and e["limit"] == pytest.approx(3.0, abs=0.01)
    assert evalue(1 / 3.9, 1 / 8.7, 1 / 1.8) == pytest.approx(e)  # protective: the same on the inverse
    assert evalue(0.8, 0.6, 1.1)["limit"] == 1.0


def test_pooling_shrinks_imprecise_segments_toward_the_pooled_effect():
    table = pd.DataFrame({"segment": ["a", "b", "c"], "coef": [-1.6, -1.5, 0.8], "se": [0.1, 0.12, 1.5]})
    out, summary = pool(table)
    c = out.set_index("segment")
    assert summary["ci_low"] < summary["hr"] < summary["ci_high"] and summary["q_df"] == 2
    assert abs(math.log(c.loc["c", "pooled_hr"]) - math.log(summary["hr"])) < abs(0.8 - math.log(summary["hr"]))
    assert c.loc["c", "shrinkage"] > c.loc["a", "shrinkage"]
    # fixed-effect case (no spread): inverse-variance mean
    same = pd.DataFrame({"segment": ["a", "b"], "coef": [-1.0, -1.0], "se": [0.1, 0.2]})
    _, s = pool(same)
    assert s["tau2"] == 0 and s["hr"] == pytest.approx(math.exp(-1.0))


def test_usage_history_uses_only_completed_periods():
    panel = pd.DataFrame({"account_id": ["a", "a", "a", "b", "b"], "start": [0, 30, 60, 0, 30],
                          "usage_x": [np.nan, 4.0, 8.0, 2.0, np.nan]})
    assert usage_history(panel, ["x"]) == ["hist_x"]
    expect = np.log1p([np.nan, 4.0, 6.0, 2.0, 2.0])
    np.testing.assert_allclose(panel["hist_x"], expect)


def test_usage_history_is_the_same_on_rows_in_order_and_shuffled():
    # rows already by account and time (a panel and its subsets) are read in place, others through a sort: the
    # running means are the same to the bit, gaps, single-row accounts and negative values included
    rng = np.random.default_rng(7)
    n = 5000
    code = np.sort(rng.integers(0, 700, n))
    ordered = pd.DataFrame({"account_code": code, "start": np.arange(n) * 30.0,
                            "usage_x": np.where(rng.random(n) < 0.3, np.nan, rng.normal(3, 2, n)),
                            "usage_y": rng.gamma(1.0, 4.0, n)})
    shuffled = ordered.sample(frac=1.0, random_state=1)
    assert usage_history(ordered, ["x", "y"]) == usage_history(shuffled, ["x", "y"]) == ["hist_x", "hist_y"]
    for c in ("hist_x", "hist_y"):
        np.testing.assert_array_equal(shuffled[c].sort_index().to_numpy(), ordered[c].to_numpy())
    assert ordered["hist_x"].isna().any() and ordered["hist_x"].notna().mean() > 0.5
    # the first row of each account starts afresh (a difference of running sums: equal to rounding)
    first = np.r_[True, code[1:] != code[:-1]]
    x = ordered["usage_x"].to_numpy()
    np.testing.assert_allclose(ordered["hist_x"].to_numpy()[first], np.log1p(np.clip(x[first], 0, None)),
                               rtol=1e-9, atol=1e-12)


def test_account_codes_count_and_group_as_the_ids_do():
    from csresearch.models import count_accounts, ever_churned

    ids = pd.DataFrame({"account_id": ["b", "b", "a", "c", "c", "c"], "start": [30, 0, 0, 0, 60, 30],
                        "event": np.array([1, 0, 0, 0, 0, 0], dtype=np.int8), "usage_x": [2.0, 4.0, 1.0, 3.0, 9.0, 6.0]})
    coded = ids.assign(account_code=ids["account_id"].map({"a": 7, "b": 0, "c": 3}))  # positions, not row order
    for frame in (ids, coded):
        assert count_accounts(frame) == 3
        assert count_accounts(frame, frame["start"].to_numpy() > 0) == 2
        assert count_accounts(frame, np.zeros(len(frame), bool)) == 0
        churned = ever_churned(frame)
        assert churned.tolist() == [1, 1, 0, 0, 0, 0] and churned.dtype == np.int8
    # the running mean of usage follows each account's own months in order, keyed by code or by id alike
    usage_history(ids, ["x"])
    usage_history(coded, ["x"])
    np.testing.assert_allclose(coded["hist_x"], ids["hist_x"])
    np.testing.assert_allclose(ids["hist_x"], np.log1p([3.0, 4.0, 1.0, 3.0, 6.0, 4.5]))


# ---------------------------------------------------------------------------------------------- worlds
@pytest.mark.slow
def test_a_null_world_is_not_told_outcomes_predict_retention(null_world):
    r = _study(null_world)
    found = _found(r)
    assert found["attainment_effect"]["verdict"] in ("inconclusive", "not_supported")
    summary = report.executive_summary(r)
    assert "Outcomes predict retention" not in summary
    head = found["attainment_effect"]
    if head["verdict"] == "inconclusive":
        assert head["claim"].startswith("Accounts that had fully reached their goals and accounts with no progress cannot")
        assert f"{head['estimate']:.2f} times" not in head["claim"]  # no headline number for an inconclusive finding


@pytest.mark.slow
def test_a_strong_world_is_told_with_its_interval_and_evalue(strong_world):
    r = _study(strong_world)
    head = _found(r)["attainment_effect"]
    assert head["verdict"] == "supported" and head["ci_high"] < 0.9
    assert "times the rate" in head["claim"] and "95% CI" in head["claim"] and "unmeasured factor" in head["claim"]
    ev = r.results["attainment_effect"]["evalue"]
    assert ev["point"] > ev["limit"] > 1
    lm = r.results["attainment_effect"]["landmark"]
    assert 0 < lm["contrast"]["to"] <= 1 and lm["window_days"] == 365 and "estimand" in lm


@pytest.mark.slow
def test_a_tiny_segment_with_three_churn_events_is_not_estimable(tmp_path):
    generate(WorldConfig(n_accounts=600, seed=4), tmp_path / "base", fmt="csv")
    acc = pd.read_csv(tmp_path / "base" / "accounts.csv")
    churned = acc[acc["end_date"].notna()]
    keep = pd.concat([acc[acc["end_date"].isna()].head(120), churned.head(3)])
    folder = tmp_path / "tiny"
    shutil.copytree(tmp_path / "base", folder)
    keep.to_csv(folder / "accounts.csv", index=False)
    ids = set(keep["account_id"])
    goals = pd.read_csv(folder / "goals.csv")
    goals = goals[goals["account_id"].isin(ids)]
    goals.to_csv(folder / "goals.csv", index=False)
    prog = pd.read_csv(folder / "goal_progress.csv")
    prog[prog["goal_id"].isin(set(goals["goal_id"]))].to_csv(folder / "goal_progress.csv", index=False)
    use = pd.read_csv(folder / "usage.csv")
    use[use["account_id"].isin(ids)].to_csv(folder / "usage.csv", index=False)
    r = _study(folder)
    found = _found(r)
    head = found["attainment_effect"]
    assert head["verdict"] == "not_estimable" and head["estimate"] is None
    assert "churn events" in head["reason"] or "could not" in head["reason"] or "fewer" in head["reason"]
    summary = report.executive_summary(r)
    assert "Outcomes predict retention" not in summary and "times the rate" not in summary
    assert all(f["verdict"] == "not_estimable" or f["id"] not in ("attainment_effect", "landmark_effect",
                                                                   "partial_value") for f in found.values())
