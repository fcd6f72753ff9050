"""Reading a data folder: find table files, read CSV/Parquet into raw text, read dataset.yaml.

Every contract column is turned into Python ``str`` values first ("" = missing) whatever the
format, so that one set of checks reports unparseable values with their rows. Parquet values are
rendered losslessly (``repr`` of floats round-trips exactly; dates as YYYY-MM-DD; a timestamp that
is not at midnight keeps its time and is then reported as not a date). Nothing here writes to disk.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._report import Problem
from ._spec import DATASET_KEYS, DATASET_YAML, DATE, FORMATS, NUMBER, TABLES, TEXT, UNREAD_TABLES

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INDEX_COLUMN = re.compile(r"__index_level_\d+__")


@dataclass
class RawTable:
    table: str
    path: Path
    fmt: str  # "csv" | "parquet"
    #: contract columns as str ("" = missing); extra columns as str (CSV) or native (Parquet)
    frame: pd.DataFrame
    #: per row: CSV line number (header = line 1) or 1-based Parquet row number
    locations: np.ndarray
    #: contract columns whose stored type cannot hold the contract type (already reported)
    unusable: set[str] = field(default_factory=set)
    #: parsed contract columns, filled by the checks (see _rules.parse_column)
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def file(self) -> str:
        return self.path.name

    @property
    def loc_word(self) -> str:
        return "line" if self.fmt == "csv" else "row"

    @property
    def extra_columns(self) -> list[str]:
        known = {c.name for c in TABLES[self.table]}
        return [c for c in self.frame.columns if c not in known]


@dataclass
class FolderFiles:
    tables: dict[str, Path]          # table -> file to read
    not_read: list[str]              # files of contract tables we do not read (events)
    dataset_yaml: Path | None


def find_files(folder: Path, errors: list[Problem], warnings: list[Problem]) -> FolderFiles:
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    present = set(names)
    tables: dict[str, Path] = {}
    claimed: set[str] = set()
    for table in list(TABLES) + list(UNREAD_TABLES):
        candidates = [f"{table}.{fmt}" for fmt in FORMATS if f"{table}.{fmt}" in present]
        claimed.update(candidates)
        if candidates:
            tables[table] = folder / candidates[0]
            for other in candidates[1:]:
                warnings.append(Problem(table, other, None, "shadowed",
                                        f"{other}: ignored because {candidates[0]} exists (Parquet wins)"))
    not_read = [tables.pop(t).name for t in UNREAD_TABLES if t in tables]
    for name in names:
        stem, dot, ext = name.rpartition(".")
        if name in claimed or not dot or ext.lower() not in FORMATS:
            continue
        lower = stem.lower()
        if lower in TABLES or lower in UNREAD_TABLES:
            if lower == "accounts" and "accounts" not in tables:
                continue  # reported with the missing accounts table
            warnings.append(Problem(lower if lower in TABLES else None, name, None, "file_name_case",
                                    f"{name}: not read: file names are case-sensitive "
                                    f"(expected {lower}.{ext.lower()})"))
        else:
            warnings.append(Problem(None, name, None, "unknown_file",
                                    f"{name}: not a table of the data contract: ignored"))
    if "accounts" not in tables:
        near = [n for n in names if n.rpartition(".")[0].lower() == "accounts"
                and n.rpartition(".")[2].lower() in FORMATS]
        hint = f" (found {', '.join(near)}: file names are case-sensitive)" if near else ""
        errors.append(Problem("accounts", None, None, "missing_table",
                              "accounts: required table missing: no accounts.csv or accounts.parquet "
                              f"in the folder{hint}"))
    yaml_path = folder / DATASET_YAML if DATASET_YAML in present else None
    return FolderFiles(tables, not_read, yaml_path)


# -- CSV -------------------------------------------------------------------------------------------

def _first_line(text: str) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else type(text).__name__


def decode(name: str, table: str | None, data: bytes, errors: list[Problem]) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        errors.append(Problem(table, name, None, "encoding",
                              f"{name}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"))
        return None


def read_csv(table: str, path: Path, data: bytes, errors: list[Problem],
             warnings: list[Problem]) -> RawTable | None:
    name = path.name
    if not data:
        errors.append(Problem(table, name, None, "empty_file", f"{name}: file is empty"))
        return None
    text = decode(name, table, data, errors)
    if text is None:
        return None
    # The csv module (not pandas) so that every record keeps its exact first line number, also
    # with quoted line breaks and blank lines, and rows of the wrong width can be reported.
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    bad_width: list[tuple[int, int]] = []
    prev = 0
    try:
        for record in reader:
            start, prev = prev + 1, reader.line_num
            if not record:  # blank line
                continue
            if header is None:
                header = record
                continue
            if len(record) != len(header):
                bad_width.append((start, len(record)))
                continue
            rows.append(record)
            lines.append(start)
    except csv.Error as exc:
        errors.append(Problem(table, name, None, "csv_syntax",
                              f"{name}: not readable as CSV at line {reader.line_num}: {exc}"))
        return None
    if header is None:
        errors.append(Problem(table, name, None, "no_header", f"{name}: no header line"))
        return None
    if bad_width:
        n = len(bad_width)
        where = ", ".join(f"line {ln}: {k} field{'s' if k != 1 else ''}" for ln, k in bad_width[:5])
        more = f" and {n - 5:,} more" if n > 5 else ""
        errors.append(Problem(table, name, None, "row_width",
                              f"{name}: {n:,} row{'s' if n != 1 else ''} not checked further: the header "
                              f"has {len(header)} fields ({where}{more})", tuple(ln for ln, _ in bad_width)))
    frame = pd.DataFrame(rows, columns=range(len(header)), dtype=object) if rows else \
        pd.DataFrame({i: pd.Series([], dtype=object) for i in range(len(header))})
    frame = _name_columns(table, name, frame, header, errors, warnings)
    if frame is None:
        return None
    return RawTable(table, path, "csv", frame.reset_index(drop=True), np.asarray(lines, dtype=np.int64))


def _name_columns(table: str, name: str, frame: pd.DataFrame, header: list[str],
                  errors: list[Problem], warnings: list[Problem]) -> pd.DataFrame | None:
    keep: list[int] = []
    seen: dict[str, int] = {}
    for i, col in enumerate(header):
        if col == "":
            if frame[i].eq("").all():
                warnings.append(Problem(table, name, None, "unnamed_column",
                                        f"{name}: column {i + 1} has no name and no values: ignored"))
            else:
                errors.append(Problem(table, name, None, "unnamed_column",
                                      f"{name}: column {i + 1} has values but no name in the header"))
            continue
        seen[col] = seen.get(col, 0) + 1
        if seen[col] == 1:
            keep.append(i)
    for col, n in seen.items():
        if n > 1:
            errors.append(Problem(table, name, col, "duplicate_column",
                                  f"{name}: column {col} appears {n} times in the header"))
    out = frame[keep]
    out.columns = [header[i] for i in keep]
    return out


# -- Parquet ---------------------------------------------------------------------------------------

def read_parquet(table: str, path: Path, data: bytes, errors: list[Problem],
                 warnings: list[Problem]) -> RawTable | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = path.name
    if not data:
        errors.append(Problem(table, name, None, "empty_file", f"{name}: file is empty"))
        return None
    try:
        arrow = pq.read_table(pa.BufferReader(data))
    except Exception as exc:  # any pyarrow failure: bad magic bytes, truncated file, ...
        errors.append(Problem(table, name, None, "parquet_unreadable",
                              f"{name}: not a readable Parquet file: {_first_line(exc)}"))
        return None
    # Drop pandas metadata: an index saved by pandas comes back as an ordinary column when it
    # has a name (e.g. account_id) and is dropped when it has none.
    arrow = arrow.replace_schema_metadata(None)
    names = list(arrow.schema.names)
    counts = pd.Series(names).value_counts()
    for col, n in counts.items():
        if n > 1:
            errors.append(Problem(table, name, col, "duplicate_column",
                                  f"{name}: column {col} appears {n} times"))
    known = {c.name: c for c in TABLES[table]}
    columns: dict[str, Any] = {}
    unusable: set[str] = set()
    extras: list[tuple[int, str]] = []
    for i, col in enumerate(names):
        if col in columns or _INDEX_COLUMN.fullmatch(col) or any(c == col for _, c in extras):
            continue
        if col in known:
            values = _arrow_to_text(arrow.column(i), known[col].kind)
            if values is None:
                errors.append(Problem(table, name, col, "column_type",
                                      f"{name}: column {col}: stored as {arrow.schema.field(i).type}, "
                                      f"which cannot hold {_KIND_WORD[known[col].kind]}"))
                unusable.add(col)
                values = np.full(arrow.num_rows, "", dtype=object)
            columns[col] = values
        else:
            extras.append((i, col))
            columns[col] = None
    if extras:
        native = arrow.select([i for i, _ in extras]).to_pandas()
        for _, col in extras:
            columns[col] = native[col]
    frame = pd.DataFrame({k: (v.reset_index(drop=True) if isinstance(v, pd.Series)
                              else pd.Series(v, dtype=object)) for k, v in columns.items()})
    if frame.shape[1] == 0:
        frame = pd.DataFrame(index=range(arrow.num_rows))
    locations = np.arange(1, arrow.num_rows + 1, dtype=np.int64)
    return RawTable(table, path, "parquet", frame.reset_index(drop=True), locations, unusable)


_KIND_WORD = {TEXT: "text", DATE: "dates", NUMBER: "numbers"}


def _arrow_to_text(col, kind: str) -> np.ndarray | None:
    """Arrow column -> object array of str ("" for null), or None if the type does not fit.

    Arrow's number-to-text casts write the shortest text that reads back to the same float, so
    the text round trip is exact; dates become YYYY-MM-DD."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def text(arr) -> np.ndarray:
        return np.asarray(pc.fill_null(arr.cast(pa.string()), "").to_numpy(zero_copy_only=False),
                          dtype=object)

    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_null(t):
        return np.full(len(col), "", dtype=object)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return text(col)
    if kind == TEXT:
        return text(col) if pa.types.is_integer(t) else None
    if kind == DATE:
        if pa.types.is_date(t):
            return text(col.cast(pa.date32()))
        if pa.types.is_timestamp(t) and t.tz is None:
            # pandas writes datetime64 columns as timestamps: fine when at midnight; a time of
            # day is kept in the text and then reported as not a date.
            midnight = pc.equal(pc.floor_temporal(col, unit="day"), col)
            seconds = pc.cast(col, pa.timestamp("s"), safe=False)  # shown without fractions
            stamp = pc.if_else(midnight, pc.strftime(col, format="%Y-%m-%d"),
                               pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S"))
            return text(stamp)
        return None
    if kind == NUMBER:
        if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
            return text(col)
        return None
    return None


def read_table(table: str, path: Path, data: bytes, errors: list[Problem],
               warnings: list[Problem]) -> RawTable | None:
    if path.suffix == ".parquet":
        return read_parquet(table, path, data, errors, warnings)
    return read_csv(table, path, data, errors, warnings)


# -- dataset.yaml ----------------------------------------------------------------------------------

def parse_date(value: Any) -> pd.Timestamp | None:
    """A strict date: ``YYYY-MM-DD`` text, or a date/Timestamp at midnight; None if not one."""
    if isinstance(value, pd.Timestamp):
        return value if value.tz is None and value == value.normalize() else None
    if isinstance(value, dt.datetime):
        return parse_date(pd.Timestamp(value))
    if isinstance(value, dt.date):
        try:
            return pd.Timestamp(value)
        except (ValueError, OverflowError):
            return None
    if isinstance(value, str) and ISO_DATE.fullmatch(value):
        try:
            return pd.Timestamp(dt.date.fromisoformat(value))
        except (ValueError, OverflowError):
            return None
    return None


def read_dataset_yaml(path: Path, data: bytes, errors: list[Problem],
                      warnings: list[Problem]) -> dict[str, Any]:
    from .._yaml import safe_load

    name = path.name
    out: dict[str, Any] = {}
    text = decode(name, None, data, errors)
    if text is None:
        return out
    try:
        doc = safe_load(text)
    except Exception as exc:  # yaml.YAMLError, but also anything a constructor raises
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or _first_line(exc)
        errors.append(Problem(None, name, None, "yaml_syntax", f"{name}: not valid YAML{where}: {problem}"))
        return out
    if doc is None:
        warnings.append(Problem(None, name, None, "yaml_empty", f"{name}: empty: nothing set"))
        return out
    if not isinstance(doc, dict):
        errors.append(Problem(None, name, None, "yaml_structure",
                              f"{name}: must be a mapping of keys (as_of, observed_from, description), "
                              f"found {type(doc).__name__}"))
        return out
    for key, value in doc.items():
        if key not in DATASET_KEYS:
            warnings.append(Problem(None, name, str(key), "unknown_key",
                                    f"{name}: unknown key {key!r}: ignored (known: {', '.join(DATASET_KEYS)})"))
            continue
        if value is None:
            continue
        if key == "description":
            if not isinstance(value, str):
                errors.append(Problem(None, name, key, "not_text",
                                      f"{name}: description must be text, found {type(value).__name__}"))
            else:
                out[key] = value
            continue
        stamp = parse_date(value)
        if stamp is None:
            errors.append(Problem(None, name, key, "not_date",
                                  f"{name}: {key} must be a date YYYY-MM-DD, found {quote_value(value)}"))
        else:
            out[key] = stamp
    return out


def quote_value(value: Any) -> str:
    from ._report import quote

    if isinstance(value, (dt.date, dt.datetime)):
        return quote(value.isoformat())
    return quote(value if isinstance(value, str) else repr(value))
