"""Goal and account attainment over time, and the account-month panel used by the survival models.

Attainment follows the data contract. A goal's attainment at date ``t`` uses its latest measurement on or
before ``t``: ``clip((value - baseline) / (target - baseline), 0, 1)``, so the direction of the goal is
handled by the sign of ``target - baseline``; before any measurement it is 0. An account's attainment is the
weight-averaged attainment of the goals it had set by ``t`` (``set_date <= t``); it is 0 while its goals are
set but unmeasured, and missing (NaN) before the account's first goal is set (or if it never sets one): an
account enters attainment analyses when its first goal is recorded, never earlier.

To explain churn, attainment must be *known at the start* of the interval it explains: a covariate measured
later would let end-of-life stalls (an account that has decided to leave stops reporting progress) pass for
causes. :func:`episodes` therefore evaluates attainment at each interval's start, optionally ``lag_days``
earlier still, and takes usage from the latest *completed* usage period before the interval starts.

All functions take and return tidy DataFrames (dates as ``datetime64``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

from ._memory import release_memory

if TYPE_CHECKING:
    from .data import Dataset

DAYS_PER_MONTH = 365.25 / 12


class _Pairs:
    """Points paired with their accounts' goals, on integer keys (no frame merges).

    Goals are grouped by account; progress is keyed by (goal, day) and sorted, so the latest measurement of a
    goal on or before a day is one binary search. :meth:`chunks` yields, for ``chunk_rows`` points at a time,
    every (point, goal set on or before the point's reference day) pair with the goal's attainment then, so
    memory is bounded by a chunk's pairs whatever the number of points (a 20-million-row panel)."""

    def __init__(self, goals: pd.DataFrame, progress: pd.DataFrame, account_ids, dates, lag_days: int):
        g = goals.reset_index(drop=True)
        acc_codes, acc_ids = pd.factorize(g["account_id"])
        self.order = np.argsort(acc_codes, kind="stable")  # goal positions grouped by account
        self.bounds = np.searchsorted(acc_codes[self.order], np.arange(len(acc_ids) + 1))
        self.set_day = _days(g["set_date"])[self.order]
        self.base = g["baseline"].to_numpy(float)[self.order]
        self.span = g["target"].to_numpy(float)[self.order] - self.base
        self.weight = g["weight"].to_numpy(float)[self.order]
        pos = np.empty(len(g), dtype=np.int64)
        pos[self.order] = np.arange(len(g))
        p_goal = pd.Index(g["goal_id"]).get_indexer(progress["goal_id"]) if len(progress) else np.empty(0, np.int64)
        known = p_goal >= 0
        p_key = pos[p_goal[known]] * _DAY_SPAN + _days(progress["date"])[known]
        p_order = np.argsort(p_key, kind="stable")
        self.p_key = p_key[p_order]
        self.p_value = progress["value"].to_numpy(float)[known][p_order]
        self.point_acc = pd.Index(acc_ids).get_indexer(account_ids)
        self.ref_day = _days(dates) - int(lag_days)
        self.n = len(self.ref_day)

    def chunks(self, chunk_rows: int):
        """Yield ``(lo, hi, row, goal, value, attainment)``: ``row`` relative to ``lo``; ``goal`` a position in
        ``self.order`` (so ``self.order[goal]`` is the goals row); ``value`` NaN when not yet measured."""
        for lo in range(0, self.n, chunk_rows):
            hi = min(self.n, lo + chunk_rows)
            acc = self.point_acc[lo:hi]
            rows = np.flatnonzero(acc >= 0)
            first = self.bounds[acc[rows]]
            k = self.bounds[acc[rows] + 1] - first
            row = np.repeat(rows, k)
            goal = np.repeat(first, k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
            ref = self.ref_day[lo:hi][row]
            keep = self.set_day[goal] <= ref
            row, goal, ref = row[keep], goal[keep], ref[keep]
            if len(self.p_key):
                last = np.searchsorted(self.p_key, goal * _DAY_SPAN + ref, side="right") - 1
                safe = np.maximum(last, 0)
                # the latest key at or before (goal, ref) must be this goal's (an earlier goal's keys are smaller)
                measured = (last >= 0) & (self.p_key[safe] // _DAY_SPAN == goal)
                value = np.where(measured, self.p_value[safe], np.nan)
            else:
                measured, value = np.zeros(len(goal), dtype=bool), np.full(len(goal), np.nan)
            with np.errstate(invalid="ignore"):
                att = np.where(measured, np.clip((value - self.base[goal]) / self.span[goal], 0.0, 1.0), 0.0)
            yield lo, hi, row, goal, value, att


def goal_attainment(goals: pd.DataFrame, progress: pd.DataFrame, points: pd.DataFrame, *,
                    date: str = "date", lag_days: int = 0) -> pd.DataFrame:
    """Attainment of every goal of an account at given dates.

    Args:
        goals: the contract's goals table (goal_id, account_id, baseline, target, set_date, weight).
        progress: the contract's goal_progress table (goal_id, date, value).
        points: query rows with ``account_id`` and a date column ``date``; any other columns are carried.
        lag_days: evaluate ``lag_days`` before each date (what was known then).

    Returns:
        One row per (point, goal set on or before the reference date), by point then goal_id: the point's
        columns plus ``goal_id, metric, weight, value`` (latest measurement on or before the date, NaN if none)
        and ``attainment`` in [0, 1] (0 before the first measurement).
    """
    pts = points.reset_index(drop=True)
    pairs = _Pairs(goals, progress, pts["account_id"].to_numpy(), pts[date].to_numpy(), lag_days)
    parts = [(lo + row, goal, value, att) for lo, _, row, goal, value, att in pairs.chunks(max(len(pts), 1))]
    row, goal, value, att = (np.concatenate(x) for x in zip(*parts)) if parts else [np.empty(0, int)] * 4
    g = goals.reset_index(drop=True)
    src = pairs.order[goal.astype(np.int64)]
    rank = np.empty(len(g), dtype=np.int64)
    rank[np.argsort(g["goal_id"].to_numpy(dtype=str), kind="stable")] = np.arange(len(g))
    by = np.lexsort((rank[src], row))
    row, src, value, att = row[by], src[by], value[by], att[by]
    out = pts.iloc[row].reset_index(drop=True)
    out["goal_id"] = g["goal_id"].to_numpy()[src]
    out["metric"] = g["metric"].to_numpy()[src]
    out["weight"] = g["weight"].to_numpy(float)[src]
    out["value"] = value.astype(float)
    out["attainment"] = att.astype(float)
    return out


def account_attainment(goals: pd.DataFrame, progress: pd.DataFrame, points: pd.DataFrame, *,
                       date: str = "date", lag_days: int = 0, threshold: float = 1.0,
                       chunk_rows: int = 2_000_000) -> pd.DataFrame:
    """Account attainment at given dates: ``points`` plus ``attainment``, ``goals_set`` and ``goals_attained``.

    ``attainment`` is the weight-averaged goal attainment over the goals set on or before the (lagged) date:
    0 when goals are set but unmeasured, NaN when no goal is set yet (or the account has none).
    ``goals_attained`` counts goals whose attainment reached ``threshold``. The rules of
    :func:`goal_attainment`, aggregated per point ``chunk_rows`` points at a time.
    """
    out = points.reset_index(drop=True).copy()
    att, n_set, n_hit = _attainment_arrays(goals, progress, out["account_id"].to_numpy(), out[date].to_numpy(),
                                           lag_days, threshold, chunk_rows)
    out["attainment"] = att
    out["goals_set"] = n_set.astype(np.int64)
    out["goals_attained"] = n_hit.astype(np.int64)
    return out


def _attainment_arrays(goals: pd.DataFrame, progress: pd.DataFrame, account_ids, dates, lag_days: int,
                       threshold: float, chunk_rows: int = 2_000_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`account_attainment` as three arrays (attainment, goals set, goals attained as int32), no frames."""
    pairs = _Pairs(goals, progress, account_ids, dates, lag_days)
    n = pairs.n
    att_out = np.zeros(n)
    n_set, n_hit = np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int32)
    for lo, hi, row, goal, _, att in pairs.chunks(chunk_rows):
        m = hi - lo
        wa = np.bincount(row, weights=pairs.weight[goal] * att, minlength=m)
        w = np.bincount(row, weights=pairs.weight[goal], minlength=m)
        n_set[lo:hi] = np.bincount(row, minlength=m)
        n_hit[lo:hi] = np.bincount(row, weights=(att >= threshold).astype(float), minlength=m)
        # no goal set yet (or never): attainment is undefined, not 0. Counting those months as "no progress" would
        # credit the zero-attainment group with time the account had to survive in order to record its first goal
        # (immortal time); models therefore take an account into the risk set from its first goal on.
        with np.errstate(invalid="ignore", divide="ignore"):
            att_out[lo:hi] = np.where(n_set[lo:hi] > 0, wa / w, np.nan)
    return att_out, n_set, n_hit


def attainment_by_metric(goals: pd.DataFrame, progress: pd.DataFrame, points: pd.DataFrame, *,
                         date: str = "date", lag_days: int = 0, chunk_rows: int = 2_000_000) -> pd.DataFrame:
    """Per customer KPI: the weight-averaged attainment of the point's account's goals in that KPI.

    One row per point (same index), one column per KPI (``goals.metric``, sorted); NaN where the account
    had set no goal in that KPI by the (lagged) date."""
    names = sorted(pd.unique(goals["metric"]).tolist())
    pairs = _Pairs(goals, progress, points["account_id"].to_numpy(), points[date].to_numpy(), lag_days)
    code = pd.Categorical(goals["metric"].reset_index(drop=True), categories=names).codes.astype(np.int64)[pairs.order]
    k = len(names)
    wa, w = np.zeros(len(points) * k), np.zeros(len(points) * k)
    for lo, hi, row, goal, _, att in pairs.chunks(chunk_rows):
        cell = row * k + code[goal]
        wa[lo * k:hi * k] = np.bincount(cell, weights=pairs.weight[goal] * att, minlength=(hi - lo) * k)
        w[lo * k:hi * k] = np.bincount(cell, weights=pairs.weight[goal], minlength=(hi - lo) * k)
    with np.errstate(invalid="ignore", divide="ignore"):
        wide = np.where(w > 0, wa / w, np.nan).reshape(-1, k)
    return pd.DataFrame(wide, index=points.index, columns=[str(c) for c in names])


#: keys combine an index with a day number: days since 1677-09-21 (the first datetime64[ns] day), so every
#: date pandas can hold is in [0, 2**18)
_DAY_SPAN = 1 << 18
_DAY_ZERO = 106_752


def _days(values) -> np.ndarray:
    """Dates (at midnight) as int64 days since 1677-09-21; one array allocated for datetime64[ns] input."""
    arr = np.asarray(values)
    if arr.dtype != np.dtype("datetime64[ns]"):
        arr = pd.to_datetime(pd.Series(values)).to_numpy("datetime64[ns]")
    days = arr.view(np.int64) // 86_400_000_000_000
    days += _DAY_ZERO
    return days


def episodes(ds: Dataset, *, lag_days: int = 0, threshold: float = 1.0,
             usage_metrics: Iterable[str] | None = None, as_of=None, con=None) -> pd.DataFrame:
    """The account-month panel in counting-process form: one ``(start, stop]`` row per account per calendar month at risk.

    Time is tenure in days since the account's ``start_date``. Each account's life ``(start_date, end]`` (end =
    churn date or ``as_of``) is cut at the first day of every calendar month. ``event`` is 1 on the row whose
    ``stop`` is the churn date. With ``observed_from`` (a snapshot export), rows before it are dropped and the
    first row starts there: the account enters the risk set late (left truncation), never at its start.
    An account that churned on its start day gets a half-day row so its event is kept.

    Columns: ``account_id, segment, month`` (first day of the calendar month), ``start, stop, event,
    period_start`` (the date the row starts), ``tenure_months``; ``attainment, goals_set, goals_attained`` (at
    ``period_start - lag_days``, see :func:`account_attainment`) when the dataset has goals; and for each usage
    metric ``usage_<metric>``: the value of the latest usage period that began before the row's calendar month
    (so complete when the row starts), NaN when there is none within 45 days (e.g. the account's first month).
    ``account_code`` (int64, last) is the account's position in ``ds.accounts``: an integer key for grouping and
    clustering. Extra account columns are not copied: join them from ``ds.accounts`` when needed.

    The panel is :func:`csresearch.engine.panel.panel`, the one definition both engines run, executed on ``con``
    (an Ibis backend from :func:`csresearch.engine.connect`; when None, a private in-memory DuckDB, closed
    afterwards so that its memory goes back to the system) and collected.
    """
    from .engine.backend import session, staging_scope
    from .engine.panel import collect, inputs, panel, stage, unstage

    if con is None:
        with session("duckdb") as own:
            return episodes(ds, lag_days=lag_days, threshold=threshold, usage_metrics=usage_metrics, as_of=as_of,
                            con=own)
    # usage counted from raw events: the engine reads the events files itself (see inputs)
    with staging_scope():  # the inputs a local Spark session read from files are removed once collected
        kw = inputs(ds, usage_metrics=usage_metrics, con=con)
        if as_of is not None:
            kw["as_of"] = pd.Timestamp(as_of)
        expr = panel(**kw, lag_days=lag_days, threshold=threshold)
        del kw
        # computed first on DuckDB, so that the inputs' Arrow copies go before the result is gathered (stage)
        expr = stage(con, expr)
        release_memory()
        try:
            out = collect(con, expr)
        finally:
            unstage(con, expr)
    release_memory()
    return out


def usage_wide(usage: pd.DataFrame, metrics: Iterable[str]) -> pd.DataFrame:
    """The usage table wide: one row per ``(account_id, date)``, one column per metric (duplicates summed)."""
    names = list(metrics)
    wide = (usage[usage["metric"].isin(names)]
            .pivot_table(index=["account_id", "date"], columns="metric", values="value", aggfunc="sum", observed=True)
            .reindex(columns=names))
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index()
