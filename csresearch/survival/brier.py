"""The Brier score of predicted risks at a horizon, weighted for censoring (``brier_score``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._checks import _scored
from .ipcw import ipcw_weights


def brier_score(df: pd.DataFrame, duration: str, event: str, risk: str | Sequence[float] | np.ndarray | pd.Series,
                horizon: float) -> dict[str, float]:
    """Mean squared error of predicted risks of the event by ``horizon``, censoring-weighted (Graf et al. 1999).

    Parameters
    ----------
    df : DataFrame
        One row per subject; time 0 is when the prediction is made.
    duration, event : str
        Time to the event or censoring, and the 0/1 event flag.
    risk : str or array-like
        Predicted probability of the event by ``horizon`` (in [0, 1]).

    Returns
    -------
    dict
        ``brier`` (0 is perfect; always predicting 1/2 scores 0.25), ``n`` (subjects), ``known`` (subjects whose
        status at the horizon is known: the event by then, or followed beyond it).

    Method
    ------
    BS(t) = (1/n) sum_i w_i (y_i - r_i)^2 with y_i = 1 for an event by t, w_i the inverse-probability-of-
    censoring weight (:func:`csresearch.survival.ipcw_weights`: 1/G(T_i-) for an event by t, 1/G(t) after t,
    0 when censored by t).  Without censoring it is the plain mean of (y - r)^2.
    """
    t, d, r = _scored(df, duration, event, risk, "brier_score", probability=True)
    w = ipcw_weights(df, duration, event, horizon).to_numpy()
    y = (d & (t <= horizon)).astype(float)
    return {"brier": float((w * (y - r) ** 2).sum() / len(t)) if len(t) else float("nan"), "n": int(len(t)),
            "known": int((w > 0).sum())}
