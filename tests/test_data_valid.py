"""Valid data folders: formats, types, as_of, defaults, warnings, no writes."""
from __future__ import annotations

import pandas as pd
import pandas.testing as pdt
import pytest

from csresearch.cli import main
from csresearch.data import Dataset, Problem, load, validate

TABLES = ("accounts", "goals", "goal_progress", "usage")


def assert_same(a: Dataset, b: Dataset) -> None:
    for table in TABLES:
        left, right = getattr(a, table), getattr(b, table)
        if left is None or right is None:
            assert left is right is None
        else:
            pdt.assert_frame_equal(left, right, check_exact=True)
    assert (a.as_of, a.observed_from, a.description) == (b.as_of, b.observed_from, b.description)


@pytest.fixture
def folder(contract_frames, write_contract_folder):
    return write_contract_folder(contract_frames)


def test_valid_folder(folder, snapshot, capsys):
    before = snapshot(folder)
    report = validate(folder)
    assert report.ok and report.errors == [] and report.warnings == []
    assert report.summary["rows"] == {"accounts": 5, "goals": 4, "goal_progress": 5, "usage": 7}
    assert report.summary["segments"] == {"enterprise": 1, "mid_market": 2, "smb": 2}
    assert main(["validate", str(folder)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "accounts       5 rows (accounts.csv)",
        "goals          4 rows (goals.csv)",
        "goal_progress  5 rows (goal_progress.csv)",
        "usage          7 rows (usage.csv)",
        "as_of          2024-06-30 (from dataset.yaml)",
        "observed_from  none (every account observed from its start date)",
        "churn          2 churn events, 2 with usage known before them (docs/data-contract.md#known-at)",
        "segments       enterprise 1, mid_market 2, smb 2",
        f"OK: {folder} meets the data contract (0 warnings; the rules: docs/data-contract.md)",
    ]
    load(folder)
    assert snapshot(folder) == before


def test_types_and_values(folder):
    ds = load(folder)
    a, g, p, u = ds.accounts, ds.goals, ds.goal_progress, ds.usage
    for frame, cols in [(a, ["account_id", "segment"]), (g, ["goal_id", "account_id", "metric"]),
                        (p, ["goal_id"]), (u, ["account_id", "metric"])]:
        for c in cols:
            assert frame[c].dtype == object
            assert all(type(v) is str for v in frame[c])
    for frame, cols in [(a, ["start_date", "end_date"]), (g, ["set_date", "due_date"]), (p, ["date"]), (u, ["date"])]:
        for c in cols:
            assert frame[c].dtype == "datetime64[ns]"
    for frame, cols in [(a, ["arr"]), (g, ["baseline", "target", "weight"]), (p, ["value"]), (u, ["value"])]:
        for c in cols:
            assert frame[c].dtype == "float64"
    assert a["account_id"].tolist() == ["a-1", "a-2", "a-3", "a-4", "a-5"]  # file order
    assert a["end_date"].isna().tolist() == [True, False, True, True, False]
    assert a.loc[1, "end_date"] == pd.Timestamp("2024-03-31")
    assert a["arr"].tolist()[:4] == [1200.0, 800.5, 5000.0, 50000.0] and pd.isna(a.loc[4, "arr"])
    assert g["weight"].tolist() == [1.0, 2.0, 1.0, 0.5]  # empty -> default 1
    assert g["due_date"].isna().tolist() == [False, True, False, True]
    assert u["value"].tolist() == [5.0, 7.0, 0.0, 1.0, 12.0, 30.0, 2.5]
    assert ds.segments == ["enterprise", "mid_market", "smb"]
    assert ds.has_goals
    assert ds.as_of == pd.Timestamp("2024-06-30") and ds.as_of_source == "from dataset.yaml"
    assert ds.observed_from is None
    assert ds.description == "hand-made test data"
    assert ds.files == {t: folder / f"{t}.csv" for t in TABLES}
    assert ds.warnings == []
    assert ds.summary().to_dict("index") == {
        "accounts": {"file": "accounts.csv", "rows": 5, "columns": 5},
        "goals": {"file": "goals.csv", "rows": 4, "columns": 8},
        "goal_progress": {"file": "goal_progress.csv", "rows": 5, "columns": 3},
        "usage": {"file": "usage.csv", "rows": 7, "columns": 4},
    }


def test_optional_columns_added_when_absent(contract_frames, write_contract_folder):
    contract_frames["accounts"] = contract_frames["accounts"].drop(columns=["arr"])
    contract_frames["goals"] = contract_frames["goals"].drop(columns=["weight", "due_date"])
    ds = load(write_contract_folder(contract_frames))
    assert ds.accounts["arr"].isna().all() and ds.accounts["arr"].dtype == "float64"
    assert ds.goals["weight"].tolist() == [1.0] * 4
    assert ds.goals["due_date"].isna().all() and ds.goals["due_date"].dtype == "datetime64[ns]"


def test_bom_and_crlf_load_like_plain_lf(folder, tmp_path):
    other = tmp_path / "bom_crlf"
    other.mkdir()
    for f in folder.iterdir():
        text = f.read_text(encoding="utf-8")
        data = text.replace("\n", "\r\n").encode("utf-8")
        (other / f.name).write_bytes(b"\xef\xbb\xbf" + data if f.suffix == ".csv" else data)
    assert (other / "accounts.csv").read_bytes().startswith(b"\xef\xbb\xbfaccount_id,")
    assert b"\r\n" in (other / "usage.csv").read_bytes()
    assert_same(load(folder), load(other))


def test_parquet_loads_like_csv(contract_frames, write_contract_folder, tmp_path, snapshot):
    contract_frames["accounts"]["region"] = ["eu", "us", "eu", "", "us"]
    contract_frames["accounts"]["seats"] = ["3", "1", "10", "250", "4"]
    from_csv = load(write_contract_folder(contract_frames))
    pq_folder = tmp_path / "parquet"
    pq_folder.mkdir()
    for table in TABLES:
        getattr(from_csv, table).to_parquet(pq_folder / f"{table}.parquet", index=False)
    (pq_folder / "dataset.yaml").write_bytes((from_csv.path / "dataset.yaml").read_bytes())
    before = snapshot(pq_folder)
    from_parquet = load(pq_folder)
    assert_same(from_csv, from_parquet)
    assert from_parquet.files["usage"].name == "usage.parquet"
    assert snapshot(pq_folder) == before


def test_parquet_with_date32_and_int_ids(tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "d"
    folder.mkdir()
    pq.write_table(pa.table({
        "account_id": pa.array([101, 102], pa.int64()),
        "segment": pa.array(["smb", "smb"]).dictionary_encode(),
        "start_date": pa.array([dt.date(2023, 1, 1), dt.date(2023, 2, 1)], pa.date32()),
        "end_date": pa.array([None, dt.date(2023, 9, 30)], pa.date32()),
        "arr": pa.array([None, 10], pa.int32()),
    }), folder / "accounts.parquet")
    ds = load(folder)
    assert ds.accounts["account_id"].tolist() == ["101", "102"]
    assert ds.accounts["segment"].tolist() == ["smb", "smb"]
    assert ds.accounts["end_date"].tolist()[1] == pd.Timestamp("2023-09-30")
    assert ds.accounts["arr"].dtype == "float64" and ds.accounts["arr"].tolist()[1] == 10.0
    assert ds.as_of == pd.Timestamp("2023-09-30")
    assert ds.as_of_source == "latest date in the data: accounts.end_date"


def test_parquet_wins_over_csv(folder, snapshot):
    ds_csv = load(folder)
    ds_csv.accounts.iloc[:3].to_parquet(folder / "accounts.parquet", index=False)
    report = validate(folder)  # the Parquet file is the one read: a-4 and a-5 are gone
    assert report.errors[0].message == (
        'goals.csv: column account_id: 2 rows name an account_id not in accounts.parquet: "a-4" (goal_id g-3, g-4)')
    ds_csv.accounts.to_parquet(folder / "accounts.parquet", index=False)
    before = snapshot(folder)
    ds = load(folder)
    assert [w.message for w in ds.warnings] == [
        "accounts.csv: ignored because accounts.parquet exists (Parquet wins)"]
    assert ds.files["accounts"] == folder / "accounts.parquet"
    assert_same(ds_csv, ds)
    assert snapshot(folder) == before


def test_extra_columns_are_kept_with_inferred_types(contract_frames, write_contract_folder):
    contract_frames["accounts"]["region"] = ["eu", "us", "eu", "", "us"]
    contract_frames["accounts"]["seats"] = ["3", "1", "10", "250", "4"]
    contract_frames["accounts"]["score"] = ["0.5", "", "1.5", "2", "3"]
    contract_frames["usage"]["source"] = "crm"
    ds = load(write_contract_folder(contract_frames))
    a = ds.accounts
    assert list(a.columns) == ["account_id", "segment", "start_date", "end_date", "arr", "region", "seats", "score"]
    assert a["region"].dtype == object and a["region"].tolist()[:3] == ["eu", "us", "eu"] and pd.isna(a.loc[3, "region"])
    assert a["seats"].dtype == "int64" and a["seats"].tolist() == [3, 1, 10, 250, 4]
    assert a["score"].dtype == "float64"
    assert [w.message for w in ds.warnings] == [
        "accounts.csv: 3 extra columns kept: region, seats, score",
        "usage.csv: 1 extra column kept: source",
    ]


def test_as_of_from_yaml_override_and_latest_date(contract_frames, write_contract_folder, capsys):
    with_yaml = write_contract_folder(contract_frames, name="yaml",
                                      dataset_yaml="as_of: 2024-06-30\nobserved_from: 2023-01-01\n"
                                                   "description: hello\n")
    ds = load(with_yaml)
    assert (ds.as_of, ds.as_of_source) == (pd.Timestamp("2024-06-30"), "from dataset.yaml")
    assert ds.observed_from == pd.Timestamp("2023-01-01") and ds.description == "hello"

    ds = load(with_yaml, as_of="2024-12-31")
    assert (ds.as_of, ds.as_of_source) == (pd.Timestamp("2024-12-31"), "given")
    import datetime as dt
    assert load(with_yaml, as_of=dt.date(2024, 12, 31)).as_of == pd.Timestamp("2024-12-31")
    assert main(["validate", str(with_yaml), "--as-of", "2025-01-31"]) == 0
    assert "as_of          2025-01-31 (given)" in capsys.readouterr().out.splitlines()

    no_yaml = write_contract_folder(contract_frames, name="no_yaml", dataset_yaml=None)
    ds = load(no_yaml)
    # latest observation date: usage 2024-05-01 (goal due dates are plans, not observations)
    assert (ds.as_of, ds.as_of_source) == (pd.Timestamp("2024-05-01"), "latest date in the data: usage.date")
    assert ds.observed_from is None and ds.description is None


def test_absent_optional_tables(contract_frames, write_contract_folder):
    del contract_frames["goals"], contract_frames["goal_progress"], contract_frames["usage"]
    ds = load(write_contract_folder(contract_frames))
    assert ds.goals is None and ds.goal_progress is None and ds.usage is None
    assert not ds.has_goals
    assert list(ds.files) == ["accounts"]
    assert list(ds.summary().index) == ["accounts"]


def test_warnings_do_not_fail(contract_frames, write_contract_folder, capsys):
    contract_frames["accounts"].loc[5] = ["a-6", "smb", "2023-01-15", "", "1200"]  # copy of a-1
    contract_frames["accounts"].loc[6] = ["a-7", "smb", "2023-01-15", "", "1200"]  # and again
    contract_frames["goal_progress"] = contract_frames["goal_progress"].iloc[:3]     # g-3, g-4: none
    contract_frames["usage"] = contract_frames["usage"].iloc[:0]                    # header only
    folder = write_contract_folder(contract_frames, dataset_yaml="as_of: 2024-06-30\nversion: 2\n")
    (folder / "Goals.CSV").write_text("x\n")
    (folder / "notes.csv").write_text("x\n")
    (folder / "events.csv").write_text("account_id,ts,event\na-1,2024-01-01T10:00:00,login\n")
    report = validate(folder)
    assert report.ok
    assert [w.message for w in report.warnings] == [
        "notes.csv: not a table of the data contract: ignored",
        "dataset.yaml: unknown key 'version': ignored (known: as_of, observed_from, description, label_horizon_days, raw_dir, files, columns)",
        "accounts.csv: 2 accounts are exact copies of an earlier one in every column except account_id, kept "
        "(account_id a-6, a-7)",
        "Goals.CSV: not read: file names are case-sensitive (expected goals.csv)",
        "goals.csv: column goal_id: 2 goals have no goal_progress rows (goal_id g-3, g-4)",
        "usage.csv: no rows",
    ]
    assert main(["validate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "warning: usage.csv: no rows" in out
    assert "events.csv: present, not read by validate" in out
    ds = load(folder)
    assert len(ds.usage) == 0 and list(ds.usage.columns) == ["account_id", "date", "metric", "value"]
    assert "events" not in ds.files
    assert isinstance(ds.warnings[0], Problem)


def test_goals_without_progress_table_warns(contract_frames, write_contract_folder):
    del contract_frames["goal_progress"]
    ds = load(write_contract_folder(contract_frames))
    assert [w.message for w in ds.warnings] == [
        "goals.csv: no goal_progress table: every goal will count as not attained"]


def test_observed_from_warns_about_accounts_that_ended_before(contract_frames, write_contract_folder):
    folder = write_contract_folder(contract_frames, dataset_yaml="as_of: 2024-06-30\nobserved_from: 2024-02-01\n")
    ds = load(folder)
    assert ds.observed_from == pd.Timestamp("2024-02-01")
    assert [w.message for w in ds.warnings] == [
        'accounts.csv: column end_date: 1 row is before observed_from 2024-02-01 (a snapshot should not '
        'contain it): "2024-01-31" (account_id a-5)']


def test_fingerprint(contract_frames, write_contract_folder):
    a = write_contract_folder(contract_frames, name="a")
    b = write_contract_folder(contract_frames, name="b")
    fa = load(a).fingerprint()
    assert len(fa) == 64 and fa == load(a).fingerprint() == load(b).fingerprint()
    (b / "dataset.yaml").write_text("as_of: 2024-07-31\n")
    assert load(b).fingerprint() != fa
    contract_frames["usage"].loc[0, "value"] = "6"
    assert load(write_contract_folder(contract_frames, name="c")).fingerprint() != fa


def test_quoted_fields_and_blank_lines_keep_line_numbers(folder):
    text = (folder / "accounts.csv").read_text()
    lines = text.splitlines()
    lines[1] = '"a-1","smb, small","2023-01-15",,"1200"'
    lines.insert(2, "")
    lines[3] = '"a-2","two\nline",2023-02-01,2024-03-31,-1'
    (folder / "accounts.csv").write_text("\n".join(lines) + "\n")
    report = validate(folder)
    assert [p.message for p in report.errors] == [
        'accounts.csv: column arr: 1 row is negative: "-1" (account_id a-2)']
    assert report.errors[0].rows == (4,)
    ds_errors = report.errors[0]
    assert (ds_errors.table, ds_errors.file, ds_errors.column, ds_errors.rule) == (
        "accounts", "accounts.csv", "arr", "negative")
