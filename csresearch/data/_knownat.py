"""Does the known-at rule leave the churn events any usage to be explained by? (docs/data-contract.md#known-at)

A usage row dated at the start of its period counts once the period is complete: from the next month. A churn
event is explained by what was known at the start of the month it falls in (a churn on the 1st falls in the
month before: that month's row ends with it). So usage dated in the churn's own month never counts for it, and a
snapshot whose usage is all dated in the snapshot month leaves every churn of that month without usage.

Label exports (label_horizon_days) ask the same at the horizon's first day: usage known then is what a
fixed-horizon model may use.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ._report import Problem
from ._spec import doc

#: below this share of churn events (or labelled accounts) with usage known before them, validate warns
MIN_SHARE = 0.9


@dataclass
class KnownAt:
    events: int          # churn events (dated exports) or accounts (label exports)
    with_usage: int      # of them, with usage known before (at the horizon's start)
    label: bool
    churned: int = 0     # label exports: accounts that churned within the horizon

    def summary(self, label_from: pd.Timestamp | None, as_of: pd.Timestamp | None, days: int | None) -> str:
        if self.label:
            return (f"{self.churned:,} of {self.events:,} accounts churned within the label horizon "
                    f"{label_from.date()}..{as_of.date()} ({days} days); {self.with_usage:,} have usage known at "
                    f"its start ({doc('label-exports')})")
        return (f"{self.events:,} churn events, {self.with_usage:,} with usage known before them "
                f"({doc('known-at')})")


def _month_start(d: pd.Series) -> pd.Series:
    return d.dt.to_period("M").dt.start_time


def check(accounts: pd.DataFrame, usage: pd.DataFrame | None, usage_file: str, as_of: pd.Timestamp,
          observed_from: pd.Timestamp | None, label_from: pd.Timestamp | None) -> tuple[KnownAt | None, Problem | None]:
    """The figures for the summary and, when too few events have usage known before them, a warning."""
    if usage is None or not {"account_id", "end_date"} <= set(accounts.columns) \
            or not {"account_id", "date"} <= set(usage.columns):
        return None, None
    usage = usage[usage["date"].notna() & usage["account_id"].notna()]
    first = usage.groupby("account_id", sort=False)["date"].min()
    counts_from = first + pd.DateOffset(months=1)
    ids = accounts["account_id"]
    theirs = pd.Series(ids.map(counts_from).to_numpy(), index=accounts.index, dtype="datetime64[ns]")
    if label_from is not None:
        known = theirs.notna() & (theirs <= label_from)
        churned = accounts["end_date"].notna() & (accounts["end_date"] <= as_of)
        result = KnownAt(len(accounts), int(known.sum()), True, int(churned.sum()))
        if not len(accounts) or result.with_usage >= MIN_SHARE * result.events:
            return result, None
        why = _why(first, ids[~known])
        return result, Problem("usage", usage_file, None, "usage_not_known", (
            f"{usage_file}: {result.with_usage:,} of {result.events:,} accounts have usage known at the label "
            f"horizon's start {label_from.date()}{why} ({doc('known-at')})"))
    end = accounts["end_date"]
    event = end.notna() & (end <= as_of)
    if observed_from is not None:
        event &= end >= observed_from
    if not event.any():
        return KnownAt(0, 0, False), None
    # the month the churn falls in: a churn on the 1st ends the month before
    churn_month = _month_start(end[event] - pd.Timedelta(days=1))
    known = theirs[event].notna() & (theirs[event] <= churn_month)
    result = KnownAt(int(event.sum()), int(known.sum()), False)
    if result.with_usage >= MIN_SHARE * result.events:
        return result, None
    why = _why(first, ids[event][~known.to_numpy()])
    return result, Problem("usage", usage_file, None, "usage_not_known", (
        f"{usage_file}: {result.with_usage:,} of {result.events:,} churn events have usage known before them{why} "
        f"({doc('known-at')})"))


def _why(first: pd.Series, missing_ids: pd.Series) -> str:
    """``: usage dated 2012-01-01 counts from 2012-02-01`` (the commonest first date of the accounts without)."""
    dates = missing_ids.map(first).dropna()
    none = int(missing_ids.map(first).isna().sum())
    parts = []
    if len(dates):
        d = pd.Timestamp(dates.mode().iloc[0])
        parts.append(f"usage dated {d.date()} counts from {(d + pd.DateOffset(months=1)).date()}")
    if none:
        parts.append(f"{none:,} of the accounts without have no usage rows")
    return (": " + "; ".join(parts)) if parts else ""

