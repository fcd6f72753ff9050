"""The privacy rule, in one place: no group or cell of fewer than ``min_cell`` accounts is shown.

:func:`suppress` blanks the values of small rows (counts stay, flagged ``suppressed``, so a reader sees that a cell
exists and is too small); :func:`drop_small` leaves small rows out altogether (a curve or a metric measured on
too few accounts). A study reads ``min_cell`` from its context; these are the only functions that apply it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def is_small(n: int | float | None, min_cell: int) -> bool:
    """True when a count is below the privacy threshold (a missing count counts as small)."""
    return n is None or not n >= min_cell


def small_rows(frame: pd.DataFrame, count: str, min_cell: int) -> pd.Series:
    return ~(frame[count] >= min_cell)


def suppress(frame: pd.DataFrame, count: str, columns: Sequence[str], min_cell: int, *,
             flag: str | None = "suppressed") -> pd.DataFrame:
    """``frame`` with ``columns`` blanked (NaN) where ``count`` is below ``min_cell``; ``flag`` marks those rows."""
    small = small_rows(frame, count, min_cell)
    out = frame.copy()
    cols = [c for c in columns if c in out.columns]
    if small.any() and cols:
        out[cols] = out[cols].astype(float)
        out.loc[small, cols] = np.nan
    if flag:
        out[flag] = small.to_numpy()
    return out


def drop_small(frame: pd.DataFrame, count: str, min_cell: int) -> tuple[pd.DataFrame, int]:
    """``(frame without the rows whose count is below min_cell, how many were left out)``."""
    small = small_rows(frame, count, min_cell)
    return frame[~small].reset_index(drop=True), int(small.sum())
