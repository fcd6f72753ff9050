"""Attainment by the contract's formula, and the (start, stop] account-month panel."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from csresearch.attainment import account_attainment, episodes, goal_attainment
from csresearch.data import load

T = pd.Timestamp

GOALS = pd.DataFrame({
    "goal_id": ["up", "down", "late"],
    "account_id": ["a1", "a1", "a1"],
    "metric": ["qualified_leads", "sales_cycle_days", "otif_pct"],
    "baseline": [10.0, 50.0, 80.0],
    "target": [20.0, 30.0, 90.0],
    "set_date": [T("2024-01-10"), T("2024-01-10"), T("2024-03-15")],
    "weight": [1.0, 3.0, 1.0],
})
PROGRESS = pd.DataFrame({
    "goal_id": ["up", "up", "up", "down", "down"],
    "date": [T("2024-02-01"), T("2024-03-01"), T("2024-04-01"), T("2024-02-01"), T("2024-03-01")],
    "value": [15.0, 25.0, 8.0, 40.0, 25.0],
})


def _at(goal, when, lag=0):
    pts = pd.DataFrame({"account_id": ["a1"], "date": [T(when)]})
    res = goal_attainment(GOALS, PROGRESS, pts, lag_days=lag).set_index("goal_id")
    return res.loc[goal, "attainment"] if goal in res.index else None


@pytest.mark.parametrize("goal, when, lag, expected", [
    ("up", "2024-01-20", 0, 0.0),     # set, not yet measured
    ("up", "2024-02-01", 0, 0.5),     # a measurement counts on its own day
    ("up", "2024-02-01", 1, 0.0),     # ... but not when the date is lagged a day
    ("up", "2024-02-29", 0, 0.5),     # latest on or before
    ("up", "2024-03-01", 0, 1.0),     # beyond target: clipped to 1
    ("up", "2024-04-15", 0, 0.0),     # regressed below baseline: clipped to 0
    ("down", "2024-02-10", 0, 0.5),   # a decrease goal: 50 -> 40 of the way to 30
    ("down", "2024-03-05", 0, 1.0),
    ("late", "2024-03-01", 0, None),  # not set yet: not part of the account's goals then
    ("late", "2024-03-20", 0, 0.0),
])
def test_goal_attainment_follows_the_contract_formula(goal, when, lag, expected):
    assert _at(goal, when, lag) == expected


def test_account_attainment_is_weighted_over_goals_set_by_then():
    pts = pd.DataFrame({"account_id": ["a1", "a1", "a1", "a1", "nogoals"],
                        "date": [T("2024-01-05"), T("2024-02-15"), T("2024-03-10"), T("2024-03-20"), T("2024-03-20")]})
    res = account_attainment(GOALS, PROGRESS, pts, threshold=1.0)
    np.testing.assert_allclose(res["attainment"].to_numpy(),
                               [np.nan, (0.5 * 1 + 0.5 * 3) / 4, 1.0, (1 + 3 + 0) / 5, np.nan])  # none set yet: NaN
    assert res["goals_set"].tolist() == [0, 2, 2, 3, 0]
    assert res["goals_attained"].tolist() == [0, 0, 2, 2, 0]
    assert res["date"].tolist() == pts["date"].tolist()  # the query rows come back in order


def _folder(tmp_path, accounts, goals=None, progress=None, usage=None, meta=None):
    accounts.to_csv(tmp_path / "accounts.csv", index=False, date_format="%Y-%m-%d")
    for name, df in (("goals", goals), ("goal_progress", progress), ("usage", usage)):
        if df is not None:
            df.to_csv(tmp_path / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    if meta:
        (tmp_path / "dataset.yaml").write_text("".join(f"{k}: '{v}'\n" for k, v in meta.items()))
    return load(tmp_path)


ACCOUNTS = pd.DataFrame({
    "account_id": ["a1", "a2", "a3", "a4"],
    "segment": ["smb", "smb", "enterprise", "smb"],
    "start_date": ["2024-01-15", "2024-01-15", "2024-02-20", "2023-11-03"],
    "end_date": ["2024-03-01", "", "2024-02-20", "2024-02-05"],
    "arr": [1000, 2000, 3000, 4000],
})


def test_episodes_cut_lives_at_month_starts(tmp_path):
    ds = _folder(tmp_path, ACCOUNTS, meta={"as_of": "2024-03-10"})
    ep = episodes(ds)
    a1 = ep[ep.account_id == "a1"]
    assert a1[["start", "stop", "event"]].values.tolist() == [[0, 17, 0], [17, 46, 1]]  # churn on Mar 1 ends Feb's row
    assert a1["month"].tolist() == [T("2024-01-01"), T("2024-02-01")]
    a2 = ep[ep.account_id == "a2"]
    assert a2[["start", "stop", "event"]].values.tolist() == [[0, 17, 0], [17, 46, 0], [46, 55, 0]]  # censored at as_of
    a3 = ep[ep.account_id == "a3"]
    assert a3[["start", "stop", "event"]].values.tolist() == [[0, 0.5, 1]]  # churned on its start day: kept
    assert ep.groupby("account_id")["event"].sum().to_dict() == {"a1": 1, "a2": 0, "a3": 1, "a4": 1}
    assert (ep["stop"] > ep["start"]).all()
    assert "attainment" not in ep  # no goals table


def test_episodes_with_observed_from_enter_late(tmp_path):
    ds = _folder(tmp_path, ACCOUNTS[ACCOUNTS.account_id != "a3"],
                 meta={"as_of": "2024-03-10", "observed_from": "2024-02-01"})
    ep = episodes(ds)
    # started 2023-11-03, observed from 2024-02-01 (churn recorded from that day on): at risk from tenure 89 days
    a4 = ep[ep.account_id == "a4"]
    assert a4[["start", "stop", "event"]].values.tolist() == [[89, 90, 0], [90, 94, 1]]
    a1 = ep[ep.account_id == "a1"]
    assert a1[["start", "stop"]].values.tolist() == [[16, 17], [17, 46]]


def test_episodes_carry_lagged_attainment_and_last_completed_usage(tmp_path):
    usage = pd.DataFrame({"account_id": ["a2", "a2", "a2", "a2"], "date": ["2024-01-01", "2024-02-01", "2024-03-01", "2024-02-01"],
                          "metric": ["logins", "logins", "logins", "active_users"], "value": [5, 7, 9, 2]})
    goals = GOALS.assign(account_id="a2", set_date=GOALS["set_date"].clip(lower=T("2024-01-15")))
    ds = _folder(tmp_path, ACCOUNTS[ACCOUNTS.account_id == "a2"], goals, PROGRESS, usage, meta={"as_of": "2024-04-20"})
    ep = episodes(ds)
    assert ep["month"].dt.strftime("%Y-%m").tolist() == ["2024-01", "2024-02", "2024-03", "2024-04"]
    # Jan row: no completed period; Feb row: January's usage; ...
    np.testing.assert_array_equal(ep["usage_logins"].to_numpy(), [np.nan, 5, 7, 9])
    np.testing.assert_array_equal(ep["usage_active_users"].to_numpy(), [np.nan, np.nan, 2, np.nan])
    # attainment at each row's start: Jan 15 none measured; Feb 1 (0.5, 0.5); Mar 1 (1, 1); Apr 1 (0, 1, late 0)
    np.testing.assert_allclose(ep["attainment"].to_numpy(), [0, 0.5, 1.0, (0 + 3 + 0) / 5])
    lagged = episodes(ds, lag_days=1)
    np.testing.assert_allclose(lagged["attainment"].to_numpy(), [np.nan, 0, 0.5, (1 + 3 + 0) / 5])  # Jan 14: no goal yet


def test_episodes_match_the_simulated_risk_set(tmp_path):
    from csresearch.world import WorldConfig, generate

    truth = generate(WorldConfig(n_accounts=400, seed=11), tmp_path, fmt="parquet")
    ep = episodes(load(tmp_path))
    assert len(ep) == truth["realised"]["n_account_months_at_risk"]
    assert int(ep["event"].sum()) == truth["realised"]["n_churned"]
    assert ep["attainment"].dropna().between(0, 1).all()
    # months before the first goal have no attainment (those accounts enter the models at their first goal)
    assert ep["attainment"].isna().sum() == int((ep["goals_set"] == 0).sum()) > 0


# -- the integer-key implementations against the plain merge formulation ----------------------------------

def _merge_goal_attainment(goals, progress, points, lag_days=0, date="date"):
    """goal_attainment written the obvious way (pandas merges and merge_asof): the oracle for the integer keys."""
    pts = points.reset_index(drop=True).copy()
    pts["_point"] = np.arange(len(pts))
    pts["_ref"] = pd.to_datetime(pts[date]) - pd.Timedelta(days=int(lag_days))
    g = goals[["goal_id", "account_id", "metric", "baseline", "target", "set_date", "weight"]]
    pairs = pts[["_point", "account_id", "_ref"]].merge(g, on="account_id", how="inner")
    pairs = pairs[pairs["set_date"] <= pairs["_ref"]].sort_values("_ref", kind="stable")
    pairs["_ref"] = pairs["_ref"].astype("datetime64[ns]")
    prog = progress[["goal_id", "date", "value"]].rename(columns={"date": "_measured"})
    prog = prog.assign(_measured=prog["_measured"].astype("datetime64[ns]")).sort_values("_measured", kind="stable")
    pairs = pd.merge_asof(pairs, prog, left_on="_ref", right_on="_measured", by="goal_id", direction="backward")
    ratio = np.clip((pairs["value"] - pairs["baseline"]) / (pairs["target"] - pairs["baseline"]), 0.0, 1.0)
    pairs["attainment"] = np.where(pairs["value"].isna(), 0.0, ratio)
    pairs = pairs.sort_values(["_point", "goal_id"], kind="stable")
    out = pts.drop(columns=["_ref"]).merge(
        pairs[["_point", "goal_id", "metric", "weight", "value", "attainment"]], on="_point", how="inner")
    return out.drop(columns="_point").reset_index(drop=True)


def _merge_attainment(goals, progress, points, lag, threshold):
    """account_attainment written the obvious way: per-goal attainment by merge_asof, then grouped."""
    per_goal = _merge_goal_attainment(goals, progress, points.assign(_row=np.arange(len(points))), lag_days=lag)
    per_goal["wa"] = per_goal["weight"] * per_goal["attainment"]
    per_goal["hit"] = per_goal["attainment"] >= threshold
    agg = per_goal.groupby("_row").agg(wa=("wa", "sum"), w=("weight", "sum"), n=("goal_id", "size"),
                                        hit=("hit", "sum")).reindex(np.arange(len(points)))
    return pd.DataFrame({"attainment": agg["wa"] / agg["w"], "goals_set": agg["n"].fillna(0).astype(int),
                         "goals_attained": agg["hit"].fillna(0).astype(int)})


@pytest.mark.parametrize("lag, threshold, chunk", [(0, 1.0, 2_000_000), (30, 0.8, 997)])
def test_account_attainment_equals_the_merge_formulation(lag, threshold, chunk):
    ds = load("data/sample")
    rng = np.random.default_rng(3)
    acc = ds.accounts.sample(600, random_state=1)
    days = rng.integers(0, 900, len(acc))
    pts = pd.DataFrame({"account_id": np.r_[acc["account_id"].to_numpy(), ["not-an-account"]],
                        "date": np.r_[(acc["start_date"] + pd.to_timedelta(days, "D")).to_numpy(),
                                      [np.datetime64("2025-01-01")]].astype("datetime64[ns]")})
    got = account_attainment(ds.goals, ds.goal_progress, pts, lag_days=lag, threshold=threshold, chunk_rows=chunk)
    want = _merge_attainment(ds.goals, ds.goal_progress, pts, lag, threshold)
    assert got["attainment"].notna().sum() > 300 and got["goals_attained"].sum() > 0
    np.testing.assert_allclose(got["attainment"].to_numpy(), want["attainment"].to_numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(got["goals_set"], want["goals_set"])
    np.testing.assert_array_equal(got["goals_attained"], want["goals_attained"])
    pd.testing.assert_frame_equal(got[["account_id", "date"]], pts)


def test_episode_usage_equals_merge_asof_on_the_pivot():
    ds = load("data/sample")
    ep = episodes(ds)
    usage = ds.usage.sample(frac=0.7, random_state=2)  # holes: months without a row
    usage = pd.concat([usage, usage.iloc[:50]])        # duplicated rows are summed
    names = sorted(usage["metric"].unique())
    from dataclasses import replace

    from csresearch.attainment import usage_wide

    got = episodes(replace(ds, usage=usage))[["account_id", "month", *[f"usage_{m}" for m in names]]]
    wide = usage_wide(usage, names)
    wide.columns = ["account_id", "date", *[f"usage_{m}" for m in names]]
    wide = wide.assign(date=wide["date"].astype("datetime64[ns]")).sort_values("date", kind="stable")
    left = ep[["account_id", "month"]].reset_index().sort_values("month", kind="stable")
    want = pd.merge_asof(left, wide, left_on="month", right_on="date", by="account_id", direction="backward",
                         allow_exact_matches=False, tolerance=pd.Timedelta(days=45))
    want = want.drop(columns="date").sort_values("index").set_index("index")
    want.index.name = None
    assert got[[f"usage_{m}" for m in names]].notna().mean().min() > 0.4
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def _sample_points(n=600, seed=3):
    ds = load("data/sample")
    rng = np.random.default_rng(seed)
    acc = ds.accounts.sample(n, random_state=1)
    days = rng.integers(0, 900, len(acc))
    pts = pd.DataFrame({"account_id": acc["account_id"].to_numpy(),
                        "date": (acc["start_date"] + pd.to_timedelta(days, "D")).to_numpy()})
    return ds, pts


@pytest.mark.parametrize("lag", [0, 45])
def test_goal_attainment_equals_the_merge_formulation(lag):
    ds, pts = _sample_points()
    got = goal_attainment(ds.goals, ds.goal_progress, pts.assign(extra=1), lag_days=lag)
    want = _merge_goal_attainment(ds.goals, ds.goal_progress, pts.assign(extra=1), lag_days=lag)
    assert len(got) > 500 and got["value"].isna().any() and got["value"].notna().any()
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_attainment_by_metric_equals_the_merge_formulation():
    from csresearch.attainment import attainment_by_metric

    ds, pts = _sample_points()
    got = attainment_by_metric(ds.goals, ds.goal_progress, pts, chunk_rows=101)
    ga = _merge_goal_attainment(ds.goals, ds.goal_progress, pts.assign(_row=np.arange(len(pts))))
    ga["wa"] = ga["weight"] * ga["attainment"]
    agg = ga.groupby(["_row", "metric"])[["wa", "weight"]].sum()
    want = (agg["wa"] / agg["weight"]).unstack("metric").reindex(index=np.arange(len(pts)), columns=got.columns)
    assert got.notna().sum().sum() > 300
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, equal_nan=True)
