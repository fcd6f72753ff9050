"""The window a study observed churn over, and churn within it, without extrapolating beyond what was followed.

Two kinds of export:

* **dated** (end dates of churners, accounts followed from their start or from ``observed_from``): churn within
  ``W`` days is Kaplan-Meier on each account's *follow-up* (days from when it was first observed, its start or
  ``observed_from``, to its churn or ``as_of``), and ``W`` never exceeds the longest follow-up at which at least
  ``min_at_risk`` accounts were still observed;
* **label** (``ds.label_horizon_days``: a 0/1 churn label over a fixed window): churn is churned / accounts over
  the label horizon, with a Wilson interval.

Nothing here reads goals: these are the numbers a team at maturity level 2 (usage, no goals) has.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from .survival import fit_km

if TYPE_CHECKING:
    from .data import Dataset

#: the longest window a churn rate is read over (a year)
YEAR_DAYS = 365


def label_horizon(ds: "Dataset") -> int | None:
    """The label horizon in days of a label export; None for a dated export (or data layers without labels)."""
    h = getattr(ds, "label_horizon_days", None)
    return None if h is None else int(h)


def observed_days(ds: "Dataset") -> int:
    """The calendar days the export observed churn over: the label horizon, else ``observed_from`` (or the first
    start) to ``as_of``, both days included."""
    h = label_horizon(ds)
    if h is not None:
        return h
    first = ds.observed_from if ds.observed_from is not None else ds.accounts["start_date"].min()
    return int((ds.as_of - first).days) + 1


def followup(st: pd.DataFrame) -> np.ndarray:
    """Each account's days of follow-up: from when it was first observed to its churn or the as-of date."""
    return (st["duration"] - st["entry"]).to_numpy(float)


def covered_days(st: pd.DataFrame, min_at_risk: int, cap: float = YEAR_DAYS) -> int:
    """The longest follow-up (at most ``cap`` days) at which at least ``min_at_risk`` accounts were still observed;
    0 when fewer accounts than that were observed at all."""
    f = np.sort(followup(st))[::-1]
    if len(f) < max(int(min_at_risk), 1):
        return 0
    return int(min(cap, np.floor(f[max(int(min_at_risk), 1) - 1])))


def window_churn(st: pd.DataFrame, days: float, *, alpha: float = 0.05, label: bool = False) -> dict:
    """``{accounts, churned, rate, ci_low, ci_high, window_days}``: churn within ``days`` of follow-up.

    Label data (``label``): every account was followed over the horizon, so the rate is churned / accounts with a
    Wilson interval. Dated data: Kaplan-Meier on the follow-up, censored at the as-of date, with its interval;
    ``churned`` counts the churns within ``days``."""
    n = int(len(st))
    if label:
        churned = int(st["event"].sum())
        lo, hi = proportion_confint(churned, n, alpha=alpha, method="wilson") if n else (np.nan, np.nan)
        return {"accounts": n, "churned": churned, "rate": churned / n if n else None, "ci_low": float(lo),
                "ci_high": float(hi), "window_days": int(days)}
    f = followup(st)
    frame = pd.DataFrame({"time": np.maximum(f, 0.5), "event": st["event"].to_numpy(int)})
    km = fit_km(frame, "time", "event", alpha=alpha)
    km = km[km["time"] <= days]
    churned = int(((frame["time"] <= days) & (frame["event"] == 1)).sum())
    if not len(km):
        return {"accounts": n, "churned": churned, "rate": 0.0, "ci_low": None, "ci_high": None,
                "window_days": int(days)}
    last = km.iloc[-1]
    # the interval of churn is one minus the survival interval (R's log interval; no upper churn bound at S = 1)
    return {"accounts": n, "churned": churned, "rate": float(1 - last["survival"]),
            "ci_low": _num(1 - last["ci_high"]), "ci_high": _num(1 - last["ci_low"]), "window_days": int(days)}


def study_window(ds: "Dataset", st: pd.DataFrame, min_at_risk: int) -> int:
    """The window churn is read over: the label horizon, else a year or the longest follow-up at which at least
    ``min_at_risk`` accounts were still observed, whichever is shorter."""
    h = label_horizon(ds)
    return h if h is not None else covered_days(st, min_at_risk)


def window_text(days: int, label: bool) -> str:
    """"over the 60-day window observed" or "over the 90-day label horizon"; "within a year" at a year."""
    if label:
        return f"over the {days}-day label horizon"
    return "within a year" if days >= YEAR_DAYS else f"over the {days}-day window observed"


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)
