"""Retention curves after a landmark, by attainment group then (none / partial / goals reached), with log-rank."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

from .. import plots
from ..landmarks import GROUPS, landmark_table
from ..result import Figure, Result
from ..survival import fit_km, logrank
from ._gates import goals_reason

if TYPE_CHECKING:
    from ..context import StudyContext
    from ..data import Dataset

NAME = "km_by_attainment"
#: reads the goal measurements (attainment at the landmark): see csresearch.analyses
USES_GOALS = True
TITLE = "Retention by attainment group"
INTRO = ("Accounts still active at the first landmark, grouped by their attainment then: no progress, partial progress, "
         "goals reached. Bands are {level} confidence intervals; curves stop where fewer accounts than the privacy "
         "threshold ({min_cell}) remain, and a group with fewer accounts is not shown.")


def attainment_km(ds: "Dataset", landmark_days: float, *, lag_days: int = 0, threshold: float = 1.0,
                  alpha: float = 0.05) -> tuple[pd.DataFrame, dict]:
    """Kaplan-Meier curves after a landmark by attainment group at the landmark, and the log-rank test.

    Returns the tidy KM frame (``group`` = none / partial / attained; ``time`` in days after the landmark) and
    ``{landmark_days, threshold, groups: {group: {n, events}}, logrank: {statistic, df, p}}``. Groups with no
    account are left out of the test.
    """
    lm = landmark_table(ds, landmark_days, lag_days=lag_days, threshold=threshold)
    lm["group"] = lm["group"].astype(str)
    entry = "entry_after" if (lm["entry_after"] > 0).any() else None
    km = fit_km(lm, "time", "event", group="group", entry=entry, alpha=alpha)
    counts = lm.groupby("group")["event"].agg(["size", "sum"])
    groups = {g: {"n": int(counts.loc[g, "size"]), "events": int(counts.loc[g, "sum"])} for g in GROUPS if g in counts.index}
    test = None
    if len(groups) > 1 and lm["event"].sum() > 0:
        test = {k: float(v) for k, v in logrank(lm, "time", "event", "group", entry=entry).items()}
    return km, {"landmark_days": float(landmark_days), "threshold": float(threshold), "groups": groups, "logrank": test}


def requires(ctx: "StudyContext") -> str | None:
    return goals_reason(ctx)


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {}


def run(ctx: "StudyContext") -> Result:
    days = ctx["landmark_days"][0]
    km, info = attainment_km(ctx.ds, days, lag_days=ctx["lag_days"], threshold=ctx["attainment_threshold"],
                             alpha=ctx.alpha)
    km, info = _private(ctx, km, info)
    res = Result(NAME, TITLE, record={"km_by_attainment": info})
    if len(km):
        res.tables["km"] = km
        suppressed = {g: v["suppressed"] for g, v in info["groups"].items() if v.get("suppressed")}
        suppressed.update({g: f"no account at day {days:.0f}" for g in GROUPS if g not in info["groups"]})
        res.figures.append(Figure("km", lambda: plots.km_curves(
            km, title=f"Retention after day {days:.0f} by attainment then",
            xlabel=f"months after day {days:.0f} of the subscription", suppressed=suppressed, names=ctx.names),
            alt=_alt(km, info, days, suppressed)))
    if info.get("note"):
        res.text = f"*Note: {info['note']}.*"
    return res


def _alt(km: pd.DataFrame, info: dict, days: float, suppressed: dict) -> str:
    """The curves in words: each group shown with its accounts and its last retention, and those not shown."""
    parts = []
    for g, v in info["groups"].items():
        cur = km[km["group"] == g].sort_values("time")
        if g in suppressed or not len(cur):
            continue
        last = cur.iloc[-1]
        parts.append(f"{plots.GROUP_NAMES.get(g, g)} ({v['n']} accounts, {v['events']} churned): "
                     f"{last['survival']:.0%} retained after {last['time'] / plots.DAYS_PER_MONTH:.0f} months")
    hidden = "".join(f"; {plots.GROUP_NAMES.get(g, g)}: {why}, not shown" for g, why in suppressed.items())
    test = f"; log-rank p = {info['logrank']['p']:.3g}" if info.get("logrank") else ""
    return (f"Kaplan-Meier retention curves after day {days:.0f} by attainment group then: " + "; ".join(parts)
            + hidden + test + ".")


def _private(ctx: "StudyContext", km: pd.DataFrame, info: dict) -> tuple[pd.DataFrame, dict]:
    """Drop groups with fewer than ``min_cell`` accounts and cut each curve where fewer remain at risk."""
    info = json.loads(json.dumps(info))
    sizes = pd.DataFrame([{"group": g, "n": v["n"]} for g, v in info["groups"].items()], columns=["group", "n"])
    kept, _ = ctx.drop_small(sizes, "n")
    suppressed = [g for g in sizes["group"] if g not in set(kept["group"])]
    for g in suppressed:
        info["groups"][g] = {"n": None, "events": None, "suppressed": f"fewer than {ctx.min_cell} accounts"}
    km, _ = ctx.drop_small(km[~km["group"].isin(suppressed)], "at_risk")
    if suppressed:
        info["logrank"] = None
        info["note"] = f"groups with fewer than {ctx.min_cell} accounts are suppressed: {', '.join(suppressed)}"
    return km, info
