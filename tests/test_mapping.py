"""Mapping raw exports without Python: SQL views, the columns map, label exports, reading options and the
messages that name raw files, raw columns and raw rows (docs/data-contract.md#mapping)."""
from __future__ import annotations

import codecs
import re
from pathlib import Path

import pandas as pd
import pytest

from csresearch.cli import main
from csresearch.data import load, validate
from csresearch.data._spec import CONTRACT_DOC, DOC_SECTIONS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / CONTRACT_DOC


# -- a telecom-style label export, built here -----------------------------------------------------------

CONTRACTS = ["Month-to-month", "One year", "Two year"]
PAYMENTS = ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"]
SERVICES = ["PhoneService", "MultipleLines", "OnlineSecurity", "StreamingTV"]


def telco_rows(n: int = 40) -> list[dict[str, str]]:
    """One row per customer: id, tenure in months, contract, payment, monthly charges, Yes/No services, Churn.
    Churners have a tenure of 1 month or more (a churn needs a start before it); customer 7 has tenure 0."""
    rows = []
    for i in range(n):
        churn = i % 3 == 0
        tenure = 0 if i == 7 else (1 + (i * 7) % 24 if churn else (i * 11) % 72 + 1)
        row = {"customerID": f"{1000 + i}-CUST", "gender": "Female" if i % 2 else "Male", "tenure": str(tenure),
               "Contract": CONTRACTS[i % 3], "PaymentMethod": PAYMENTS[i % 4],
               "MonthlyCharges": f"{20 + (i * 37) % 90}.{i % 100:02d}"}
        for j, service in enumerate(SERVICES):
            row[service] = "Yes" if (i + j) % 2 else "No"
        row["Churn"] = "Yes" if churn else "No"
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], sep: str = ",", decimal: str = ".",
              encoding: str = "utf-8") -> Path:
    cols = list(rows[0])
    lines = [sep.join(cols)] + [sep.join(r[c].replace(".", decimal) if c == "MonthlyCharges" else r[c]
                                         for c in cols) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


LABEL_YAML = "as_of: 2024-12-31\nlabel_horizon_days: 31\n"
ACCOUNTS_SQL = """\
SELECT customerID                                              AS account_id,
       Contract                                                AS segment,
       CAST(getvariable('as_of') - to_months(tenure) AS DATE)  AS start_date,
       CASE Churn WHEN 'Yes' THEN CAST(getvariable('label_churn_date') AS VARCHAR)
                  WHEN 'No'  THEN NULL ELSE Churn END          AS end_date,
       * EXCLUDE (customerID, Contract, tenure, Churn)
FROM 'telco.csv'
"""
USAGE_SQL = """\
WITH c AS (
  SELECT customerID AS account_id,
         GREATEST(CAST(getvariable('label_from') - INTERVAL 1 MONTH AS DATE),
                  CAST(date_trunc('month', getvariable('as_of') - to_months(tenure)) AS DATE)) AS date,
         CAST(PhoneService = 'Yes' AS INTEGER) AS phone_service,
         CAST(StreamingTV = 'Yes' AS INTEGER) AS streaming_tv,
         MonthlyCharges AS monthly_charges
  FROM 'telco.csv')
SELECT account_id, date, metric, value FROM c
UNPIVOT (value FOR metric IN (phone_service, streaming_tv, monthly_charges))
"""
MAP_YAML = """\
as_of: 2024-12-31
label_horizon_days: 31
columns:
  accounts:
    file: export.csv
    delimiter: ";"
    decimal: ","
    account_id: customerID
    segment: Contract
    start_date: {tenure_months: tenure}
    end_date: {churn_label: Churn, churned: [Yes], active: [No]}
  usage:
    file: export.csv
    delimiter: ";"
    decimal: ","
    account_id: customerID
    date: {value: 2024-11-01, or_start_month: true}
    metrics: {monthly_charges: MonthlyCharges, phone: {column: PhoneService, values: {Yes: 1, No: 0}}}
"""


def errors(folder: Path, yaml: str | None = None) -> list[str]:
    """The error lines of validate(folder), after writing ``yaml`` as its dataset.yaml when given."""
    if yaml is not None:
        (folder / "dataset.yaml").write_text(yaml)
    return [e.message for e in validate(folder).errors]


def views_folder(tmp_path: Path, rows: list[dict[str, str]], name: str = "views") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    write_csv(folder / "telco.csv", rows)
    (folder / "accounts.sql").write_text(ACCOUNTS_SQL)
    (folder / "usage.sql").write_text(USAGE_SQL)
    (folder / "dataset.yaml").write_text(LABEL_YAML)
    return folder


def map_folder(tmp_path: Path, rows: list[dict[str, str]], name: str = "map", yaml: str = MAP_YAML) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    write_csv(folder / "export.csv", rows, sep=";", decimal=",")
    (folder / "dataset.yaml").write_text(yaml)
    return folder


def test_label_export_by_sql_views(tmp_path, snapshot, capsys):
    rows = telco_rows()
    folder = views_folder(tmp_path, rows)
    before = snapshot(folder)
    assert main(["validate", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        "warning: telco.csv: 7 extra columns kept: gender, PaymentMethod, MonthlyCharges, PhoneService, "
        "MultipleLines, OnlineSecurity, StreamingTV",
        "warning: telco.csv: column tenure (mapped to accounts.start_date by accounts.sql): 1 row is after the label "
        "horizon's first day 2024-12-01: its label covers less than 31 days: \"2024-12-31\" (row 9)",
        "accounts       40 rows (accounts.sql over telco.csv)",
    ]
    assert "usage          120 rows (usage.sql over telco.csv)" in out
    assert "label horizon  31 days, 2024-12-01..2024-12-31: churn is a label (an end_date = churned within the " \
           "horizon)" in out
    assert ("churn          14 of 40 accounts churned within the label horizon 2024-12-01..2024-12-31 (31 days); "
            "39 have usage known at its start (docs/data-contract.md#label-exports)") in out

    ds = load(folder)
    a, u = ds.accounts, ds.usage
    assert len(a) == 40 and a["account_id"].tolist() == [r["customerID"] for r in rows]
    churned = a["end_date"].notna()
    assert churned.sum() == sum(r["Churn"] == "Yes" for r in rows) == 14
    assert set(a.loc[churned, "end_date"]) == {pd.Timestamp("2024-12-16")}  # the horizon's middle day
    assert a.loc[1, "start_date"] == pd.Timestamp("2024-12-31") - pd.DateOffset(months=int(rows[1]["tenure"]))
    assert a.loc[7, "start_date"] == pd.Timestamp("2024-12-31")  # tenure 0
    assert a["MonthlyCharges"].dtype == "float64" and a["PhoneService"].tolist()[:2] == ["No", "Yes"]
    assert (ds.label_horizon_days, ds.label_from, ds.observed_from, ds.as_of) == (
        31, pd.Timestamp("2024-12-01"), pd.Timestamp("2024-12-01"), pd.Timestamp("2024-12-31"))
    assert ds.is_label_export and ds.sources == {"accounts": "accounts.sql over telco.csv",
                                                 "usage": "usage.sql over telco.csv"}
    assert len(u) == 120 and u["metric"].iloc[:3].tolist() == ["phone_service", "streaming_tv", "monthly_charges"]
    assert set(u["date"]) == {pd.Timestamp("2024-11-01"), pd.Timestamp("2024-12-01")}  # customer 7 started in Dec
    charges = u[u["metric"] == "monthly_charges"].set_index("account_id")["value"]
    assert charges.loc["1001-CUST"] == float(rows[1]["MonthlyCharges"])
    assert snapshot(folder) == before


def test_label_export_by_the_columns_map_with_decimal_commas(tmp_path, capsys):
    rows = telco_rows()
    by_map = load(map_folder(tmp_path, rows))
    by_views = load(views_folder(tmp_path, rows))
    for col in ("account_id", "segment", "start_date", "end_date"):
        assert by_map.accounts[col].tolist() == by_views.accounts[col].tolist(), col
    assert by_map.accounts["MonthlyCharges"].tolist() == by_views.accounts["MonthlyCharges"].tolist()
    assert by_map.accounts["tenure"].dtype == "int64" and "Churn" in by_map.accounts.columns
    u = by_map.usage
    assert len(u) == 80 and u["metric"].iloc[:2].tolist() == ["monthly_charges", "phone"]
    assert u.loc[u["metric"] == "monthly_charges", "value"].tolist() == [float(r["MonthlyCharges"]) for r in rows]
    assert u.loc[u["account_id"] == "1007-CUST", "date"].tolist() == [pd.Timestamp("2024-12-01")] * 2
    assert by_map.label_horizon_days == 31
    assert main(["validate", str(tmp_path / "map")]) == 0
    assert "accounts       40 rows (export.csv, mapped by dataset.yaml)" in capsys.readouterr().out.splitlines()


def test_broken_columns_map_names_raw_file_column_and_rows(tmp_path, snapshot):
    rows = telco_rows(10)
    rows[2]["tenure"] = "abc"          # row 4 of the sheet
    rows[4]["Churn"] = "Maybe"         # row 6
    rows[6]["customerID"] = rows[1]["customerID"]  # rows 3 and 8
    rows[5]["Contract"] = ""           # row 7
    rows[3]["MonthlyCharges"] = "-5.00"  # row 5
    yaml = MAP_YAML.replace("    segment: Contract\n", "    segment: {column: Contract, values: "
                                                        "{Month-to-month: monthly, One year: annual}}\n")
    folder = map_folder(tmp_path, rows, yaml=yaml)
    before = snapshot(folder)
    report = validate(folder)
    assert [e.message for e in report.errors] == [
        'export.csv: column Contract (mapped to accounts.segment by dataset.yaml): 1 row is empty (row 7)',
        'export.csv: column Contract (mapped to accounts.segment by dataset.yaml): 2 rows have values the value '
        'map does not list: "Two year" (rows 4, 10)',
        'export.csv: column tenure (mapped to accounts.start_date by dataset.yaml): 1 row is not a tenure (a whole '
        'number >= 0): "abc" (row 4)',
        'export.csv: column Churn (mapped to accounts.end_date by dataset.yaml): 1 row is not a churn label '
        '(Yes = churned, No = active): "Maybe" (row 6)',
        'export.csv: column customerID (mapped to accounts.account_id by dataset.yaml): 2 rows have a duplicated '
        'value: "1001-CUST" (rows 3, 8)',
        'export.csv: column MonthlyCharges (mapped to usage.value by dataset.yaml): 1 row is negative: "-5,00" (row 5)',
        'export.csv: usage (made by dataset.yaml): 4 rows repeat the (account_id, metric, date) of another row: '
        '1001-CUST monthly_charges on 2024-11-01, 1001-CUST phone on 2024-11-01 (rows 3, 8)',
    ]
    assert report.errors[2].rows == (4,) and report.errors[2].file == "export.csv"
    assert report.errors[2].column == "start_date" and report.errors[2].rule == "not_tenure"
    assert snapshot(folder) == before


def test_broken_views_name_raw_file_column_and_rows(tmp_path):
    rows = telco_rows(10)
    rows[4]["Churn"] = "Maybe"
    rows[6]["customerID"] = rows[1]["customerID"]
    rows[5]["Contract"] = ""
    folder = views_folder(tmp_path, rows)
    messages = [e.message for e in validate(folder).errors]
    assert messages[:3] == [
        'telco.csv: column Contract (mapped to accounts.segment by accounts.sql): 1 row is empty (row 7)',
        'telco.csv: column Churn (mapped to accounts.end_date by accounts.sql): 1 row is not a date (YYYY-MM-DD): '
        '"Maybe" (row 6)',
        'telco.csv: column customerID (mapped to accounts.account_id by accounts.sql): 2 rows have a duplicated '
        'value: "1001-CUST" (rows 3, 8)',
    ]
    assert messages[3].startswith("telco.csv: usage (made by usage.sql): 6 rows repeat the (account_id, metric, "
                                  "date) of another row: 1001-CUST phone_service on 2024-11-01")
    assert messages[3].endswith("(rows 3, 8)")
    # a value that makes a raw column text: the view fails, and validate names the value and its row
    rows = telco_rows(10)
    rows[2]["tenure"] = "abc"
    folder = views_folder(tmp_path, rows, name="text_tenure")
    assert [e.message for e in validate(folder).errors] == [
        "accounts.sql: DuckDB could not run it: Binder Error: No function matches the given name and argument types "
        "'to_months(VARCHAR)'. You might need to add explicit type casts. (docs/data-contract.md#sql-views)",
        'telco.csv: column tenure: 1 row is not a number, so the column is text to the view: "abc" (row 4)',
        "usage.sql: DuckDB could not run it: Binder Error: No function matches the given name and argument types "
        "'to_months(VARCHAR)'. You might need to add explicit type casts. (docs/data-contract.md#sql-views)",
    ]


def test_views_over_two_files_and_without_provenance(tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "accounts.csv").write_text("account_id,segment,start_date,end_date\na-1,smb,2023-01-15,\n"
                                         "a-2,smb,2023-02-01,\n")
    (folder / "jan.csv").write_text("id,logins\na-1,3\na-2,4\n")
    (folder / "feb.csv").write_text("id,logins\na-1,-1\na-9,2\n")
    (folder / "usage.sql").write_text(
        "SELECT id AS account_id, DATE '2024-01-01' AS date, 'logins' AS metric, logins AS value FROM 'jan.csv'\n"
        "UNION ALL\n"
        "SELECT id, DATE '2024-02-01', 'logins', logins FROM 'feb.csv'\n")
    assert [e.message for e in validate(folder).errors] == [
        'feb.csv: column id (mapped to usage.account_id by usage.sql): 1 row names an account_id not in '
        'accounts.csv: "a-9" (row 3)',
        'feb.csv: column logins (mapped to usage.value by usage.sql): 1 row is negative: "-1" (row 2)',
    ]
    # read_csv() gives no raw rows: problems are located by the view's ids
    (folder / "usage.sql").write_text(
        "SELECT id AS account_id, DATE '2024-02-01' AS date, 'logins' AS metric, logins AS value "
        "FROM read_csv('feb.csv')")
    assert [e.message for e in validate(folder).errors] == [
        'usage.sql: column account_id: 1 row names an account_id not in accounts.csv: "a-9" '
        "(account_id a-9 logins on 2024-02-01)",
        'usage.sql: column value: 1 row is negative: "-1" (account_id a-1 logins on 2024-02-01)',
    ]
    assert "feb.csv" not in " ".join(w.message for w in validate(folder).warnings)  # a raw file, not unknown


def test_views_over_parquet_and_json_raw_files(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["a-1", "a-2", "a-3"], "tier": ["smb", "smb", None],
                             "since": pa.array([pd.Timestamp("2023-01-01").date()] * 3, pa.date32())}),
                   folder / "crm.parquet")
    (folder / "events.json").write_text('[{"id": "a-1", "month": "2024-01-01", "n": 3},'
                                        ' {"id": "a-2", "month": "2024-01-01", "n": -2}]')
    (folder / "accounts.sql").write_text("SELECT id AS account_id, tier AS segment, since AS start_date, "
                                         "NULL::DATE AS end_date FROM 'crm.parquet'")
    (folder / "usage.sql").write_text("SELECT id AS account_id, CAST(month AS DATE) AS date, 'logins' AS metric, "
                                      "n AS value FROM 'events.json'")
    assert errors(folder) == [
        "crm.parquet: column tier (mapped to accounts.segment by accounts.sql): 1 row is empty (row 3)",
        'events.json: column n (mapped to usage.value by usage.sql): 1 row is negative: "-2" (row 2)',
    ]
    assert main(["validate", str(folder)]) == 2
    assert capsys.readouterr().out.splitlines()[-2] == (
        "the rules: docs/data-contract.md#accounts, #usage")


def test_snapshot_with_health_score_in_the_snapshot_month(tmp_path, capsys):
    folder = tmp_path / "snap"
    folder.mkdir()
    lines = ["cust;plan;signed;left;health"]
    for i in range(30):
        left = f"{10 + i % 15:02d}/06/2024" if i % 5 == 0 else ""
        lines.append(f"k{i};{'smb' if i % 2 else 'ent'};{1 + i % 28:02d}/{1 + i % 12:02d}/20{15 + i % 8};{left};"
                     f"{40 + i},5")
    (folder / "snapshot.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "dataset.yaml").write_text("""\
as_of: 2024-06-30
observed_from: 2024-06-01
files:
  snapshot.csv: {delimiter: ";", decimal: ",", date_format: "%d/%m/%Y"}
columns:
  accounts: {file: snapshot.csv, account_id: cust, segment: plan, start_date: signed, end_date: left}
  usage: {file: snapshot.csv, account_id: cust, date: {value: 2024-06-01}, metrics: {health_score: health}}
""")
    assert main(["validate", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert ("warning: usage (snapshot.csv): 0 of 6 churn events have usage known before them: usage dated "
            "2024-06-01 counts from 2024-07-01 (docs/data-contract.md#known-at)") in out
    assert "churn          6 churn events, 0 with usage known before them (docs/data-contract.md#known-at)" in out
    ds = load(folder)
    a = ds.accounts
    assert len(a) == 30 and a["end_date"].notna().sum() == 6
    assert a.loc[0, "start_date"] == pd.Timestamp("2015-01-01") and a.loc[0, "end_date"] == pd.Timestamp("2024-06-10")
    assert a.loc[9, "start_date"] == pd.Timestamp("2016-10-10")  # 10/10/2016, day first
    assert ds.usage["value"].tolist()[:2] == [40.5, 41.5] and set(ds.usage["date"]) == {pd.Timestamp("2024-06-01")}
    assert ds.label_horizon_days is None and ds.label_from is None and not ds.is_label_export


# -- reading options -------------------------------------------------------------------------------

ACCOUNTS = ["account_id,segment,start_date,end_date,arr", "a-1,smb,2023-01-15,,1200", "a-2,smé,2023-02-01,2024-03-31,800.5"]


def _folder(tmp_path: Path, name: str, data: bytes, yaml: str | None = "as_of: 2024-06-30\n") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "accounts.csv").write_bytes(data)
    if yaml is not None:
        (folder / "dataset.yaml").write_text(yaml)
    return folder


def test_semicolon_and_latin1_are_named_then_read_when_declared(tmp_path, snapshot):
    text = "\n".join(ACCOUNTS).replace(",", ";").replace("800.5", "800,5") + "\n"
    folder = _folder(tmp_path, "semi", text.encode("utf-8"))
    before = snapshot(folder)
    assert [e.message for e in validate(folder).errors] == [
        "accounts.csv: looks semicolon-delimited (its header has 4 ';'): set `delimiter: ';'` for it under "
        "`files: accounts.csv:` in dataset.yaml (docs/data-contract.md#reading-files)"]
    assert snapshot(folder) == before
    latin = _folder(tmp_path, "latin", text.encode("latin-1"),
                    "as_of: 2024-06-30\nfiles:\n  accounts.csv: {delimiter: ';', decimal: ','}\n")
    assert [e.message for e in validate(latin).errors] == [
        'accounts.csv: not UTF-8 text (byte 0xe9 on line 3, which reads "a-2;smé;2023-02-01;2024-03-31;800,5" as '
        "Windows-1252): save it as UTF-8 or set `encoding: cp1252` for it under `files: accounts.csv:` in "
        "dataset.yaml (docs/data-contract.md#reading-files)"]
    (latin / "dataset.yaml").write_text(
        "as_of: 2024-06-30\nfiles:\n  accounts.csv: {delimiter: ';', decimal: ',', encoding: latin-1}\n")
    plain = load(_folder(tmp_path, "plain", ("\n".join(ACCOUNTS) + "\n").encode()))
    declared = load(latin)
    pd.testing.assert_frame_equal(declared.accounts, plain.accounts)
    assert declared.accounts["segment"].tolist() == ["smb", "smé"] and declared.accounts["arr"].tolist() == [1200, 800.5]
    # declared, but wrong
    wrong = _folder(tmp_path, "wrong", ("\n".join(ACCOUNTS) + "\n").encode(),
                    "files:\n  accounts.csv: {delimiter: ';'}\n")
    assert [e.message for e in validate(wrong).errors] == [
        "accounts.csv: looks comma-delimited (its header has 4 ','), not semicolon-delimited as declared: set "
        "`delimiter: ','` for it under `files: accounts.csv:` in dataset.yaml (docs/data-contract.md#reading-files)"]


def test_utf16_is_read_by_its_byte_order_mark_or_named(tmp_path):
    tab = "\n".join(ACCOUNTS).replace(",", "\t") + "\n"
    plain = load(_folder(tmp_path, "plain", ("\n".join(ACCOUNTS) + "\n").encode()))
    # Excel's "Unicode text": UTF-16 LE with a byte-order mark, tab-delimited
    folder = _folder(tmp_path, "excel", codecs.BOM_UTF16_LE + tab.encode("utf-16-le"))
    assert [e.message for e in validate(folder).errors] == [
        'accounts.csv: looks tab-delimited (its header has 4 tabs): set `delimiter: "\\t"` for it under '
        "`files: accounts.csv:` in dataset.yaml (docs/data-contract.md#reading-files)"]
    (folder / "dataset.yaml").write_text('as_of: 2024-06-30\nfiles:\n  accounts.csv: {delimiter: "\\t"}\n')
    pd.testing.assert_frame_equal(load(folder).accounts, plain.accounts)
    big_endian = _folder(tmp_path, "be", codecs.BOM_UTF16_BE + ("\n".join(ACCOUNTS) + "\n").encode("utf-16-be"))
    pd.testing.assert_frame_equal(load(big_endian).accounts, plain.accounts)
    bomless = _folder(tmp_path, "nobom", ("\n".join(ACCOUNTS) + "\n").encode("utf-16-le"))
    assert [e.message for e in validate(bomless).errors] == [
        "accounts.csv: looks like UTF-16-LE text without a byte-order mark (every other byte is 0): save it as UTF-8 "
        "or set `encoding: utf-16-le` for it under `files: accounts.csv:` in dataset.yaml "
        "(docs/data-contract.md#reading-files)"]
    (bomless / "dataset.yaml").write_text("as_of: 2024-06-30\nfiles:\n  accounts.csv: {encoding: utf-16-le}\n")
    pd.testing.assert_frame_equal(load(bomless).accounts, plain.accounts)
    # a raw file of the columns map, in Latin-1
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "crm.csv").write_bytes("id;seg;since\nx-1;café;2020-01-01\n".encode("latin-1"))
    (raw / "dataset.yaml").write_text("columns:\n  accounts: {file: crm.csv, delimiter: ';', account_id: id, "
                                      "segment: seg, start_date: since, end_date: {value: ''}}\n")
    assert [e.message for e in validate(raw).errors][0].startswith(
        "crm.csv: not UTF-8 text (byte 0xe9 on line 2, which reads \"x-1;café;2020-01-01\" as Windows-1252): save it "
        "as UTF-8 or set `encoding: cp1252` for it under `columns: accounts:` in dataset.yaml")
    (raw / "dataset.yaml").write_text("columns:\n  accounts: {file: crm.csv, delimiter: ';', encoding: latin-1, "
                                      "account_id: id, segment: seg, start_date: since, end_date: {value: ''}}\n")
    assert load(raw).accounts["segment"].tolist() == ["café"]


def test_dates_midnight_timestamps_and_declared_formats(tmp_path):
    text = ("account_id,segment,start_date,end_date\na-1,smb,2023-01-15 00:00:00,\n"
            "a-2,smb,2023-01-15T00:00:00,2024-01-31 00:00\na-3,smb,2023-01-15 10:30:00,\n")
    folder = _folder(tmp_path, "midnight", text.encode())
    assert [e.message for e in validate(folder).errors] == [
        'accounts.csv: column start_date: 1 row is not a date (YYYY-MM-DD): "2023-01-15 10:30:00" (account_id a-3)']
    (folder / "accounts.csv").write_text(text.replace(" 10:30:00", ""))
    a = load(folder).accounts
    assert a["start_date"].tolist() == [pd.Timestamp("2023-01-15")] * 3
    assert a.loc[1, "end_date"] == pd.Timestamp("2024-01-31")
    day_first = _folder(tmp_path, "day_first", b"account_id,segment,start_date,end_date\nb-1,smb,09/01/2019,\n"
                        b"b-2,smb,31/02/2019,\n", "files:\n  accounts.csv: {date_format: '%d/%m/%Y'}\n")
    assert [e.message for e in validate(day_first).errors] == [
        'accounts.csv: column start_date: 1 row is not a date (%d/%m/%Y): "31/02/2019" (account_id b-2)']
    (day_first / "accounts.csv").write_text("account_id,segment,start_date,end_date\nb-1,smb,09/01/2019,\n")
    assert load(day_first).accounts.loc[0, "start_date"] == pd.Timestamp("2019-01-09")


def test_reading_settings_are_checked(tmp_path):
    folder = _folder(tmp_path, "settings", ("\n".join(ACCOUNTS) + "\n").encode(), (
        "files:\n  accounts.csv: {delimiter: ';;', encoding: klingon, decimal: '_', date_format: '%d/%m', "
        "delimeter: ','}\n  gone.csv: {decimal: ','}\nlabel_horizon_days: -3\n"))
    report = validate(folder)
    assert [e.message for e in report.errors] == [
        "dataset.yaml: files: accounts.csv: unknown setting 'delimeter' (known: delimiter, encoding, decimal, "
        "date_format) (docs/data-contract.md#reading-files)",
        "dataset.yaml: files: accounts.csv: delimiter: must be one character such as ';' or \"\\t\", found \";;\" "
        "(docs/data-contract.md#reading-files)",
        "dataset.yaml: files: accounts.csv: encoding: \"klingon\" is not an encoding Python knows (e.g. utf-8, "
        "utf-16, cp1252, latin-1) (docs/data-contract.md#reading-files)",
        "dataset.yaml: files: accounts.csv: decimal: must be '.' or ',', found \"_\" (docs/data-contract.md#reading-files)",
        "dataset.yaml: files: accounts.csv: date_format: must be a strftime format of a whole date such as "
        "\"%d/%m/%Y\", found \"%d/%m\" (docs/data-contract.md#reading-files)",
        "dataset.yaml: label_horizon_days must be a whole number of days (1 or more), found -3 "
        "(docs/data-contract.md#label-exports)",
    ]
    assert [w.message for w in report.warnings] == [
        "dataset.yaml: files: gone.csv: no such file in the folder: its settings are not used"]


# -- the columns map and views: their own mistakes -----------------------------------------------------

def test_mapping_mistakes_are_named_in_dataset_yaml(tmp_path):
    folder = tmp_path / "mistakes"
    folder.mkdir()
    (folder / "customers.csv").write_text("id,plan,signup,cancelled,tenure\nc-1,smb,2022-03-15,,3\n")
    (folder / "dataset.yaml").write_text("""\
as_of: 2024-06-30
columns:
  acounts: {file: customers.csv}
  accounts:
    file: customers.csv
    acount_id: id
    segment: plann
    start_date: {tenure_months: tenure, bogus: 1}
    end_date: {churn_label: cancelled, churned: [x], active: [""]}
  usage:
    account_id: id
""")
    assert [e.message for e in validate(folder).errors] == [
        "dataset.yaml: columns: acounts: not a table of the data contract (tables: accounts, goals, goal_progress, "
        "usage) (docs/data-contract.md#the-columns-map)",
        "dataset.yaml: columns: accounts: unknown column 'acount_id' (did you mean account_id?): the contract's "
        "accounts columns are account_id, segment, start_date, end_date, arr; settings are file, delimiter, "
        "encoding, decimal, date_format (docs/data-contract.md#the-columns-map)",
        "dataset.yaml: columns: accounts: start_date: unknown setting 'bogus' (known: column + values, value, "
        "tenure_months, tenure_days, churn_label + churned + active) (docs/data-contract.md#the-columns-map)",
        "dataset.yaml: columns: usage: needs `file:`, the raw file the table is read from (in the folder or raw_dir) "
        "(docs/data-contract.md#the-columns-map)",
        'dataset.yaml: columns: accounts: segment: customers.csv has no column "plann" (did you mean plan?) (its '
        "columns: id, plan, signup, cancelled, tenure; docs/data-contract.md#the-columns-map)",
        "dataset.yaml: columns: accounts: end_date: churn_label needs label_horizon_days in dataset.yaml (the days "
        "before as_of that the label covers) (docs/data-contract.md#label-exports)",
    ]
    assert errors(folder, "label_horizon_days: 30\ncolumns:\n  accounts: {file: customers.csv, account_id: id, "
                          "segment: plan, start_date: {tenure_months: tenure}}\n") == [
        "dataset.yaml: label_horizon_days needs as_of, the day the churn label was observed (in dataset.yaml or "
        "--as-of) (docs/data-contract.md#label-exports)",
        "dataset.yaml: columns: accounts: start_date: needs as_of in dataset.yaml (the day the export was taken; "
        "tenure and labels count back from it) (docs/data-contract.md#label-exports)",
    ]
    assert errors(folder, "columns:\n  accounts: {file: customers.csv, account_id: id, start_date: signup}\n") == [
        "customers.csv: missing required column end_date: map it under `columns: accounts:` in dataset.yaml, e.g. "
        "`end_date: <a column of customers.csv>` (its columns: plan, cancelled, tenure; "
        "docs/data-contract.md#the-columns-map)",
        "customers.csv: missing required column segment: map it under `columns: accounts:` in dataset.yaml, e.g. "
        "`segment: <a column of customers.csv>` (its columns: plan, cancelled, tenure; "
        "docs/data-contract.md#the-columns-map)",
    ]


@pytest.mark.parametrize("sql, expected", [
    ("SELEC id FROM 'customers.csv'",
     'accounts.sql: not valid DuckDB SQL: syntax error at or near "SELEC" (docs/data-contract.md#sql-views)'),
    ("CREATE TABLE x AS SELECT 1",
     "accounts.sql: must be one SELECT statement (a view only reads) (docs/data-contract.md#sql-views)"),
    ("SELECT 1; SELECT 2", "accounts.sql: must be one SELECT statement, found 2 (docs/data-contract.md#sql-views)"),
    ("SELECT id AS account_id FROM 'missing.csv'",
     "accounts.sql: reads missing.csv, which is not in the folder: copy it there, or set raw_dir in dataset.yaml to "
     "the folder that holds it (docs/data-contract.md#raw-files)"),
    ("SELECT id AS account_id FROM customers",
     "accounts.sql: DuckDB could not run it: Catalog Error: Table with name customers does not exist: name raw "
     "files with their file name, e.g. FROM 'export.csv' (docs/data-contract.md#sql-views)"),
    ("SELECT * FROM read_xlsx('x.xlsx')",
     'accounts.sql: DuckDB could not run it: Catalog Error: Table Function with name "read_xlsx" is not in the '
     "catalog, but it exists in the excel extension: DuckDB extensions are not loaded (Excel: save the sheet as "
     "CSV) (docs/data-contract.md#sql-views)"),
])
def test_view_mistakes(tmp_path, snapshot, sql, expected):
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "customers.csv").write_text("id,plan,signup\nc-1,smb,2022-03-15\n")
    (folder / "accounts.sql").write_text(sql)
    before = snapshot(folder)
    assert [e.message for e in validate(folder).errors] == [expected]
    assert snapshot(folder) == before


def test_raw_dir_and_precedence(tmp_path, snapshot):
    raw = tmp_path / "warehouse"
    raw.mkdir()
    (raw / "crm.csv").write_text("id,plan,since\nx-1,smb,2020-01-01\nx-2,ent,2021-05-01\n")
    folder = tmp_path / "study" / "data"
    folder.mkdir(parents=True)
    (folder / "accounts.sql").write_text(
        "SELECT id AS account_id, plan AS segment, since AS start_date, NULL::DATE AS end_date FROM 'crm.csv'")
    (folder / "accounts.csv").write_text("account_id,segment,start_date,end_date\nz,smb,2020-01-01,\n")
    (folder / "dataset.yaml").write_text("as_of: 2024-01-31\nraw_dir: ../../warehouse\n")
    before, before_raw = snapshot(folder), snapshot(raw)
    ds = load(folder)
    assert ds.accounts["account_id"].tolist() == ["x-1", "x-2"]
    assert [w.message for w in ds.warnings] == [
        "accounts.csv: ignored because accounts.sql describes the accounts table"]
    fingerprint = ds.fingerprint()
    (raw / "crm.csv").write_text("id,plan,since\nx-1,smb,2020-01-01\nx-2,ent,2021-05-02\n")
    assert load(folder).fingerprint() != fingerprint  # the raw bytes are part of the data
    (raw / "crm.csv").write_text("id,plan,since\nx-1,smb,2020-01-01\nx-2,ent,2021-05-01\n")
    assert snapshot(folder) == before
    (folder / "dataset.yaml").write_text("as_of: 2024-01-31\nraw_dir: ../../warehouse\ncolumns:\n"
                                         "  accounts: {file: crm.csv, account_id: id}\n")
    assert [e.message for e in validate(folder).errors] == [
        "accounts.sql: dataset.yaml (columns: accounts:) describes the accounts table too: keep one "
        "(docs/data-contract.md#mapping)"]
    assert snapshot(raw)["crm.csv"][2] == before_raw["crm.csv"][2]


def test_label_export_rules(tmp_path):
    folder = tmp_path / "label"
    folder.mkdir()
    (folder / "accounts.csv").write_text("account_id,segment,start_date,end_date,arr\na-1,smb,2020-01-01,,1\n"
                                         "a-2,smb,2020-01-01,2024-11-30,2\na-3,smb,2024-12-10,,3\n"
                                         "a-4,smb,2020-01-01,2024-12-20,4\n")
    (folder / "dataset.yaml").write_text("as_of: 2024-12-31\nlabel_horizon_days: 31\n")
    report = validate(folder)
    assert [e.message for e in report.errors] == [
        "accounts.csv: column end_date: 1 row is before the label horizon's first day 2024-12-01: \"2024-11-30\" "
        "(account_id a-2)"]
    assert [w.message for w in report.warnings] == [
        "accounts.csv: column start_date: 1 row is after the label horizon's first day 2024-12-01: its label covers "
        "less than 31 days: \"2024-12-10\" (account_id a-3)"]
    (folder / "dataset.yaml").write_text("as_of: 2024-12-31\nlabel_horizon_days: 31\nobserved_from: 2024-12-05\n")
    assert [e.message for e in validate(folder).errors][0] == (
        "dataset.yaml: observed_from 2024-12-05 is after the label horizon's first day 2024-12-01 (as_of 2024-12-31 "
        "and label_horizon_days 31): every account of a label export is observed when its horizon begins "
        "(docs/data-contract.md#label-exports)")
    (folder / "accounts.csv").write_text("account_id,segment,start_date,end_date,arr\na-1,smb,2020-01-01,,1\n")
    (folder / "dataset.yaml").write_text("as_of: 2024-12-31\nlabel_horizon_days: 31\nobserved_from: 2024-01-01\n")
    ds = load(folder)
    assert ds.observed_from == pd.Timestamp("2024-01-01") and ds.label_from == pd.Timestamp("2024-12-01")


def test_copies_on_a_thin_accounts_table_are_not_reported(tmp_path):
    thin = b"account_id,segment,start_date,end_date\na-1,smb,2023-01-01,\na-2,smb,2023-01-01,\n"
    assert validate(_folder(tmp_path, "thin", thin)).warnings == []
    wide = b"account_id,segment,start_date,end_date,region\na-1,smb,2023-01-01,,eu\na-2,smb,2023-01-01,,eu\n"
    assert [w.message for w in validate(_folder(tmp_path, "wide", wide)).warnings][-1] == (
        "accounts.csv: 1 account is an exact copy of an earlier one in every column except account_id, kept "
        "(account_id a-2)")


# -- the document --------------------------------------------------------------------------------------

def _examples() -> dict[str, dict[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    out: dict[str, dict[str, str]] = {}
    for name, file, body in re.findall(r"<!-- example: ([\w-]+)/([\w.]+) -->\n```[a-z]*\n(.*?)```", text, re.S):
        out.setdefault(name, {})[file] = body
    return out


def test_the_documented_examples_run_as_shown(tmp_path, monkeypatch, capsys):
    examples = _examples()
    assert sorted(examples) == ["snapshot", "telco-map", "telco-views"]
    monkeypatch.chdir(tmp_path)
    for name, files in examples.items():
        (tmp_path / name).mkdir()
        for file, body in files.items():
            if file != "validate":
                (tmp_path / name / file).write_text(body, encoding="utf-8")
        command, *expected = files["validate"].splitlines()
        assert command == f"$ csresearch validate {name}"
        assert main(["validate", name]) == 0
        assert capsys.readouterr().out.splitlines() == expected, name
    ds = load("telco-views")
    row = ds.accounts.set_index("account_id").loc["3668-QPYBK"]
    assert (row["start_date"], row["end_date"]) == (pd.Timestamp("2024-10-31"), pd.Timestamp("2024-12-16"))
    assert set(ds.usage.loc[ds.usage["account_id"] == "3668-QPYBK", "date"]) == {pd.Timestamp("2024-11-01")}
    (tmp_path / "telco-map" / "dataset.yaml").write_text(
        examples["telco-map"]["dataset.yaml"].replace('    delimiter: ";"\n', ""))
    assert validate("telco-map").errors[0].message.startswith(
        "export.csv: looks semicolon-delimited (its header has 7 ';'): set `delimiter: ';'` for it under "
        "`columns: accounts:` in dataset.yaml")


def test_every_section_a_message_names_exists():
    headings = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", DOC.read_text(encoding="utf-8"), re.M)}
    assert set(DOC_SECTIONS) <= headings, set(DOC_SECTIONS) - headings
    linked = set()
    for path in list((ROOT / "csresearch").rglob("*.py")) + [DOC, ROOT / "README.md"] + list(
            (ROOT / "examples").rglob("*.*")):
        linked |= set(re.findall(r"data-contract\.md#([\w-]+)", path.read_text(encoding="utf-8")))
    assert linked and linked <= headings, linked - headings


def test_no_path_of_this_machine_is_written_down():
    suffixes = {".py", ".md", ".sql", ".yaml", ".yml", ".toml", ".cfg", ".txt"}
    skip = {".git", ".venv", "build", "reports", "node_modules"}
    offenders = []
    for path in ROOT.rglob("*"):
        if path.suffix in suffixes and path.is_file() and not skip & set(path.relative_to(ROOT).parts):
            if re.search(r"(?<![\w.])/" + "work/", path.read_text(encoding="utf-8", errors="replace")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
