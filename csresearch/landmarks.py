"""Attainment at a landmark: accounts still active at a fixed tenure, with their attainment then.

Free of immortal time because nobody is classified by the future: an account counts only if it was still a
customer at the landmark, and only what was known then is used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .attainment import account_attainment
from .cohorts import survival_table
from .models import AnalysisError, goal_progress, require_goals

if TYPE_CHECKING:
    from .data import Dataset

GROUPS = ("none", "partial", "attained")


def attainment_at_tenure(ds: "Dataset", days: float, *, lag_days: int = 0, threshold: float = 1.0) -> pd.DataFrame:
    """Each account's attainment at a tenure of ``days`` (start_date + days): account_id, attainment, goals_set..."""
    pts = pd.DataFrame({"account_id": ds.accounts["account_id"],
                        "date": ds.accounts["start_date"] + pd.Timedelta(days=float(days))})
    return account_attainment(ds.goals, goal_progress(ds), pts, lag_days=lag_days, threshold=threshold)


def attainment_group(attainment: pd.Series, threshold: float = 1.0) -> pd.Series:
    """none (0), partial (between 0 and the threshold) or attained (at or above the threshold)."""
    if not 0 < threshold <= 1:
        raise AnalysisError(f"attainment_threshold must be in (0, 1], not {threshold}")
    group = np.where(attainment >= threshold, "attained", np.where(attainment > 0, "partial", "none"))
    return pd.Series(pd.Categorical(group, categories=GROUPS), index=attainment.index)


def landmark_table(ds: "Dataset", landmark_days: float, *, lag_days: int = 0, threshold: float = 1.0) -> pd.DataFrame:
    """Accounts active at ``landmark_days`` of tenure with their attainment then and their follow-up after it.

    Columns: the survival table's, plus ``attainment, goals_set, goals_attained, group`` (none / partial /
    attained at ``threshold``) and ``time`` (days after the landmark), ``entry_after`` (delayed entry after the
    landmark for snapshot exports whose observation began later).
    """
    require_goals(ds)
    st = survival_table(ds)
    st = st[st["duration"] > landmark_days].copy()
    att = attainment_at_tenure(ds, landmark_days, lag_days=lag_days, threshold=threshold).set_index("account_id")
    st = st.join(att[["attainment", "goals_set", "goals_attained"]], on="account_id")
    st = st[st["attainment"].notna()]
    st["group"] = attainment_group(st["attainment"], threshold)
    st["time"] = st["duration"] - landmark_days
    st["entry_after"] = (st["entry"] - landmark_days).clip(lower=0)
    return st.reset_index(drop=True)
