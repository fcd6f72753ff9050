"""Inverse-probability-of-censoring weights for the status at a horizon (``ipcw_weights``): how accuracy measures
at a time (time-dependent AUC, Brier score, calibration) count subjects whose status then is known."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._checks import _check_missing, _event_array, _require_columns, _times


def censoring_survival(df: pd.DataFrame, duration: str, event: str) -> pd.DataFrame:
    """G(t), the Kaplan-Meier curve of the *censoring* times: ``time, survival`` at each censoring time.

    The "events" are the censored rows; a subject with the event at t is at risk of censoring at t (censoring
    is taken to happen after an event at the same time), the usual reverse Kaplan-Meier convention.
    """
    func = "censoring_survival"
    _require_columns(df, [duration, event], func)
    _check_missing(df, [duration, event], func)
    t, _ = _times(df, duration, None, func)
    c = 1 - _event_array(df, event, func)
    times, inv = np.unique(t, return_inverse=True)
    n = len(t) - np.searchsorted(np.sort(t), times, side="left")
    cens = np.bincount(inv, weights=c, minlength=len(times))
    surv = np.cumprod(1.0 - cens / n)
    keep = cens > 0
    return pd.DataFrame({"time": times[keep], "survival": surv[keep]})


def ipcw_weights(df: pd.DataFrame, duration: str, event: str, horizon: float) -> pd.Series:
    """Weights that let the subjects whose status at ``horizon`` is known stand for all (Graf et al. 1999).

    Returns a Series aligned with ``df``: ``1 / G(T-)`` for an event at T <= horizon, ``1 / G(horizon)`` for a
    subject still event-free after the horizon (T > horizon), and 0 for a subject censored at or before it
    (its status is unknown). G is :func:`censoring_survival`; ``G(T-)`` is its value just before T. Without
    censoring every weight is 1.
    """
    t = df[duration].to_numpy(float)
    d = df[event].to_numpy() == 1
    g = censoring_survival(df, duration, event)
    gt, gs = g["time"].to_numpy(), np.concatenate([[1.0], g["survival"].to_numpy()])
    g_before = gs[np.searchsorted(gt, t, side="left")]  # G(T-)
    g_horizon = gs[np.searchsorted(gt, float(horizon), side="right")]  # G(horizon)
    w = np.zeros(len(t))
    case = d & (t <= horizon)
    w[case] = 1.0 / g_before[case]
    if g_horizon > 0:
        w[t > horizon] = 1.0 / g_horizon
    return pd.Series(w, index=df.index, name="ipcw")
