"""Calibration of predicted risks at a horizon: intercept and slope (``calibration_fit``) and the observed risk by
tenths of predicted risk (``calibration_table``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._checks import _scored
from .ipcw import ipcw_weights
from .km import fit_km


def calibration_fit(df: pd.DataFrame, duration: str, event: str, risk: str | Sequence[float] | np.ndarray,
                    horizon: float) -> dict[str, float]:
    """Calibration intercept and slope of predicted risks of the event by ``horizon``.

    Returns ``{intercept, slope, n, known}``. The **slope** is b of the logistic recalibration
    logit P(y = 1) = a + b logit(r): 1 when the predictions spread as much as the outcomes do, below 1 when they
    are too extreme (overfitting). The **intercept** (calibration-in-the-large) is a of logit P(y = 1) = a +
    logit(r) (slope fixed at 1): 0 when the predicted risks are right on average, above 0 when they are too low.
    y = 1 for an event by the horizon; censoring is handled by weighting the subjects whose status is known
    with their inverse-probability-of-censoring weights (:func:`csresearch.survival.ipcw_weights`). Risks are
    clipped to [1e-6, 1 - 1e-6] before the logit.
    """
    import statsmodels.api as sm

    t, d, r = _scored(df, duration, event, risk, "calibration_fit", probability=True)
    w = ipcw_weights(df, duration, event, horizon).to_numpy()
    known = w > 0
    y = (d & (t <= horizon)).astype(float)[known]
    lp = np.log(np.clip(r, 1e-6, 1 - 1e-6) / (1 - np.clip(r, 1e-6, 1 - 1e-6)))[known]
    w = w[known]
    out = {"intercept": float("nan"), "slope": float("nan"), "n": int(len(t)), "known": int(known.sum())}
    if y.min(initial=1) == y.max(initial=0) or np.ptp(lp) == 0:
        return out
    family = sm.families.Binomial()
    slope = sm.GLM(y, sm.add_constant(lp), family=family, var_weights=w).fit()
    large = sm.GLM(y, np.ones((len(y), 1)), family=family, offset=lp, var_weights=w).fit()
    out.update(intercept=float(large.params[0]), slope=float(slope.params[1]))
    return out


def calibration_table(df: pd.DataFrame, duration: str, event: str, risk: str | Sequence[float] | np.ndarray,
                      horizon: float, groups: int = 10, alpha: float = 0.05) -> pd.DataFrame:
    """Predicted against observed risk of the event by ``horizon``, by ``groups`` equal-sized groups of predicted risk.

    Returns ``group, risk_from, risk_to, mean_predicted, observed, ci_low, ci_high, n``: per group (1 = lowest
    predicted risk) the range and mean of the predicted risks, the Kaplan-Meier risk 1 - S(horizon) of its
    subjects with its ``1 - alpha`` interval (:func:`csresearch.survival.fit_km`; NaN when no subject of the
    group was followed to the horizon) and its size. Subjects with tied risks stay in one group, so there may be
    fewer groups.
    """
    t, d, r = _scored(df, duration, event, risk, "calibration_table", probability=True)
    n_groups = max(1, min(int(groups), len(r)))
    group = pd.qcut(r, n_groups, labels=False, duplicates="drop")
    rows = []
    frame = pd.DataFrame({"t": t, "d": d.astype(int)})
    for k, g in enumerate(np.unique(group)):
        m = group == g
        km = fit_km(frame[m], "t", "d", alpha=alpha)
        before = km[km["time"] <= horizon]
        followed = t[m].max() >= horizon
        surv = before.iloc[-1] if len(before) else None
        obs = (1 - surv["survival"] if surv is not None else 0.0) if followed else np.nan
        lo = (1 - surv["ci_high"] if surv is not None else 0.0) if followed else np.nan
        hi = (1 - surv["ci_low"] if surv is not None else 0.0) if followed else np.nan
        rows.append({"group": k + 1, "risk_from": float(r[m].min()), "risk_to": float(r[m].max()),
                     "mean_predicted": float(r[m].mean()), "observed": float(obs), "ci_low": float(lo),
                     "ci_high": float(hi), "n": int(m.sum())})
    return pd.DataFrame(rows)
