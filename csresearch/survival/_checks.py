"""Input checks shared by the survival estimators.

Conventions every estimator enforces (through these functions)
--------------------------------------------------------------
* ``duration`` is the time of the event or of censoring (the *stop* time of a
  ``(start, stop]`` episode when ``entry`` is given).  Durations must be finite
  and non-negative.
* ``event`` is 1/0 (or True/False): 1 means the event happened at ``duration``.
* ``entry`` (optional) is the left-truncation / start time.  A row is in the
  risk set at time ``t`` iff ``entry < t <= duration`` -- entry is *exclusive*,
  exactly as R's ``Surv(start, stop, event)``.  ``entry`` must be finite,
  non-negative and strictly smaller than ``duration``.
* Missing values are never dropped silently: a NaN in any column that a
  function uses raises ``ValueError`` naming the column and the count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

ENGINES = ("auto", "statsmodels", "numpy")


def _as_list(cols: str | Sequence[str] | None) -> list[str]:
    if cols is None:
        return []
    if isinstance(cols, str):
        return [cols]
    return list(cols)


def _require_columns(df: pd.DataFrame, cols: Sequence[str], func: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{func}: df must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"{func}: column(s) not in DataFrame: {missing}")
    if len(df) == 0:
        raise ValueError(f"{func}: DataFrame has no rows")


def _check_missing(df: pd.DataFrame, cols: Sequence[str], func: str) -> None:
    for c in dict.fromkeys(cols):
        k = int(df[c].isna().sum())
        if k:
            raise ValueError(
                f"{func}: column {c!r} has {k} missing value(s) (NaN/None) out of {len(df)} rows; "
                "rows are never dropped silently -- drop or impute them explicitly first"
            )


def _numeric(df: pd.DataFrame, col: str, func: str, role: str) -> np.ndarray:
    s = df[col]
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(s):
        raise TypeError(
            f"{func}: {role} column {col!r} has non-numeric dtype {s.dtype}; "
            "encode it (e.g. as 0/1 indicator columns) before calling"
        )
    a = s.to_numpy(dtype=float)
    bad = int((~np.isfinite(a)).sum())
    if bad:
        raise ValueError(f"{func}: {role} column {col!r} has {bad} non-finite value(s) (inf)")
    return a


def _event_array(df: pd.DataFrame, col: str, func: str, role: str = "event") -> np.ndarray:
    a = _numeric(df, col, func, role)
    bad = int((~np.isin(a, (0.0, 1.0))).sum())
    if bad:
        raise ValueError(f"{func}: {role} column {col!r} must be 0/1 (or bool); {bad} row(s) have other values")
    return a == 1.0


def _times(df: pd.DataFrame, duration: str, entry: str | None, func: str) -> tuple[np.ndarray, np.ndarray | None]:
    t = _numeric(df, duration, func, "duration")
    neg = int((t < 0).sum())
    if neg:
        raise ValueError(f"{func}: duration column {duration!r} has {neg} negative value(s)")
    if entry is None:
        return t, None
    e = _numeric(df, entry, func, "entry")
    neg = int((e < 0).sum())
    if neg:
        raise ValueError(f"{func}: entry column {entry!r} has {neg} negative value(s)")
    bad = int((e >= t).sum())
    if bad:
        raise ValueError(
            f"{func}: {bad} row(s) have entry {entry!r} >= duration {duration!r}; "
            "a (start, stop] episode needs start < stop"
        )
    return t, e


def _codes(df: pd.DataFrame, cols: Sequence[str]) -> tuple[np.ndarray, int]:
    """Integer codes 0..G-1 for the combinations of ``cols`` (sorted order)."""
    cols = list(cols)
    if len(cols) == 1:
        codes, uniques = pd.factorize(df[cols[0]], sort=True)
        return codes.astype(np.int64), len(uniques)
    codes = df.groupby(cols, sort=True, dropna=False).ngroup().to_numpy(dtype=np.int64)
    return codes, int(codes.max()) + 1


def _dense_rank(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` (the sorted distinct values, and each value's rank among them)
    for numbers without NaN, by hashing, then sorting only the distinct values: O(n) where ``np.unique`` sorts all n
    (times of a monthly panel have a few hundred distinct values in millions of rows). -0.0 is 0.0, as there."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        values = values + 0.0  # -0.0 + 0.0 is 0.0: one key for both, as np.unique's comparison has it
    codes, uniques = pd.factorize(values, sort=False)
    if len(codes) and codes.min() < 0:  # NaN: np.unique's own rules
        return np.unique(values, return_inverse=True)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return uniques[order], rank[codes]


def _design_columns(df: pd.DataFrame, covariates: Sequence[str], func: str) -> list[np.ndarray]:
    """The covariate columns as float arrays, checked: numeric, finite, not constant, not duplicated. A float64
    column is the frame's own array, not a copy: the caller reads it and never writes it."""
    if len(covariates) == 0:
        raise ValueError(f"{func}: at least one covariate is required")
    dup = [c for c in dict.fromkeys(covariates) if list(covariates).count(c) > 1]
    if dup:
        raise ValueError(f"{func}: duplicated covariate(s): {dup}")
    columns = [_numeric(df, c, func, "covariate") for c in covariates]
    const = [c for c, a in zip(covariates, columns) if np.ptp(a) == 0]
    if const:
        raise ValueError(f"{func}: covariate(s) with zero variance (constant column): {const}")
    return columns


def _design(df: pd.DataFrame, covariates: Sequence[str], func: str, order: str = "C") -> np.ndarray:
    """The covariate columns as one float matrix (a copy), checked as :func:`_design_columns` checks them.
    ``order="F"`` stores each column contiguously, for code that reads the matrix a column at a time."""
    columns = _design_columns(df, covariates, func)
    X = np.empty((len(df), len(columns)), order=order)
    for j, a in enumerate(columns):
        X[:, j] = a
    return X


def _check_rank(X: np.ndarray, names: Sequence[str], func: str, tol: float = 1e-8) -> None:
    """Raise if a column of ``X`` is (numerically) a linear combination of earlier ones: its part orthogonal to
    them, relative to its norm, is below ``tol``."""
    Xs = X / np.sqrt(np.mean(X * X, axis=0))
    r = np.abs(np.diag(np.linalg.qr(Xs, mode="r"))) / np.sqrt(len(Xs))
    bad = [nm for nm, v in zip(names, r) if v < tol]
    if bad:
        raise ValueError(
            f"{func}: covariates are collinear: {bad} is a linear combination of the covariates before it"
        )


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(stats.norm.ppf(1 - alpha / 2))


def _check_engine(engine: str, func: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"{func}: engine must be 'auto', 'statsmodels' or 'numpy', got {engine!r}")


def _count_events(ev: np.ndarray, event: str, func: str) -> int:
    """Number of events; raises when there are none (the model is not identified)."""
    n_events = int(ev.sum())
    if n_events == 0:
        raise ValueError(f"{func}: no events (column {event!r} is all 0); the model is not identified")
    return n_events


def _scored(df: pd.DataFrame, duration: str, event: str, score, func: str, *, probability: bool = False):
    """The checked inputs of a measure of a prediction: times, event flags (bool) and one score per row (a column
    name or array-like; ``probability``: values in [0, 1])."""
    cols = [duration, event] + ([score] if isinstance(score, str) else [])
    _require_columns(df, cols, func)
    _check_missing(df, cols, func)
    t, _ = _times(df, duration, None, func)
    d = _event_array(df, event, func) == 1
    s = df[score].to_numpy(float) if isinstance(score, str) else np.asarray(score, dtype=float).ravel()
    what = "probabilities in [0, 1]" if probability else "finite values"
    if len(s) != len(df) or not np.isfinite(s).all() or (probability and ((s < 0).any() or (s > 1).any())):
        raise ValueError(f"{func}: the {'risk' if probability else 'score'} must be {len(df)} {what}")
    return t, d, s
