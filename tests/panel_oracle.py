"""The account-month panel as the first round wrote it, in numpy: a test-only oracle for the engine panel.

``csresearch.attainment.episodes`` is now :func:`csresearch.engine.panel.panel` (one Ibis definition for DuckDB and
Spark). This is the independent formulation it is checked against: integer keys and binary searches instead of
joins and windows, the attainment of :class:`csresearch.attainment._Pairs`. Kept as it was, only renamed.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from csresearch._memory import release_memory
from csresearch.attainment import _DAY_SPAN, DAYS_PER_MONTH, _attainment_arrays, _days

#: rows per slice when a long table is turned into integer keys
_SLICE = 4_000_000

def _month_floor(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[M]")


def numpy_episodes(ds, *, lag_days: int = 0, threshold: float = 1.0,
             usage_metrics: Iterable[str] | None = None, as_of=None) -> pd.DataFrame:
    """The panel :func:`csresearch.attainment.episodes` documents (its columns and rules are stated there, once),
    without ``account_code``, computed in numpy from ``ds`` (its usage table read as a frame)."""
    acc = ds.accounts
    as_of = pd.Timestamp(as_of) if as_of is not None else ds.as_of
    start = acc["start_date"].to_numpy("datetime64[D]")
    end_raw = acc["end_date"].to_numpy("datetime64[D]")
    as_of_d = np.datetime64(as_of.date(), "D")
    churned = ~np.isnat(end_raw) & (end_raw <= as_of_d)
    end = np.where(churned, end_raw, as_of_d)
    entry = start.copy()
    if ds.observed_from is not None:
        # churn is recorded from observed_from on, that day included; (start, stop] rows are exclusive at the start,
        # so accounts that started earlier enter the day before it
        entry = np.maximum(start, np.datetime64(ds.observed_from.date(), "D") - np.timedelta64(1, "D"))
    keep = end > entry
    same_day = churned & (end == start) & (entry == start)
    first_m = _month_floor(entry)
    last_m = _month_floor(np.where(end > entry, end - np.timedelta64(1, "D"), entry))
    n_rows = np.where(keep | same_day, (last_m - first_m).astype(int) + 1, 0)
    # one array per column, temporaries freed as soon as they are used: at 20 million rows each is 160 MB
    idx = np.repeat(np.arange(len(acc)), n_rows)
    month = np.arange(n_rows.sum()) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows)  # month number in the life
    month = first_m[idx] + month.astype("timedelta64[M]")
    lo = np.maximum(month.astype("datetime64[D]"), entry[idx])
    hi = np.minimum((month + np.timedelta64(1, "M")).astype("datetime64[D]"), end[idx])
    event = (churned[idx] & (hi == end[idx])).astype(np.int8)
    s0 = start[idx]
    start_t = (lo - s0).astype(float)
    stop_t = (hi - s0).astype(float)
    del hi, s0
    stop_t[same_day[idx]] = 0.5
    out = pd.DataFrame({"account_id": acc["account_id"].to_numpy()[idx]})
    out["segment"] = acc["segment"].to_numpy()[idx]
    del idx
    out["month"] = month.astype("datetime64[ns]")
    del month
    out["period_start"] = lo.astype("datetime64[ns]")
    del lo
    out["start"] = start_t
    out["stop"] = stop_t
    out["event"] = event
    out["tenure_months"] = start_t / DAYS_PER_MONTH
    del start_t, stop_t, event
    if ds.goals is not None:
        progress = ds.goal_progress if ds.goal_progress is not None else pd.DataFrame(
            {"goal_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]"), "value": pd.Series(dtype=float)})
        att, n_set, n_hit = _attainment_arrays(ds.goals, progress, out["account_id"].to_numpy(),
                                               out["period_start"].to_numpy(), lag_days, threshold)
        out["attainment"] = att
        out["goals_set"] = n_set
        out["goals_attained"] = n_hit
        del att, n_set, n_hit
    release_memory()  # the panel's temporaries are gone: keep the peak of what follows low
    if ds.usage is not None:
        out = _attach_usage(out, ds.usage, usage_metrics)
        release_memory()
    return out


def _attach_usage(out: pd.DataFrame, usage: pd.DataFrame, metrics: Iterable[str] | None) -> pd.DataFrame:
    """Add ``usage_<metric>`` columns to ``out`` (in place; returned): per panel row, the latest usage period of
    its account that began before the row's calendar month, at most 45 days before it (duplicate rows of a
    metric and period summed; NaN for a metric the period has no row of).

    Integer keys and binary search instead of a pivot and a merge: for 60 million usage rows the temporary
    memory is a few int64 arrays of that length, not copies of the frames."""
    names = sorted(usage["metric"].unique()) if metrics is None else list(metrics)
    if not names:
        return out
    u = usage if set(usage["metric"].unique()) <= set(names) else usage[usage["metric"].isin(names)]
    ids = pd.Index(pd.unique(out["account_id"]))
    # (account, day) keys and metric codes, a slice at a time so that no temporary is as long as the table
    key = np.empty(len(u), dtype=np.int64)
    metric = np.empty(len(u), dtype=np.int16)  # (a usage table has a handful of metrics)
    for a in range(0, len(u), _SLICE):
        part = u.iloc[a:a + _SLICE]
        k = ids.get_indexer(part["account_id"]).astype(np.int64, copy=False)
        k[k >= 0] = k[k >= 0] * _DAY_SPAN + _days(part["date"])[k >= 0]
        key[a:a + len(part)] = k
        metric[a:a + len(part)] = pd.Categorical(part["metric"], categories=names).codes
    known = key >= 0
    value = u["value"].to_numpy(float)
    if not known.all():
        key, metric, value = key[known], metric[known], value[known]
    del u, known
    if len(key) < 2 or bool((key[1:] >= key[:-1]).all()):
        # already in (account, date) order, as usage aggregated from events is: no sort needed
        new_period = np.empty(len(key), dtype=bool)
        new_period[:1] = True
        np.not_equal(key[1:], key[:-1], out=new_period[1:])
        periods = key[new_period]
        del key
        cell = np.cumsum(new_period, dtype=np.int64)
        cell -= 1
        del new_period
    else:
        periods, cell = np.unique(key, return_inverse=True)  # one row per (account, period start), sorted
        del key
    if not len(periods):  # no usage row of any panel account
        for name in names:
            out[f"usage_{name}"] = np.full(len(out), np.nan)
        return out
    # ``cell`` is now each usage row's period. Per panel row: the period to read (``src``, -1 for none), a slice of
    # rows at a time
    src = np.empty(len(out), dtype=np.int64)
    for a in range(0, len(out), _SLICE):
        part = out.iloc[a:a + _SLICE]
        row_acc = ids.get_indexer(part["account_id"]).astype(np.int64, copy=False)
        month_day = _days(part["month"])
        last = np.searchsorted(periods, row_acc * _DAY_SPAN + month_day, side="left") - 1  # latest period before
        safe = np.maximum(last, 0)
        ok = (last >= 0) & (periods[safe] // _DAY_SPAN == row_acc) & (month_day - periods[safe] % _DAY_SPAN <= 45)
        src[a:a + len(part)] = np.where(ok, last, -1)
    n_periods = len(periods)
    del periods
    found = src >= 0
    safe = np.maximum(src, 0)
    del src
    for j, name in enumerate(names):
        mine = metric == j
        total = np.bincount(cell[mine], weights=value[mine], minlength=n_periods)
        present = np.zeros(n_periods, dtype=bool)
        present[cell[mine]] = True
        del mine
        col = total[safe]
        col[~(found & present[safe])] = np.nan
        out[f"usage_{name}"] = col
        del total, present, col
    return out
