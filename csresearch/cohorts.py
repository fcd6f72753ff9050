"""Signup cohorts, survival tables and censoring-aware retention matrices.

A *survival table* has one row per account: how long it was observed (``duration``, days from its start to
its churn date or to ``as_of``), whether it churned (``event``), and, for snapshot exports that give
``observed_from``, the tenure at which it *entered* observation (``entry``). An account that started before
``observed_from`` is only known to have survived until then; counting its early months as observed is the
same bias as immortal time, so survival estimates treat it as entering the risk set at ``entry``.

A retention matrix of signup-month cohort by months since start is read off Kaplan-Meier curves per cohort,
not computed as naive ratios of survivors: younger cohorts are censored earlier, and a cell is left empty
once no account of the cohort is still followed at that month.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .survival import fit_km

if TYPE_CHECKING:
    from .data import Dataset

DAYS_PER_MONTH = 365.25 / 12


def survival_table(ds: "Dataset", as_of=None) -> pd.DataFrame:
    """One row per account: ``account_id, segment, cohort, start_date, end_date, duration, event, entry``.

    ``duration`` and ``entry`` are in days of tenure; ``cohort`` is the signup month (first day).
    ``entry`` is one day before ``observed_from`` (in tenure days) for accounts that started before it, else 0:
    entry is exclusive, so a churn *on* ``observed_from`` is counted, as the contract records it.
    An account that churned on its start day gets duration 0.5 so it is neither dropped nor at risk forever.
    Extra account columns (e.g. ``arr``) are carried along.
    """
    acc = ds.accounts
    as_of = pd.Timestamp(as_of) if as_of is not None else ds.as_of
    churned = acc["end_date"].notna() & (acc["end_date"] <= as_of)
    end = acc["end_date"].where(churned, as_of)
    duration = (end - acc["start_date"]).dt.days.astype(float)
    duration = duration.where(duration > 0, 0.5)
    entry = pd.Series(0.0, index=acc.index)
    if ds.observed_from is not None:
        # churn is recorded from observed_from on, that day included: at risk from the day before (exclusive entry)
        entry = ((ds.observed_from - acc["start_date"]).dt.days - 1).clip(lower=0).astype(float)
    out = acc.copy()
    out.insert(2, "cohort", acc["start_date"].dt.to_period("M").dt.to_timestamp())
    out["duration"] = duration
    out["event"] = churned.astype(int)
    out["entry"] = entry
    out["end_date"] = acc["end_date"].where(churned)
    # accounts that left before observation began cannot be in a snapshot; if present they are not at risk
    return out[out["duration"] > out["entry"]].reset_index(drop=True)


def retention_matrix(table: pd.DataFrame, *, cohort: str = "cohort", duration: str = "duration",
                     event: str = "event", entry: str | None = "entry", months: int = 24,
                     min_at_risk: int = 1) -> pd.DataFrame:
    """Censoring-aware retention by cohort: Kaplan-Meier survival at each whole month since start.

    Args:
        table: a survival table (see :func:`survival_table`), durations in days.
        cohort: the grouping column (signup month by default; any column works, e.g. segment).
        months: the last month to report.
        min_at_risk: leave a cell empty (NaN) when fewer accounts than this are still followed at that month.

    Returns:
        Tidy frame ``cohort, month, retention, at_risk, accounts`` (month 0 .. ``months``); pivot it for a heatmap.
    """
    use_entry = entry if entry is not None and entry in table.columns and (table[entry] > 0).any() else None
    km = fit_km(table, duration, event, group=cohort, entry=use_entry)
    grid = np.arange(months + 1) * DAYS_PER_MONTH
    rows = []
    for name, grp in table.groupby(cohort, sort=True):
        curve = km[km["group"] == name].sort_values("time")
        times = curve["time"].to_numpy()
        surv = curve["survival"].to_numpy()
        pos = np.searchsorted(times, grid, side="right") - 1
        retention = np.where(pos >= 0, surv[np.clip(pos, 0, None)], 1.0)
        # followed at month k: observed beyond k months (and entered before it)
        followed = np.array([int(((grp[duration] >= g) & ((grp[entry] if use_entry else 0) <= g)).sum()) for g in grid])
        retention = np.where(followed >= max(1, min_at_risk), retention, np.nan)
        rows.append(pd.DataFrame({cohort: name, "month": np.arange(months + 1), "retention": retention,
                                  "at_risk": followed, "accounts": len(grp)}))
    return pd.concat(rows, ignore_index=True)
