"""Raw product events -> the monthly usage table, out of core with DuckDB.

The data contract's optional ``events`` table (``account_id, ts, event``) may be large, so it is
never read into pandas: DuckDB scans the files directly and pandas only sees the aggregate.

Where the events are (first found wins; the others get a "shadowed" warning):

1. ``events.parquet``
2. ``events/``: a folder of Parquet parts (``events/*.parquet``, read as one table)
3. ``events.csv``

Aggregation: one usage row per ``(account_id, calendar month of ts, event)`` with
``date`` = the first day of the month, ``metric`` = the event type and ``value`` = the number of
events. A month without events of a type has *no* row (not a 0 row): absence means zero.

Validation (:func:`check`) is done in DuckDB too, in one scan for the counts plus one small query
per problem found for its examples. Every finding is an *error* (exit 2), like the same problems in
``usage``: missing required columns, empty ``account_id``/``ts``/``event``, ``ts`` values that are
not timestamps (``try_cast``), ``account_id`` values not in accounts (anti-join against the accounts
frame registered from pandas), events before the month their account started and events after
``as_of``. Messages name the file, the column, the count, a few offending values and where they are:
Parquet row numbers (1-based; ``part-00003.parquet row 9`` for a folder of parts) or, for CSV, the
offending rows' account_id (DuckDB's CSV reader has no row numbers).

When the folder also has a ``usage`` table, usage wins and the events are not read (aggregating them
as well would count the same activity twice): see :mod:`csresearch.data`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ._report import MAX_EXAMPLES, Problem, capped, quote

__all__ = ["EVENT_COLUMNS", "EventSource", "aggregate", "check", "connect", "dense_rows", "find_events", "latest_date"]

EVENT_COLUMNS = ("account_id", "ts", "event")
_TEXT_TYPES = ("VARCHAR",)


@dataclass
class EventSource:
    """Where the events of a folder are: one file, or a folder of Parquet parts."""

    path: Path
    fmt: str  # "parquet" | "csv"
    parts: list[Path] = field(default_factory=list)

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()

    @property
    def name(self) -> str:
        """``events.parquet``, ``events.csv`` or ``events/``."""
        return self.path.name + ("/" if self.is_folder else "")

    def sql(self, locations: bool = False) -> str:
        """A DuckDB table expression reading the events (with ``filename, file_row_number`` if asked)."""
        if self.fmt == "csv":
            # every column as text: unparseable timestamps are found with try_cast, not by the sniffer
            return f"read_csv({_lit(self.path)}, header=true, all_varchar=true, auto_detect=true)"
        glob = str(self.path / "*.parquet") if self.is_folder else str(self.path)
        extra = ", filename=true, file_row_number=true" if locations else ""
        return f"read_parquet({_lit(glob)}{extra})"

    def digest(self, h: "hashlib._Hash") -> None:
        """Feed the source's bytes into ``h`` in fixed order, streaming (never the whole file in memory)."""
        for p in (self.parts if self.is_folder else [self.path]):
            h.update(f"{'events/' + p.name if self.is_folder else p.name}\0{p.stat().st_size}\0".encode())
            with open(p, "rb") as f:
                while chunk := f.read(1 << 22):
                    h.update(chunk)


def _lit(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def find_events(folder: Path | str) -> tuple[EventSource | None, list[Problem]]:
    """The events source of a data folder (or None) and warnings about shadowed alternatives."""
    folder = Path(folder)
    found: list[EventSource] = []
    if (folder / "events.parquet").is_file():
        found.append(EventSource(folder / "events.parquet", "parquet"))
    sub = folder / "events"
    if sub.is_dir():
        parts = sorted(p for p in sub.iterdir() if p.is_file() and p.suffix == ".parquet"
                       and not p.name.startswith("."))
        if parts:
            found.append(EventSource(sub, "parquet", parts))
    if (folder / "events.csv").is_file():
        found.append(EventSource(folder / "events.csv", "csv"))
    warnings = [Problem("events", other.name, None, "shadowed",
                        f"{other.name}: ignored because {found[0].name} exists (Parquet wins, a file before a folder)")
                for other in found[1:]]
    return (found[0] if found else None), warnings


def connect(threads: int | None = None, memory_limit: str | None = None, spill: bool = False):
    """A DuckDB connection in UTC (so ``date_trunc('month', ts)`` of a TIMESTAMPTZ is the UTC month).

    ``spill``: let large sorts and joins spill to a private temporary folder (removed when the process
    exits) instead of DuckDB's default ``.tmp`` in the working directory."""
    import duckdb

    con = duckdb.connect()
    if spill:
        import atexit
        import shutil
        import tempfile

        tmp = tempfile.mkdtemp(prefix="csresearch-duckdb-")
        atexit.register(shutil.rmtree, tmp, True)
        con.execute(f"SET temp_directory = {_lit(tmp)}").fetchall()
    con.execute("SET TimeZone = 'UTC'").fetchall()
    try:
        con.execute("SET enable_progress_bar = false").fetchall()
    except duckdb.Error:
        # in a Jupyter kernel without ipywidgets DuckDB has the bar off already and refuses any change to it
        pass
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}").fetchall()
    if memory_limit is not None:
        con.execute(f"SET memory_limit = {_lit(memory_limit)}").fetchall()
    return con


def _columns(con, source: EventSource) -> dict[str, str]:
    rows = con.execute(f"DESCRIBE SELECT * FROM {source.sql()}").fetchall()
    return {r[0]: str(r[1]) for r in rows}


def aggregate(source: EventSource | Path | str, *, con=None, accounts: pd.DataFrame | None = None,
              as_of: pd.Timestamp | None = None, batch_rows: int = 1 << 23) -> pd.DataFrame:
    """The monthly usage table of the events: ``account_id, date, metric, value`` (count, float64).

    Without ``accounts``: one row per (account_id, month, event type) that has events, sorted by
    account_id, date, metric.

    With ``accounts`` (the typed accounts frame) and ``as_of``: the *dense* table the studies use. Raw
    events only exist where something happened, so a silent month would otherwise have no row, read as
    "unknown" downstream, and silent months (often the clearest churn signal) would drop out of every usage
    model. Every account gets a row per event type for each calendar month from its start month to the month
    of its churn date (or of ``as_of``), 0 where it had no event; events outside those months are not
    counted. Rows come in the accounts' order, then date, then metric.

    Dense: DuckDB joins every event to its account and streams its cell of the (account, month, event type)
    grid in batches of ``batch_rows``; numpy counts them. No GROUP BY or sort in DuckDB, so its memory does
    not grow with the number of events; ``account_id``/``metric`` hold references to one ``str`` object per
    distinct value (the accounts frame's own ids), so the frame costs 32 bytes per row.
    Rows that are not valid (see :func:`check`) are not filtered here: validate first
    (``csresearch.data.load`` does)."""
    import numpy as np

    source = _as_source(source)
    con = con or connect()
    counts = f"""SELECT CAST(account_id AS VARCHAR) AS account_id,
               CAST(date_trunc('month', CAST(ts AS TIMESTAMP)) AS DATE) AS date,
               CAST(event AS VARCHAR) AS metric, count(*) AS n
        FROM {source.sql()} GROUP BY ALL"""
    if accounts is None:
        table = con.sql(f"SELECT account_id, date, metric, CAST(n AS DOUBLE) AS value FROM ({counts}) "
                        "ORDER BY account_id, date, metric").to_arrow_table()
        df = table.to_pandas(deduplicate_objects=True, date_as_object=False)
        del table
        df["date"] = df["date"].astype("datetime64[ns]")
        return df[["account_id", "date", "metric", "value"]]
    if as_of is None:
        raise ValueError("aggregate(accounts=...) needs as_of: the last month of an active account")
    metrics, first, last, n_months = _grid(source, con, accounts, as_of)
    n_metrics = len(metrics)
    ids = accounts["account_id"].to_numpy(dtype=object)
    offset = np.cumsum(n_months) - n_months  # first grid month of each account
    n_cells = int(n_months.sum()) * n_metrics
    counts = np.zeros(n_cells, dtype=np.float64)  # the value column itself (counts are exact in float64)
    if n_cells:
        # DuckDB streams one grid position per event (a hash join with the accounts: no GROUP BY, no sort, so
        # its memory does not grow with the events); numpy counts them into the dense grid
        con.register("_usage_accounts", pd.DataFrame({
            "account_id": ids, "first_month": first.astype("datetime64[ns]"),
            "last_month": last.astype("datetime64[ns]"), "off": offset})[n_months > 0])
        con.register("_usage_metrics", pd.DataFrame({"j": np.arange(n_metrics, dtype=np.int64),
                                                     "metric": np.array(metrics, dtype=object)}))
        month = "date_trunc('month', CAST(e.ts AS TIMESTAMP))"
        reader = con.sql(f"""
            SELECT (a.off + datediff('month', a.first_month, {month})) * {n_metrics} + m.j AS pos
            FROM {source.sql()} e
            JOIN _usage_accounts a ON CAST(e.account_id AS VARCHAR) = a.account_id
            JOIN _usage_metrics m ON CAST(e.event AS VARCHAR) = m.metric
            WHERE {month} >= a.first_month AND {month} <= a.last_month""").to_arrow_reader(batch_rows)
        for batch in reader:
            # a batch's distinct cells and their counts: temporary memory of the batch's size, not the grid's
            cells, n = np.unique(batch.column(0).to_numpy(zero_copy_only=False), return_counts=True)
            counts[cells] += n
        con.unregister("_usage_accounts")
        con.unregister("_usage_metrics")
    n_rows = int(n_months.sum())
    dates = np.repeat(first, n_months)
    dates += (np.arange(n_rows) - np.repeat(offset, n_months)).astype("timedelta64[M]")
    out = pd.DataFrame({"account_id": np.repeat(ids, n_months * n_metrics)})
    out["date"] = np.repeat(dates.astype("datetime64[ns]"), n_metrics)
    del dates
    out["metric"] = np.tile(np.array(metrics, dtype=object), n_rows)
    out["value"] = counts
    return out


def _grid(source: EventSource, con, accounts: pd.DataFrame, as_of,
          metrics: list[str] | None = None) -> tuple[list[str], Any, Any, Any]:
    """The dense usage grid: event types (sorted), each account's first and last month, its number of months."""
    import numpy as np

    as_of = pd.Timestamp(as_of)
    metrics = list(metrics) if metrics is not None else event_types(source, con=con)
    first = accounts["start_date"].to_numpy("datetime64[M]")
    last = accounts["end_date"].fillna(as_of).clip(upper=as_of).to_numpy("datetime64[M]")
    n_months = np.maximum((last - first).astype(np.int64) + 1, 0)
    return metrics, first, last, n_months


def event_types(source: EventSource | Path | str, *, con=None) -> list[str]:
    """The distinct event types of the events, sorted: the metrics of their usage table."""
    source = _as_source(source)
    con = con or connect()
    return sorted(r[0] for r in con.execute(
        f"SELECT DISTINCT CAST(event AS VARCHAR) FROM {source.sql()} WHERE event IS NOT NULL").fetchall())


def dense_rows(source: EventSource | Path | str, accounts: pd.DataFrame, as_of, *, con=None,
               metrics: list[str] | None = None) -> int:
    """The number of rows :func:`aggregate` ``(accounts=, as_of=)`` returns, without counting any event.

    ``metrics``: the event types when already known (:func:`event_types`), so the events are not scanned again."""
    source = _as_source(source)
    metrics, _, _, n_months = _grid(source, con or connect(), accounts, as_of, metrics)
    return int(n_months.sum()) * len(metrics)


def _as_source(source: EventSource | Path | str) -> EventSource:
    if isinstance(source, EventSource):
        return source
    p = Path(source)
    if p.is_dir():
        if p.name != "events" and any(c.exists() for c in (p / "events.parquet", p / "events", p / "events.csv")):
            found, _ = find_events(p)  # a data folder
            if found is None:
                raise FileNotFoundError(f"{p}: no events.parquet, events/ or events.csv")
            return found
        parts = sorted(q for q in p.iterdir() if q.suffix == ".parquet")
        if not parts:
            raise FileNotFoundError(f"{p}: no Parquet parts")
        return EventSource(p, "parquet", parts)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    return EventSource(p, "csv" if p.suffix.lower() == ".csv" else "parquet")


def latest_date(source: EventSource, *, con=None) -> pd.Timestamp | None:
    """The latest day of a valid timestamp in the events (for as_of when none is given)."""
    con = con or connect()
    cols = _columns(con, source)
    if "ts" not in cols:
        return None
    (value,) = con.execute(f"SELECT max(try_cast(ts AS TIMESTAMP)) FROM {source.sql()}").fetchall()[0]
    return None if value is None else pd.Timestamp(value).normalize()


def _empty(col: str, kind: str) -> str:
    return f"({col} IS NULL OR trim({col}) = '')" if kind in _TEXT_TYPES else f"({col} IS NULL)"


def check(source: EventSource, accounts: pd.DataFrame | None, as_of: pd.Timestamp | None,
          *, accounts_file: str = "accounts", con=None) -> tuple[list[Problem], int]:
    """Every problem of the events (all errors) and the number of event rows.

    ``accounts`` is the typed accounts frame (account_id, start_date); None skips the cross-table
    checks (the accounts table could not be read: its own errors say why)."""
    con = con or connect()
    name = source.name
    cols = _columns(con, source)
    errors = [Problem("events", name, c, "missing_column", f"{name}: missing required column {c}"
                      + _near(c, cols)) for c in EVENT_COLUMNS if c not in cols]
    if errors:
        (n,) = con.execute(f"SELECT count(*) FROM {source.sql()}").fetchall()[0]
        return errors, int(n)
    kinds = {c: cols[c] for c in EVENT_COLUMNS}
    empty = {c: _empty(f"e.{c}", kinds[c]) for c in EVENT_COLUMNS}
    t = "try_cast(e.ts AS TIMESTAMP)"
    conds: dict[tuple[str, str], str] = {
        ("account_id", "empty"): empty["account_id"],
        ("ts", "empty"): empty["ts"],
        ("ts", "not_timestamp"): f"(NOT {empty['ts']} AND {t} IS NULL)",
        ("event", "empty"): empty["event"],
    }
    joined = accounts is not None and {"account_id", "start_date"} <= set(accounts.columns)
    if joined:
        acc = pd.DataFrame({
            "account_id": accounts["account_id"].astype(object),
            "start_month": pd.to_datetime(accounts["start_date"]).dt.to_period("M").dt.to_timestamp(),
        }).dropna(subset=["account_id"]).drop_duplicates("account_id")
        con.register("_accounts", acc)
        conds[("account_id", "orphan_account")] = f"(NOT {empty['account_id']} AND a.account_id IS NULL)"
        conds[("ts", "before_start_month")] = f"({t} < a.start_month)"
    if as_of is not None:
        cutoff = (pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)).isoformat(sep=" ")
        conds[("ts", "after_as_of")] = f"({t} >= TIMESTAMP {_lit(cutoff)})"
    frm = f"{source.sql()} e"
    if joined:
        frm += " LEFT JOIN _accounts a ON CAST(e.account_id AS VARCHAR) = a.account_id"
    sel = ", ".join([f"count(*) FILTER (WHERE {cond})" for cond in conds.values()])
    counts = con.execute(f"SELECT count(*), {sel} FROM {frm}").fetchall()[0]
    n_rows = int(counts[0])
    found = [(key, int(count)) for key, count in zip(conds, counts[1:]) if count]
    found.sort(key=lambda kc: (EVENT_COLUMNS.index(kc[0][0]), list(_PHRASES).index(kc[0][1])))
    for (col, rule), count in found:
        errors.append(_problem(con, source, frm, col, rule, conds[(col, rule)], count, as_of, accounts_file))
    if joined:
        con.unregister("_accounts")
    return errors, n_rows


def _near(name: str, cols: dict[str, str]) -> str:
    near = [c for c in cols if c != name and c.strip().lower().replace(" ", "_") == name]
    if not near:
        return ""
    c = near[0]
    return (f" (found {c}: names are case-sensitive)" if c.lower() == name
            else f" (found {quote(c)}: names must match exactly)")


_PHRASES = {
    "empty": ("row is empty", "rows are empty"),
    "not_timestamp": ("row is not a timestamp", "rows are not timestamps"),
    "orphan_account": ("row names an account_id not in {accounts}", "rows name an account_id not in {accounts}"),
    "before_start_month": ("row is before the month its account started",
                           "rows are before the month their account started"),
    "after_as_of": ("row is after as_of {as_of}", "rows are after as_of {as_of}"),
}


def _problem(con, source: EventSource, frm: str, col: str, rule: str, cond: str, n: int,
             as_of: pd.Timestamp | None, accounts_file: str) -> Problem:
    one, many = _PHRASES[rule]
    words = {"accounts": accounts_file, "as_of": pd.Timestamp(as_of).date().isoformat() if as_of is not None else "?"}
    phrase = (one if n == 1 else many).format(**words)
    text = f"{source.name}: column {col}: {n:,} {phrase}"
    src_loc = frm.replace(source.sql(), source.sql(locations=True), 1)
    # offending values: not_timestamp -> the ts text, orphan -> the distinct unknown ids
    if rule in ("not_timestamp", "orphan_account"):
        vcol = "CAST(e.ts AS VARCHAR)" if rule == "not_timestamp" else "CAST(e.account_id AS VARCHAR)"
        rows = con.execute(f"""SELECT v, count(*) OVER () FROM (
            SELECT DISTINCT {vcol} AS v FROM {frm} WHERE {cond}) ORDER BY v LIMIT {MAX_EXAMPLES}""").fetchall()
        if rows:
            text += ": " + capped([quote(v) for v, _ in rows], int(rows[0][1]))
    if source.fmt == "parquet":
        order = "filename, file_row_number"
        rows = con.execute(f"SELECT filename, file_row_number FROM {src_loc} WHERE {cond} "
                           f"ORDER BY {order} LIMIT {MAX_EXAMPLES}").fetchall()
        if source.is_folder:
            where = [f"{Path(f).name} row {int(r) + 1}" for f, r in rows]
            text += f" ({capped(where, n)})"
        else:
            text += f" ({'row' if n == 1 else 'rows'} {capped([str(int(r) + 1) for _, r in rows], n)})"
    elif rule not in ("empty",) or col != "account_id":
        # CSV: DuckDB's reader has no row numbers, so the rows are named by account_id (and ts)
        show_ts = rule in ("before_start_month", "after_as_of")
        expr = ("CAST(e.account_id AS VARCHAR) || ' at ' || CAST(e.ts AS VARCHAR)" if show_ts
                else "CAST(e.account_id AS VARCHAR)")
        rows = con.execute(f"SELECT {expr} AS v FROM {frm} WHERE {cond} AND NOT {_empty('e.account_id', 'VARCHAR')} "
                           f"ORDER BY v LIMIT {MAX_EXAMPLES}").fetchall()
        if rows:
            text += f" (account_id {capped([r[0] for r in rows], n)})"
    return Problem("events", source.name, col, rule, text)
