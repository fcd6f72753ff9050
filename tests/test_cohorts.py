"""Survival tables and censoring-aware cohort retention."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from csresearch.cohorts import DAYS_PER_MONTH, retention_matrix, survival_table
from csresearch.data import load


def _write(tmp_path, accounts, meta):
    accounts.to_csv(tmp_path / "accounts.csv", index=False)
    (tmp_path / "dataset.yaml").write_text("".join(f"{k}: '{v}'\n" for k, v in meta.items()))
    return load(tmp_path)


def test_survival_table_censors_at_as_of_and_enters_late(tmp_path):
    acc = pd.DataFrame({"account_id": ["a", "b", "c"], "segment": ["s", "s", "t"],
                        "start_date": ["2023-01-01", "2023-06-15", "2024-03-01"],
                        "end_date": ["2024-01-01", "", "2024-03-01"]})
    st = survival_table(_write(tmp_path, acc, {"as_of": "2024-06-30", "observed_from": "2023-09-01"}))
    st = st.set_index("account_id")
    assert st.loc["a", ["duration", "event", "entry"]].tolist() == [365, 1, 242]  # at risk from the day before
    assert st.loc["b", ["duration", "event", "entry"]].tolist() == [381, 0, 77]
    assert st.loc["c", ["duration", "event", "entry"]].tolist() == [0.5, 1, 0]  # churned on its first day
    assert st.loc["a", "cohort"] == pd.Timestamp("2023-01-01")


def test_retention_is_kaplan_meier_not_a_naive_ratio():
    # one cohort: 5 accounts censored at 50 days, 1 churn at 100 days, 4 followed to 400 days
    table = pd.DataFrame({"cohort": "2023-01", "duration": [50] * 5 + [100] + [400] * 4,
                          "event": [0] * 5 + [1] + [0] * 4, "entry": 0.0})
    m = retention_matrix(table, months=14).set_index("month")
    assert m.loc[1, "retention"] == 1.0
    assert m.loc[4, "retention"] == pytest.approx(0.8)  # 1 of the 5 still at risk at day 100; a naive ratio says 0.9
    assert m.loc[13, "retention"] == pytest.approx(0.8) and m.loc[13, "at_risk"] == 4
    assert np.isnan(m.loc[14, "retention"])  # nobody followed that long: unknown, not 0.8 and not 0
    assert (m["accounts"] == 10).all()


def test_retention_respects_min_at_risk_and_groups():
    table = pd.DataFrame({"cohort": ["x"] * 3 + ["y"] * 3, "duration": [40, 80, 200, 40, 80, 200],
                          "event": [1, 0, 0, 0, 0, 1], "entry": 0.0})
    m = retention_matrix(table, months=6, min_at_risk=2)
    x = m[m.cohort == "x"].set_index("month")["retention"]
    assert x[1] == 1.0 and x[2] == pytest.approx(2 / 3)  # the churn at day 40 falls in month 2
    assert np.isnan(x[3])  # only one account followed beyond 3 months: below min_at_risk
    y = m[m.cohort == "y"].set_index("month")["retention"]
    assert y[2] == 1.0


def test_retention_on_the_sample_is_monotone_within_cohorts():
    ds = load("data/sample")
    m = retention_matrix(survival_table(ds), months=24)
    for _, grp in m.groupby("cohort"):
        r = grp.sort_values("month")["retention"].dropna().to_numpy()
        assert (np.diff(r) <= 1e-12).all()
    assert m["retention"].dropna().between(0, 1).all() and m["retention"].notna().any()
    assert 0.4 < m.loc[m.month == 12, "retention"].mean() < 0.9


def test_churn_on_observed_from_is_counted(tmp_path):
    acc = pd.DataFrame({"account_id": ["early", "same"], "segment": "s", "start_date": ["2023-01-01", "2023-09-01"],
                        "end_date": ["2023-09-01", "2023-09-01"]})
    st = survival_table(_write(tmp_path, acc, {"as_of": "2024-06-30", "observed_from": "2023-09-01"}))
    assert st.set_index("account_id")["event"].to_dict() == {"early": 1, "same": 1}
