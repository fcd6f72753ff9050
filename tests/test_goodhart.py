"""The Goodhart view and the vendor-customer gap (csresearch.metrics.goodhart) on the bundled sample world."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from statsmodels.stats.proportion import proportion_confint  # noqa: E402

from csresearch.models import AnalysisError  # noqa: E402
from csresearch.attainment import episodes  # noqa: E402
from csresearch.data import load  # noqa: E402
from csresearch.metrics import (GOODHART_COLUMNS, goodhart_divergence, goodhart_monthly,  # noqa: E402
                                vendor_customer_gap)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def ds():
    return load(SAMPLE)


@pytest.fixture(scope="module")
def panel(ds):
    return episodes(ds, usage_metrics=[])


@pytest.fixture(scope="module")
def divergence(ds, panel):
    return goodhart_divergence(ds, panel=panel)


# ---------------------------------------------------------------------------------------------------------
# Goodhart view
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("since", [None, "2024-07-01"])
def test_planted_segment_flagged_and_only_it(ds, panel, since):
    table, summary = goodhart_divergence(ds, since=since, panel=panel)
    assert tuple(table.columns) == GOODHART_COLUMNS
    assert len(table) == 3 * 4
    flagged = table[table["diverging"]]
    assert list(zip(flagged["segment"], flagged["metric"])) == [("mid_market", "logins")]
    row = flagged.iloc[0]
    assert row["vendor_trend"] > 0.15 and row["vendor_q"] < 1e-6
    assert row["attainment_trend"] < 0 and row["attainment_ci_high"] < 0
    assert "Goodhart" in row["sentence"]
    assert summary["flagged"] == [{"segment": "mid_market", "metric": "logins"}]
    json.dumps(summary, allow_nan=False)


def test_flag_rule(divergence):
    table, _ = divergence
    up = (table["vendor_trend"] >= 0.05) & (table["vendor_q"] < 0.05)
    att_up = (table["attainment_trend"] > 0) & (table["attainment_p"] < 0.05)
    assert table["diverging"].equals(up & ~att_up)
    # logins elsewhere are not significantly up, so they must not be flagged
    other = table[(table["metric"] == "logins") & (table["segment"] != "mid_market")]
    assert not ((other["vendor_trend"] > 0) & (other["vendor_q"] < 0.05)).any()
    assert not other["diverging"].any()
    # one attainment trend per segment, repeated on its rows
    assert (table.groupby("segment")["attainment_trend"].nunique() == 1).all()
    assert (table["vendor_q"] >= table["vendor_p"] - 1e-12).all()
    assert np.allclose(table["vendor_pct_per_year"], 100 * (np.exp(table["vendor_trend"]) - 1))


def test_goodhart_monthly_series(ds, panel):
    series, summary = goodhart_monthly(ds, panel=panel)
    assert set(series.columns) == {"segment", "month", "metric", "index", "n_accounts", "attainment_change",
                                   "attainment_mean"}
    mm = series[(series["segment"] == "mid_market") & (series["metric"] == "logins")].set_index("month")
    assert mm.loc["2026-06-01", "index"] / mm.loc["2024-06-01", "index"] > 1.5
    for seg in ("smb", "enterprise"):
        s = series[(series["segment"] == seg) & (series["metric"] == "logins")].set_index("month")
        assert 0.85 < s.loc["2026-06-01", "index"] / s.loc["2024-06-01", "index"] < 1.15
    att = series[series["segment"] == "mid_market"].drop_duplicates("month").set_index("month")["attainment_change"]
    assert att["2025-01-01":"2026-06-01"].mean() < 0.5 * att["2023-07-01":"2024-06-01"].mean()
    assert summary["metrics"] == ["active_users", "logins", "reports_created", "health_score"]


def test_goodhart_errors(ds):
    with pytest.raises(AnalysisError, match="no goals table"):
        goodhart_divergence(dataclasses.replace(ds, goals=None, goal_progress=None))
    with pytest.raises(AnalysisError, match="no usage table"):
        goodhart_divergence(dataclasses.replace(ds, usage=None))
    with pytest.raises(AnalysisError, match="until"):
        goodhart_divergence(ds, since="2025-01-01", until="2024-01-01")
    with pytest.raises(AnalysisError, match="not in the usage table"):
        goodhart_divergence(ds, metrics=["nps"])


def test_goodhart_without_baseline_metric_warns(ds, panel):
    no_au = dataclasses.replace(ds, usage=ds.usage[ds.usage["metric"] != "active_users"])
    table, summary = goodhart_divergence(no_au, panel=panel, metrics=["logins"])
    assert summary["baseline"] == [] and summary["warnings"]
    assert table.set_index("segment").loc["mid_market", "diverging"]


# ---------------------------------------------------------------------------------------------------------
# vendor-customer gap
# ---------------------------------------------------------------------------------------------------------
def test_gap_two_by_two(ds):
    table, summary = vendor_customer_gap(ds)
    assert len(table) == 4 and set(table["segment"]) == {"all"}
    assert table["n"].sum() == summary["n_accounts"]
    assert table["churned"].sum() == summary["n_churned"]
    t = table.set_index("cell")
    # the cable-company story: green usage without outcomes churns like low usage without outcomes
    assert t.loc["green usage, goals not attained", "churn_rate"] > t.loc["green usage, goals attained", "churn_rate"] + 0.05
    assert t.loc["green usage, goals not attained", "churn_rate"] > t.loc["low usage, goals attained", "churn_rate"]
    for _, r in table.iterrows():
        lo, hi = proportion_confint(r["churned"], r["n"], alpha=0.05, method="wilson")
        assert r["ci_low"] == pytest.approx(lo) and r["ci_high"] == pytest.approx(hi)
        assert r["churn_rate"] == pytest.approx(r["churned"] / r["n"])
    assert summary["gap"]["green_not_attained_minus_green_attained"] > 0.05
    assert set(summary["usage_thresholds"]) == {"smb", "mid_market", "enterprise"}
    json.dumps(summary, allow_nan=False)


def test_gap_small_cells_suppressed(ds):
    table, summary = vendor_customer_gap(ds, min_cell=400)
    small = table["n"] < 400
    assert small.any() and (~small).any()
    assert table.loc[small, "suppressed"].all() and table.loc[small, "churn_rate"].isna().all()
    assert table.loc[small, "ci_low"].isna().all()
    assert table.loc[~small, "churn_rate"].notna().all()
    assert summary["suppressed_cells"] == int(small.sum())
    json.dumps(summary, allow_nan=False)


def test_gap_options(ds):
    table, summary = vendor_customer_gap(ds, by_segment=True, usage_per="seats", attainment_threshold=1.0,
                                         landmark_days=180, horizon_days=180)
    assert set(table["segment"]) == {"all", "smb", "mid_market", "enterprise"}
    per = table[table["segment"] != "all"].groupby(["usage_green", "goals_attained"])["n"].sum()
    whole = table[table["segment"] == "all"].set_index(["usage_green", "goals_attained"])["n"]
    assert per.sort_index().tolist() == whole.sort_index().tolist()
    assert summary["usage_per"] == "seats" and summary["attainment_threshold"] == 1.0
    fixed, s2 = vendor_customer_gap(ds, usage_threshold=10.0)
    assert s2["usage_threshold"] == 10.0


def test_gap_errors(ds):
    with pytest.raises(AnalysisError, match="usage_per"):
        vendor_customer_gap(ds, usage_per="segment")
    with pytest.raises(AnalysisError, match="attainment_threshold"):
        vendor_customer_gap(ds, attainment_threshold=0)
    with pytest.raises(AnalysisError, match="no account churned"):
        vendor_customer_gap(dataclasses.replace(ds, accounts=ds.accounts.assign(end_date=pd.NaT)))
    with pytest.raises(AnalysisError, match="no goals table"):
        vendor_customer_gap(dataclasses.replace(ds, goals=None, goal_progress=None))
    with pytest.raises(AnalysisError, match="no usage table"):
        vendor_customer_gap(dataclasses.replace(ds, usage=None))


def test_plots(ds, panel, divergence):
    from csresearch import plots

    table, _ = divergence
    series, _ = goodhart_monthly(ds, panel=panel)
    axes = plots.goodhart_trends(series, table)
    assert [a.get_title() for a in axes][1].startswith("mid_market: logins up")
    gap, _ = vendor_customer_gap(ds, min_cell=400)
    ax = plots.vendor_gap(gap, min_cell=400)
    assert any("suppressed" in t.get_text() for t in ax.texts)
    plt.close("all")
