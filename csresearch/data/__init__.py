"""Read and validate a data folder against the data contract (/work/shared/data-contract.md).

>>> report = validate("data/sample")        # never raises for bad data; report.ok, report.render()
>>> ds = load("data/sample")                # raises DataValidationError listing every problem

A folder holds one file per table, ``NAME.csv`` or ``NAME.parquet`` (Parquet wins), an optional
``dataset.yaml`` (as_of, observed_from, description). ``accounts`` is required; ``goals``,
``goal_progress`` (needs goals) and ``usage`` are optional.

``events`` (``events.parquet``, a folder ``events/`` of Parquet parts, or ``events.csv``) are
aggregated into the monthly ``usage`` table by :mod:`csresearch.data.events` (DuckDB, out of core: the
events never enter pandas) *only when the folder has no usage table*. With both, usage wins and the
events are reported as present but not read: merging would count the same activity twice when the
usage was itself derived from the events. Event problems are errors (exit 2), like usage's, and are
found in DuckDB (see :func:`csresearch.data.events.check`); events take part in the as_of default
(latest day of a timestamp, ``events.ts``).

Loaded frames keep the file's row order and every column. Contract columns get their contract
types: ids and other text as ``object`` columns of ``str``, dates as ``datetime64[ns]`` (end_date
NaT while active), numbers as ``float64`` (arr NaN when empty, goal weight 1.0 when empty).
Absent optional columns are added (arr, due_date, weight). Extra columns keep the types pandas
infers (CSV) or the stored types (Parquet).

Nothing is ever written to the input folder: every table file is read once into memory, except the
events, which DuckDB scans in place (their bytes are streamed into the fingerprint).
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._memory import release_memory
from ._read import RawTable, find_files, parse_date, quote_value, read_dataset_yaml, read_table
from ._report import DataValidationError, Problem, ValidationReport, table_order
from ._rules import Context, coerce, run, text_schema, typed_checks, warning_checks
from ._spec import OBSERVATION_DATES, TABLES, TEXT

#: DuckDB's memory budget while validating and aggregating events
EVENTS_MEMORY_LIMIT = "1GB"

__all__ = ["Dataset", "DataValidationError", "Problem", "TABLES", "ValidationReport", "load", "validate"]


@dataclass
class Dataset:
    """A validated data folder."""

    path: Path
    accounts: pd.DataFrame
    goals: pd.DataFrame | None
    goal_progress: pd.DataFrame | None
    usage: pd.DataFrame | None
    as_of: pd.Timestamp
    observed_from: pd.Timestamp | None
    description: str | None
    files: dict[str, Path]
    warnings: list[Problem] = field(default_factory=list)
    #: "given", "from dataset.yaml" or "latest date in the data: TABLE.COLUMN"
    as_of_source: str = ""
    _fingerprint: str = field(default="", repr=False)

    @property
    def segments(self) -> list[str]:
        return sorted(self.accounts["segment"].unique().tolist())

    @property
    def has_goals(self) -> bool:
        return self.goals is not None and len(self.goals) > 0

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables that were read, in contract order."""
        return {t: getattr(self, t) for t in TABLES if getattr(self, t) is not None}

    def summary(self) -> pd.DataFrame:
        """One row per table read: file, rows, columns."""
        rows = [{"table": t, "file": self.files[t].name, "rows": len(df), "columns": df.shape[1]}
                for t, df in self.tables().items()]
        return pd.DataFrame(rows).set_index("table")

    def fingerprint(self) -> str:
        """sha256 over the bytes of the table files and dataset.yaml, in contract order.

        Computed from the bytes that were parsed, so it identifies exactly the data loaded."""
        return self._fingerprint

    def for_segment(self, segment: str) -> "Dataset":
        """The same dataset restricted to one segment's accounts (and their goals, progress and usage)."""
        if segment not in set(self.accounts["segment"]):
            raise ValueError(f"segment {segment!r} is not in {self.path}: segments are {', '.join(self.segments)}")
        return self._restricted((self.accounts["segment"] == segment).to_numpy())

    def sample_accounts(self, n: int, seed: int) -> "Dataset":
        """A simple random sample of ``n`` accounts (all of them when there are fewer), with their goals,
        progress and usage; the same ``n`` and ``seed`` give the same sample. Accounts keep their file order."""
        if n >= len(self.accounts):
            return self
        keep = np.zeros(len(self.accounts), dtype=bool)
        keep[np.random.default_rng(seed).choice(len(self.accounts), size=int(n), replace=False)] = True
        return self._restricted(keep)

    def _restricted(self, keep: np.ndarray) -> "Dataset":
        accounts = self.accounts[keep].reset_index(drop=True)
        ids = pd.Index(accounts["account_id"])
        goals = None if self.goals is None else self.goals[self.goals["account_id"].isin(ids)].reset_index(drop=True)
        progress = None
        if self.goal_progress is not None:
            progress = self.goal_progress[self.goal_progress["goal_id"].isin(pd.Index(goals["goal_id"]))].reset_index(drop=True)
        usage = None if self.usage is None else self.usage[self.usage["account_id"].isin(ids)].reset_index(drop=True)
        return replace(self, accounts=accounts, goals=goals, goal_progress=progress, usage=usage)


def validate(path: str | Path, as_of: Any = None) -> ValidationReport:
    """Check a data folder; never raises for bad data. ``as_of`` overrides dataset.yaml's."""
    report = _inspect(Path(path), as_of, build=False)[0]
    release_memory()
    return report


def load(path: str | Path, as_of: Any = None) -> Dataset:
    """Read and validate a data folder; raise :class:`DataValidationError` if anything is wrong."""
    report, dataset = _inspect(Path(path), as_of)
    release_memory()  # the raw tables and the DuckDB connection are gone now
    if dataset is None:
        raise DataValidationError(report)
    return dataset


# -- the work --------------------------------------------------------------------------------------

def _inspect(folder: Path, as_of_arg: Any, build: bool = True) -> tuple[ValidationReport, Dataset | None]:
    """Validate the folder; with ``build``, also make the Dataset (final frames, events aggregated into usage)."""
    report = ValidationReport(folder)
    errors, warnings = report.errors, report.warnings
    if not folder.exists():
        errors.append(Problem(None, None, None, "no_folder", f"{folder}: no such folder"))
        return report, None
    if not folder.is_dir():
        errors.append(Problem(None, None, None, "no_folder", f"{folder}: not a folder"))
        return report, None

    files = find_files(folder, errors, warnings)
    digest = hashlib.sha256()
    events, con = None, None
    if "usage" not in files.tables:
        from .events import find_events
        events, shadow = find_events(folder)
        # find_files already warned about events.csv next to events.parquet
        warnings.extend(p for p in shadow if "events/" in (p.file, events.name))
        if events is not None:
            files.not_read = [n for n in files.not_read if n != events.name]
            from .events import connect
            # DuckDB may take 80% of the machine by default; the events are streamed, so a bounded budget
            # (spilling to a private temporary folder when needed) keeps a study's peak memory predictable
            con = connect(memory_limit=EVENTS_MEMORY_LIMIT, spill=True)
    elif (folder / "events").is_dir():
        files.not_read.append("events/")

    def read_bytes(p: Path) -> bytes | None:
        try:
            data = p.read_bytes()
        except OSError as exc:
            errors.append(Problem(None, p.name, None, "unreadable", f"{p.name}: cannot be read: {exc.strerror}"))
            return None
        digest.update(f"{p.name}\0{len(data)}\0".encode())
        digest.update(data)
        return data

    raws: dict[str, RawTable] = {}
    for table, p in files.tables.items():
        data = read_bytes(p)
        if data is None:
            continue
        try:
            raw = read_table(table, p, data, errors, warnings)
        except Exception as exc:  # never a traceback for a bad file
            errors.append(Problem(table, p.name, None, "unreadable",
                                  f"{p.name}: could not be read: {type(exc).__name__}: {exc}"))
            raw = None
        if raw is not None:
            raws[table] = raw
    meta: dict[str, Any] = {}
    if files.dataset_yaml is not None:
        data = read_bytes(files.dataset_yaml)
        if data is not None:
            meta = read_dataset_yaml(files.dataset_yaml, data, errors, warnings)

    if events is not None:
        try:
            events.digest(digest)
        except OSError as exc:
            errors.append(Problem("events", events.name, None, "unreadable",
                                  f"{events.name}: cannot be read: {exc.strerror}"))
            events = None

    # Plain Python from here to stage 1, where pandera has nothing to hold: which files exist
    # (needs_goals, no_progress table) and, below, the scalars as_of and observed_from.
    if "goal_progress" in files.tables and "goals" not in files.tables:
        name = files.tables["goal_progress"].name
        errors.append(Problem("goal_progress", name, None, "needs_goals",
                              f"{name}: needs the goals table, but there is no goals.csv or goals.parquet"))
    if "goals" in files.tables and "goal_progress" not in files.tables:
        name = files.tables["goals"].name
        warnings.append(Problem("goals", name, None, "no_progress",
                                f"{name}: no goal_progress table: every goal will count as not attained"))

    # stage 1: text
    typed: dict[str, pd.DataFrame] = {}
    for table, raw in raws.items():
        if len(raw.frame) == 0:
            (errors if table == "accounts" else warnings).append(
                Problem(table, raw.file, None, "no_rows", f"{raw.file}: no rows"))
        extra = raw.extra_columns
        if extra:
            n = len(extra)
            warnings.append(Problem(table, raw.file, None, "extra_columns",
                                    f"{raw.file}: {n} extra column{'s' if n != 1 else ''} kept: "
                                    + ", ".join(extra)))
        _guarded(raw, errors, lambda: run(text_schema(raw), raw.frame, raw, None, errors, warnings))
        typed[table] = coerce(raw)

    # as_of, observed_from: scalars, not frames, so plain comparisons
    as_of, source = None, ""
    if as_of_arg is not None:
        as_of = parse_date(as_of_arg if not isinstance(as_of_arg, str) else as_of_arg.strip())
        if as_of is None:
            errors.append(Problem(None, None, "as_of", "not_date",
                                  f"as_of (given): must be a date YYYY-MM-DD, found {quote_value(as_of_arg)}"))
        source = "given"
    if as_of is None and "as_of" in meta:
        as_of, source = meta["as_of"], "from dataset.yaml"
    if as_of is None:
        latest = None
        for table, cols in OBSERVATION_DATES.items():
            for col in cols:
                if table in typed and col in typed[table].columns:
                    m = typed[table][col].max()
                    if pd.notna(m) and (latest is None or m > latest[0]):
                        latest = (m, f"{table}.{col}")
        if events is not None:
            from .events import latest_date
            try:
                ev_latest = latest_date(events, con=con)
            except Exception:  # reported by the events checks below
                ev_latest = None
            if ev_latest is not None and (latest is None or ev_latest > latest[0]):
                latest = (ev_latest, "events.ts")
        if latest is not None:
            as_of, source = latest[0], f"latest date in the data: {latest[1]}"
        elif "accounts" in raws:
            errors.append(Problem(None, None, "as_of", "no_as_of",
                                  "as_of: cannot be determined: no date in any table and none given "
                                  "(dataset.yaml as_of or --as-of)"))
    observed_from = meta.get("observed_from")
    if observed_from is not None and as_of is not None and observed_from > as_of:
        errors.append(Problem(None, "dataset.yaml", "observed_from", "observed_after_as_of",
                              f"dataset.yaml: observed_from {observed_from.date()} is after as_of "
                              f"{as_of.date()} ({source})"))

    # stage 2: typed, cross-table, warnings
    ctx = Context(as_of, observed_from, typed, raws)
    for table, raw in raws.items():
        def stage2(table: str = table, raw: RawTable = raw) -> None:
            for schema, frame in typed_checks(table, typed[table], ctx):
                run(schema, frame, raw, ctx, errors, warnings)
            for schema, frame in warning_checks(table, raw, typed[table], ctx):
                run(schema, frame, raw, ctx, errors, warnings)
        _guarded(raw, errors, stage2)
        release_memory()

    n_events = None
    if events is not None:
        from .events import check as check_events
        acc_file = raws["accounts"].file if "accounts" in raws else "accounts"
        try:
            ev_errors, n_events = check_events(events, typed.get("accounts"), as_of,
                                               accounts_file=acc_file, con=con)
            errors.extend(ev_errors)
        except Exception as exc:  # an unreadable file, or a bug here: never a traceback
            errors.append(Problem("events", events.name, None, "unreadable",
                                  f"{events.name}: could not be read: {type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''}"))

    # one table after the other (dataset.yaml and folder-level problems first), stages in order
    errors.sort(key=table_order)
    warnings.sort(key=table_order)
    report.summary = {
        "rows": {t: len(raws[t].frame) for t in TABLES if t in raws},
        "files": {t: raws[t].file for t in TABLES if t in raws},
        "as_of": as_of.date().isoformat() if as_of is not None else None,
        "as_of_source": source,
        "observed_from": observed_from.date().isoformat() if observed_from is not None else None,
        "description": meta.get("description"),
        "not_read": files.not_read,
    }
    if errors:
        return report, None
    report.summary["segments"] = {str(k): int(v) for k, v in
                                  typed["accounts"]["segment"].value_counts().sort_index().items()}
    if events is not None:
        report.summary["files"]["usage"] = f"aggregated from {events.name}: {n_events:,} events"
    if not build:
        # validate only: say how many usage rows the events make, without counting them
        if events is not None:
            from .events import dense_rows
            report.summary["rows"]["usage"] = dense_rows(events, typed["accounts"], as_of, con=con)
        return report, None

    frames = {t: _final_frame(raws[t], typed[t]) for t in raws}
    paths = {t: raws[t].path for t in TABLES if t in raws}
    raws.clear()  # the final frames are all that is needed now: free the text and parsed copies before the events
    typed.clear()
    release_memory()
    accounts = frames["accounts"]
    usage_frame = None
    if events is not None:
        from .events import aggregate as aggregate_events
        usage_frame = aggregate_events(events, con=con, accounts=accounts, as_of=as_of)
        release_memory()
        report.summary["rows"]["usage"] = len(usage_frame)

    dataset = Dataset(
        path=folder, accounts=accounts, goals=frames.get("goals"),
        goal_progress=frames.get("goal_progress"),
        usage=usage_frame if usage_frame is not None else frames.get("usage"),
        as_of=pd.Timestamp(as_of), observed_from=observed_from, description=meta.get("description"),
        files={**paths,
               **({"usage": events.path, "events": events.path} if events is not None else {})},
        warnings=list(warnings),
        as_of_source=source, _fingerprint=digest.hexdigest())
    return report, dataset


def _guarded(raw: RawTable, errors: list[Problem], fn) -> None:
    try:
        fn()
    except Exception as exc:  # a bug here must not hide the other findings behind a traceback
        errors.append(Problem(raw.table, raw.file, None, "internal",
                              f"{raw.file}: could not be checked: {type(exc).__name__}: {exc}"))


_ADDED = {"arr": ("float64", float("nan")), "due_date": ("datetime64[ns]", pd.NaT), "weight": ("float64", 1.0)}


def _final_frame(raw: RawTable, typed: pd.DataFrame) -> pd.DataFrame:
    extras = _infer_extras(raw)
    cols: dict[str, pd.Series] = {}
    for c in raw.frame.columns:
        if c in typed.columns:
            spec_kind = next(s.kind for s in TABLES[raw.table] if s.name == c)
            cols[c] = raw.frame[c].astype(object, copy=False) if spec_kind == TEXT else typed[c]
        else:
            cols[c] = extras[c]
    out = pd.DataFrame(cols, index=raw.frame.index, copy=False)
    for spec in TABLES[raw.table]:
        if spec.name not in out.columns and spec.name in _ADDED:
            dtype, value = _ADDED[spec.name]
            out[spec.name] = pd.Series(value, index=out.index, dtype=dtype)
    if raw.table == "goals":
        out["weight"] = out["weight"].fillna(1.0)
    return out.reset_index(drop=True)


def _infer_extras(raw: RawTable) -> pd.DataFrame:
    """Extra columns with the types pandas would infer reading the CSV (Parquet: stored types)."""
    extra = raw.extra_columns
    frame = raw.frame[extra]
    if raw.fmt != "csv" or not extra:
        return frame
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    buf.seek(0)
    inferred = pd.read_csv(buf)
    inferred.index = raw.frame.index
    inferred.columns = extra
    return inferred

