"""The Iranian churn converter (data/convert_iranian_churn.py) on the real file, when present."""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from csresearch.cli import main
from csresearch.data import load, validate

SOURCE = Path("/work/shared/real-data/iranian_churn.csv")
CONVERTER = Path(__file__).resolve().parents[1] / "data" / "convert_iranian_churn.py"

pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason=f"{SOURCE} not available")


def _converter():
    spec = importlib.util.spec_from_file_location("convert_iranian_churn", CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    before = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    out = _converter().convert(SOURCE, tmp_path_factory.mktemp("iranian") / "out")
    assert hashlib.sha256(SOURCE.read_bytes()).hexdigest() == before  # source untouched
    return out


def test_converted_folder_is_valid(converted, capsys):
    assert sorted(p.name for p in converted.iterdir()) == ["accounts.csv", "dataset.yaml", "usage.csv"]
    report = validate(converted)
    assert report.ok, report.render()
    warnings = [w.message for w in report.warnings]
    assert any(w.startswith("accounts.csv: 300 accounts are exact copies of an earlier one in every "
                            "column except account_id") for w in warnings), warnings
    assert main(["validate", str(converted)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"OK: {converted} meets the data contract (2 warnings)"


def test_converted_figures(converted):
    ds = load(converted)
    a = ds.accounts
    assert len(a) == 3150 and a["account_id"].is_unique
    assert a["account_id"].iloc[0] == "ir-0001" and a["account_id"].iloc[-1] == "ir-3150"
    churned = a["end_date"].notna()
    assert churned.sum() == 495
    assert (churned == (a["churn"] == 1)).all()
    rate = churned.groupby(a["complains"]).mean()
    assert round(rate[1], 3) == 0.830 and round(rate[0], 3) == 0.101
    assert ds.segments == ["contractual", "pay_as_you_go"]
    assert a.groupby("segment").size().to_dict() == {"contractual": 245, "pay_as_you_go": 2905}
    assert ds.as_of == pd.Timestamp("2024-12-31") and ds.observed_from == pd.Timestamp("2024-01-01")
    assert "CC BY 4.0" in ds.description and "UCI" in ds.description
    # start_date = as_of minus tenure months; churners end 45 days before as_of
    assert a.loc[0, "start_date"] == pd.Timestamp("2021-10-31") and a.loc[0, "subscription_length"] == 38
    assert set(a.loc[churned, "end_date"]) == {pd.Timestamp("2024-11-16")}
    assert a["arr"].isna().all()
    # usage: 6 metrics per account, values equal to the source columns
    u = ds.usage
    assert len(u) == 6 * 3150 and u["metric"].nunique() == 6
    wide = u.pivot(index="account_id", columns="metric", values="value").loc[a["account_id"]]
    assert (wide["seconds_of_use"].to_numpy() == a["seconds_of_use"].to_numpy()).all()
    assert (u["date"] >= pd.Timestamp("2024-01-01")).all() and (u["date"] <= pd.Timestamp("2024-09-01")).all()


def test_cli_refuses_to_overwrite(converted, capsys):
    module = _converter()
    assert module.main([str(SOURCE), str(converted)]) == 2
    assert "already exist" in capsys.readouterr().err
    assert module.main([str(SOURCE), str(converted), "--force", "--as-of", "2023-06-30"]) == 0
    ds = load(converted)
    assert ds.as_of == pd.Timestamp("2023-06-30") and ds.observed_from == pd.Timestamp("2022-07-01")
    module.main([str(SOURCE), str(converted), "--force"])  # leave the module fixture as it was
