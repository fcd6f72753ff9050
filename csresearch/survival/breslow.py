"""Breslow's baseline cumulative hazard of a fitted proportional-hazards model (``breslow_baseline``), and its
value at given times (``cumulative_hazard_at``): what turns a linear predictor into a predicted risk."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._checks import _as_list, _check_missing, _event_array, _require_columns, _times


def breslow_baseline(
    df: pd.DataFrame,
    duration: str,
    event: str,
    score: str | Sequence[float] | np.ndarray | pd.Series,
    entry: str | None = None,
    strata: str | None = None,
) -> pd.DataFrame:
    """Breslow's estimate of the baseline cumulative hazard H0(t), per stratum.

    Parameters
    ----------
    df : DataFrame
        The rows the model was fitted on (one per subject, or ``(entry, duration]`` episodes).
    duration, event, entry : str
        As :func:`csresearch.survival.fit_cox` (a row is at risk at t iff entry < t <= duration).
    score : str or array-like
        The fitted linear predictor x'beta of every row, on the scale the predictions will use (H0 is the
        cumulative hazard of a subject with score 0).
    strata : str, optional
        One baseline per value (a stratified model).

    Returns
    -------
    DataFrame
        ``stratum, time, events, at_risk, cumhaz``: one row per distinct event time per stratum (sorted by
        stratum then time; ``stratum`` is None without ``strata``); ``at_risk`` is the sum of exp(score) over
        the rows at risk at ``time``; ``cumhaz`` is H0(time).

    Method
    ------
    H0(t) = sum over event times u <= t of d(u) / sum_{j at risk at u} exp(score_j) -- Breslow (1972), R's
    ``basehaz(fit, centered=FALSE)`` for a Breslow-ties fit (for an Efron fit R spreads tied events slightly
    differently).  With every score 0 it is the Nelson-Aalen estimate.
    """
    func = "breslow_baseline"
    cols = [duration, event] + _as_list(entry) + _as_list(strata) + ([score] if isinstance(score, str) else [])
    _require_columns(df, cols, func)
    _check_missing(df, cols, func)
    t, e = _times(df, duration, entry, func)
    d = _event_array(df, event, func)
    s = df[score].to_numpy(float) if isinstance(score, str) else np.asarray(score, dtype=float).ravel()
    if len(s) != len(df) or not np.isfinite(s).all():
        raise ValueError(f"{func}: score must be {len(df)} finite values")
    if strata is None:
        codes, labels = np.zeros(len(df), dtype=np.int64), [None]
    else:
        codes, labels = pd.factorize(df[strata], sort=True)
    parts = []
    for k, label in enumerate(labels):
        m = codes == k
        parts.append(_baseline(t[m], None if e is None else e[m], d[m], s[m], label))
    out = pd.concat(parts, ignore_index=True)
    # every stratum fitted, events or not: a stratum without events has no rows, and its H0 is 0 throughout
    out.attrs["strata"] = list(labels)
    return out


def _baseline(t, e, d, s, label) -> pd.DataFrame:
    times, dk = np.unique(t[d == 1], return_counts=True)
    shift = s.max() if len(s) else 0.0
    r = np.exp(s - shift)  # exp(score) / exp(shift): the shift is put back below
    order = np.argsort(t)
    cum = np.concatenate([np.cumsum(r[order][::-1])[::-1], [0.0]])  # sum of r over rows with t >= t_(i)
    risk = cum[np.searchsorted(t[order], times, side="left")]
    if e is not None:
        eo = np.argsort(e)
        cum_e = np.concatenate([np.cumsum(r[eo][::-1])[::-1], [0.0]])
        risk = risk - cum_e[np.searchsorted(e[eo], times, side="left")]  # minus rows not yet entered (entry >= t)
    at_risk = risk * np.exp(shift)
    with np.errstate(divide="ignore"):
        cumhaz = np.cumsum(dk / at_risk)
    return pd.DataFrame({"stratum": pd.Series([label] * len(times), dtype=object), "time": times,
                         "events": dk.astype(np.int64), "at_risk": at_risk, "cumhaz": cumhaz})


def cumulative_hazard_at(baseline: pd.DataFrame, times: Sequence[float] | np.ndarray,
                         strata: Sequence | np.ndarray | None = None) -> np.ndarray:
    """H0 of a :func:`breslow_baseline` frame at each of ``times`` (a right-continuous step function, 0 before
    the first event time), in the stratum given for each time (``strata``: one value per time, or None)."""
    times = np.asarray(times, dtype=float).ravel()
    b_lab = baseline["stratum"].to_numpy(dtype=object)
    q_lab = np.full(len(times), None, dtype=object) if strata is None else np.asarray(strata, dtype=object).ravel()
    codes, labels = pd.factorize(np.concatenate([b_lab, q_lab]), use_na_sentinel=False)
    cb, cq = codes[:len(b_lab)], codes[len(b_lab):]
    out = np.zeros(len(times))
    fitted = set(baseline.attrs.get("strata", ()))
    for k in np.unique(cq):
        curve = cb == k
        if not curve.any():
            if labels[k] in fitted:  # fitted, but no event in it: Breslow's H0 is 0 at every time
                continue
            raise ValueError(f"cumulative_hazard_at: no baseline for stratum {labels[k]!r}")
        m = cq == k
        pos = np.searchsorted(baseline["time"].to_numpy()[curve], times[m], side="right")
        out[m] = np.concatenate([[0.0], baseline["cumhaz"].to_numpy()[curve]])[pos]
    return out
