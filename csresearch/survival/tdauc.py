"""Time-dependent AUC, cumulative cases and dynamic controls, weighted for censoring (``cumulative_dynamic_auc``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._checks import _scored
from .ipcw import ipcw_weights


def cumulative_dynamic_auc(
    df: pd.DataFrame,
    duration: str,
    event: str,
    score: str | Sequence[float] | np.ndarray | pd.Series,
    times: Sequence[float],
) -> pd.DataFrame:
    """AUC(t): how well a score fixed at time 0 separates who has the event by t from who is event-free after t.

    Parameters
    ----------
    df : DataFrame
        One row per subject; time 0 is when the score is known (a landmark).
    duration, event : str
        Time from time 0 to the event or censoring, and the 0/1 event flag.
    score : str or array-like
        Risk score, higher = higher risk.
    times : sequence of float
        The horizons t.

    Returns
    -------
    DataFrame
        ``time, auc, cases, controls``: ``cases`` had the event by t, ``controls`` are event-free after t; ``auc``
        is NaN where either is empty.

    Method
    ------
    Uno et al. (2007) / Hung and Chiang (2010), as scikit-survival's ``cumulative_dynamic_auc``: AUC(t) =
    sum_i sum_j w_i [s_i > s_j] / sum_i sum_j w_i over cases i (event at T_i <= t) and controls j (T_j > t),
    a tied score counting 1/2, with case weights w_i = 1 / G(T_i-) (:func:`csresearch.survival.ipcw_weights`;
    the controls' weight 1 / G(t) is the same for all and cancels).  Subjects censored before t are neither
    cases nor controls; the weights make the observed cases stand for those censored ones.  Without
    censoring it is the plain share of case-control pairs in the right order.
    """
    t, d, s = _scored(df, duration, event, score, "cumulative_dynamic_auc")
    rows = []
    for horizon in times:
        case = d & (t <= horizon)
        control = t > horizon
        n_case, n_control = int(case.sum()), int(control.sum())
        auc = np.nan
        if n_case and n_control:
            w = ipcw_weights(df, duration, event, horizon).to_numpy()[case]
            ctrl = np.sort(s[control])
            below = np.searchsorted(ctrl, s[case], side="left")
            ties = np.searchsorted(ctrl, s[case], side="right") - below
            auc = float((w * (below + 0.5 * ties)).sum() / (w.sum() * n_control))
        rows.append({"time": float(horizon), "auc": auc, "cases": n_case, "controls": n_control})
    return pd.DataFrame(rows)
