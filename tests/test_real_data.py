"""The Iranian churn data set mapped by examples/iranian_churn/ (two SQL views), when the raw file is present.

The file is looked up as ``../shared/real-data/iranian_churn.csv`` relative to the repository root (where the
example's raw_dir points); the tests skip, saying so, when it is not there."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from csresearch.cli import main
from csresearch.data import load, validate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "iranian_churn"
SOURCE = ROOT.parent / "shared" / "real-data" / "iranian_churn.csv"
SHA256 = "72a4a660cba4166bab4f0c24e930d5453d1917e208c9ce2ed16b841347350dd3"

pytestmark = pytest.mark.skipif(
    not SOURCE.is_file(), reason=f"the Iranian churn file is not at {SOURCE} (../shared/real-data relative to the "
                                 "repository root); copy iranian_churn.csv there to run these tests")


@pytest.fixture(scope="module")
def dataset():
    before = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert before == SHA256
    ds = load(EXAMPLE)
    assert hashlib.sha256(SOURCE.read_bytes()).hexdigest() == before  # the raw file is only read
    return ds


def test_example_folder_is_valid(capsys):
    report = validate(EXAMPLE)
    assert report.ok, report.render()
    assert [w.message for w in report.warnings] == [
        "iranian_churn.csv: 14 extra columns kept: call_failure, complains, subscription_length, charge_amount, "
        "seconds_of_use, frequency_of_use, frequency_of_sms, distinct_called_numbers, age_group, tariff_plan, "
        "status, age, customer_value, churn",
        "iranian_churn.csv: accounts (made by accounts.sql): 300 accounts are exact copies of an earlier one in every "
        "column except account_id, kept (rows 520, 630, 720, 730, 903 and 295 more)",
    ]
    assert main(["validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-6:] == [
        "as_of          2024-12-31 (from dataset.yaml)",
        "observed_from  2024-01-01",
        "label horizon  92 days, 2024-10-01..2024-12-31: churn is a label (an end_date = churned within the horizon)",
        "churn          495 of 3,150 accounts churned within the label horizon 2024-10-01..2024-12-31 (92 days); "
        "3,150 have usage known at its start (docs/data-contract.md#label-exports)",
        "segments       contractual 245, pay_as_you_go 2,905",
        f"OK: {EXAMPLE} meets the data contract (2 warnings; the rules: docs/data-contract.md)",
    ]
    assert out[2:4] == ["accounts       3,150 rows (accounts.sql over iranian_churn.csv)",
                        "usage          18,900 rows (usage.sql over iranian_churn.csv)"]


def test_figures_of_the_former_converter(dataset):
    a = dataset.accounts
    assert len(a) == 3150 and a["account_id"].is_unique
    assert a["account_id"].iloc[0] == "ir-0001" and a["account_id"].iloc[-1] == "ir-3150"
    churned = a["end_date"].notna()
    assert churned.sum() == 495
    assert (churned == (a["churn"] == 1)).all()
    rate = churned.groupby(a["complains"]).mean()
    assert round(rate[1], 3) == 0.830 and round(rate[0], 3) == 0.101
    assert dataset.segments == ["contractual", "pay_as_you_go"]
    assert a.groupby("segment").size().to_dict() == {"contractual": 245, "pay_as_you_go": 2905}
    assert dataset.as_of == pd.Timestamp("2024-12-31") and dataset.observed_from == pd.Timestamp("2024-01-01")
    assert dataset.label_horizon_days == 92 and dataset.label_from == pd.Timestamp("2024-10-01")
    assert "CC BY 4.0" in dataset.description and "UCI" in dataset.description
    # start_date = as_of minus tenure months; churners end on the horizon's middle day
    assert a.loc[0, "start_date"] == pd.Timestamp("2021-10-31") and a.loc[0, "subscription_length"] == 38
    assert set(a.loc[churned, "end_date"]) == {pd.Timestamp("2024-11-16")}
    assert a["arr"].isna().all() and a["arr"].dtype == "float64"
    assert list(a.columns[:5]) == ["account_id", "segment", "start_date", "end_date", "arr"]
    # usage: 6 metrics per account, values equal to the source columns, dated to count from label_from
    u = dataset.usage
    assert len(u) == 6 * 3150 and u["metric"].nunique() == 6
    assert u["account_id"].iloc[:6].tolist() == ["ir-0001"] * 6  # file order, one account after the other
    wide = u.pivot(index="account_id", columns="metric", values="value").loc[a["account_id"]]
    assert (wide["seconds_of_use"].to_numpy() == a["seconds_of_use"].to_numpy()).all()
    assert set(u["date"]) == {pd.Timestamp("2024-09-01")}


def test_a_copy_of_the_file_in_the_folder_is_read_instead(tmp_path):
    folder = tmp_path / "iranian"
    shutil.copytree(EXAMPLE, folder)
    shutil.copy(SOURCE, folder / "iranian_churn.csv")  # raw_dir now points nowhere: the folder is searched first
    ds = load(folder)
    assert len(ds.accounts) == 3150 and ds.accounts["end_date"].notna().sum() == 495
    assert ds.files["accounts"] == folder / "accounts.sql"
    (folder / "iranian_churn.csv").unlink()
    report = validate(folder)
    assert [e.message.split(" (")[0] for e in report.errors] == [
        "accounts.sql: reads iranian_churn.csv, which is neither in the folder nor in raw_dir ../../../shared/real-data"]
