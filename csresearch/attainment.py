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

if TYPE_CHECKING:
    from .data import Dataset

DAYS_PER_MONTH = 365.25 / 12


def _ratio(value, baseline, target) -> np.ndarray:
    return np.clip((np.asarray(value, float) - baseline) / (np.asarray(target, float) - baseline), 0.0, 1.0)


def goal_attainment(goals: pd.DataFrame, progress: pd.DataFrame, points: pd.DataFrame, *,
                    date: str = "date", lag_days: int = 0) -> pd.DataFrame:
    """Attainment of every goal of an account at given dates.

    Args:
        goals: the contract's goals table (goal_id, account_id, baseline, target, set_date, weight).
        progress: the contract's goal_progress table (goal_id, date, value).
        points: query rows with ``account_id`` and a date column ``date``; any other columns are carried.
        lag_days: evaluate ``lag_days`` before each date (what was known then).

    Returns:
        One row per (point, goal set on or before the reference date): the point's columns plus
        ``goal_id, metric, weight, value`` (latest measurement, NaN if none) and ``attainment`` in [0, 1].
    """
    pts = points.reset_index(drop=True).copy()
    pts["_point"] = np.arange(len(pts))
    pts["_ref"] = pd.to_datetime(pts[date]) - pd.Timedelta(days=int(lag_days))
    g = goals[["goal_id", "account_id", "metric", "baseline", "target", "set_date", "weight"]]
    pairs = pts[["_point", "account_id", "_ref"]].merge(g, on="account_id", how="inner")
    pairs = pairs[pairs["set_date"] <= pairs["_ref"]].sort_values("_ref", kind="stable")
    pairs["_ref"] = pairs["_ref"].astype("datetime64[ns]")
    prog = progress[["goal_id", "date", "value"]].rename(columns={"date": "_measured"})
    prog = prog.assign(_measured=prog["_measured"].astype("datetime64[ns]")).sort_values("_measured", kind="stable")
    pairs = pd.merge_asof(pairs, prog, left_on="_ref", right_on="_measured", by="goal_id", direction="backward")
    pairs["attainment"] = np.where(pairs["value"].isna(), 0.0, _ratio(pairs["value"], pairs["baseline"], pairs["target"]))
    pairs = pairs.sort_values(["_point", "goal_id"], kind="stable")
    out = pts.drop(columns=["_ref"]).merge(
        pairs[["_point", "goal_id", "metric", "weight", "value", "attainment"]], on="_point", how="inner")
    return out.drop(columns="_point").reset_index(drop=True)


def account_attainment(goals: pd.DataFrame, progress: pd.DataFrame, points: pd.DataFrame, *,
                       date: str = "date", lag_days: int = 0, threshold: float = 1.0) -> pd.DataFrame:
    """Account attainment at given dates: ``points`` plus ``attainment``, ``goals_set`` and ``goals_attained``.

    ``attainment`` is the weight-averaged goal attainment over the goals set on or before the (lagged) date:
    0 when goals are set but unmeasured, NaN when no goal is set yet (or the account has none).
    ``goals_attained`` counts goals whose attainment reached ``threshold``.
    """
    per_goal = goal_attainment(goals, progress, points.assign(_row=np.arange(len(points))), date=date, lag_days=lag_days)
    per_goal["_wa"] = per_goal["weight"] * per_goal["attainment"]
    per_goal["_hit"] = per_goal["attainment"] >= threshold
    agg = per_goal.groupby("_row").agg(_wa=("_wa", "sum"), _w=("weight", "sum"), goals_set=("goal_id", "size"),
                                         goals_attained=("_hit", "sum"))
    out = points.reset_index(drop=True).copy()
    agg = agg.reindex(np.arange(len(out)))
    # no goal set yet (or never): attainment is undefined, not 0. Counting those months as "no progress" would
    # credit the zero-attainment group with time the account had to survive in order to record its first goal
    # (immortal time); models therefore take an account into the risk set from its first goal on.
    out["attainment"] = np.where(agg["_w"].notna(), agg["_wa"] / agg["_w"], np.nan)
    out["goals_set"] = agg["goals_set"].fillna(0).astype(int).to_numpy()
    out["goals_attained"] = agg["goals_attained"].fillna(0).astype(int).to_numpy()
    return out


def _month_floor(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[M]")


def episodes(ds: Dataset, *, lag_days: int = 0, threshold: float = 1.0,
             usage_metrics: Iterable[str] | None = None, as_of=None) -> pd.DataFrame:
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
    Extra account columns are not copied: join them from ``ds.accounts`` when needed.
    """
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
    idx = np.repeat(np.arange(len(acc)), n_rows)
    offset = np.arange(n_rows.sum()) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
    month = first_m[idx] + offset.astype("timedelta64[M]")
    m_lo = month.astype("datetime64[D]")
    m_hi = (month + np.timedelta64(1, "M")).astype("datetime64[D]")
    lo = np.maximum(m_lo, entry[idx])
    hi = np.minimum(m_hi, end[idx])
    s0 = start[idx]
    start_t = (lo - s0).astype(float)
    stop_t = (hi - s0).astype(float)
    stop_t = np.where(same_day[idx], 0.5, stop_t)
    event = (churned[idx] & (hi == end[idx])).astype(int)
    out = pd.DataFrame({
        "account_id": acc["account_id"].to_numpy()[idx],
        "segment": acc["segment"].to_numpy()[idx],
        "month": month.astype("datetime64[ns]"),
        "period_start": lo.astype("datetime64[ns]"),
        "start": start_t,
        "stop": stop_t,
        "event": event,
        "tenure_months": start_t / DAYS_PER_MONTH,
    })
    if ds.goals is not None:
        progress = ds.goal_progress if ds.goal_progress is not None else pd.DataFrame(
            {"goal_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]"), "value": pd.Series(dtype=float)})
        att = account_attainment(ds.goals, progress, out[["account_id", "period_start"]], date="period_start",
                                 lag_days=lag_days, threshold=threshold)
        out[["attainment", "goals_set", "goals_attained"]] = att[["attainment", "goals_set", "goals_attained"]].to_numpy()
        out["goals_set"] = out["goals_set"].astype(int)
        out["goals_attained"] = out["goals_attained"].astype(int)
    if ds.usage is not None:
        out = _attach_usage(out, ds.usage, usage_metrics)
    return out


def usage_wide(usage: pd.DataFrame, metrics: Iterable[str]) -> pd.DataFrame:
    """The usage table wide: one row per ``(account_id, date)``, one column per metric (duplicates summed)."""
    names = list(metrics)
    wide = (usage[usage["metric"].isin(names)]
            .pivot_table(index=["account_id", "date"], columns="metric", values="value", aggfunc="sum", observed=True)
            .reindex(columns=names))
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index()


def _attach_usage(out: pd.DataFrame, usage: pd.DataFrame, metrics: Iterable[str] | None) -> pd.DataFrame:
    names = sorted(usage["metric"].unique()) if metrics is None else list(metrics)
    wide = usage_wide(usage, names)
    wide.columns = ["account_id", "date", *[f"usage_{m}" for m in names]]
    wide = wide.assign(date=wide["date"].astype("datetime64[ns]")).sort_values("date", kind="stable")
    left = out.reset_index().sort_values("month", kind="stable")
    merged = pd.merge_asof(left, wide, left_on="month", right_on="date", by="account_id", direction="backward",
                           allow_exact_matches=False, tolerance=pd.Timedelta(days=45))
    merged = merged.drop(columns="date").sort_values("index", kind="stable").set_index("index")
    merged.index.name = None
    return merged

