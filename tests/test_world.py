"""The synthetic world: deterministic, shaped as documented, and the bundled sample is a fresh generation."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from csresearch.cli import main
from csresearch.world import KPIS, SEGMENTS, WorldConfig, generate, simulate

ROOT = Path(__file__).resolve().parents[1]


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def world():
    return simulate(WorldConfig(n_accounts=3000, seed=7))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_arguments_give_byte_identical_files(tmp_path, fmt):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert main(["generate", "--out", str(out), "--accounts", "300", "--seed", "3", "--format", fmt]) == 0
    assert _digest(a) == _digest(b)
    assert sorted(_digest(a)) == sorted(
        [f"{t}.{fmt}" for t in ("accounts", "goals", "goal_progress", "usage")] + ["dataset.yaml", "truth.json"])


def test_other_seed_gives_another_world(tmp_path):
    t1, _ = simulate(WorldConfig(n_accounts=300, seed=1))
    t2, _ = simulate(WorldConfig(n_accounts=300, seed=2))
    assert not t1["accounts"].equals(t2["accounts"])


def test_csv_and_parquet_hold_the_same_tables(tmp_path):
    generate(WorldConfig(n_accounts=200, seed=5), tmp_path / "c", fmt="csv")
    generate(WorldConfig(n_accounts=200, seed=5), tmp_path / "p", fmt="parquet")
    for t in ("accounts", "goals", "goal_progress", "usage"):
        c = pd.read_csv(tmp_path / "c" / f"{t}.csv")
        p = pd.read_parquet(tmp_path / "p" / f"{t}.parquet")
        for col in p.columns:
            if col.endswith("date"):
                p[col] = pd.to_datetime(p[col])
                c[col] = pd.to_datetime(c[col])
        pd.testing.assert_frame_equal(c, p, check_dtype=False)


def test_bundled_sample_equals_a_fresh_generation(tmp_path):
    sys.path.insert(0, str(ROOT / "data"))
    try:
        import make_sample
    finally:
        sys.path.pop(0)
    generate(make_sample.SAMPLE_CONFIG, tmp_path, fmt=make_sample.SAMPLE_FORMAT)
    assert _digest(tmp_path) == _digest(make_sample.SAMPLE_DIR), "data/sample is stale: run `make sample`"
    size = sum(p.stat().st_size for p in make_sample.SAMPLE_DIR.iterdir())
    assert size < 3_000_000


def test_refuses_to_overwrite_without_force(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path), "--accounts", "50"]) == 0
    before = _digest(tmp_path)
    assert main(["generate", "--out", str(tmp_path), "--accounts", "60"]) == 2
    assert "use --force" in capsys.readouterr().err
    assert _digest(tmp_path) == before
    assert main(["generate", "--out", str(tmp_path), "--accounts", "60", "--force"]) == 0
    assert json.loads((tmp_path / "truth.json").read_text())["realised"]["n_accounts"] == 60


def test_segments_differ_in_size_arr_and_churn(world):
    tables, truth = world
    acc = tables["accounts"]
    share = acc["segment"].value_counts(normalize=True)
    for name, spec in SEGMENTS.items():
        assert abs(share[name] - spec.share) < 0.05
    med = acc.groupby("segment")["arr"].median()
    assert med["smb"] < med["mid_market"] < med["enterprise"]
    churn = acc.assign(c=acc["end_date"].notna()).groupby("segment")["c"].mean()
    assert churn["smb"] > churn["mid_market"] > churn["enterprise"] > 0
    assert truth["realised"]["n_churned"] == int(acc["end_date"].notna().sum())


def test_goals_are_one_to_four_per_account_across_functions(world):
    tables, _ = world
    goals, acc = tables["goals"], tables["accounts"]
    per = goals.groupby("account_id").size().reindex(acc["account_id"], fill_value=0)
    assert per.min() >= 1 and per.max() <= 4
    assert not goals.duplicated(["account_id", "metric"]).any()
    assert (goals["target"] != goals["baseline"]).all()
    functions = {k.function for k in KPIS if k.name in set(goals["metric"])}
    assert {"sales", "marketing", "hr", "project_management", "supply_chain"} <= functions
    directions = np.sign(goals["target"] - goals["baseline"])
    assert (directions > 0).any() and (directions < 0).any()
    start = goals.merge(acc, on="account_id")["start_date"]
    assert (goals["set_date"].to_numpy() >= start.to_numpy()).all()


def test_progress_is_partial_and_sometimes_regresses(world):
    tables, _ = world
    g = tables["goals"].set_index("goal_id")
    pr = tables["goal_progress"].join(g[["baseline", "target"]], on="goal_id")
    att = ((pr["value"] - pr["baseline"]) / (pr["target"] - pr["baseline"])).clip(0, 1)
    assert 0.2 < ((att > 0) & (att < 1)).mean() < 0.9  # partial value is common
    assert (att == 1).any() and (att == 0).any()
    last = pr.groupby("goal_id")["value"].agg(["first", "last"]).join(g)
    fell = np.sign(last["last"] - last["first"]) != np.sign(last["target"] - last["baseline"])
    assert 0.02 < fell.mean() < 0.6


def test_dates_respect_the_contract(world):
    tables, truth = world
    acc = tables["accounts"]
    as_of = pd.Timestamp(truth["as_of"])
    ended = acc.dropna(subset=["end_date"])
    assert (ended["end_date"] > ended["start_date"]).all() and (ended["end_date"] <= as_of).all()
    use = tables["usage"].merge(acc, on="account_id")
    assert (use["date"] >= use["start_date"].dt.to_period("M").dt.to_timestamp()).all()
    assert (use["date"] <= as_of).all()
    assert (use["date"] <= use["end_date"].fillna(as_of)).all()
    assert not tables["usage"].duplicated(["account_id", "date", "metric"]).any()
    pr = tables["goal_progress"].merge(tables["goals"], on="goal_id")
    assert (pr["date"] > pr["set_date"]).all() and (pr["date"] <= as_of).all()
    assert (tables["goals"]["set_date"] <= as_of).all()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_generated_world_meets_the_data_contract(tmp_path, fmt):
    from csresearch.data import validate

    generate(WorldConfig(n_accounts=500, seed=9), tmp_path, fmt=fmt)
    report = validate(tmp_path)
    assert report.ok, report.render()
    assert not [w for w in report.warnings if "after as_of" in str(w)]


def test_goodhart_segment_logins_rise_while_others_stay_flat(world):
    tables, truth = world
    gh = truth["goodhart"]
    use = tables["usage"].merge(tables["accounts"][["account_id", "segment"]], on="account_id")
    wide = use.pivot_table(index=["segment", "date"], columns="metric", values="value", aggfunc="sum")
    per_user = (wide["logins"] / wide["active_users"]).rename("logins_per_user").reset_index()
    after = per_user["date"] >= pd.Timestamp(gh["from"]) + pd.DateOffset(months=12)
    before = per_user["date"] < pd.Timestamp(gh["from"])
    ratio = per_user[after].groupby("segment")["logins_per_user"].mean() / per_user[before].groupby("segment")["logins_per_user"].mean()
    assert ratio[gh["segment"]] > 1.4
    for seg in ratio.index.drop(gh["segment"]):
        assert abs(ratio[seg] - 1) < 0.1


def test_truth_states_the_planted_effects(world):
    _, truth = world
    eff = truth["effects"]["attainment_full_vs_none"]
    assert eff["log_hr"] < 0 and abs(np.exp(eff["log_hr"]) - eff["hr"]) < 1e-12
    roles = {name: v["role"] for name, v in truth["metrics"]["kpis"].items()}
    assert "goldilocks" in roles.values() and "papa" in roles.values()
    usage_roles = {name: v["role"] for name, v in truth["metrics"]["usage"].items()}
    assert usage_roles["reports_created"] == "mama" and usage_roles["health_score"] == "noise"
    json.dumps(truth)  # serialisable


def test_health_score_can_be_left_out():
    tables, truth = simulate(WorldConfig(n_accounts=100, seed=1, health_score=False))
    assert "health_score" not in set(tables["usage"]["metric"])
    assert "health_score" not in truth["metrics"]["usage"]


def test_observed_from_makes_a_snapshot_export(tmp_path):
    full, _ = simulate(WorldConfig(n_accounts=800, seed=4))
    snap, truth = simulate(WorldConfig(n_accounts=800, seed=4, observed_from="2024-01-01"))
    cut = pd.Timestamp("2024-01-01")
    lost = full["accounts"]["end_date"] < cut
    assert lost.any()
    assert len(snap["accounts"]) == int((~lost).sum())
    assert (snap["accounts"]["end_date"].dropna() >= cut).all()
    assert set(snap["goals"]["account_id"]) <= set(snap["accounts"]["account_id"])
    generate(WorldConfig(n_accounts=100, seed=4, observed_from="2024-01-01"), tmp_path)
    assert "observed_from: '2024-01-01'" in (tmp_path / "dataset.yaml").read_text()


def test_console_command_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "csresearch", "--help"], capture_output=True, text=True, check=True).stdout
    assert "generate" in out and "validate" in out
