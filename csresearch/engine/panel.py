"""The account-month panel and monthly usage as Ibis expressions: one definition, run on DuckDB or Spark.

:func:`panel` is :func:`csresearch.attainment.episodes` and :func:`monthly_usage` is the sparse
:func:`csresearch.data.events.aggregate`, written as relational expressions so that the engine that runs them is the
caller's choice (``con.execute(expr)`` with a backend from :func:`csresearch.engine.connect`). Nothing here is
engine-specific: only Ibis operations both backends compile (integer month numbers, ``ibis.date``, ``epoch_days``,
``ibis.range`` + ``unnest``, equi-joins, ``lead`` windows), so the two engines cannot drift apart.

How the pieces are formulated (each the relational reading of the numpy code in :mod:`csresearch.attainment`):

* **Month rows**: a month is the integer ``year * 12 + month - 1``; each account's life is a range of those numbers,
  unnested into one row per month, and dates come back with ``ibis.date(y, m, 1)``. Tenure is a difference of
  ``epoch_days``.
* **Attainment** (a goal's latest measurement on or before the reference day ``period_start - lag_days``): a range
  join of (row, goal) pairs to the measurements' validity intervals ``[day, next measurement)`` (a ``lead`` window),
  made an equi-join by listing each interval under the calendar months it covers. Of two measurements on one day
  the later row of the progress table holds the interval, as in the numpy code (a stable sort, then the last key at
  or before the day). Work grows with rows + measurements, not with their product.
* **Usage** (the latest usage period of the account that began before the row's calendar month, at most 45 days
  before it): such a period began in one of the two months before, so each period is offered to the next two months
  and kept for a month when it is recent enough and the account's next period (a ``lead`` window) is not earlier:
  one scan of the usage table, then an equi-join on (account, month number).
* **Usage from raw events** (``events=``): what ``load`` does with an events folder (a dense grid, 0 for a silent
  month, from the account's start month to the month of its churn or ``as_of``) followed by ``episodes``' usage
  rule reduces to: the number of events of each type in the previous calendar month, NaN for the account's first
  month. The counts are grouped once per (account, month, type); the dense grid is never built.

Inputs are Ibis tables; :func:`table` makes one from a pandas frame (a memtable, which both engines accept) and adds
the frame's row positions as ``_row``, which is how "the position in the accounts table" (``account_code``) and
"the later of two measurements on one day" are known to an engine whose tables have no row order.
:func:`collect` executes a panel and gives exactly the frame ``episodes`` gives (dtypes, row order, index).
"""
from __future__ import annotations

import itertools
import os
import shutil
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from ..data import Dataset

__all__ = ["ROW", "collect", "inputs", "monthly_usage", "panel", "read_events", "stage", "table", "unstage"]

#: the column :func:`table` adds: the row's position in its frame (0-based)
ROW = "_row"

#: ``tenure_months = start / DAYS_PER_MONTH`` (as in :mod:`csresearch.attainment`)
DAYS_PER_MONTH = 365.25 / 12

#: a usage period counts for a row when it began at most this many days before the row's calendar month
USAGE_MAX_AGE_DAYS = 45

_BASE = ["account_id", "segment", "month", "period_start", "start", "stop", "event", "tenure_months"]
_GOALS = ["attainment", "goals_set", "goals_attained"]


# -- inputs ---------------------------------------------------------------------------------------------------------

def table(frame: pd.DataFrame | pa.Table, positions: bool = True, con=None) -> ir.Table:
    """An Ibis table of ``frame`` (pandas or Arrow), with its row positions in the extra integer column ``_row``
    (:data:`ROW`; int32 below 2**31 rows) unless ``positions`` is false.

    A memtable, not bound to a backend (``con.execute`` on DuckDB or Spark ships it there), unless ``con`` is a local
    Spark session: Spark turns a memtable into a DataFrame row by row in Python (the 35M goal measurements of 1M
    accounts took the driver past 14 GB for minutes), so the frame is written as a Parquet file in a staging folder
    (:func:`~csresearch.engine.backend.staging_folder`) that Spark's tasks read. The positions stand in for the
    frame's row order, which a SQL engine does not keep (see :func:`panel`). The frame is converted to Arrow once,
    here (no pandas copy; DuckDB then scans the Arrow table in place)."""
    import ibis
    import pyarrow as pa

    data = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    if positions:
        data = data.append_column(ROW, pa.array(np.arange(len(data), dtype=_row_dtype(len(data)))))
    if con is not None and con.name == "pyspark":
        from .backend import spark_is_local, staging_folder, write_parquet

        if spark_is_local(con._session):
            folder = staging_folder()
            write_parquet(data, folder)
            return con.read_parquet(os.path.join(folder, "*.parquet"))
    return ibis.memtable(data)


def _row_dtype(n: int):
    """The narrowest integer type of the positions 0..n-1 (int32 below 2**31: half the bytes of int64)."""
    return np.int32 if n < 2**31 else np.int64


def _goal_inputs(goals: pd.DataFrame, progress: pd.DataFrame | None) -> tuple[pa.Table, pa.Table | None]:
    """The goals and their measurements as :func:`panel` reads them, with each ``goal_id`` replaced by an integer
    code (the same on both tables; a measurement of a goal not in ``goals`` gets -1, which no goal has, so it is
    not read, as its text id would not be) and the measurement dates as dates.

    The 35M measurements of 1M accounts are the largest table a panel is built from: as text ids and nanosecond
    timestamps their Arrow copy was about 1.3 GB beside the loaded frame for the whole build; as int32 codes and
    dates it is about 0.55 GB. Ids are compared exactly as the text comparison compared them (equal ids, equal
    codes)."""
    codes, uniques = pd.factorize(goals["goal_id"])
    g = pa.Table.from_pandas(goals[["account_id", "baseline", "target", "set_date", "weight"]], preserve_index=False)
    g = g.add_column(0, "goal_id", pa.array(codes.astype(np.int32)))
    if progress is None:
        return g, None
    pcode = pd.Index(uniques).get_indexer(progress["goal_id"]).astype(np.int32)
    day = progress["date"].to_numpy().astype("datetime64[D]")
    p = pa.table({"goal_id": pa.array(pcode), "date": pa.array(day, from_pandas=True),
                  "value": pa.array(progress["value"].to_numpy(np.float64), from_pandas=True)})
    return g, p


def inputs(ds: Dataset, usage_metrics: Iterable[str] | None = None, con=None) -> dict:
    """The keyword arguments of :func:`panel` for a loaded :class:`~csresearch.data.Dataset`, so that
    ``panel(**inputs(ds))`` is ``episodes(ds)``: its tables as memtables (:func:`table`; usage without positions,
    which no rule reads; the goal ids as integer codes, :func:`_goal_inputs`), its ``as_of`` and ``observed_from``,
    and the usage metrics: ``usage_metrics``, by default
    every metric of the usage table, sorted (found without a query, so building the panel runs none).

    When the dataset's usage is counted from raw events (``ds.files["events"]``) and ``con`` is given, the usage
    comes as ``events=``: ``con`` reads the events files itself (:func:`read_events`), so the long usage table is
    neither counted nor shipped (the same values: the previous month's event counts)."""
    out: dict = {"accounts": table(ds.accounts[["account_id", "segment", "start_date", "end_date"]], con=con),
                 "as_of": ds.as_of, "observed_from": ds.observed_from}
    if ds.goals is not None:
        goals, progress = _goal_inputs(ds.goals, ds.goal_progress)
        out["goals"] = table(goals, con=con)
        if progress is not None:
            out["progress"] = table(progress, con=con)
        del goals, progress
    if ds.has_usage:
        out["usage_metrics"] = ds.usage_metrics if usage_metrics is None else list(usage_metrics)
        events = (ds.files or {}).get("events")
        if events is not None and con is not None:
            out["events"] = read_events(con, events)
        else:
            out["usage"] = table(ds.usage[["account_id", "date", "metric", "value"]], positions=False, con=con)
    return out


def read_events(con, source) -> ir.Table:
    """The raw events (``account_id, ts, event``) of a data folder, an ``events/`` folder of Parquet parts, a Parquet
    file or an events CSV, as a table of ``con`` (DuckDB or Spark read the files themselves; pandas never sees them).

    Found as :func:`csresearch.data.events.find_events` finds them. A folder is read as the glob ``*.parquet``,
    which both engines expand. A CSV is read with its header; ``ts`` is cast where it is used."""
    from ..data.events import _as_source

    src = _as_source(source)
    if src.fmt == "csv":
        return con.read_csv(str(src.path))
    return con.read_parquet(str(src.path / "*.parquet") if src.is_folder else str(src.path))


# -- building blocks ------------------------------------------------------------------------------------------------

def _month_number(d):
    """The calendar month of a date or timestamp as one integer, ``year * 12 + month - 1`` (consecutive months differ
    by 1, so month arithmetic is integer arithmetic on every engine)."""
    return d.year().cast("int64") * 12 + d.month().cast("int64") - 1


def _month_date(n):
    """The first day of month number ``n`` (see :func:`_month_number`) as a date."""
    import ibis

    return ibis.date((n // 12).cast("int32"), (n % 12 + 1).cast("int32"), 1)


def _date(col):
    """A date, timestamp or text column as a date (timestamps are read in the session's time zone, UTC)."""
    return col if col.type().is_date() else col.cast("date")


def _position(t: ir.Table, by: str):
    """Each row's position: the ``_row`` column :func:`table` adds, else the rank by ``by`` (0-based)."""
    import ibis

    if ROW in t.columns:
        return t[ROW].cast("int64")
    return (ibis.row_number().over(order_by=t[by])).cast("int64")


def _goal_key(col):
    """A goal id as the join key of goals and measurements: integer codes as they are (:func:`inputs` gives both
    tables the same codes), anything else as text."""
    return col.cast("int64") if col.type().is_integer() else col.cast("string")


def _distinct(column) -> list[str]:
    """The sorted distinct non-null values of a (small-cardinality) column, executed on the column's own backend
    (DuckDB for memtables): an expression's columns must be known when it is built, and the usage columns are
    named after the data's metrics."""
    values = column.name("v").as_table().filter(lambda t: t.v.notnull()).distinct().execute()["v"]
    return sorted(str(v) for v in values)


# -- monthly usage --------------------------------------------------------------------------------------------------

def monthly_usage(events: ir.Table) -> ir.Table:
    """The monthly usage of raw events: ``account_id, date, metric, value``.

    One row per (account_id, calendar month of ``ts`` in UTC, event type) that has events: ``date`` the first day of
    the month (a date), ``metric`` the event type, ``value`` the number of events (float64). A month without events
    of a type has no row. This is :func:`csresearch.data.events.aggregate` without ``accounts=`` (the sparse form),
    unordered; :func:`collect` orders it by account_id, date, metric."""
    ts = events.ts.cast("timestamp")
    return (events.select(account_id=events.account_id.cast("string"),
                          date=ts.truncate("M").cast("date"),
                          metric=events.event.cast("string"))
            .group_by(["account_id", "date", "metric"])
            .agg(value=lambda t: t.count().cast("float64")))


# -- the panel ------------------------------------------------------------------------------------------------------

def panel(accounts: ir.Table, *, as_of, observed_from=None, goals: ir.Table | None = None,
          progress: ir.Table | None = None, usage: ir.Table | None = None, events: ir.Table | None = None,
          lag_days: int = 0, threshold: float = 1.0, usage_metrics: Iterable[str] | None = None) -> ir.Table:
    """The account-month panel of :func:`csresearch.attainment.episodes` as one Ibis expression.

    Args:
        accounts: ``account_id, segment, start_date, end_date`` (dates or timestamps; ``end_date`` null while
            active). ``account_code`` is its ``_row`` column (:func:`table`), else the rank of ``account_id``.
        as_of: the extraction date: active accounts are censored there, churn after it is not yet known.
        observed_from: a snapshot export's first observed day (left truncation: accounts that started earlier enter
            the risk set the day before it), or None.
        goals: ``goal_id, account_id, baseline, target, set_date, weight``; gives ``attainment, goals_set,
            goals_attained`` at ``period_start - lag_days``. ``goal_id`` is text, or integer codes the same on
            both tables (what :func:`inputs` sends).
        progress: ``goal_id, date, value`` (and ``_row``: of two measurements of a goal on one day the later row
            counts; without it, the larger value). None: every goal unmeasured (attainment 0 once set).
        usage: the long usage table ``account_id, date, metric, value``: ``usage_<metric>`` from the latest period
            that began before the row's month, at most 45 days before it (duplicates summed; NaN without one).
        events: raw events ``account_id, ts, event`` instead of ``usage``: ``usage_<event>`` is the number of
            events of that type in the previous calendar month, 0 if none, NaN in the account's first month; what
            ``episodes`` gives on a dataset whose usage ``load`` aggregated from the events.
        usage_metrics: the metrics to carry, in this order (a metric without data is all NaN); None: every metric
            (event type) of the data, sorted, which costs one small DISTINCT query when the expression is built.

    Returns:
        An unordered table with the columns of ``episodes`` (``account_id, segment, month, period_start, start,
        stop, event, tenure_months``, then the attainment and usage columns) and ``account_code`` (int64, the
        account's position in ``accounts``). Dates are dates, goal counts int64; :func:`collect` gives the frame.
    """
    import ibis

    if usage is not None and events is not None:
        raise ValueError("panel: give usage= (the long usage table) or events= (raw events), not both")
    as_of_d = pd.Timestamp(as_of).date()
    as_of_lit = ibis.literal(as_of_d, type="date")

    # -- one row per account: life (start, end], entry and month numbers ------------------------------------------
    a = accounts.select(account_id=accounts.account_id.cast("string"), segment=accounts.segment,
                        account_code=_position(accounts, "account_id"),
                        start_d=_date(accounts.start_date), end_raw=_date(accounts.end_date))
    churned = (a.end_raw.notnull() & (a.end_raw <= as_of_lit)).fill_null(False)
    a = a.mutate(churned=churned, end_d=ibis.ifelse(churned, a.end_raw, as_of_lit))
    codes = a.select("account_id", "account_code", end_m=_month_number(a.end_d))
    if observed_from is not None:
        # churn is recorded from observed_from on, that day included; (start, stop] rows are exclusive at the start,
        # so accounts that started earlier enter the day before it
        entry_lit = ibis.literal((pd.Timestamp(observed_from) - pd.Timedelta(days=1)).date(), type="date")
        a = a.mutate(entry_d=ibis.greatest(a.start_d, entry_lit))
    else:
        a = a.mutate(entry_d=a.start_d)
    a = a.mutate(same_day=a.churned & (a.end_d == a.start_d) & (a.entry_d == a.start_d),
                 first_m=_month_number(a.entry_d),
                 # the month of the life's last day, end - 1 (its row ends at end)
                 last_m=ibis.ifelse(a.end_d > a.entry_d,
                                    _month_number(a.end_d) - (a.end_d.day() == 1).cast("int64"),
                                    _month_number(a.entry_d)))
    n_months = ibis.ifelse((a.end_d > a.entry_d) | a.same_day, a.last_m - a.first_m + 1, 0)
    a = a.mutate(_k=ibis.range(0, n_months))

    # -- one row per account and month of life ---------------------------------------------------------------------
    r = a.unnest("_k")
    r = r.mutate(m=r.first_m + r._k.cast("int64"))
    r = r.mutate(month=_month_date(r.m), next_month=_month_date(r.m + 1))
    r = r.mutate(lo=ibis.greatest(r.month, r.entry_d), hi=ibis.least(r.next_month, r.end_d))
    start_day = r.start_d.epoch_days()
    start_t = (r.lo.epoch_days() - start_day).cast("float64")
    rows = r.select(
        "account_id", "segment", "account_code", "m", "start_d",
        month=r.month, period_start=r.lo,
        start=start_t,
        # an account that churned on its start day gets a half-day row so that its event is kept
        stop=ibis.ifelse(r.same_day, ibis.literal(0.5), (r.hi.epoch_days() - start_day).cast("float64")),
        event=(r.churned & (r.hi == r.end_d)).cast("int8"),
        tenure_months=start_t / DAYS_PER_MONTH,
    )
    columns = list(_BASE)

    if goals is not None:
        att = _attainment(rows, goals, progress, codes, lag_days, threshold)
        rows = rows.left_join(att, ["account_code", "m"]).select(
            *[c for c in rows.columns],
            attainment=att.attainment,
            goals_set=att.goals_set.fill_null(0).cast("int64"),
            goals_attained=att.goals_attained.fill_null(0).cast("int64"))
        columns += _GOALS

    if usage is not None or events is not None:
        source = usage if usage is not None else events
        if usage_metrics is None:
            names = _distinct(source.metric if usage is not None else source.event.cast("string"))
        else:
            names = list(dict.fromkeys(str(m) for m in usage_metrics))
        if names:
            cols = [f"usage_{n}" for n in names]
            if usage is not None:
                wide = _usage_from_table(usage, codes, names)
                rows = rows.left_join(wide, ["account_code", "m"]).select(*rows.columns, *[wide[c] for c in cols])
            else:
                # the dense grid load builds: the previous month counts (0 if silent) when it is a month of the
                # account's life, i.e. from the month after the start month on (the end is never before it)
                wide = _usage_from_events(events, codes, names)
                j = rows.left_join(wide, ["account_code", "m"])
                in_life = j.m > _month_number(j.start_d)
                rows = j.select(*rows.columns, **{
                    f"usage_{n}": ibis.ifelse(in_life, j[f"n_{n}"].fill_null(0).cast("float64"),
                                              ibis.null("float64")) for n in names})
            columns += cols

    return rows.select(*columns, "account_code")


def _attainment(rows: ir.Table, goals: ir.Table, progress: ir.Table | None, codes: ir.Table, lag_days: int,
                threshold: float) -> ir.Table:
    """Per panel row (``account_code, m``) with a goal set by ``period_start - lag_days``: ``attainment`` (weighted
    mean over those goals), ``goals_set`` and ``goals_attained``. Rows without a goal set have no row here.
    ``codes``: ``account_id, account_code, end_m`` (the month number of the account's end).

    The latest measurement on or before the reference day is a range join: each measurement is valid from its day
    until the goal's next measurement (a ``lead`` window over the goal's measurements by day and input position, so
    of two on one day the later row of the progress table holds the interval, as in the numpy code's stable sort),
    the last one until the account's end. Each interval is listed under every calendar month it covers, so a
    (row, goal) pair finds its interval by an equi-join on (goal, month of the reference day) and a check of the
    bounds: work in proportion to rows + measurements, never their product. No interval: set but not yet measured
    (attainment 0). Measurements dated before ``set_date`` count like any other once the goal is set: a pair exists
    only from then on."""
    import ibis

    g = goals.select(goal_code=_position(goals, "goal_id"), goal_id=_goal_key(goals.goal_id),
                     account_id=goals.account_id.cast("string"),
                     base=goals.baseline.cast("float64"),
                     span=goals.target.cast("float64") - goals.baseline.cast("float64"),
                     weight=goals.weight.cast("float64"), set_day=_date(goals.set_date).epoch_days())
    g = g.join(codes, "account_id").select(g.goal_code, g.goal_id, codes.account_code, codes.end_m, g.base, g.span,
                                           g.weight, g.set_day)
    ref = rows.period_start - ibis.interval(days=int(lag_days)) if lag_days else rows.period_start
    q = rows.select("account_code", "m", ref=rows.period_start.epoch_days() - int(lag_days),
                    ref_m=_month_number(ref))
    pairs = q.join(g, "account_code").select(q.account_code, q.m, q.ref, q.ref_m, g.goal_code, g.base, g.span,
                                             g.weight, g.set_day)
    pairs = pairs.filter(pairs.set_day <= pairs.ref)

    if progress is not None:
        tie = progress[ROW] if ROW in progress.columns else progress.value  # no input order: the larger value
        p = progress.select(goal_id=_goal_key(progress.goal_id), d=_date(progress.date), tie=tie,
                            value=progress.value.cast("float64"))
        p = p.join(g.select("goal_id", "goal_code", "end_m"), "goal_id")  # (progress of other goals is not read)
        w = ibis.window(group_by="goal_code", order_by=["d", "tie"])
        p = p.mutate(next_d=p.d.lead().over(w))
        p = p.mutate(day=p.d.epoch_days(), next_day=p.next_d.epoch_days(), first_m=_month_number(p.d),
                     # the month of the interval's last day: the day before the next measurement, or the account's end
                     last_m=ibis.ifelse(p.next_d.isnull(), p.end_m,
                                        _month_number(p.next_d) - (p.next_d.day() == 1).cast("int64")))
        # of measurements on one day only the last has a (non-empty) interval
        p = p.filter(p.next_day.isnull() | (p.next_day > p.day))
        p = p.mutate(k=ibis.range(0, ibis.greatest(p.last_m - p.first_m + 1, 0)))
        iv = p.unnest("k")
        iv = iv.select("goal_code", "day", "next_day", "value", bucket=iv.first_m + iv.k.cast("int64"))
        joined = pairs.left_join(iv, [pairs.goal_code == iv.goal_code, pairs.ref_m == iv.bucket,
                                      iv.day <= pairs.ref, iv.next_day.isnull() | (pairs.ref < iv.next_day)])
        pairs = joined.select(pairs.account_code, pairs.m, pairs.base, pairs.span, pairs.weight, iv.value)
        ratio = ibis.greatest(ibis.least((pairs.value - pairs.base) / pairs.span, 1.0), 0.0)
        # set but not yet measured: 0
        pairs = pairs.mutate(att=ibis.ifelse(pairs.value.isnull(), ibis.literal(0.0), ratio))
    else:
        pairs = pairs.mutate(att=ibis.literal(0.0))

    return pairs.group_by(["account_code", "m"]).agg(
        attainment=(pairs.weight * pairs.att).sum() / pairs.weight.sum(),
        goals_set=pairs.count(),
        goals_attained=(pairs.att >= float(threshold)).cast("int64").sum())


def _usage_from_table(usage: ir.Table, codes: ir.Table, names: list[str]) -> ir.Table:
    """Per (``account_code``, month number ``m``) that has one: ``usage_<name>`` of the latest usage period of the
    account that began before month ``m`` and at most 45 days before it (duplicates summed, null where the period has
    no row of the metric). ``codes``: ``account_id, account_code`` (usage of other accounts is not read).

    Such a period began in one of the two months before ``m``, so each period is offered to the next two months and
    kept for a month when it began at most 45 days before it and the account's next period did not begin before it
    (a ``lead`` window): one scan of the usage table, no join with the panel rows."""
    import ibis

    u = usage.select(account_id=usage.account_id.cast("string"), d=_date(usage.date),
                     metric=usage.metric.cast("string"), value=usage.value.cast("float64"))
    u = u.filter(u.metric.isin(names))
    u = u.join(codes, "account_id").select(codes.account_code, u.d, u.metric, u.value)
    periods = u.group_by(["account_code", "d"]).agg(
        **{f"usage_{n}": u.value.sum(where=u.metric == n) for n in names})
    periods = periods.mutate(pm=_month_number(periods.d), pday=periods.d.epoch_days())
    periods = periods.mutate(
        next_day=periods.pday.lead().over(group_by=periods.account_code, order_by=periods.pday),
        k=ibis.array([1, 2]))
    offer = periods.unnest("k")
    offer = offer.mutate(m=offer.pm + offer.k.cast("int64"))
    mday = _month_date(offer.m).epoch_days()
    offer = offer.filter((mday - offer.pday <= USAGE_MAX_AGE_DAYS)
                         & (offer.next_day.isnull() | (offer.next_day >= mday)))
    return offer.select("account_code", "m", *[f"usage_{n}" for n in names])


def _usage_from_events(events: ir.Table, codes: ir.Table, names: list[str]) -> ir.Table:
    """Per (``account_code``, month number ``m``): ``n_<event>``, the number of events of each type in month ``m - 1``
    (no row where the account had no event of any of ``names`` that month). ``codes``: ``account_id,
    account_code`` (events of other accounts are not read)."""
    ts = events.ts.cast("timestamp")
    e = events.select(account_id=events.account_id.cast("string"), m=_month_number(ts) + 1,
                      event=events.event.cast("string"))
    e = e.filter(e.event.isin(names))
    e = e.join(codes, "account_id").select(codes.account_code, e.m, e.event)
    return e.group_by(["account_code", "m"]).agg(**{f"n_{n}": (e.event == n).cast("int64").sum() for n in names})


# -- results as pandas ----------------------------------------------------------------------------------------------

#: rows per Arrow record batch when a result is collected
_BATCH_ROWS = 1 << 20


def _record_batches(con, expr):
    """The result of ``expr`` as a stream of Arrow record batches, the compiled SQL run by the engine itself (Ibis's
    own pre-execution step registers the memtables first).

    Ibis 12 streams a DuckDB result with ``fetch_record_batch``, which DuckDB 2.0 no longer has: DuckDB's
    ``to_arrow_reader`` streams it instead. Ibis's PySpark ``to_pyarrow_batches`` goes through ``toPandas`` and back
    to Arrow (at 19 million rows a pandas copy with a text object per row, then an Arrow copy of that: the Python
    driver grew past 12 GB). A local Spark session writes the sorted result to Parquet files that are read back
    here (:func:`_through_parquet`: nothing passes through the driver); a cluster or Spark Connect session gives it
    through Spark's own ``toArrow``, whose batches are let go as they are read (:func:`_drain`)."""
    if con.name == "duckdb":
        con._run_pre_execute_hooks(expr)
        return con.con.sql(con.compile(expr)).to_arrow_reader(_BATCH_ROWS)
    if con.name == "pyspark":
        from .backend import spark_is_local

        con._run_pre_execute_hooks(expr)
        df = con.raw_sql(con.compile(expr))
        return _through_parquet(df) if spark_is_local(con._session) else _drain(df.toArrow())
    return con.to_pyarrow_batches(expr, chunk_size=_BATCH_ROWS)


_STAGED = itertools.count()


def stage(con, expr: ir.Table) -> ir.Table:
    """On DuckDB, the result of ``expr`` computed into a temporary table of ``con`` and DuckDB's hold on the
    in-memory inputs let go; the table is what :func:`collect` then streams (:func:`unstage` drops it). On Spark,
    ``expr`` itself (Spark's inputs are files, see :func:`table`).

    A panel's inputs are Arrow copies of the loaded frames (the goal measurements above all), and ``collect``
    gathers the whole result in numpy: computed in one query, both were held at once, beside DuckDB's own budget
    (8.65 GB at 1M accounts, the study's peak). Computed first, the inputs can go before the result is gathered:
    the caller drops its own references to ``expr`` (``expr = stage(con, expr)``), and DuckDB keeps what does not
    fit its budget in its spill folder. ``expr`` must not be executed again."""
    if con.name != "duckdb":
        return expr
    import ibis.expr.operations as ops

    con._run_pre_execute_hooks(expr)
    name = f"_csresearch_staged_{next(_STAGED)}"
    con.con.execute(f'CREATE TEMP TABLE "{name}" AS {con.compile(expr)}')
    for t in expr.op().find(ops.InMemoryTable):
        con.con.unregister(t.name)
    return con.table(name)


def unstage(con, table: ir.Table) -> None:
    """Drop a table :func:`stage` made (nothing for any other table)."""
    import ibis.expr.operations as ops

    op = table.op()
    if con.name == "duckdb" and isinstance(op, ops.DatabaseTable) and op.name.startswith("_csresearch_staged_"):
        con.con.execute(f'DROP TABLE IF EXISTS "{op.name}"')


def _through_parquet(df):
    """The record batches of a local Spark session's sorted result, written by Spark's tasks to Parquet files in a
    staging folder (:func:`~csresearch.engine.backend.staging_folder`) and read back here file by file, in the
    order of their partitions (a sorted result's range partitions, so the rows come in sorted order): the result
    never passes through the driver, whose 2 GB a collected panel of 200,000 accounts already overflowed. The
    folder is removed when the stream ends."""
    import pyarrow.parquet as pq

    from .backend import staging_folder

    folder = staging_folder()
    try:
        df.write.mode("overwrite").parquet(folder)
        for f in sorted(os.listdir(folder)):
            if f.startswith("part-") and f.endswith(".parquet"):
                yield from pq.ParquetFile(os.path.join(folder, f)).iter_batches(batch_size=_BATCH_ROWS)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _drain(table: pa.Table):
    """The record batches of ``table``, each let go once read (the table itself is not kept)."""
    batches = table.to_batches(max_chunksize=_BATCH_ROWS)
    del table
    batches.reverse()
    while batches:
        yield batches.pop()


def _numpy_column(c: str, col) -> np.ndarray:
    """One Arrow column of a panel or usage result as the numpy array ``episodes`` has for it."""
    if c in ("account_id", "segment", "metric"):
        return col.to_pandas(deduplicate_objects=True).to_numpy(dtype=object)  # one str per distinct value
    if c in ("month", "period_start", "date"):
        if pa.types.is_timestamp(col.type) and col.type.tz is not None:  # Spark's: UTC instants, as naive UTC times
            col = col.cast(pa.timestamp(col.type.unit))
        return col.to_pandas(date_as_object=False).to_numpy().astype("datetime64[ns]")
    if c == "event":
        return col.to_numpy(zero_copy_only=False).astype(np.int8)
    if c in ("goals_set", "goals_attained"):
        return col.to_numpy(zero_copy_only=False).astype(np.int32)
    if c == "account_code":
        return col.to_numpy(zero_copy_only=False).astype(np.int64)
    return col.to_numpy(zero_copy_only=False).astype(np.float64)  # float64, nulls as NaN


def collect(con, expr: ir.Table) -> pd.DataFrame:
    """Execute ``expr`` on ``con`` and give the frame the numpy code gives.

    A :func:`panel`: rows by ``account_code`` then ``month``, index 0..n-1, dtypes as :func:`~csresearch.attainment.
    episodes` (``datetime64[ns]`` dates, float64 times, attainment and usage with NaN, int8 ``event``, int32 goal
    counts as episodes has them), ``account_code`` int64 last. A :func:`monthly_usage`: rows by account_id, date,
    metric, ``date`` as ``datetime64[ns]``, as :func:`csresearch.data.events.aggregate` gives it.

    The engine sorts (DuckDB spills a large sort to disk) and streams the result as Arrow record batches, converted
    here batch by batch into numpy: neither the whole Arrow result nor a sorted copy of it is ever held (at 20
    million rows each would be gigabytes), and Ibis's own pandas conversion, several times slower, is not used."""
    cols = list(expr.columns)
    if "account_code" in cols:
        keys = ["account_code", "month"]
    elif cols[:3] == ["account_id", "date", "metric"]:
        keys = ["account_id", "date", "metric"]
    else:
        raise ValueError(f"collect: not a panel or monthly usage table: columns {cols}")
    parts: dict[str, list[np.ndarray]] = {c: [] for c in cols}
    for batch in _record_batches(con, expr.order_by(keys)):
        for c in cols:
            parts[c].append(_numpy_column(c, batch.column(c)))
        del batch

    def whole(c: str, out: np.ndarray | None = None) -> np.ndarray:
        chunks = parts.pop(c)  # each column's batches are let go as soon as it is whole
        if not chunks:
            return _numpy_column(c, pa.array([], type=expr.schema()[c].to_pyarrow()))
        return np.concatenate(chunks, out=out) if out is not None else np.concatenate(chunks)

    # the float columns go straight into the one 2-D block pandas keeps them in (its rows are the columns), so the
    # frame is born consolidated: no later copy or assign has to merge a gigabyte of blocks, and the block's pages
    # fill as the batches are freed (the panel is held about once, never twice)
    floats = [c for c in cols if parts[c] and parts[c][0].dtype == np.float64]  # an empty result: typed, via insert
    n = sum(len(a) for a in parts[cols[0]])
    block = np.empty((len(floats), n), dtype=np.float64)
    for i, c in enumerate(floats):
        whole(c, block[i])
    frame = pd.DataFrame(block.T, columns=floats, copy=False)
    for i, c in enumerate(cols):
        if c not in floats:
            frame.insert(i, c, whole(c))
    if keys[0] == "account_code" and not _in_order(frame["account_code"].to_numpy(), frame["month"].to_numpy()):
        # an engine that streamed its sorted result out of order (files read back in another order): sorted here
        frame = frame.take(np.lexsort((frame["month"].to_numpy(), frame["account_code"].to_numpy())))
        frame.reset_index(drop=True, inplace=True)
    return frame


def _in_order(code: np.ndarray, month: np.ndarray) -> bool:
    """Whether rows are sorted by ``code`` then ``month`` (any time column: ``models.usage_history`` asks it of
    account codes and ``start``)."""
    if len(code) < 2:
        return True
    step = np.diff(code)
    return not ((step < 0).any() or ((step == 0) & (month[1:] < month[:-1])).any())
