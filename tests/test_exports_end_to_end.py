"""Three messy, real-shaped exports, each taken through mapping, `csresearch validate` and `csresearch study`:

* a label-style customer-row export (telecom-like: tenure in months, a Yes/No churn label), mapped by SQL views;
* a snapshot of the customers active on a date, with a vendor health score dated in the snapshot month and the
  usage of the months before, dates written day first, mapped by the columns map;
* the same snapshot as a semicolon-delimited, Windows-1252 file with decimal commas, declared in dataset.yaml.

None has goals: the reports must say up front what they cannot answer and give churn by segment, the churn
drivers and a validated usage model.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from csresearch import params as P
from csresearch import studies
from csresearch.cli import main
from csresearch.world import WorldConfig, generate

CONTRACTS = ["Month-to-month", "One year", "Two year"]
PAYMENTS = ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)"]


def _telco(folder: Path, n: int = 1500, seed: int = 3) -> Path:
    """One row per customer; churn over the last 61 days depends on contract, tenure and charges."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(3, n, p=[0.55, 0.25, 0.20])
    tenure = rng.integers(1, 72, n)
    charges = np.round(rng.uniform(20, 110, n), 2)
    logit = -1.2 - 1.1 * contract - 0.025 * tenure + 0.012 * (charges - 60)
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame({"customerID": [f"{7000 + i}-TLC" for i in range(n)], "tenure": tenure,
                          "Contract": [CONTRACTS[c] for c in contract],
                          "PaymentMethod": rng.choice(PAYMENTS, n), "MonthlyCharges": charges,
                          "PhoneService": np.where(rng.random(n) < 0.9, "Yes", "No"),
                          "StreamingTV": np.where(rng.random(n) < 0.4, "Yes", "No"),
                          "Churn": np.where(churn, "Yes", "No")})
    folder.mkdir(parents=True)
    frame.to_csv(folder / "telco.csv", index=False)
    (folder / "dataset.yaml").write_text("as_of: 2024-12-31\nlabel_horizon_days: 61\n")
    (folder / "accounts.sql").write_text("""\
SELECT customerID                                              AS account_id,
       Contract                                                AS segment,
       CAST(getvariable('as_of') - to_months(tenure) AS DATE)  AS start_date,
       CASE Churn WHEN 'Yes' THEN CAST(getvariable('label_churn_date') AS VARCHAR) END AS end_date,
       PaymentMethod AS payment_method
FROM 'telco.csv'
""")
    (folder / "usage.sql").write_text("""\
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
""")
    return folder


def _snapshot_tables(tmp: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A generated world cut to a snapshot: the accounts active on 2026-03-01, with raw names and day-first dates,
    and their usage (health score included) in long form."""
    # engagement lowers churn here (and shows in usage), so usage has something to say without goals
    generate(WorldConfig(n_accounts=2500, seed=21, observed_from="2026-03-01", log_hr_engagement=math.log(0.6)),
             tmp / "world", fmt="csv")
    acc = pd.read_csv(tmp / "world" / "accounts.csv")
    use = pd.read_csv(tmp / "world" / "usage.csv")
    use = use[use["date"] >= "2025-12-01"]
    day_first = lambda s: pd.to_datetime(s).dt.strftime("%d/%m/%Y")  # noqa: E731
    raw = pd.DataFrame({"Customer": acc["account_id"], "Plan": acc["segment"].str.replace("_", " "),
                        "Signup": day_first(acc["start_date"]),
                        "Cancelled": acc["end_date"].where(acc["end_date"].isna(), day_first(acc["end_date"])),
                        "ARR": acc["arr"], "Seats": acc["seats"]})
    return raw, use.rename(columns={"account_id": "Customer", "date": "Month", "metric": "Metric", "value": "Value"})


SNAPSHOT_YAML = """\
as_of: 2026-06-30
observed_from: 2026-03-01
columns:
  accounts:
    file: customers.csv
    date_format: "%d/%m/%Y"
    account_id: Customer
    segment: Plan
    start_date: Signup
    end_date: Cancelled
    arr: ARR
  usage:
    file: usage.csv
    account_id: Customer
    date: Month
    metric: Metric
    value: Value
"""


def _snapshot(tmp: Path, raw: pd.DataFrame, use: pd.DataFrame) -> Path:
    folder = tmp / "snapshot"
    folder.mkdir()
    raw.to_csv(folder / "customers.csv", index=False)
    use.to_csv(folder / "usage.csv", index=False)
    (folder / "dataset.yaml").write_text(SNAPSHOT_YAML)
    return folder


def _european(tmp: Path, raw: pd.DataFrame, use: pd.DataFrame) -> Path:
    """The snapshot again, as a spreadsheet in a French locale would save it: ';', decimal commas, Windows-1252."""
    folder = tmp / "european"
    folder.mkdir()
    raw = raw.assign(Plan=raw["Plan"].map({"smb": "PME", "mid market": "intermédiaire", "enterprise": "entreprise"}))
    raw.to_csv(folder / "customers.csv", index=False, sep=";", decimal=",", encoding="cp1252")
    use.to_csv(folder / "usage.csv", index=False)
    settings = '    delimiter: ";"\n    decimal: ","\n    encoding: cp1252\n'
    (folder / "dataset.yaml").write_text(SNAPSHOT_YAML.replace("    date_format:", settings + "    date_format:", 1)
                                         .replace("file: customers.csv\n", "file: customers.csv\n", 1))
    return folder


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exports")
    raw, use = _snapshot_tables(tmp)
    return {"telco": _telco(tmp / "telco"), "snapshot": _snapshot(tmp, raw, use), "european": _european(tmp, raw, use)}


@pytest.fixture(scope="module")
def studied(exports, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    specs = [studies.StudySpec(name, P.validate({"data_dir": str(folder), "study": name,
                                                 "health_score_metric": None if name == "telco" else "health_score",
                                                 "usage_baseline": "monthly_charges" if name == "telco"
                                                 else "active_users", "bootstrap": 0}, name), name)
             for name, folder in exports.items()]
    outcomes = studies.run(specs, out, workers=2)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    return {name: json.loads((out / name / "results.json").read_text()) for name in exports} | {"_out": out}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["telco", "snapshot", "european"])
def test_each_export_validates(exports, capsys, name):
    assert main(["validate", str(exports[name])]) == 0
    text = capsys.readouterr().out
    assert "OK:" in text and "docs/data-contract.md" in text


@pytest.mark.slow
def test_the_european_file_reads_as_the_snapshot(exports):
    from csresearch.data import load

    a, b = load(exports["snapshot"]), load(exports["european"])
    assert len(a.accounts) == len(b.accounts) and a.accounts["end_date"].notna().sum() == b.accounts["end_date"].notna().sum()
    assert set(b.accounts["segment"]) == {"PME", "intermédiaire", "entreprise"}
    np.testing.assert_allclose(a.accounts["arr"].to_numpy(), b.accounts["arr"].to_numpy())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["telco", "snapshot", "european"])
def test_each_export_gets_a_level_two_report(studied, name):
    r = studied[name]
    found = {f["id"]: f for f in r["findings"]}
    assert found["attainment_effect"]["verdict"] == "not_estimable" and "no goals" in found["attainment_effect"]["reason"]
    assert found["outcomes_vs_usage"]["verdict"] == "not_estimable"
    rows = {row["segment"]: row for row in r["churn_by_segment"]}
    assert rows["all"]["accounts"] == r["n_accounts"] and rows["all"]["churned"] == r["n_churned"]
    assert all(row["ci_low"] <= row["rate"] <= row["ci_high"] for row in rows.values() if row["rate"] is not None)
    assert r["churn_drivers"]["drivers"] and all({"name", "effect", "ci_low", "ci_high", "q"} <= set(d)
                                                  for d in r["churn_drivers"]["drivers"])
    model = r["usage_model"]
    score = model.get("auc", model.get("c_index"))
    assert 0.5 < score < 1 and model["ci_low"] < score < model["ci_high"] and "cross-validation" in model["method"]
    assert {"intercept", "slope", "brier"} <= set(model["calibration"]) and model["lift"]["deciles"]
    report = (studied["_out"] / name / "report.html").read_text()
    assert "cannot be measured here, because no goals are recorded" in report


@pytest.mark.slow
def test_the_label_export_uses_its_horizon(studied):
    r = studied["telco"]
    assert r["usage_model"]["model"] == "logistic" and r["churn_drivers"]["model"] == "logistic"
    assert {row["window_days"] for row in r["churn_by_segment"]} == {61}
    assert r["retention_12m"] is None
    top = [d["name"] for d in r["churn_drivers"]["drivers"][:4]]
    assert "monthly_charges" in top or "segment" in top or "payment_method" in top


@pytest.mark.slow
def test_the_snapshot_says_what_happened_to_its_health_score(studied):
    r = studied["snapshot"]
    assert r["retention_12m"] is None  # a four-month window: no 12-month figure
    audit = r.get("health_score_audit") or {}
    if audit:
        assert audit["n_used"] > 0 and "n_dropped" in audit
    else:
        assert any("health score" in w.lower() for w in r["warnings"])
    design = r.get("study_design") or {}
    assert design.get("base_churn_12m") is None
