"""Churn by segment over the window the data observed (a year at most), with intervals.

Dated exports: Kaplan-Meier on each account's follow-up (from when it was first observed, its start or the
snapshot's ``observed_from``), read at the study window: a year, or the longest follow-up at which at least
``min_cell`` accounts were still observed when that is shorter. Label exports: churned / accounts over the label
horizon, with Wilson intervals. Segments with fewer than ``min_cell`` accounts are suppressed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .. import plots, windows
from .. import tables
from ..result import Figure, Result, Shown

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "churn_by_segment"
TITLE = "Churn by segment"
INTRO = ("The share of accounts that churned in each segment over the window the data observed, with {level} "
         "intervals; segments with fewer than {min_cell} accounts are not shown.")
COLUMNS = ["segment", "accounts", "churned", "rate", "ci_low", "ci_high", "window_days"]


def requires(ctx: "StudyContext") -> str | None:
    if ctx.n_accounts == 0:
        return "no accounts"
    return None if ctx.base_churn["days"] else "too few accounts were observed to read churn over any window"


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {"churn_by_segment": []}


def table(ctx: "StudyContext") -> pd.DataFrame:
    """One row per segment and one for all: ``segment, accounts, churned, rate, ci_low, ci_high, window_days``."""
    st, label = ctx.survival, ctx.label_horizon is not None
    days = ctx.base_churn["days"]
    rows = [{"segment": seg, **windows.window_churn(part, days, alpha=ctx.alpha, label=label)}
            for seg, part in st.groupby("segment", sort=True)]
    rows.append({"segment": "all", **windows.window_churn(st, days, alpha=ctx.alpha, label=label)})
    frame = pd.DataFrame(rows)[COLUMNS]
    return ctx.suppress(frame, "accounts", ["churned", "rate", "ci_low", "ci_high"], flag=None)


def run(ctx: "StudyContext") -> Result:
    frame = table(ctx)
    label = ctx.label_horizon is not None
    days = ctx.base_churn["days"]
    when = windows.window_text(days, label)
    res = Result(NAME, TITLE, record={"churn_by_segment": frame.to_dict("records")}, tables={"churn_by_segment": frame})
    res.figures.append(Figure("churn_by_segment", lambda: plots.churn_bars(frame, level=ctx.level, window=when,
                                                                          names=ctx.names),
                              alt=f"Bar chart of the share of accounts churned {when} in each segment: "
                                  + plots.describe_intervals(
                                      frame[frame["rate"].notna()].assign(
                                          name=lambda f: ["all segments" if s == "all" else ctx.names(s)
                                                          for s in f["segment"]]),
                                      "name", "rate", level=ctx.level, pct=True) + "."))
    method = ("churned / accounts over the label horizon, Wilson intervals" if label else
              "Kaplan-Meier on each account's follow-up from when it was first observed")
    res.shown.append(Shown(_readable(ctx, frame, when), caption=f"Churn {when} ({method})."))
    hidden = int(frame["rate"].isna().sum())
    res.text = (f"Churn is read {when}" + ("" if label or days >= windows.YEAR_DAYS else
                                            ": no longer, because fewer accounts were followed beyond it")
                + "." + (f" {hidden} segment(s) with fewer than {ctx.min_cell} accounts are not shown." if hidden else ""))
    return res


def _readable(ctx: "StudyContext", frame: pd.DataFrame, when: str) -> pd.DataFrame:
    """The table for readers: a row per segment (named by ``ctx.names``) and one for all segments; accounts and
    churned as counts, churn as a percentage with its interval; "suppressed" where a segment is too small."""
    small = frame["accounts"] < ctx.min_cell
    out = pd.DataFrame({
        "Accounts": frame["accounts"].map(tables.count).to_numpy(),
        f"Accounts churned {when}": frame["churned"].map(tables.count).to_numpy(),
        f"Churn {when}": ["suppressed" if pd.isna(x) and hide else tables.percent(x)
                          for x, hide in zip(frame["rate"], small)],
        f"{ctx.level_text} CI": [tables.interval(lo, hi, 1, as_percent=True)
                                 for lo, hi in zip(frame["ci_low"], frame["ci_high"])],
    }, index=["All segments" if s == "all" else ctx.names(s) for s in frame["segment"]])
    out.columns.name = "Segment"
    return tables.readable(out, ctx.names)
