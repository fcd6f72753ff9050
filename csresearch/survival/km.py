"""Kaplan-Meier curves (``fit_km``), cross-checked against statsmodels' ``SurvfuncRight`` and lifelines.

Kaplan-Meier is a curve, not a regression: ``fit_km`` returns a tidy frame, one row per time per group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._checks import _as_list, _check_missing, _event_array, _require_columns, _times, _z


def fit_km(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str | None = None,
    entry: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Kaplan-Meier survival curve(s) with R-compatible confidence intervals.

    Parameters
    ----------
    df : DataFrame
        One row per subject (or per ``(entry, duration]`` episode).
    duration, event : str
        Columns with the event/censoring time (>= 0) and the 0/1 event flag.
    group : str, optional
        Column whose values define separate curves.  ``None``: one curve.
    entry : str, optional
        Left-truncation (delayed entry) time.  A row is at risk at ``t`` iff
        ``entry < t <= duration`` (entry exclusive, as R's
        ``survfit(Surv(entry, duration, event) ~ ...)``).
    alpha : float
        1 - confidence level of the pointwise intervals.

    Returns
    -------
    DataFrame
        Columns ``group, time, at_risk, events, censored, survival, ci_low,
        ci_high``: one row per distinct ``duration`` value per group (sorted by
        group then time; ``group`` is None without ``group``).  ``at_risk`` is
        the number at risk just before ``time``; ``survival`` is the product-
        limit estimate S(time) (right-continuous).

    Method
    ------
    S(t) = prod_{t_k <= t} (1 - d_k / n_k).  The interval is R ``survfit``'s
    default ``conf.type="log"``: S(t) * exp(+-z * se), se = sqrt(sum d_k /
    (n_k (n_k - d_k))) (Greenwood's variance of log S), upper bound capped at
    1, and NaN where S(t) = 0 -- the same numbers R prints.  (We chose R's
    default over the log(-log) Kalbfleisch-Prentice interval so results can be
    compared with R output directly.)  Survival values equal statsmodels'
    ``SurvfuncRight`` and lifelines' ``KaplanMeierFitter`` (both, like R,
    treat entry as exclusive when estimating S; note that lifelines'
    ``event_table["at_risk"]`` column nevertheless counts subjects entering
    *at* t, so it can be larger than our ``at_risk``).
    """
    func = "fit_km"
    cols = [duration, event] + _as_list(group) + _as_list(entry)
    _require_columns(df, cols, func)
    _check_missing(df, cols, func)
    t, e = _times(df, duration, entry, func)
    d = _event_array(df, event, func)
    z = _z(alpha)

    if group is None:
        labels = [None]
        codes = np.zeros(len(df), dtype=np.int64)
    else:
        codes, uniques = pd.factorize(df[group], sort=True)
        labels = list(uniques)

    parts = []
    for g, label in enumerate(labels):
        m = codes == g
        parts.append(_km_curve(t[m], d[m], None if e is None else e[m], z, label))
    return pd.concat(parts, ignore_index=True)


def _km_curve(tg: np.ndarray, dg: np.ndarray, eg: np.ndarray | None, z: float, label) -> pd.DataFrame:
    """One group's curve: the rows of ``fit_km`` for times ``tg``, events ``dg`` and entries ``eg``."""
    times, inv, counts = np.unique(tg, return_inverse=True, return_counts=True)
    ev = np.bincount(inv, weights=dg, minlength=len(times)).astype(np.int64)
    # rows with duration >= t_k ...
    n_stop = np.cumsum(counts[::-1])[::-1]
    if eg is not None:
        # ... minus rows not yet entered (entry >= t_k)
        eg = np.sort(eg)
        n_stop = n_stop - (len(eg) - np.searchsorted(eg, times, side="left"))
    n = n_stop.astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - ev / n)
        gw = np.cumsum(np.where(ev > 0, ev / (n * (n - ev)), 0.0))
        se = np.sqrt(gw)
        lo = surv * np.exp(-z * se)
        hi = np.minimum(surv * np.exp(z * se), 1.0)
    zero = surv <= 0
    surv = np.where(zero, 0.0, surv)
    lo = np.where(zero, np.nan, lo)
    hi = np.where(zero, np.nan, hi)
    return pd.DataFrame(
        {
            "group": pd.Series([label] * len(times), dtype=object),
            "time": times,
            "at_risk": n,
            "events": ev,
            "censored": counts - ev,
            "survival": surv,
            "ci_low": lo,
            "ci_high": hi,
        }
    )
