"""What an attainment effect is worth: churn in percentage points over a window, and ARR, from a hazard ratio.

The headline model says that an account's churn hazard is multiplied by ``hr ** a`` at attainment ``a`` (0 = no
progress, 1 = goals reached; the hazard ratio of full against no attainment is ``hr``). Under that model the
share of accounts that churn within a window is ``1 - (1 - p0) ** (hr ** a)``, where ``p0`` is the churn of
accounts with no progress over the same window. ``p0`` is not taken from the small no-progress group alone: it
is *anchored* on the churn observed for all accounts (:func:`anchor_baseline`), so that the model's churn,
averaged over the accounts' own attainment, equals what was observed. Everything here is a consequence of the
fitted hazard ratio and the observed churn; it is an association (what goes with reaching goals), not the effect
of an intervention, and every figure is reported as such.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

#: attainment groups, in order, with the words a reader sees
GROUPS = (("none", "no progress"), ("partial", "partial progress"), ("reached", "goals reached"))


def churn_at(attainment, p0: float, hr: float) -> np.ndarray:
    """Churn over the window at ``attainment`` (array-like in [0, 1]) when no-progress accounts churn ``p0``."""
    a = np.clip(np.asarray(attainment, dtype=float), 0.0, 1.0)
    return 1.0 - (1.0 - p0) ** (hr ** a)


def anchor_baseline(observed: float, attainment: Sequence[float], hr: float) -> float:
    """The no-progress churn ``p0`` at which the mean of :func:`churn_at` over ``attainment`` equals ``observed``.

    The mean is increasing in ``p0``, so bisection finds it; ``observed`` must lie in [0, 1)."""
    if not 0.0 <= observed < 1.0:
        raise ValueError(f"observed churn must be in [0, 1), not {observed!r}")
    a = np.clip(np.asarray(attainment, dtype=float), 0.0, 1.0)
    a = a[np.isfinite(a)]
    if not len(a):
        raise ValueError("no attainment values to anchor on")
    lo, hi = 0.0, 1.0 - 1e-12
    for _ in range(100):
        mid = (lo + hi) / 2
        if float(churn_at(a, mid, hr).mean()) < observed:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def group_of(attainment: pd.Series, threshold: float = 1.0) -> pd.Series:
    """``none`` (0), ``partial`` (between), ``reached`` (at or above ``threshold``), ``no goals`` (missing)."""
    a = attainment.astype(float)
    out = pd.Series("partial", index=a.index, dtype=object)
    out[a <= 0] = "none"
    out[a >= threshold] = "reached"
    out[a.isna()] = "no goals"
    return out


def churn_difference(observed: float, attainment: Sequence[float], hrs: Sequence[float]) -> list[dict]:
    """For each hazard ratio (estimate and interval ends): churn with no progress, with goals reached, and the
    difference in percentage points, anchored on ``observed``."""
    out = []
    for hr in hrs:
        p0 = anchor_baseline(observed, attainment, hr)
        p1 = float(churn_at(1.0, p0, hr))
        out.append({"hr": hr, "none": p0, "reached": p1, "points": 100 * (p1 - p0)})
    return out


def arr_at_stake(accounts: pd.DataFrame, *, observed: float, anchor: Sequence[float], hr: float,
                 threshold: float = 1.0, arr: str = "arr", attainment: str = "attainment") -> dict:
    """ARR at risk over the window by attainment group, and the ARR that goes with moving accounts up a level.

    ``accounts``: the active accounts, one row each, with ``arr`` and their ``attainment`` now (NaN: no goal
    recorded). ``anchor``: the attainment values ``observed`` churn was measured on (see :func:`anchor_baseline`).
    Returns ``{p0, groups: [{group, accounts, arr, churn, arr_at_risk}], moves: [{from, to, accounts, arr,
    arr_retained}]}``: the expected churn of each account is :func:`churn_at` of its attainment (accounts without
    goals: ``observed``); moving *no progress* to *partial* takes each such account to the partial group's mean
    attainment, moving *partial* to *goals reached* to attainment 1.
    """
    p0 = anchor_baseline(observed, anchor, hr)
    frame = accounts[[arr, attainment]].copy()
    frame[arr] = frame[arr].astype(float).fillna(0.0)
    frame["group"] = group_of(frame[attainment], threshold)
    frame["churn"] = np.where(frame["group"] == "no goals", observed, churn_at(frame[attainment].fillna(0), p0, hr))
    groups = []
    for key in ("none", "partial", "reached", "no goals"):
        sub = frame[frame["group"] == key]
        groups.append({"group": key, "accounts": int(len(sub)), "arr": float(sub[arr].sum()),
                       "churn": float((sub["churn"] * sub[arr]).sum() / sub[arr].sum()) if sub[arr].sum() > 0 else None,
                       "arr_at_risk": float((sub["churn"] * sub[arr]).sum())})
    partial = frame[frame["group"] == "partial"]
    partial_level = float(partial[attainment].mean()) if len(partial) else 0.5
    none = frame[frame["group"] == "none"]
    moves = [
        {"from": "none", "to": "partial", "accounts": int(len(none)), "arr": float(none[arr].sum()),
         "arr_retained": float((none[arr] * (churn_at(0.0, p0, hr) - churn_at(partial_level, p0, hr))).sum())},
        {"from": "partial", "to": "reached", "accounts": int(len(partial)), "arr": float(partial[arr].sum()),
         "arr_retained": float((partial[arr] * (churn_at(partial[attainment], p0, hr) - churn_at(1.0, p0, hr))).sum())},
    ]
    return {"p0": p0, "partial_level": partial_level, "groups": groups, "moves": moves}


def money(x: float | None, currency: str = "") -> str:
    """An amount for a reader: "$1.2 million", "$48,000", "$950"; "–" for none."""
    return _money(x, currency, 0)


def _money(x: float | None, currency: str, extra: int) -> str:
    """:func:`money` with ``extra`` more digits (for a range whose ends would otherwise read the same)."""
    if x is None or not math.isfinite(x):
        return "–"
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x >= 1e9:
        text = f"{x / 1e9:.{1 + extra}f} billion"
    elif x >= 1e6:
        text = f"{x / 1e6:.{1 + extra}f} million"
    elif x >= 1e4:
        text = f"{round(x, min(-3 + extra, 0)):,.0f}"
    else:
        text = f"{round(x, min(-1 + extra, 0)):,.0f}"
    return f"{sign}{currency}{text}"


def money_range(low: float | None, high: float | None, currency: str = "") -> str:
    """An interval of amounts in words: "between $1.2 million and $1.9 million". When both ends would read the
    same (a narrow interval on a large book: "between $1.7 billion and $1.7 billion"), each gets up to two more
    digits ("between $1.69 billion and $1.72 billion"); "about $1.700 billion" when even that cannot part them."""
    for extra in (0, 1, 2):
        a, b = _money(low, currency, extra), _money(high, currency, extra)
        if a != b:
            return f"between {a} and {b}"
    return f"about {a}"
