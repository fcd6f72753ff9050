"""Malformed data folders: every problem is reported with file, column, rule, count and rows;
``csresearch validate`` exits 2; the folder is left byte-identical."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from csresearch.cli import main
from csresearch.data import DataValidationError, load, validate

Frames = dict[str, pd.DataFrame]


@dataclass
class Case:
    id: str
    expected: list[str]                              # the exact error lines, in order
    mutate: Callable[[Frames], None] | None = None   # change the frames before writing
    post: Callable[[Path], None] | None = None       # change the written folder
    dataset_yaml: str | None = "as_of: 2024-06-30\n"
    warnings: list[str] = field(default_factory=list)  # warning lines that must also be there


def setv(table: str, row: int, column: str, value: str) -> Callable[[Frames], None]:
    def f(frames: Frames) -> None:
        frames[table].loc[row, column] = value
    return f


def append(table: str, values: list[str]) -> Callable[[Frames], None]:
    def f(frames: Frames) -> None:
        frames[table].loc[len(frames[table])] = values
    return f


def rename(table: str, old: str, new: str) -> Callable[[Frames], None]:
    def f(frames: Frames) -> None:
        frames[table] = frames[table].rename(columns={old: new})
    return f


def drop(table: str, column: str | None = None) -> Callable[[Frames], None]:
    def f(frames: Frames) -> None:
        if column is None:
            del frames[table]
        else:
            frames[table] = frames[table].drop(columns=[column])
    return f


def both(*fns: Callable) -> Callable:
    def f(x) -> None:
        for fn in fns:
            fn(x)
    return f


def write_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data)


def to_parquet(table: str, arrow_table: Callable[[], pa.Table]) -> Callable[[Path], None]:
    def f(folder: Path) -> None:
        (folder / f"{table}.csv").unlink()
        pq.write_table(arrow_table(), folder / f"{table}.parquet")
    return f


def _accounts_arrow(start_date: pa.Array) -> pa.Table:
    return pa.table({"account_id": ["a-1", "a-2", "a-3", "a-4", "a-5"],
                     "segment": ["smb", "smb", "mid_market", "enterprise", "mid_market"],
                     "start_date": start_date,
                     "end_date": pa.array([None] * 5, pa.date32())})


CASES = [
    Case("missing_accounts_file", mutate=drop("accounts"),
         expected=["accounts: required table missing: no accounts.csv or accounts.parquet in the folder"]),
    Case("accounts_file_name_case", post=lambda d: (d / "accounts.csv").rename(d / "Accounts.csv"),
         expected=["accounts: required table missing: no accounts.csv or accounts.parquet in the folder "
                   "(found Accounts.csv: file names are case-sensitive)"]),
    Case("missing_column_accounts", mutate=drop("accounts", "segment"),
         expected=["accounts.csv: missing required column segment"]),
    Case("missing_column_end_date", mutate=drop("accounts", "end_date"),
         expected=["accounts.csv: missing required column end_date"]),
    Case("missing_column_goals", mutate=drop("goals", "metric"),
         expected=["goals.csv: missing required column metric"]),
    Case("missing_column_progress", mutate=drop("goal_progress", "date"),
         expected=["goal_progress.csv: missing required column date"]),
    Case("missing_column_usage", mutate=drop("usage", "value"),
         expected=["usage.csv: missing required column value"]),
    Case("wrong_case_column", mutate=rename("accounts", "account_id", "Account_ID"),
         expected=["accounts.csv: missing required column account_id (found Account_ID: names are case-sensitive)"],
         warnings=["warning: accounts.csv: 1 extra column kept: Account_ID"]),
    Case("duplicate_account_id", mutate=append("accounts", ["a-2", "smb", "2023-05-01", "", "10"]),
         expected=['accounts.csv: column account_id: 2 rows have a duplicated value: "a-2" (lines 3, 7)']),
    Case("duplicate_goal_id", mutate=append("goals", ["g-1", "a-2", "logins", "1", "2", "2023-03-01", "", ""]),
         expected=['goals.csv: column goal_id: 2 rows have a duplicated value: "g-1" (lines 2, 6)']),
    Case("empty_account_id", mutate=append("accounts", ["", "smb", "2023-05-01", "", ""]),
         expected=["accounts.csv: column account_id: 1 row is empty (line 7)"]),
    Case("empty_segment", mutate=setv("accounts", 2, "segment", " "),
         expected=["accounts.csv: column segment: 1 row is empty (account_id a-3)"]),
    Case("end_before_start", mutate=setv("accounts", 1, "end_date", "2023-01-31"),
         expected=['accounts.csv: column end_date: 1 row is before start_date: "2023-01-31" (account_id a-2)']),
    Case("end_after_as_of", mutate=setv("accounts", 4, "end_date", "2024-07-15"),
         expected=['accounts.csv: column end_date: 1 row is after as_of 2024-06-30: "2024-07-15" (account_id a-5)']),
    Case("orphan_goal_account", mutate=setv("goals", 1, "account_id", "a-99"),
         expected=['goals.csv: column account_id: 1 row names an account_id not in accounts.csv: "a-99" (goal_id g-2)']),
    Case("orphan_progress_goal", mutate=setv("goal_progress", 2, "goal_id", "g-99"),
         expected=['goal_progress.csv: column goal_id: 1 row names a goal_id not in goals.csv: "g-99" '
                   '(goal_id g-99 on 2023-09-01)'],
         warnings=["warning: goals.csv: column goal_id: 1 goal has no goal_progress rows (goal_id g-2)"]),
    Case("orphan_usage_account", mutate=setv("usage", 3, "account_id", "zz"),
         expected=['usage.csv: column account_id: 1 row names an account_id not in accounts.csv: "zz" '
                   '(account_id zz logins on 2023-02-01)']),
    Case("target_equals_baseline", mutate=both(setv("goals", 0, "target", "10"), setv("goals", 2, "target", "100.0")),
         expected=["goals.csv: column target: 2 rows equal baseline (goal_id g-1, g-3)"]),
    Case("non_numeric_baseline", mutate=both(setv("goals", 1, "baseline", "abc"), setv("goals", 3, "baseline", "1,5")),
         expected=['goals.csv: column baseline: 2 rows are not numbers: "abc", "1,5" (goal_id g-2, g-4)']),
    Case("infinite_value", mutate=both(setv("goal_progress", 3, "value", "inf"), setv("goals", 0, "target", "-Infinity")),
         expected=['goals.csv: column target: 1 row is not a finite number: "-Infinity" (goal_id g-1)',
                   'goal_progress.csv: column value: 1 row is not a finite number: "inf" (goal_id g-3 on 2024-01-01)']),
    Case("nan_string_value", mutate=setv("usage", 0, "value", "NaN"),
         expected=['usage.csv: column value: 1 row is not a finite number: "NaN" (account_id a-1 logins on 2023-01-01)']),
    Case("unparseable_date", mutate=both(setv("accounts", 2, "start_date", "2024-13-01"),
                                         setv("accounts", 4, "end_date", "yesterday")),
         expected=['accounts.csv: column start_date: 1 row is not a date (YYYY-MM-DD): "2024-13-01" (account_id a-3)',
                   'accounts.csv: column end_date: 1 row is not a date (YYYY-MM-DD): "yesterday" (account_id a-5)']),
    Case("non_iso_date", mutate=both(setv("usage", 1, "date", "01/02/2023"), setv("goals", 1, "due_date", "2024-1-5")),
         expected=['goals.csv: column due_date: 1 row is not a date (YYYY-MM-DD): "2024-1-5" (goal_id g-2)',
                   'usage.csv: column date: 1 row is not a date (YYYY-MM-DD): "01/02/2023" '
                   '(account_id a-1 logins on 01/02/2023)']),
    Case("negative_usage", mutate=setv("usage", 4, "value", "-3"),
         expected=['usage.csv: column value: 1 row is negative: "-3" (account_id a-3 logins on 2023-03-01)']),
    Case("negative_arr", mutate=setv("accounts", 0, "arr", "-100"),
         expected=['accounts.csv: column arr: 1 row is negative: "-100" (account_id a-1)']),
    Case("zero_weight", mutate=both(setv("goals", 2, "weight", "0"), setv("goals", 3, "weight", "-1")),
         expected=['goals.csv: column weight: 2 rows are not greater than 0: "0", "-1" (goal_id g-3, g-4)']),
    Case("empty_accounts_table", mutate=lambda f: f.update(accounts=f["accounts"].iloc[:0]),
         expected=["accounts.csv: no rows"]),
    Case("zero_byte_file", post=write_bytes("goals.csv", b""),
         expected=["goals.csv: file is empty"]),
    Case("goal_set_before_account_start", mutate=setv("goals", 0, "set_date", "2022-12-01"),
         expected=['goals.csv: column set_date: 1 row is before its account\'s start_date: "2022-12-01" (goal_id g-1)']),
    Case("progress_before_goal_set", mutate=setv("goal_progress", 0, "date", "2023-01-20"),
         expected=['goal_progress.csv: column date: 1 row is before its goal\'s set_date: "2023-01-20" '
                   '(goal_id g-1 on 2023-01-20)']),
    Case("progress_after_as_of", mutate=setv("goal_progress", 3, "date", "2024-07-01"),
         expected=['goal_progress.csv: column date: 1 row is after as_of 2024-06-30: "2024-07-01" '
                   '(goal_id g-3 on 2024-07-01)']),
    Case("usage_before_account_start_month", mutate=setv("usage", 4, "date", "2023-02-01"),
         expected=['usage.csv: column date: 1 row is before the month its account started: "2023-02-01" '
                   '(account_id a-3 logins on 2023-02-01)']),
    Case("duplicate_usage_key", mutate=append("usage", ["a-1", "2023-02-01", "logins", "9"]),
         expected=["usage.csv: 2 rows repeat the (account_id, metric, date) of another row: "
                   "a-1 logins on 2023-02-01 (lines 3, 9)"]),
    Case("progress_without_goals", mutate=drop("goals"),
         expected=["goal_progress.csv: needs the goals table, but there is no goals.csv or goals.parquet"]),
    Case("due_before_set", mutate=setv("goals", 0, "due_date", "2023-01-31"),
         expected=['goals.csv: column due_date: 1 row is before set_date: "2023-01-31" (goal_id g-1)']),
    Case("observed_from_after_as_of", dataset_yaml="as_of: 2024-06-30\nobserved_from: 2024-07-01\n",
         expected=["dataset.yaml: observed_from 2024-07-01 is after as_of 2024-06-30 (from dataset.yaml)"]),
    Case("malformed_yaml", dataset_yaml="as_of: [2024-06-30\n",
         expected=["dataset.yaml: not valid YAML (line 2): expected ',' or ']', but got '<stream end>'"]),
    Case("yaml_bad_date", dataset_yaml="as_of: 2024-02-30\nobserved_from: 01/01/2023\n",
         expected=['dataset.yaml: as_of must be a date YYYY-MM-DD, found "2024-02-30"',
                   'dataset.yaml: observed_from must be a date YYYY-MM-DD, found "01/01/2023"']),
    Case("corrupt_parquet",
         post=both(lambda d: (d / "usage.csv").unlink(), write_bytes("usage.parquet", b"PAR1 this is not parquet")),
         expected=["usage.parquet: not a readable Parquet file: Could not open Parquet input source '<Buffer>': "
                   "Parquet magic bytes not found in footer. Either the file is corrupted or this is not a "
                   "parquet file."]),
    Case("parquet_wrong_type", post=to_parquet("accounts", lambda: _accounts_arrow(pa.array([1, 2, 3, 4, 5]))),
         expected=["accounts.parquet: column start_date: stored as int64, which cannot hold dates"]),
    Case("parquet_time_of_day", post=to_parquet("accounts", lambda: _accounts_arrow(pa.array(
        pd.to_datetime(["2023-01-15", "2023-02-01 10:30", "2023-03-10", "2022-11-01", "2023-06-01"], format="ISO8601"),
        pa.timestamp("us")))),
         expected=['accounts.parquet: column start_date: 1 row is not a date (YYYY-MM-DD): "2023-02-01T10:30:00" '
                   '(account_id a-2)']),
    Case("not_utf8", post=lambda d: (d / "accounts.csv").write_bytes(
        (d / "accounts.csv").read_bytes().replace(b"smb", "sm\xe9".encode("latin-1"), 1)),
         expected=['accounts.csv: not UTF-8 text (byte 0xe9 on line 2, which reads "a-1,smé,2023-01-15,,1200" as '
                   'Windows-1252): save it as UTF-8 or set `encoding: cp1252` for it under `files: accounts.csv:` '
                   'in dataset.yaml (docs/data-contract.md#reading-files)']),
    Case("row_with_wrong_width", post=lambda d: (d / "usage.csv").write_text(
        (d / "usage.csv").read_text() + "a-2,2023-03-01,logins\n"),
         expected=["usage.csv: 1 row not checked further: the header has 4 fields (line 9: 3 fields)"]),
    Case("no_dates_anywhere", dataset_yaml=None,
         mutate=lambda f: f.update(accounts=f["accounts"].assign(start_date="", end_date=""),
                                   goals=f["goals"].iloc[:0], goal_progress=f["goal_progress"].iloc[:0],
                                   usage=f["usage"].iloc[:0]),
         expected=["as_of: cannot be determined: no date in any table and none given (dataset.yaml as_of or --as-of)",
                   "accounts.csv: column start_date: 5 rows are empty (account_id a-1, a-2, a-3, a-4, a-5)"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_folder(case: Case, contract_frames, write_contract_folder, snapshot, capsys):
    if case.mutate:
        case.mutate(contract_frames)
    folder = write_contract_folder(contract_frames, dataset_yaml=case.dataset_yaml)
    if case.post:
        case.post(folder)
    before = snapshot(folder)

    assert main(["validate", str(folder)]) == 2
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2].startswith("the rules: docs/data-contract.md#")
    errors = [line for line in printed[:-2] if not line.startswith("warning: ")]
    assert errors == case.expected
    for line in case.warnings:
        assert line in printed
    n = len(case.expected)
    assert printed[-1].startswith(f"INVALID: {folder}: {n} error{'s' if n != 1 else ''}, ")

    assert snapshot(folder) == before  # nothing written, nothing touched


def test_load_raises_with_every_problem(contract_frames, write_contract_folder):
    contract_frames["accounts"].loc[0, "arr"] = "-1"
    contract_frames["goals"].loc[0, "target"] = "10"
    folder = write_contract_folder(contract_frames)
    with pytest.raises(DataValidationError) as info:
        load(folder)
    assert isinstance(info.value, ValueError)
    assert str(info.value).splitlines() == [
        'accounts.csv: column arr: 1 row is negative: "-1" (account_id a-1)',
        "goals.csv: column target: 1 row equals baseline (goal_id g-1)",
    ]
    assert info.value.report.errors[1].rows == (2,)
    assert not validate(folder).ok


def test_cases_cover_the_brief():
    assert len(CASES) >= 24


def test_several_problems_are_all_reported(contract_frames, write_contract_folder, snapshot, capsys):
    f = contract_frames
    f["accounts"].loc[0, "arr"] = "-1"
    f["accounts"].loc[1, "end_date"] = "2025-01-01"
    f["accounts"].loc[5] = ["a-3", "smb", "2023-01-01", "", ""]
    f["goals"].loc[1, "target"] = "0.1"
    f["goals"].loc[2, "weight"] = "0"
    f["goals"].loc[3, "baseline"] = "n/a"
    f["goal_progress"].loc[4, "goal_id"] = "g-404"
    f["usage"].loc[2, "value"] = "-7"
    f["usage"].loc[6, "date"] = "2023-6-01"
    folder = write_contract_folder(f, dataset_yaml="as_of: 2024-06-30\nowner: me\n")
    before = snapshot(folder)
    report = validate(folder)
    assert [p.message for p in report.errors] == [
        'accounts.csv: column account_id: 2 rows have a duplicated value: "a-3" (lines 4, 7)',
        'accounts.csv: column end_date: 1 row is after as_of 2024-06-30: "2025-01-01" (account_id a-2)',
        'accounts.csv: column arr: 1 row is negative: "-1" (account_id a-1)',
        'goals.csv: column baseline: 1 row is not a number: "n/a" (goal_id g-4)',
        "goals.csv: column target: 1 row equals baseline (goal_id g-2)",
        'goals.csv: column weight: 1 row is not greater than 0: "0" (goal_id g-3)',
        'goal_progress.csv: column goal_id: 1 row names a goal_id not in goals.csv: "g-404" '
        "(goal_id g-404 on 2023-06-01)",
        'usage.csv: column date: 1 row is not a date (YYYY-MM-DD): "2023-6-01" (account_id a-5 logins on 2023-6-01)',
        'usage.csv: column value: 1 row is negative: "-7" (account_id a-1 reports on 2023-02-01)',
    ]
    assert [p.message for p in report.warnings] == [
        "dataset.yaml: unknown key 'owner': ignored (known: as_of, observed_from, description, label_horizon_days, raw_dir, files, columns)",
        "goals.csv: column goal_id: 1 goal has no goal_progress rows (goal_id g-4)",
    ]
    rows = {(p.file, p.column, p.rule): p.rows for p in report.errors}
    assert rows[("accounts.csv", "account_id", "duplicate")] == (4, 7)
    assert rows[("usage.csv", "value", "negative")] == (4,)
    assert main(["validate", str(folder)]) == 2
    assert capsys.readouterr().out.splitlines()[-1] == f"INVALID: {folder}: 9 errors, 2 warnings"
    assert snapshot(folder) == before


def test_many_offenders_are_capped_at_five_examples(contract_frames, write_contract_folder):
    usage = pd.DataFrame({"account_id": [f"x-{i}" for i in range(12)], "date": "2023-06-01",
                          "metric": "logins", "value": "1"}, dtype=object)
    contract_frames["usage"] = pd.concat([contract_frames["usage"], usage], ignore_index=True)
    report = validate(write_contract_folder(contract_frames))
    assert [p.message for p in report.errors] == [
        'usage.csv: column account_id: 12 rows name an account_id not in accounts.csv: '
        '"x-0", "x-1", "x-2", "x-3", "x-4" and 7 more (account_id x-0 logins on 2023-06-01, '
        'x-1 logins on 2023-06-01, x-2 logins on 2023-06-01, x-3 logins on 2023-06-01, '
        'x-4 logins on 2023-06-01 and 7 more)']
    assert report.errors[0].rows == tuple(range(9, 21))


def test_bad_as_of_override(contract_frames, write_contract_folder, capsys):
    folder = write_contract_folder(contract_frames)
    report = validate(folder, as_of="yesterday")
    assert [p.message for p in report.errors] == ['as_of (given): must be a date YYYY-MM-DD, found "yesterday"']
    assert main(["validate", str(folder), "--as-of", "2024-02-30"]) == 2
    assert 'as_of (given): must be a date YYYY-MM-DD, found "2024-02-30"' in capsys.readouterr().out


def test_earlier_as_of_override_applies_the_rules(contract_frames, write_contract_folder):
    report = validate(write_contract_folder(contract_frames), as_of="2024-02-29")
    messages = [p.message for p in report.errors]
    assert messages == [
        'accounts.csv: column end_date: 1 row is after as_of 2024-02-29: "2024-03-31" (account_id a-2)',
        'usage.csv: column date: 1 row is after as_of 2024-02-29: "2024-05-01" (account_id a-4 logins on 2024-05-01)',
    ]


def test_missing_folder(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'}: no such folder" in capsys.readouterr().out
