"""Read and validate a data folder against the data contract (docs/data-contract.md in the repository).

>>> report = validate("data/sample")        # never raises for bad data; report.ok, report.render()
>>> ds = load("data/sample")                # raises DataValidationError listing every problem

A folder holds one file per table, ``NAME.csv`` or ``NAME.parquet`` (Parquet wins), an optional
``dataset.yaml`` (as_of, observed_from, description, label_horizon_days, raw_dir, files, columns).
``accounts`` is required; ``goals``, ``goal_progress`` (needs goals) and ``usage`` are optional.

A table may instead be *described*: ``NAME.sql`` (a DuckDB SELECT over raw files) or a ``columns:`` entry of
dataset.yaml (renames, value maps, tenure and churn labels); see :mod:`csresearch.data._mapping`. Its problems
are reported with the raw file, the raw column and the raw rows. ``label_horizon_days`` marks a label export
(one row per customer, churn a label over the days before as_of): :attr:`Dataset.label_horizon_days`.

``events`` (``events.parquet``, a folder ``events/`` of Parquet parts, or ``events.csv``) are
aggregated into the monthly ``usage`` table by :mod:`csresearch.data.events` (DuckDB, out of core: the
events never enter pandas) *only when the folder has no usage table*. The counting is deferred: it runs when
:attr:`Dataset.usage` is first read, for the accounts of the dataset read (so a sample of a large book counts only
its own accounts, and the account-month panel, which reads the events files on its engine, never needs it). With both, usage wins and the
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
from ._knownat import check as check_known_at
from ._mapping import ColumnsMap, Settings, Sources, Views, parse_columns
from ._read import RawTable, find_files, parse_date, quote_value, read_dataset_yaml, read_table
from ._report import DataValidationError, Problem, ValidationReport, table_order
from ._rules import Context, coerce, run, text_schema, typed_checks, warning_checks
from ._spec import CONTRACT_DOC, OBSERVATION_DATES, TABLES, TEXT, doc

#: DuckDB's memory budget while validating and aggregating events
EVENTS_MEMORY_LIMIT = "1GB"

__all__ = ["CONTRACT_DOC", "Dataset", "DataValidationError", "PendingUsage", "Problem", "TABLES", "ValidationReport", "label_start",
           "load", "validate"]


@dataclass(frozen=True)
class PendingUsage:
    """The dense monthly usage of raw events, not counted yet (see :class:`_Usage`): the events, the as_of date that
    ends an active account's months, and the event types (sorted), which are the usage metrics."""

    source: Any  # csresearch.data.events.EventSource
    as_of: pd.Timestamp
    metrics: tuple[str, ...]

    def count(self, accounts: pd.DataFrame) -> pd.DataFrame:
        """The dense usage table of ``accounts`` (:func:`csresearch.data.events.aggregate`)."""
        from .events import aggregate, connect

        con = connect(memory_limit=EVENTS_MEMORY_LIMIT, spill=True)
        try:
            return aggregate(self.source, con=con, accounts=accounts, as_of=self.as_of)
        finally:
            con.close()
            release_memory()


class _Usage:
    """``Dataset.usage``: a frame, None, or a :class:`PendingUsage` counted (for the dataset's own accounts) and kept
    when first read. A dataclass field whose default is this descriptor: ``Dataset(..., usage=x)`` and
    ``replace(ds, usage=x)`` set it; :meth:`Dataset.usage_state` looks without counting."""

    def __set_name__(self, owner, name):
        # kept in the instance's __dict__ under the field's own name (a data descriptor wins over it), so that
        # ``Dataset(**ds.__dict__)`` copies a dataset as it is, pending usage included
        self.slot = name

    def __get__(self, obj, owner=None):
        if obj is None:
            raise AttributeError(self.slot)  # no class-level default: the dataclass field stays required
        value = obj.__dict__[self.slot]
        if isinstance(value, PendingUsage):
            value = value.count(obj.accounts)
            obj.__dict__[self.slot] = value
        return value

    def __set__(self, obj, value):
        obj.__dict__[self.slot] = value


class LetGo:
    """A table of a :class:`Dataset` that was let go or left out to save memory, in its place: reading it (its
    columns, rows, length, values) raises a RuntimeError with ``why``. Never an empty table or None: a Dataset whose
    ``goal_progress`` is None reads as goals never measured."""

    def __init__(self, why: str):
        object.__setattr__(self, "_why", why)

    def _fail(self, *_a, **_k):
        raise RuntimeError(object.__getattribute__(self, "_why"))

    def __getattr__(self, name: str):
        self._fail()

    __getitem__ = __len__ = __iter__ = __contains__ = __array__ = _fail

    def __repr__(self) -> str:
        return "<let go: " + object.__getattribute__(self, "_why") + ">"


@dataclass
class Dataset:
    """A validated data folder."""

    path: Path
    accounts: pd.DataFrame
    goals: pd.DataFrame | None
    goal_progress: pd.DataFrame | None
    #: the long monthly usage table; counted from raw events when first read (see :class:`PendingUsage`)
    usage: pd.DataFrame | None = _Usage()
    as_of: pd.Timestamp
    observed_from: pd.Timestamp | None
    description: str | None
    files: dict[str, Path]
    warnings: list[Problem] = field(default_factory=list)
    #: "given", "from dataset.yaml" or "latest date in the data: TABLE.COLUMN"
    as_of_source: str = ""
    _fingerprint: str = field(default="", repr=False)
    #: label exports: churn is a 0/1 label over the N days ending at as_of (dataset.yaml label_horizon_days);
    #: None for dated exports. See :attr:`label_from`.
    label_horizon_days: int | None = None
    #: how each table was read: "accounts.csv", "accounts.sql over telco.csv", "telco.csv (columns map)"
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def label_from(self) -> pd.Timestamp | None:
        """The label horizon's first day, ``as_of - (label_horizon_days - 1)`` days; None for dated exports.

        In a label export every account was active on this day, a churner's end_date lies in
        ``[label_from, as_of]`` and ``end_date.notna()`` is the label."""
        if self.label_horizon_days is None:
            return None
        return label_start(self.as_of, self.label_horizon_days)

    @property
    def is_label_export(self) -> bool:
        return self.label_horizon_days is not None

    @property
    def segments(self) -> list[str]:
        return sorted(self.accounts["segment"].unique().tolist())

    @property
    def has_goals(self) -> bool:
        return self.goals is not None and len(self.goals) > 0

    def usage_state(self) -> "pd.DataFrame | PendingUsage | None":
        """The usage as held, without counting pending events: a frame, a :class:`PendingUsage` or None."""
        return self.__dict__["usage"]

    @property
    def has_usage(self) -> bool:
        """A usage table, counted or pending (reading this never counts events)."""
        return self.usage_state() is not None

    @property
    def usage_metrics(self) -> list[str]:
        """The usage metrics, sorted (the event types of pending events: nothing is counted); [] without usage."""
        held = self.usage_state()
        if held is None:
            return []
        if isinstance(held, PendingUsage):
            return list(held.metrics)
        return sorted(str(m) for m in pd.unique(held["metric"]))

    def __repr__(self) -> str:  # the generated repr would read (and count) the usage
        held = self.usage_state()
        usage = ("pending" if isinstance(held, PendingUsage) else None if held is None else f"{len(held):,} rows")
        return (f"Dataset(path={str(self.path)!r}, accounts={len(self.accounts):,}, "
                f"goals={None if self.goals is None else len(self.goals)}, usage={usage}, "
                f"as_of={self.as_of.date()})")

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

    def for_segment(self, segment: str, *, measurements: bool = True) -> "Dataset":
        """The same dataset restricted to one segment's accounts (and their goals, progress and usage).
        ``measurements=False`` leaves the goal measurements out (a :class:`LetGo` in their place, read only to
        raise): for a caller that has each account's attainment already and needs the segment's accounts and
        goals, on a large book without copying its millions of measurements."""
        if segment not in set(self.accounts["segment"]):
            raise ValueError(f"segment {segment!r} is not in {self.path}: segments are {', '.join(self.segments)}")
        return self._restricted((self.accounts["segment"] == segment).to_numpy(), measurements=measurements)

    def sample_accounts(self, n: int, seed: int) -> "Dataset":
        """A simple random sample of ``n`` accounts (all of them when there are fewer), with their goals,
        progress and usage; the same ``n`` and ``seed`` give the same sample. Accounts keep their file order."""
        if n >= len(self.accounts):
            return self
        keep = np.zeros(len(self.accounts), dtype=bool)
        keep[np.random.default_rng(seed).choice(len(self.accounts), size=int(n), replace=False)] = True
        return self._restricted(keep)

    def _restricted(self, keep: np.ndarray, measurements: bool = True) -> "Dataset":
        accounts = self.accounts[keep].reset_index(drop=True)
        ids = pd.Index(accounts["account_id"])
        goals = None if self.goals is None else self.goals[self.goals["account_id"].isin(ids)].reset_index(drop=True)
        progress = None
        if self.goal_progress is not None and not measurements:
            progress = LetGo("this restriction of the data left its goal measurements out (measurements=False): "
                             "attainment cannot be computed from it")
        elif self.goal_progress is not None:
            progress = self.goal_progress[self.goal_progress["goal_id"].isin(pd.Index(goals["goal_id"]))].reset_index(drop=True)
        usage = self.usage_state()
        if isinstance(usage, pd.DataFrame):
            usage = usage[usage["account_id"].isin(ids)].reset_index(drop=True)
        # pending events stay pending: counted, when read, for the restricted dataset's own accounts
        return replace(self, accounts=accounts, goals=goals, goal_progress=progress, usage=usage)


def label_start(as_of: pd.Timestamp, days: int) -> pd.Timestamp:
    """The first day of a label horizon of ``days`` days ending at ``as_of`` (both days included)."""
    return pd.Timestamp(as_of) - pd.Timedelta(days=int(days) - 1)


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

    def read_bytes(p: Path, into_digest: bool = True) -> bytes | None:
        try:
            data = p.read_bytes()
        except OSError as exc:
            errors.append(Problem(None, p.name, None, "unreadable", f"{p.name}: cannot be read: {exc.strerror}"))
            return None
        if into_digest:
            digest.update(f"{p.name}\0{len(data)}\0".encode())
            digest.update(data)
        return data

    # dataset.yaml first: it says how to read the tables (its bytes enter the fingerprint after them, as always)
    meta: dict[str, Any] = {}
    yaml_data = None
    if files.dataset_yaml is not None:
        yaml_data = read_bytes(files.dataset_yaml, into_digest=False)
        if yaml_data is not None:
            meta = read_dataset_yaml(files.dataset_yaml, yaml_data, errors, warnings)
    given = None
    if as_of_arg is not None:
        given = parse_date(as_of_arg if not isinstance(as_of_arg, str) else as_of_arg.strip())
        if given is None:
            errors.append(Problem(None, None, "as_of", "not_date",
                                  f"as_of (given): must be a date YYYY-MM-DD, found {quote_value(as_of_arg)}"))
    declared_as_of = given if given is not None else meta.get("as_of")
    horizon = meta.get("label_horizon_days")
    label_from = None
    if horizon is not None:
        if declared_as_of is None:
            errors.append(Problem(None, "dataset.yaml", "label_horizon_days", "needs_as_of",
                                  "dataset.yaml: label_horizon_days needs as_of, the day the churn label was "
                                  f"observed (in dataset.yaml or --as-of) ({doc('label-exports')})"))
        else:
            label_from = label_start(declared_as_of, horizon)
    settings = Settings(folder, meta.get("files", {}), meta.get("raw_dir"), declared_as_of,
                        meta.get("observed_from"), horizon, label_from)
    maps = parse_columns(meta.get("columns", {}), settings.files, errors) if "columns" in meta else {}
    if "accounts" in maps:  # find_files could not know
        errors[:] = [e for e in errors if e.rule != "missing_table"]
    described = {t for t in TABLES if t in files.views or t in maps}

    events, con = None, None
    if "usage" not in files.tables and "usage" not in described:
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

    sources = Sources(settings, errors, warnings, read_bytes)
    views = Views(settings, sources, errors) if files.views else None
    columns_map = ColumnsMap(settings, sources, errors, warnings) if maps else None
    raws: dict[str, RawTable] = {}
    how: dict[str, str] = {}
    for table in TABLES:
        view, tmap, plain = files.views.get(table), maps.get(table), files.tables.get(table)
        if view is not None and tmap is not None:
            errors.append(Problem(table, view.name, None, "described_twice",
                                  f"{view.name}: dataset.yaml (columns: {table}:) describes the {table} table too: "
                                  f"keep one ({doc('mapping')})"))
            continue
        if plain is not None and (view is not None or tmap is not None) and (tmap is None or tmap.file != plain.name):
            by = view.name if view is not None else f"dataset.yaml (columns: {table}:)"
            warnings.append(Problem(table, plain.name, None, "shadowed",
                                    f"{plain.name}: ignored because {by} describes the {table} table"))
        try:
            if view is not None:
                raw = views.run(table, view)
                if raw is not None:
                    how[table] = f"{view.name} over {', '.join(raw.sources)}" if raw.sources else view.name
            elif tmap is not None:
                raw = columns_map.run(tmap)
                if raw is not None:
                    how[table] = f"{tmap.file}, mapped by dataset.yaml"
            elif plain is not None:
                data = read_bytes(plain)
                if data is None:
                    continue
                raw = read_table(table, plain, data, errors, warnings, settings.files.get(plain.name))
                if raw is not None:
                    how[table] = plain.name
            else:
                continue
        except Exception as exc:  # never a traceback for a bad file
            name = (view or plain or Path(tmap.file if tmap else table)).name
            errors.append(Problem(table, name, None, "unreadable",
                                  f"{name}: could not be read: {type(exc).__name__}: {exc}"))
            raw = None
        if raw is not None:
            raws[table] = raw
    # raw files a view or the map reads are not "unknown files" of the folder
    warnings[:] = [w for w in warnings if not (w.rule == "unknown_file" and w.file in sources.used)]
    unknown_yaml = [n for n in settings.files if n not in sources.used and (folder / n).name not in
                    {p.name for p in files.tables.values()} and sources.locate(n) is None]
    for n in unknown_yaml:
        warnings.append(Problem(None, "dataset.yaml", "files", "unknown_file",
                                f"dataset.yaml: files: {n}: no such file in the folder: its settings are not used"))
    if yaml_data is not None:
        digest.update(f"{files.dataset_yaml.name}\0{len(yaml_data)}\0".encode())
        digest.update(yaml_data)

    if events is not None:
        try:
            events.digest(digest)
        except OSError as exc:
            errors.append(Problem("events", events.name, None, "unreadable",
                                  f"{events.name}: cannot be read: {exc.strerror}"))
            events = None

    # Plain Python from here to stage 1, where pandera has nothing to hold: which files exist
    # (needs_goals, no_progress table) and, below, the scalars as_of and observed_from.
    has = set(files.tables) | described
    if "goal_progress" in has and "goals" not in has:
        name = raws["goal_progress"].ref if "goal_progress" in raws else "goal_progress"
        errors.append(Problem("goal_progress", name, None, "needs_goals",
                              f"{name}: needs the goals table, but there is no goals.csv or goals.parquet"))
    if "goals" in has and "goal_progress" not in has:
        name = raws["goals"].ref if "goals" in raws else "goals"
        warnings.append(Problem("goals", name, None, "no_progress",
                                f"{name}: no goal_progress table: every goal will count as not attained"))

    # stage 1: text
    typed: dict[str, pd.DataFrame] = {}
    for table, raw in raws.items():
        if len(raw.frame) == 0:
            name = raw.mapper if raw.mapper is not None and raw.mapper.endswith(".sql") else raw.file
            (errors if table == "accounts" else warnings).append(
                Problem(table, name, None, "no_rows", f"{name}: no rows"))
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
    if given is not None:
        as_of, source = given, "given"
    elif as_of_arg is not None:
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
    observed_source = "from dataset.yaml" if observed_from is not None else ""
    if observed_from is not None and as_of is not None and observed_from > as_of:
        errors.append(Problem(None, "dataset.yaml", "observed_from", "observed_after_as_of",
                              f"dataset.yaml: observed_from {observed_from.date()} is after as_of "
                              f"{as_of.date()} ({source})"))
    elif label_from is not None:
        if observed_from is None:
            observed_from, observed_source = label_from, "the label horizon's first day"
        elif observed_from > label_from:
            errors.append(Problem(None, "dataset.yaml", "observed_from", "observed_after_label_start",
                                  f"dataset.yaml: observed_from {observed_from.date()} is after the label horizon's "
                                  f"first day {label_from.date()} (as_of {as_of.date()} and label_horizon_days "
                                  f"{horizon}): every account of a label export is observed when its horizon "
                                  f"begins ({doc('label-exports')})"))

    # stage 2: typed, cross-table, warnings
    ctx = Context(as_of, observed_from, typed, raws, horizon, label_from)
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
        acc_file = raws["accounts"].ref if "accounts" in raws else "accounts"
        try:
            ev_errors, n_events = check_events(events, typed.get("accounts"), as_of,
                                               accounts_file=acc_file, con=con)
            errors.extend(ev_errors)
        except Exception as exc:  # an unreadable file, or a bug here: never a traceback
            errors.append(Problem("events", events.name, None, "unreadable",
                                  f"{events.name}: could not be read: {type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''}"))

    known = None
    if not errors and "accounts" in typed and "usage" in typed and len(typed["usage"]) and as_of is not None:
        known, warning = check_known_at(typed["accounts"], typed["usage"], raws["usage"].ref, as_of,
                                        observed_from, label_from)
        if warning is not None:
            warnings.append(warning)

    # one table after the other (dataset.yaml and folder-level problems first), stages in order
    errors.sort(key=table_order)
    warnings.sort(key=table_order)
    report.summary = {
        "rows": {t: len(raws[t].frame) for t in TABLES if t in raws},
        "files": {t: how.get(t, raws[t].file) for t in TABLES if t in raws},
        "as_of": as_of.date().isoformat() if as_of is not None else None,
        "as_of_source": source,
        "observed_from": observed_from.date().isoformat() if observed_from is not None else None,
        "observed_from_source": observed_source,
        "label_horizon_days": horizon,
        "label_from": label_from.date().isoformat() if label_from is not None else None,
        "description": meta.get("description"),
        "not_read": files.not_read,
        "raw_files": sorted(sources.used),
    }
    if known is not None:
        report.summary["churn"] = known.summary(label_from, as_of, horizon)
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
            con.close()  # DuckDB gives its memory back when its database closes
        return report, None

    frames = {t: _final_frame(raws[t], typed[t]) for t in raws}
    paths = {t: (files.views.get(t) or raws[t].path) for t in TABLES if t in raws}
    raws.clear()  # the final frames are all that is needed now: free the text and parsed copies before the events
    typed.clear()
    release_memory()
    accounts = frames["accounts"]
    usage_frame = None
    if events is not None:
        from .events import dense_rows, event_types
        types = event_types(events, con=con)  # one scan of the events for their types, used twice
        usage_frame = PendingUsage(events, pd.Timestamp(as_of), tuple(types))
        report.summary["rows"]["usage"] = dense_rows(events, accounts, as_of, con=con, metrics=types)
        con.close()  # DuckDB gives its memory back when its database closes
        release_memory()

    dataset = Dataset(
        path=folder, accounts=accounts, goals=frames.get("goals"),
        goal_progress=frames.get("goal_progress"),
        usage=usage_frame if usage_frame is not None else frames.get("usage"),
        as_of=pd.Timestamp(as_of), observed_from=observed_from, description=meta.get("description"),
        files={**paths,
               **({"usage": events.path, "events": events.path} if events is not None else {})},
        warnings=list(warnings),
        as_of_source=source, _fingerprint=digest.hexdigest(), label_horizon_days=horizon,
        sources=dict(report.summary["files"]))
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
    inferred = pd.read_csv(buf, decimal=raw.decimal)
    inferred.index = raw.frame.index
    inferred.columns = extra
    return inferred

