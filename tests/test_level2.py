"""Maturity level 2: usage data, no goals; snapshots and label exports (churn_by_segment, churn_drivers,
usage_model, study_scope, honest windows, the health-score audit's coverage, the params leak)."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest

from csresearch import params as P
from csresearch import report, studies
from csresearch.context import retention_at
from csresearch.data import load
from csresearch.world import WorldConfig, generate

NO_GOALS = "no goals are recorded, so attainment cannot be measured"


def _world(folder, **kw):
    generate(WorldConfig(n_accounts=2000, seed=11, **kw), folder)
    for f in ("goals.csv", "goal_progress.csv"):
        (folder / f).unlink()
    return folder


def _run(folder, ds=None, **kw):
    return report.run(P.validate({"data_dir": str(folder), "study": "l2", "health_score_metric": "health_score",
                                  **kw}, "test"), ds)


@pytest.fixture(scope="module")
def nogoals(tmp_path_factory):
    return _run(_world(tmp_path_factory.mktemp("nogoals")))


def test_no_goals_study_says_what_it_can_answer(nogoals):
    res = nogoals.results
    summary = report.executive_summary(nogoals)
    assert "cannot be measured here, because no goals are recorded" in summary
    assert "would detect a 10% reduction" in summary
    found = {f["id"]: f for f in res["findings"]}
    for fid in ("attainment_effect", "outcomes_vs_usage"):
        assert found[fid]["verdict"] == "not_estimable" and found[fid]["reason"] == NO_GOALS
    assert res["study_scope"]["next_study_accounts"] > 0


def test_no_goals_churn_by_segment(nogoals):
    rows = {r["segment"]: r for r in nogoals.results["churn_by_segment"]}
    assert {"smb", "mid_market", "enterprise", "all"} <= set(rows)
    all_ = rows["all"]
    assert all_["window_days"] == 365 and all_["accounts"] == 2000
    assert all_["ci_low"] < all_["rate"] < all_["ci_high"]
    assert all_["rate"] == pytest.approx(1 - nogoals.results["retention_12m"])


def test_no_goals_churn_drivers_and_usage_model(nogoals):
    d = nogoals.results["churn_drivers"]
    names = {r["name"] for r in d["drivers"]}
    assert {"logins", "arr", "seats"} <= names and "health_score" not in names
    for r in d["drivers"]:
        assert r["kind"] in ("usage", "attribute") and r["ci_low"] < r["effect"] < r["ci_high"] and 0 <= r["q"] <= 1
    assert any(f["id"] == "churn_drivers" for f in nogoals.results["findings"])
    m = nogoals.results["usage_model"]
    assert 0.45 < m["c_index"] < 0.8 and m["ci_low"] < m["c_index"] < m["ci_high"]
    assert "cross-validation" in m["method"]
    assert len(m["lift"]["deciles"]) == 10 and m["lift"]["top_lift"] > 1
    assert m["calibration"]["brier"] > 0


def test_short_snapshot_never_extrapolates_a_year(tmp_path):
    r = _run(_world(tmp_path, observed_from="2026-05-01"))
    res = r.results
    assert res["retention_12m"] is None
    d = res["study_design"]
    assert d["base_churn_12m"] is None and d["window_days"] <= 61
    summary = report.executive_summary(r)
    assert f"over the {d['window_days']}-day window observed" in summary
    assert "within a year" not in summary
    assert all(row["window_days"] == d["window_days"] for row in res["churn_by_segment"])


def test_retention_needs_someone_at_risk_at_a_year():
    # followed long enough, but nobody at risk between 100 and 400 days of tenure: no 12-month figure
    st = pd.DataFrame({"duration": [50.0, 90.0, 800.0, 900.0], "event": [1, 0, 0, 1],
                       "entry": [0.0, 0.0, 400.0, 400.0]})
    assert retention_at(st, 365.25) is None
    st = pd.DataFrame({"duration": [50.0, 400.0, 800.0], "event": [1, 0, 0], "entry": [0.0, 0.0, 0.0]})
    assert retention_at(st, 365.25) == pytest.approx(2 / 3)


def _label_export(folder, horizon=180):
    ds = load(folder)
    label_from = ds.as_of - pd.Timedelta(days=horizon - 1)
    acc = ds.accounts
    acc = acc[(acc["start_date"] < label_from) & (acc["end_date"].isna() | (acc["end_date"] >= label_from))].copy()
    acc = acc.reset_index(drop=True)
    usage = ds.usage[ds.usage["account_id"].isin(set(acc["account_id"]))].reset_index(drop=True)
    out = dataclasses.replace(ds, accounts=acc, usage=usage, observed_from=label_from)
    if "label_horizon_days" in {f.name for f in dataclasses.fields(out)}:
        return dataclasses.replace(out, label_horizon_days=horizon)
    out.label_horizon_days = horizon  # the data layer of this branch has no label exports yet: the attribute
    return out


def test_label_export_takes_the_logistic_path(tmp_path):
    folder = _world(tmp_path)
    ds = _label_export(folder)
    r = _run(folder, ds)
    res = r.results
    rows = {x["segment"]: x for x in res["churn_by_segment"]}
    assert rows["all"]["window_days"] == 180
    assert rows["all"]["rate"] == pytest.approx(rows["all"]["churned"] / rows["all"]["accounts"])
    assert res["churn_drivers"]["model"] == "logistic" and res["churn_drivers"]["effect"] == "odds ratio"
    m = res["usage_model"]
    assert 0.4 < m["auc"] < 0.9 and "logistic" in m["method"] and m["ci_low"] < m["auc"] < m["ci_high"]
    assert res["study_design"]["window_days"] == 180
    assert "over the 180-day label horizon" in report.executive_summary(r)


def test_health_score_dated_in_the_snapshot_month_is_named(tmp_path):
    folder = _world(tmp_path, observed_from="2026-06-01")
    usage = pd.read_csv(folder / "usage.csv")
    usage = usage[(usage["metric"] != "health_score") | (usage["date"] >= "2026-06-01")]
    usage.to_csv(folder / "usage.csv", index=False)
    r = _run(folder)
    reason = r["health_score"].not_estimated
    assert reason is not None and "churn events have a health score known before them" in reason
    assert "scores dated in the snapshot month count from the next month" in reason
    assert "set health_score_metric" not in reason


def test_health_score_audit_reports_who_it_used(nogoals):
    info = nogoals.results["health_score_audit"]
    assert info["n_used"] + info["n_dropped"] == 2000
    assert info["n_dropped"] == info["n_dropped_no_score"] + info["n_dropped_missing_usage"]
    assert f"The audit used {info['n_used']:,} accounts" in nogoals["health_score"].text


def test_health_score_reason_when_it_cannot_run(tmp_path):
    folder = _world(tmp_path)
    (folder / "usage.csv").unlink()
    r = _run(folder)
    assert r["health_score"].not_estimated == "the health score health_score could not be audited: the data has no usage table"


def test_the_bundled_questionnaire_stays_with_its_own_data(tmp_path):
    other = tmp_path / "other"
    shutil.copytree(P.read_values("params/all.yaml")["data_dir"], other)
    own = studies.plan(["params/all.yaml"])[0].params
    assert own["maturity"] is not None
    for kw in ({"data": str(other)}, {"sets": [f"data_dir={other}"]}):
        assert studies.plan(["params/all.yaml"], **kw)[0].params["maturity"] is None
    given = studies.plan(["params/all.yaml"], data=str(other), sets=["maturity={goals_recorded: false}"])[0]
    assert given.params["maturity"] == {"goals_recorded": False}
