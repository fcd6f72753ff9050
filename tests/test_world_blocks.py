"""The streaming generator: a world written a block of accounts at a time.

A one-block world (every world the tests, lessons and sample use) is written byte for byte as the in-memory
path writes it; a larger world is deterministic, holds one block at a time, and its truth and events are
computed over the whole world, not the last block.
"""
from __future__ import annotations

import gc
import hashlib
import json
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from csresearch import world
from csresearch.cli import main
from csresearch.data import load, validate
from csresearch.data.events import aggregate
from csresearch.world import (EVENT_TYPES, TABLES, WorldConfig, block_sizes, event_scale, generate, generate_world,
                              simulate, write, write_events)

CONFIG = WorldConfig(n_accounts=600, seed=21)
BLOCK = 250  # 600 accounts: three blocks of 200


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _read(folder: Path, fmt: str) -> dict[str, pd.DataFrame]:
    out = {}
    for t in TABLES:
        df = pd.read_csv(folder / f"{t}.csv") if fmt == "csv" else pd.read_parquet(folder / f"{t}.parquet")
        for col in df.columns:
            if col.endswith("date"):
                df[col] = pd.to_datetime(df[col]).astype("datetime64[ns]")
        out[t] = df
    return out


def _ns(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(**{c: df[c].astype("datetime64[ns]") for c in df.columns if c.endswith("date")})


@pytest.fixture(scope="module")
def blocked():
    return simulate(CONFIG, block_accounts=BLOCK)


def test_block_sizes_are_even_and_cover_every_account():
    assert block_sizes(600, 250) == [200, 200, 200]
    assert block_sizes(601, 250) == [201, 200, 200]
    assert block_sizes(100_000) == [100_000] and block_sizes(100_001) == [50_001, 50_000]
    assert block_sizes(7, 1) == [1] * 7
    with pytest.raises(ValueError, match="--block-accounts must be at least 1"):
        block_sizes(10, 0)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_one_block_stream_equals_the_in_memory_writer(tmp_path, fmt):
    # the streaming path (Arrow columns built from numpy) writes the files write(simulate()) + write_events write
    config = WorldConfig(n_accounts=400, seed=8, observed_from="2023-06-01")
    tables, truth = simulate(config)
    write(tables, truth, tmp_path / "memory", fmt=fmt)
    write_events(tables, tmp_path / "memory", 9, seed=config.seed, as_of=truth["as_of"], events_per_part=3_000)
    got = generate_world(config, tmp_path / "stream", fmt=fmt, events_per_account_month=9, events_per_part=3_000)
    assert got.truth == truth and "blocks" not in truth
    assert got.events["parts"] > 2
    assert _digest(tmp_path / "stream") == _digest(tmp_path / "memory")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_blocked_world_files_hold_the_simulated_tables(tmp_path, blocked, fmt):
    tables, truth = blocked
    folder = tmp_path / "streamed"
    got = generate(CONFIG, folder, fmt=fmt, block_accounts=BLOCK)
    assert got == truth and json.loads(json.dumps(truth)) == json.loads((folder / "truth.json").read_text())
    back = _read(folder, fmt)
    for t in TABLES:
        pd.testing.assert_frame_equal(back[t], _ns(tables[t]), check_dtype=False)
    if fmt == "csv":  # one header, then every block's rows: the whole-world CSV writer gives the same bytes
        write(tables, truth, tmp_path / "whole", fmt="csv")
        assert _digest(tmp_path / "whole") == _digest(folder)


def test_blocked_world_is_deterministic_and_depends_on_the_blocking(tmp_path):
    args = ["generate", "--accounts", "600", "--seed", "21", "--format", "parquet", "--block-accounts", "250",
            "--events-per-account-month", "6"]
    for name in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # the event spill is removed
    assert main([*args[:-4], "--block-accounts", "300", "--out", str(tmp_path / "c")]) == 0
    a, c = (pd.read_parquet(tmp_path / x / "accounts.parquet") for x in ("a", "c"))
    assert len(a) == len(c) == 600 and not a.equals(c)


def test_blocked_world_is_one_world(blocked):
    tables, truth = blocked
    acc, goals = tables["accounts"], tables["goals"]
    # ids are unique and numbered across blocks, rows in id order, every block on the same calendar
    assert acc["account_id"].is_unique and acc["account_id"].is_monotonic_increasing
    assert list(acc["account_id"].iloc[[0, 199, 200, 599]]) == ["acc-00001", "acc-00200", "acc-00201", "acc-00600"]
    assert goals["goal_id"].is_unique and goals["goal_id"].is_monotonic_increasing
    assert tables["usage"]["account_id"].is_monotonic_increasing
    blocks = [acc.iloc[i:i + 200] for i in (0, 200, 400)]
    for b in blocks:  # each block is signup-ordered and spans the calendar
        assert b["start_date"].is_monotonic_increasing
        assert b["start_date"].min() < pd.Timestamp("2022-01-01") and b["start_date"].max() > pd.Timestamp("2025-06-01")
    assert not np.array_equal(blocks[0]["arr"].to_numpy(), blocks[1]["arr"].to_numpy())  # independent streams
    assert truth["blocks"]["n_blocks"] == 3 and truth["blocks"]["accounts_per_block"] == [200, 200, 200]
    assert truth["config"]["n_accounts"] == 600


def test_blocked_truth_is_accumulated_over_the_whole_world(blocked):
    tables, truth = blocked
    acc = tables["accounts"]
    r = truth["realised"]
    assert (r["n_accounts"], r["n_churned"]) == (600, int(acc["end_date"].notna().sum()))
    assert (r["n_goals"], r["n_goal_progress"], r["n_usage"]) == tuple(len(tables[t]) for t in TABLES[1:])
    for name, grp in acc.groupby("segment"):
        assert r["by_segment"][name] == {"n_accounts": len(grp), "n_churned": int(grp["end_date"].notna().sum()),
                                         "arr_median": float(grp["arr"].median())}
    # every account-month with usage is at risk (none starts on as_of): summed over all three blocks
    account_months = len(tables["usage"][["account_id", "date"]].drop_duplicates())
    assert r["n_account_months_at_risk"] == account_months


def test_blocked_events_use_the_whole_worlds_scale(tmp_path, blocked):
    tables, truth = blocked
    got = generate_world(CONFIG, tmp_path, fmt="parquet", events_per_account_month=8, block_accounts=BLOCK,
                         events_per_part=2_000)
    usage = tables["usage"]
    scale = event_scale(usage, 8)
    assert got.events["scale"] == scale
    parts = sorted(p.name for p in (tmp_path / "events").iterdir())
    assert parts == [f"part-{i:05d}.parquet" for i in range(got.events["parts"])] and len(parts) > 3
    sub = usage[usage["metric"].isin(list(EVENT_TYPES))]
    expected = pd.DataFrame({"account_id": sub["account_id"].to_numpy(), "date": sub["date"].to_numpy(),
                             "metric": sub["metric"].map(EVENT_TYPES).to_numpy(),
                             "value": np.floor(sub["value"].to_numpy() * scale + 0.5)})
    expected = expected[expected["value"] > 0].sort_values(["account_id", "date", "metric"]).reset_index(drop=True)
    expected["date"] = expected["date"].astype("datetime64[ns]")
    pd.testing.assert_frame_equal(aggregate(tmp_path / "events"), expected)
    assert got.events["events"] == int(expected["value"].sum())
    (tmp_path / "usage.parquet").unlink()
    report = validate(tmp_path)
    assert report.ok, report.render()


def test_blocked_snapshot_world_meets_the_contract(tmp_path):
    config = WorldConfig(n_accounts=500, seed=6, observed_from="2024-01-01", health_score=False)
    truth = generate(config, tmp_path, fmt="parquet", block_accounts=200)
    assert truth["blocks"]["n_blocks"] == 3
    report = validate(tmp_path)
    assert report.ok, report.render()
    ds = load(tmp_path)
    assert len(ds.accounts) == truth["realised"]["n_accounts"] < 500
    assert (ds.accounts["end_date"].dropna() >= pd.Timestamp("2024-01-01")).all()
    assert set(ds.goals["account_id"]) <= set(ds.accounts["account_id"])


def test_only_one_block_is_held_at_a_time(tmp_path, monkeypatch):
    alive: list[weakref.ref] = []
    held: list[int] = []
    simulate_block = world._simulate_block

    def spy(*args, **kwargs):
        gc.collect()
        held.append(sum(r() is not None for r in alive))
        block = simulate_block(*args, **kwargs)
        alive.append(weakref.ref(block))
        return block

    monkeypatch.setattr(world, "_simulate_block", spy)
    generate_world(WorldConfig(n_accounts=120, seed=2), tmp_path, fmt="parquet", events_per_account_month=3,
                   block_accounts=30)
    assert held == [0, 0, 0, 0]  # while a block is simulated, no earlier block is still in memory
    gc.collect()
    assert not [r for r in alive if r() is not None]


def test_bad_block_size_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["generate", "--out", str(out), "--accounts", "20", "--block-accounts", "0"]) == 2
    assert "--block-accounts must be at least 1, not 0" in capsys.readouterr().err
    assert not out.exists()
