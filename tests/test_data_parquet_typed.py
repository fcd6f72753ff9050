"""Parquet columns stored with the contract's type are checked without a detour through text.

The typed path exists for memory (a 1M-account export would not fit as Python strings); it must
report exactly what the text path reports for the same values, and load the same frames. The text
path is exercised by storing the same columns as Parquet strings rendered the way the reader renders
them (Arrow's casts), so both folders hold the same values.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from csresearch.data import load, validate
from csresearch.data._read import _arrow_to_text, read_parquet
from csresearch.data._spec import TABLES

D = pa.date32()


def _typed_tables() -> dict[str, pa.Table]:
    day = lambda s: None if s is None else pd.Timestamp(s).date()  # noqa: E731
    return {
        "accounts": pa.table({
            "account_id": ["a-1", "a-2", "a-3", "a-4", "a-5", "a-6"],
            "segment": ["smb", "smb", "mid_market", "enterprise", "mid_market", "smb"],
            "start_date": pa.array([day(x) for x in ["2023-01-15", "2023-02-01", "2023-03-10", "2022-11-01",
                                                     "2023-06-01", "2023-05-01"]], D),
            "end_date": pa.array([day(x) for x in [None, "2024-03-31", None, None, "2024-01-31", "2023-04-01"]], D),
            "arr": pa.array([1200.0, 800.5, None, 50000.0, -3.0, 10.0]),
        }),
        "goals": pa.table({
            "goal_id": ["g-1", "g-2", "g-3", "g-4", "g-4"],
            "account_id": ["a-1", "a-3", "a-4", "a-4", "a-9"],
            "metric": ["tickets", "churn_rate", "revenue", "  ", "nps"],
            "baseline": pa.array([10, 0.1, 100, -10, 5], pa.float64()),
            "target": pa.array([20, 0.05, 100, 20, float("inf")], pa.float64()),
            "set_date": pa.array([day(x) for x in ["2023-02-01", "2023-01-01", "2023-01-01", "2023-02-15",
                                                   "2023-02-15"]], D),
            "weight": pa.array([1, 2, 0, None, 1], pa.int64()),
        }),
        "goal_progress": pa.table({
            "goal_id": ["g-1", "g-1", "g-2", "g-3", "g-7"],
            "date": pa.array([pd.Timestamp("2023-06-01"), pd.Timestamp("2023-12-01 08:00"), pd.Timestamp("2023-09-01"),
                              pd.Timestamp("2025-01-01"), pd.Timestamp("2023-09-01")], pa.timestamp("us")),
            "value": pa.array([15, float("nan"), 0.08, 120, 1], pa.float64()),
        }),
        "usage": pa.table({
            "account_id": ["a-1", "a-1", "a-1", "a-2", None],
            "date": pa.array([day(x) for x in ["2022-12-01", "2023-02-01", "2023-02-01", "2023-02-01", "2023-02-01"]], D),
            "metric": ["logins", "logins", "logins", "logins", "logins"],
            "value": pa.array([5, 7, 8, -1, 2], pa.int32()),
        }),
    }


def _as_text(table: str, arrow: pa.Table) -> pa.Table:
    kinds = {c.name: c.kind for c in TABLES[table]}
    cols = {}
    for name in arrow.column_names:
        text = _arrow_to_text(arrow.column(name), kinds[name])
        cols[name] = pa.array(list(text), pa.string())
    return pa.table(cols)


def _write(folder: Path, tables: dict[str, pa.Table]) -> Path:
    folder.mkdir()
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet")
    (folder / "dataset.yaml").write_text("as_of: 2024-06-30\n")
    return folder


def _lines(report) -> tuple[list[str], list[str]]:
    return [p.message for p in report.errors], [p.message for p in report.warnings]


def test_typed_columns_skip_the_text_detour(tmp_path):
    folder = _write(tmp_path / "typed", _typed_tables())
    raw = read_parquet("goal_progress", folder / "goal_progress.parquet",
                       (folder / "goal_progress.parquet").read_bytes(), [], [])
    assert set(raw.native) == {"goal_id", "date", "value"}
    assert raw.frame["date"].dtype == "datetime64[ns]" and raw.frame["value"].dtype == "float64"
    # one str object per distinct id, not one per row
    assert raw.frame["goal_id"].iloc[0] is raw.frame["goal_id"].iloc[1]


def test_typed_and_text_parquet_report_the_same_problems(tmp_path):
    typed = _typed_tables()
    a = validate(_write(tmp_path / "typed", typed))
    b = validate(_write(tmp_path / "text", {t: _as_text(t, x) for t, x in typed.items()}))
    errors_a, warnings_a = _lines(a)
    assert (errors_a, warnings_a) == _lines(b)
    joined = "\n".join(errors_a)
    # the typed path found every kind of problem planted above, with rows and values
    for expected in ["accounts.parquet: column arr: 1 row is negative: \"-3\" (account_id a-5)",
                     "column end_date: 1 row is before start_date",
                     "goals.parquet: column goal_id: 2 rows have a duplicated value",
                     "goals.parquet: column metric: 1 row is empty",
                     "goals.parquet: column target: 1 row is not a finite number",
                     "column target: 1 row equals baseline",
                     "column weight: 1 row is not greater than 0",
                     "column account_id: 1 row names an account_id not in accounts.parquet",
                     "column set_date: 1 row is before its account's start_date",
                     "goal_progress.parquet: column date: 1 row is not a date (YYYY-MM-DD): \"2023-12-01T08:00:00\"",
                     "goal_progress.parquet: column value: 1 row is not a finite number",
                     "goal_progress.parquet: column date: 1 row is after as_of 2024-06-30",
                     "goal_progress.parquet: column goal_id: 1 row names a goal_id not in goals.parquet",
                     "usage.parquet: column account_id: 1 row is empty",
                     "usage.parquet: column value: 1 row is negative",
                     "usage.parquet: column date: 1 row is before the month its account started",
                     "usage.parquet: 2 rows repeat the (account_id, metric, date) of another row"]:
        assert expected in joined, expected


def test_typed_and_text_parquet_load_the_same_frames(tmp_path, contract_frames):
    # the conftest's valid folder, typed
    fr = contract_frames
    typed = {
        "accounts": pa.table({"account_id": fr["accounts"]["account_id"], "segment": fr["accounts"]["segment"],
                              "start_date": pa.array(pd.to_datetime(fr["accounts"]["start_date"]).dt.date, D),
                              "end_date": pa.array(pd.to_datetime(fr["accounts"]["end_date"].replace("", None)).dt.date, D),
                              "arr": pd.to_numeric(fr["accounts"]["arr"].replace("", None))}),
        "goals": pa.table({**{c: fr["goals"][c] for c in ("goal_id", "account_id", "metric")},
                           "baseline": pd.to_numeric(fr["goals"]["baseline"]), "target": pd.to_numeric(fr["goals"]["target"]),
                           "set_date": pa.array(pd.to_datetime(fr["goals"]["set_date"]), pa.timestamp("ns")),
                           "due_date": pa.array(pd.to_datetime(fr["goals"]["due_date"].replace("", None)).dt.date, D),
                           "weight": pa.array(pd.to_numeric(fr["goals"]["weight"].replace("", None)))}),
        "goal_progress": pa.table({"goal_id": fr["goal_progress"]["goal_id"],
                                   "date": pa.array(pd.to_datetime(fr["goal_progress"]["date"]).dt.date, D),
                                   "value": pd.to_numeric(fr["goal_progress"]["value"])}),
        "usage": pa.table({"account_id": pa.array(fr["usage"]["account_id"]).dictionary_encode(),
                           "date": pa.array(pd.to_datetime(fr["usage"]["date"]).dt.date, D),
                           "metric": fr["usage"]["metric"], "value": pd.to_numeric(fr["usage"]["value"])}),
    }
    a = load(_write(tmp_path / "typed", typed))
    b = load(_write(tmp_path / "text", {t: _as_text(t, x) for t, x in typed.items()}))
    for table in ("accounts", "goals", "goal_progress", "usage"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), check_exact=True)
    assert a.accounts["account_id"].map(type).eq(str).all()


def test_dates_beyond_the_nanosecond_range_are_reported_not_wrapped(tmp_path):
    tables = _typed_tables()
    acc = tables["accounts"].to_pandas()
    acc["start_date"] = acc["start_date"].astype(object)
    acc.loc[0, "start_date"] = pd.Timestamp("2023-01-01").date().replace(year=3000)
    tables = {"accounts": pa.table({**{c: tables["accounts"][c] for c in ("account_id", "segment", "end_date")},
                                    "start_date": pa.array(acc["start_date"].tolist(), D)})}
    report = validate(_write(tmp_path / "far", tables))
    assert any('column start_date: 1 row is not a date (YYYY-MM-DD): "3000-01-01" (account_id a-1)' in p.message
               for p in report.errors), [p.message for p in report.errors]
