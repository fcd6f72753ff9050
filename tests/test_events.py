"""Events -> monthly usage (DuckDB), event validation, and the generator's events writer."""
from __future__ import annotations

import re

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from csresearch.cli import main
from csresearch.data import load, validate
from csresearch.data.events import aggregate, find_events
from csresearch.world import EVENT_TYPES, WorldConfig, event_scale, simulate, write, write_events


_EVENTS = [  # account_id, ts, event: all valid for the conftest folder (as_of 2024-06-30)
    ("a-1", "2023-01-15 09:00:00", "login"),
    ("a-1", "2023-01-31 23:59:59", "login"),
    ("a-1", "2023-02-01 00:00:00", "login"),
    ("a-1", "2023-02-03 12:00:00", "report"),
    ("a-3", "2023-03-10 08:30:00", "login"),
    ("a-4", "2024-06-30 23:00:00", "login"),
    ("a-4", "2024-05-02 10:00:00", "report"),
    ("a-4", "2024-05-02 11:00:00", "report"),
]


def _frame(rows=_EVENTS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["account_id", "ts", "event"])


def _write(folder: Path, frame: pd.DataFrame, kind: str) -> None:
    """kind: csv (events.csv), parquet (events.parquet, ts as timestamp), parts (events/ with 3 parts)."""
    if kind == "csv":
        frame.to_csv(folder / "events.csv", index=False, lineterminator="\n")
        return
    typed = frame.copy()
    if pd.api.types.is_string_dtype(typed["ts"]) and pd.to_datetime(typed["ts"], errors="coerce").notna().all():
        typed["ts"] = pd.to_datetime(typed["ts"])
    table = pa.Table.from_pandas(typed, preserve_index=False)
    if kind == "parquet":
        pq.write_table(table, folder / "events.parquet")
    else:
        (folder / "events").mkdir()
        for i, lo in enumerate(range(0, len(frame), 3)):
            pq.write_table(table.slice(lo, 3), folder / "events" / f"part-{i:05d}.parquet")


def _expected(frame: pd.DataFrame) -> pd.DataFrame:
    ts = pd.to_datetime(frame["ts"])
    out = (frame.assign(date=ts.dt.to_period("M").dt.to_timestamp()).groupby(["account_id", "date", "event"])
           .size().astype(float).rename("value").reset_index().rename(columns={"event": "metric"}))
    out["date"] = out["date"].astype("datetime64[ns]")
    return out[["account_id", "date", "metric", "value"]]


@pytest.fixture
def folder_without_usage(contract_frames, write_contract_folder):
    del contract_frames["usage"]
    return write_contract_folder(contract_frames)


@pytest.mark.parametrize("kind", ["csv", "parquet", "parts"])
def test_aggregation_equals_a_pandas_groupby(folder_without_usage, kind, snapshot):
    folder = folder_without_usage
    _write(folder, _frame(), kind)
    before = snapshot(folder)
    source, warnings = find_events(folder)
    assert warnings == [] and source.fmt == ("csv" if kind == "csv" else "parquet")
    got = aggregate(source)
    pd.testing.assert_frame_equal(got, _expected(_frame()))
    ds = load(folder)
    nonzero = ds.usage[ds.usage["value"] > 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(nonzero, _expected(_frame()))
    # silent months are zeros, not missing: one row per event type for every month an account was active
    acc = ds.accounts.set_index("account_id")
    end = acc["end_date"].fillna(ds.as_of).dt.to_period("M")
    months = (end - acc["start_date"].dt.to_period("M")).apply(lambda d: d.n + 1)
    assert len(ds.usage) == int(months.sum()) * ds.usage["metric"].nunique()
    assert not ds.usage.duplicated(["account_id", "date", "metric"]).any()
    assert ds.files["events"] == source.path
    assert snapshot(folder) == before


def test_validate_reports_the_aggregate(folder_without_usage, capsys):
    _write(folder_without_usage, _frame(), "parts")
    assert main(["validate", str(folder_without_usage)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"usage +\d+ rows \(aggregated from events/: 8 events\)", out)


def test_usage_wins_over_events(contract_frames, write_contract_folder, capsys):
    folder = write_contract_folder(contract_frames)
    _write(folder, _frame([("nobody", "x", "")]), "parts")  # invalid, but not read
    ds = load(folder)
    assert len(ds.usage) == len(contract_frames["usage"]) and "events" not in ds.files
    assert main(["validate", str(folder)]) == 0
    assert "events/: present, not read by validate" in capsys.readouterr().out


def test_shadowed_events_folder_is_a_warning(folder_without_usage):
    _write(folder_without_usage, _frame(), "parquet")
    _write(folder_without_usage, _frame(), "parts")
    report = validate(folder_without_usage)
    assert report.ok
    assert "events/: ignored because events.parquet exists (Parquet wins, a file before a folder)" in \
        [w.message for w in report.warnings]


_BAD = _EVENTS + [
    ("a-9", "2023-05-01 10:00:00", "login"),       # row 9: orphan
    ("a-9", "2023-05-02 10:00:00", "login"),       # row 10: orphan, same id
    ("zz", "2023-05-02 10:00:00", "login"),        # row 11: orphan
    ("a-3", "2023-02-28 10:00:00", "login"),       # row 12: before a-3's start month (2023-03)
    ("a-1", "2024-07-01 00:00:00", "login"),       # row 13: after as_of 2024-06-30
    ("a-1", "2023-05-01 10:00:00", ""),            # row 14: empty event
]


@pytest.mark.parametrize("kind", ["parquet", "parts", "csv"])
def test_bad_events_give_exact_messages_and_exit_2(folder_without_usage, kind, capsys, snapshot):
    folder = folder_without_usage
    frame = _frame(_BAD)
    if kind == "csv":
        frame.loc[len(frame)] = ["a-1", "2023-13-01 10:00", "login"]   # not a timestamp
        frame.loc[len(frame)] = ["", "2023-05-01 10:00:00", "login"]   # empty account_id
    _write(folder, frame, kind)
    before = snapshot(folder)
    assert main(["validate", str(folder)]) == 2
    out = capsys.readouterr().out
    name = {"csv": "events.csv", "parquet": "events.parquet", "parts": "events/"}[kind]
    where = {
        "parquet": {"orphan": "(rows 9, 10, 11)", "before": "(row 12)", "after": "(row 13)", "event": "(row 14)"},
        "parts": {"orphan": "(part-00002.parquet row 3, part-00003.parquet row 1, part-00003.parquet row 2)",
                  "before": "(part-00003.parquet row 3)", "after": "(part-00004.parquet row 1)",
                  "event": "(part-00004.parquet row 2)"},
        "csv": {"orphan": "(account_id a-9, a-9, zz)", "before": "(account_id a-3 at 2023-02-28 10:00:00)",
                "after": "(account_id a-1 at 2024-07-01 00:00:00)", "event": "(account_id a-1)"},
    }[kind]
    lines = [l for l in out.splitlines() if l.startswith(name)]
    expected = []
    if kind == "csv":
        expected.append(f"{name}: column account_id: 1 row is empty")
    expected.append(f"{name}: column account_id: 3 rows name an account_id not in accounts.csv: "
                    f"\"a-9\", \"zz\" {where['orphan']}")
    if kind == "csv":
        expected.append(f"{name}: column ts: 1 row is not a timestamp: \"2023-13-01 10:00\" (account_id a-1)")
    expected += [
        f"{name}: column ts: 1 row is before the month its account started {where['before']}",
        f"{name}: column ts: 1 row is after as_of 2024-06-30 {where['after']}",
        f"{name}: column event: 1 row is empty {where['event']}",
    ]
    assert lines == expected
    assert out.splitlines()[-1] == f"INVALID: {folder}: {len(expected)} errors, 0 warnings"
    assert snapshot(folder) == before


def test_missing_column_and_string_timestamps_in_parquet(folder_without_usage, capsys):
    frame = _frame().rename(columns={"event": "Event"})
    frame.loc[2, "ts"] = "yesterday"  # keeps ts a string column in Parquet
    _write(folder_without_usage, frame, "parquet")
    assert main(["validate", str(folder_without_usage)]) == 2
    assert "events.parquet: missing required column event (found Event: names are case-sensitive)" \
        in capsys.readouterr().out
    frame = _frame()
    frame.loc[2, "ts"] = "yesterday"
    (folder_without_usage / "events.parquet").unlink()
    _write(folder_without_usage, frame, "parquet")
    assert main(["validate", str(folder_without_usage)]) == 2
    assert "events.parquet: column ts: 1 row is not a timestamp: \"yesterday\" (row 3)" in capsys.readouterr().out


def test_as_of_defaults_to_the_latest_event(contract_frames, write_contract_folder):
    del contract_frames["usage"]
    folder = write_contract_folder(contract_frames, dataset_yaml=None)
    _write(folder, _frame(), "parquet")
    ds = load(folder)
    assert ds.as_of == pd.Timestamp("2024-06-30") and ds.as_of_source == "latest date in the data: events.ts"


# -- the generator ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_world():
    return simulate(WorldConfig(n_accounts=300, seed=11))


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_generated_events_aggregate_to_the_documented_counts(small_world, tmp_path):
    tables, truth = small_world
    info = write_events(tables, tmp_path, 30, seed=11, as_of=truth["as_of"], events_per_part=20_000)
    assert info["parts"] > 3
    usage = tables["usage"]
    scale = event_scale(usage, 30)
    sub = usage[usage["metric"].isin(list(EVENT_TYPES))]
    expected = pd.DataFrame({"account_id": sub["account_id"].to_numpy(), "date": sub["date"].to_numpy(),
                             "metric": sub["metric"].map(EVENT_TYPES).to_numpy(),
                             "value": np.floor(sub["value"].to_numpy() * scale + 0.5)})
    expected = expected[expected["value"] > 0].sort_values(["account_id", "date", "metric"]).reset_index(drop=True)
    expected["date"] = expected["date"].astype("datetime64[ns]")
    got = aggregate(tmp_path / "events")
    pd.testing.assert_frame_equal(got, expected)
    assert info["events"] == int(expected["value"].sum())
    n_months = len(usage[["account_id", "date"]].drop_duplicates())
    assert info["events"] / n_months == pytest.approx(30, rel=0.02)


def test_generated_events_validate_and_are_deterministic(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert main(["generate", "--out", str(out), "--accounts", "200", "--seed", "4", "--format", "parquet",
                     "--events-per-account-month", "12"]) == 0
    assert _digest(a) == _digest(b)
    plain = tmp_path / "plain"
    assert main(["generate", "--out", str(plain), "--accounts", "200", "--seed", "4", "--format", "parquet"]) == 0
    assert {k: v for k, v in _digest(a).items() if not k.startswith("events/")} == _digest(plain)
    (a / "usage.parquet").unlink()  # usage wins while it is there
    capsys.readouterr()
    assert main(["validate", str(a)]) == 0
    assert "(aggregated from events/:" in capsys.readouterr().out
    assert set(load(a).usage["metric"]) == set(EVENT_TYPES.values())
    assert main(["generate", "--out", str(b), "--accounts", "200", "--events-per-account-month", "0", "--force"]) == 2


def test_dense_usage_counts_only_the_months_an_account_was_active(folder_without_usage):
    # a-2 churned 2024-03-31: its April event (valid: not after as_of) is outside its life and not counted;
    # a-5 has no event at all and still gets zero rows for every month of its life
    rows = [*_EVENTS, ("a-2", "2024-03-31 22:00:00", "login"), ("a-2", "2024-04-15 10:00:00", "login")]
    _write(folder_without_usage, _frame(rows), "parts")
    ds = load(folder_without_usage)
    u = ds.usage.set_index(["account_id", "date", "metric"])["value"]
    assert u[("a-2", pd.Timestamp("2024-03-01"), "login")] == 1.0
    assert ("a-2", pd.Timestamp("2024-04-01"), "login") not in u.index
    a5 = ds.usage[ds.usage["account_id"] == "a-5"]
    assert len(a5) == 8 * 2 and (a5["value"] == 0).all()  # 2023-06 .. 2024-01, two event types
    # the same counts from a plain pandas computation over the grid
    grid = aggregate(folder_without_usage / "events")
    merged = ds.usage.merge(grid, on=["account_id", "date", "metric"], how="left", suffixes=("", "_sparse"))
    inside = merged["value_sparse"].notna()
    assert (merged.loc[inside, "value"] == merged.loc[inside, "value_sparse"]).all()
    assert (merged.loc[~inside, "value"] == 0).all()
    assert merged["value"].sum() == len(rows) - 1
    # rows come in the accounts' order, then date, then metric
    order = {a: i for i, a in enumerate(ds.accounts["account_id"])}
    keys = list(zip(ds.usage["account_id"].map(order), ds.usage["date"], ds.usage["metric"]))
    assert keys == sorted(keys)


def test_the_usage_of_events_is_counted_when_first_read_for_the_datasets_own_accounts(folder_without_usage):
    from csresearch.data import PendingUsage
    from csresearch.data.events import aggregate as count

    rows = [*_EVENTS, ("a-2", "2024-03-31 22:00:00", "login"), ("a-5", "2023-07-02 10:00:00", "report")]
    _write(folder_without_usage, _frame(rows), "parts")
    ds = load(folder_without_usage)
    # loading counts nothing: the metrics and the row count are known, the table is pending
    assert isinstance(ds.usage_state(), PendingUsage)
    assert ds.has_usage and ds.usage_metrics == ["login", "report"]
    assert "pending" in repr(ds)
    rep = validate(folder_without_usage)
    # a sample stays pending and counts only its own accounts, exactly the rows of the full table
    sample = ds.sample_accounts(2, seed=3)
    assert isinstance(sample.usage_state(), PendingUsage)
    part = sample.usage
    assert set(part["account_id"]) == set(sample.accounts["account_id"])
    whole = ds.usage
    assert isinstance(ds.usage_state(), pd.DataFrame) and len(whole) == rep.summary["rows"]["usage"]
    pd.testing.assert_frame_equal(whole, count(find_events(folder_without_usage)[0], accounts=ds.accounts,
                                               as_of=ds.as_of))
    expect = whole[whole["account_id"].isin(sample.accounts["account_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expect)
    # set explicitly, it is what was set
    import dataclasses
    assert dataclasses.replace(ds, usage=None).usage is None and not dataclasses.replace(ds, usage=None).has_usage
