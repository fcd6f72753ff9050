"""Reading a data folder: find table files, read CSV/Parquet into raw text, read dataset.yaml.

Every contract column is turned into Python ``str`` values first ("" = missing) whatever the
format, so that one set of checks reports unparseable values with their rows. Parquet values are
rendered losslessly (``repr`` of floats round-trips exactly; dates as YYYY-MM-DD; a timestamp that
is not at midnight keeps its time and is then reported as not a date). Nothing here writes to disk.

CSV text is UTF-8 unless dataset.yaml declares another ``encoding``; a byte-order mark (UTF-8,
UTF-16 LE/BE) is recognised and read. The delimiter is ``,`` unless declared; a header that is one
field holding ``;``, tabs or ``|`` is reported as "looks semicolon-delimited", never guessed.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._memory import release_memory
from ._report import Problem, quote
from ._spec import (DATASET_KEYS, DATASET_YAML, DATE, FORMATS, NUMBER, TABLES, TEXT, UNREAD_TABLES, VIEW_SUFFIX,
                    doc)

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INDEX_COLUMN = re.compile(r"__index_level_\d+__")


@dataclass(frozen=True)
class ReadOptions:
    """How to read one CSV file, as declared in dataset.yaml (``files:`` or a table of ``columns:``)."""

    delimiter: str | None = None    # None: ","
    encoding: str | None = None     # None: UTF-8 (a byte-order mark is recognised, UTF-16 included)
    decimal: str = "."
    date_format: str | None = None  # None: YYYY-MM-DD (midnight timestamps accepted)
    #: where in dataset.yaml these options are (or would be) set, for messages: "files: accounts.csv:"
    where: str = ""

    @property
    def sep(self) -> str:
        return self.delimiter or ","


@dataclass
class RawTable:
    table: str
    path: Path
    fmt: str  # "csv" | "parquet" | "view" (the result of a SQL view)
    #: contract columns as str ("" = missing); extra columns as str (CSV) or native (Parquet)
    frame: pd.DataFrame
    #: per row: CSV line number (header = line 1), 1-based Parquet row number (:class:`RowNumbers`), or for a
    #: mapped table the raw file's row as a spreadsheet shows it (header = row 1)
    locations: np.ndarray
    #: contract columns whose stored type cannot hold the contract type (already reported)
    unusable: set[str] = field(default_factory=set)
    #: parsed contract columns, filled by the checks (see _rules.parse_column) or, for Parquet columns
    #: stored with the contract's type, by :func:`read_parquet` itself
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    #: Parquet contract columns read with their stored type (not as text), by kind; see :meth:`texts`
    native: dict[str, str] = field(default_factory=dict, repr=False)
    #: how dates and numbers in text are written (dataset.yaml date_format, decimal)
    date_format: str | None = None
    decimal: str = "."
    #: mapped tables: "accounts.sql" or "dataset.yaml" (the columns map); None for a contract file
    mapper: str | None = None
    #: mapped tables: contract column -> the raw columns it was made from
    origin: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: mapped tables: contract column -> the raw column of each row (a wide usage file's metric columns)
    origin_rows: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: mapped tables: contract column -> per-row text shown in messages (the raw value it was made from)
    display: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: mapped tables whose rows come from several raw files: each row's file name
    row_files: np.ndarray | None = field(default=None, repr=False)
    #: a view whose rows could not be traced to raw rows: locations are rows of its result
    result_rows: bool = False
    #: the raw files a mapped table was read from (names)
    sources: tuple[str, ...] = ()
    #: date columns written as YYYY-MM-DD whatever date_format says (made by the columns map)
    iso_columns: set[str] = field(default_factory=set)

    @property
    def file(self) -> str:
        return self.path.name

    @property
    def loc_word(self) -> str:
        if self.mapper is not None:
            return "result row" if self.result_rows else "row"
        return "line" if self.fmt == "csv" else "row"

    @property
    def ref(self) -> str:
        """The table as other messages name it: ``accounts.csv``, ``accounts.sql``, ``accounts (telco.csv)``."""
        if self.mapper is None:
            return self.file
        return self.mapper if self.mapper.endswith(VIEW_SUFFIX) else f"{self.table} ({self.file})"

    def column_text(self, column: str, raw_column: str | None = None) -> str:
        """``column tenure (mapped to accounts.start_date by dataset.yaml)``, or ``column start_date``."""
        if self.mapper is None or self.file == self.mapper:  # a contract file, or a view without raw rows
            return f"column {column}"
        raw = (raw_column,) if raw_column is not None else self.origin.get(column)
        if raw is None:
            return f"{self.table}.{column} (made by {self.mapper})"
        if raw == (column,):
            return f"column {column}"
        word = "column" if len(raw) == 1 else "columns"
        return f"{word} {', '.join(raw)} (mapped to {self.table}.{column} by {self.mapper})"

    def texts(self, column: str, positions: np.ndarray) -> np.ndarray:
        """The values of ``column`` at ``positions`` as the file's text ("" = missing), for messages."""
        if column in self.display:
            return self.display[column][np.asarray(positions, dtype=np.int64)].astype(str)
        if column in self.native:
            return self.cache[("render", column)](np.asarray(positions, dtype=np.int64))
        return self.frame[column].iloc[positions].astype(str).to_numpy()

    @property
    def extra_columns(self) -> list[str]:
        known = {c.name for c in TABLES[self.table]}
        return [c for c in self.frame.columns if c not in known]


class RowNumbers:
    """1-based row numbers of a Parquet table, computed when asked (an arange of 35M rows is 280 MB)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, positions):
        return np.arange(1, self.n + 1, dtype=np.int64)[positions] if isinstance(positions, slice) \
            else np.asarray(positions, dtype=np.int64) + 1


@dataclass
class Parsed:
    """One contract column of a raw table, parsed once: typed values (NA where not valid) and
    masks of the text-stage failures. The pandera checks of :mod:`._rules` read these masks."""
    values: pd.Series
    nonempty: np.ndarray
    bad: dict[str, np.ndarray]


@dataclass
class FolderFiles:
    tables: dict[str, Path]          # table -> file to read
    not_read: list[str]              # files of contract tables we do not read (events)
    dataset_yaml: Path | None
    views: dict[str, Path] = field(default_factory=dict)  # table -> TABLE.sql


def find_files(folder: Path, errors: list[Problem], warnings: list[Problem]) -> FolderFiles:
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    present = set(names)
    tables: dict[str, Path] = {}
    views = {t: folder / f"{t}{VIEW_SUFFIX}" for t in TABLES if f"{t}{VIEW_SUFFIX}" in present}
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
    if "accounts" not in tables and "accounts" not in views:
        near = [n for n in names if n.rpartition(".")[0].lower() == "accounts"
                and n.rpartition(".")[2].lower() in FORMATS]
        hint = f" (found {', '.join(near)}: file names are case-sensitive)" if near else ""
        errors.append(Problem("accounts", None, None, "missing_table",
                              "accounts: required table missing: no accounts.csv or accounts.parquet "
                              f"in the folder{hint}"))
    yaml_path = folder / DATASET_YAML if DATASET_YAML in present else None
    return FolderFiles(tables, not_read, yaml_path, views)


# -- text files ------------------------------------------------------------------------------------

def _first_line(text: str) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else type(text).__name__


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32", "UTF-32 LE"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32 BE"),
         (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"), (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 LE"),
         (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 BE"))


def _set_it(options: ReadOptions | None, name: str) -> str:
    where = options.where if options is not None and options.where else f"files: {name}:"
    return f"under `{where}` in dataset.yaml"


def decode(name: str, table: str | None, data: bytes, errors: list[Problem],
           options: ReadOptions | None = None) -> str | None:
    """Bytes to text: the declared encoding, else by byte-order mark, else UTF-8; problems named precisely."""
    declared = options.encoding if options is not None else None
    if declared:
        codec = "utf-8-sig" if codecs.lookup(declared).name == "utf-8" else declared
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            errors.append(Problem(table, name, None, "encoding",
                                  f"{name}: not {declared} text as declared {_set_it(options, name)} "
                                  f"(byte 0x{data[exc.start]:02x} on line {line}) ({doc('reading-files')})"))
            return None
        return text[1:] if text.startswith("\ufeff") else text
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec).lstrip("\ufeff")
            except UnicodeDecodeError as exc:
                errors.append(Problem(table, name, None, "encoding",
                                      f"{name}: starts with a {label} byte-order mark ({bom.hex(' ').upper()}) "
                                      f"but is not {label} text (byte 0x{data[exc.start]:02x} at offset "
                                      f"{exc.start}) ({doc('reading-files')})"))
                return None
    head = data[:4096]
    if len(head) >= 4 and head.count(b"\x00") * 3 >= len(head):
        even, odd = head[0::2].count(0), head[1::2].count(0)
        codec = "utf-16-le" if odd > even else "utf-16-be"
        errors.append(Problem(table, name, None, "encoding",
                              f"{name}: looks like {codec.upper()} text without a byte-order mark (every other "
                              f"byte is 0): save it as UTF-8 or set `encoding: {codec}` for it "
                              f"{_set_it(options, name)} ({doc('reading-files')})"))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = data[:exc.start].count(b"\n") + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        raw_line = data[start:end if end >= 0 else len(data)].rstrip(b"\r")
        guess = "cp1252"
        try:
            shown = raw_line.decode("cp1252")
        except UnicodeDecodeError:
            guess, shown = "latin-1", raw_line.decode("latin-1")
        word = "Windows-1252" if guess == "cp1252" else "Latin-1"
        errors.append(Problem(table, name, None, "encoding",
                              f"{name}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line_no}, which "
                              f"reads {quote(shown, 60)} as {word}): save it as UTF-8 or set `encoding: {guess}` "
                              f"for it {_set_it(options, name)} ({doc('reading-files')})"))
        return None


_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _yaml_char(c: str) -> str:
    return '"\\t"' if c == "\t" else f"'{c}'"


def _split(line: str, sep: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=sep), [])
    except csv.Error:
        return line.split(sep)


def sniff_delimiter(name: str, table: str | None, text: str, options: ReadOptions | None,
                    expected: set[str] | None = None) -> Problem | None:
    """A "looks semicolon-delimited" error when the header does not split on the declared delimiter but
    does on another one (``expected``: the contract columns a contract file should have)."""
    sep = options.sep if options is not None else ","
    header = next((ln for ln in text.splitlines() if ln.strip()), "")
    fields = _split(header, sep)
    best = None
    for cand, word in _DELIMITERS.items():
        if cand == sep or cand not in header:
            continue
        other = _split(header, cand)
        if len(other) <= len(fields):
            continue
        if len(fields) == 1 or (expected and len(expected & {f.strip() for f in other})
                                > len(expected & {f.strip() for f in fields})):
            if best is None or len(other) > len(best[2]):
                best = (cand, word, other)
    if best is None:
        return None
    cand, word, _ = best
    n = header.count(cand)
    shown = "tab" + ("s" if n != 1 else "") if cand == "\t" else f"'{cand}'"
    declared = (f", not {_DELIMITERS.get(sep, repr(sep))}-delimited as declared"
                if options is not None and options.delimiter else "")
    return Problem(table, name, None, "delimiter",
                   f"{name}: looks {word}-delimited (its header has {n} {shown}){declared}: set "
                   f"`delimiter: {_yaml_char(cand)}` for it {_set_it(options, name)} ({doc('reading-files')})")


@dataclass
class CsvText:
    header: list[str]
    rows: list[list[str]]
    lines: list[int]     # first physical line of each row (header = line 1)
    records: list[int]   # each row as a spreadsheet numbers it (header = row 1, blank lines counted)


def parse_csv(name: str, table: str | None, text: str, sep: str, errors: list[Problem],
              word: str = "line") -> CsvText | None:
    """CSV text to records with their line and spreadsheet-row numbers; ``word`` ("line" or "row") is how
    messages number them."""
    # The csv module (not pandas) so that every record keeps its exact first line number, also
    # with quoted line breaks and blank lines, and rows of the wrong width can be reported.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    records: list[int] = []
    bad_width: list[tuple[int, int]] = []
    prev = 0
    record = 0
    try:
        for fields in reader:
            start, prev = prev + 1, reader.line_num
            record += 1
            if not fields:  # blank line: a spreadsheet shows it as an empty row
                continue
            if header is None:
                header = fields
                continue
            where = start if word == "line" else record
            if len(fields) != len(header):
                bad_width.append((where, len(fields)))
                continue
            rows.append(fields)
            lines.append(start)
            records.append(record)
    except csv.Error as exc:
        errors.append(Problem(table, name, None, "csv_syntax",
                              f"{name}: not readable as CSV at line {reader.line_num}: {exc}"))
        return None
    if header is None:
        errors.append(Problem(table, name, None, "no_header", f"{name}: no header line"))
        return None
    if bad_width:
        n = len(bad_width)
        shown = ", ".join(f"{word} {ln}: {k} field{'s' if k != 1 else ''}" for ln, k in bad_width[:5])
        more = f" and {n - 5:,} more" if n > 5 else ""
        errors.append(Problem(table, name, None, "row_width",
                              f"{name}: {n:,} row{'s' if n != 1 else ''} not checked further: the header "
                              f"has {len(header)} fields ({shown}{more})", tuple(ln for ln, _ in bad_width)))
    return CsvText(header, rows, lines, records)


def csv_frame(table: str | None, name: str, parsed: CsvText, errors: list[Problem],
              warnings: list[Problem]) -> pd.DataFrame | None:
    header, rows = parsed.header, parsed.rows
    frame = pd.DataFrame(rows, columns=range(len(header)), dtype=object) if rows else \
        pd.DataFrame({i: pd.Series([], dtype=object) for i in range(len(header))})
    return _name_columns(table, name, frame, header, errors, warnings)


def read_csv(table: str, path: Path, data: bytes, errors: list[Problem],
             warnings: list[Problem], options: ReadOptions | None = None) -> RawTable | None:
    name = path.name
    if not data:
        errors.append(Problem(table, name, None, "empty_file", f"{name}: file is empty"))
        return None
    text = decode(name, table, data, errors, options)
    if text is None:
        return None
    problem = sniff_delimiter(name, table, text, options, {c.name for c in TABLES[table]})
    if problem is not None:
        errors.append(problem)
        return None
    parsed = parse_csv(name, table, text, options.sep if options is not None else ",", errors)
    if parsed is None:
        return None
    frame = csv_frame(table, name, parsed, errors, warnings)
    if frame is None:
        return None
    return RawTable(table, path, "csv", frame.reset_index(drop=True), np.asarray(parsed.lines, dtype=np.int64),
                    date_format=options.date_format if options is not None else None,
                    decimal=options.decimal if options is not None else ".")


def _name_columns(table: str | None, name: str, frame: pd.DataFrame, header: list[str],
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
    return from_arrow(table, path, arrow, errors)


def from_arrow(table: str, path: Path, arrow, errors: list[Problem], fmt: str = "parquet",
               locations: Any = None) -> RawTable:
    """An Arrow table (a Parquet file, or a SQL view's result) as a RawTable: contract columns stored with
    their contract type are kept typed, others become text; extra columns keep their types."""
    import pyarrow as pa  # noqa: F401 - used by the helpers

    name = path.name
    stored = "stored as" if fmt == "parquet" else "the view gives"
    # Drop pandas metadata: an index saved by pandas comes back as an ordinary column when it
    # has a name (e.g. account_id) and is dropped when it has none.
    arrow = arrow.replace_schema_metadata(None)
    names = list(arrow.schema.names)
    types = [f.type for f in arrow.schema]
    n_rows = arrow.num_rows
    # one column at a time, each released once converted: peak memory is one Arrow column, not the table
    arrow_columns = [arrow.column(i) for i in range(len(names))]
    known = {c.name: c for c in TABLES[table]}
    extra_idx = [i for i, col in enumerate(names)
                 if col not in known and not _INDEX_COLUMN.fullmatch(col) and names.index(col) == i]
    extras_arrow = arrow.select(extra_idx) if extra_idx else None
    del arrow
    counts = pd.Series(names).value_counts()
    for col, n in counts.items():
        if n > 1:
            errors.append(Problem(table, name, col, "duplicate_column",
                                  f"{name}: column {col} appears {n} times"))
    columns: dict[str, Any] = {}
    unusable: set[str] = set()
    extras: list[tuple[int, str]] = []
    cache: dict[Any, Any] = {}
    native: dict[str, Any] = {}
    for i, col in enumerate(names):
        if col in columns or _INDEX_COLUMN.fullmatch(col) or any(c == col for _, c in extras):
            continue
        if col in known:
            kind = known[col].kind
            arrow_col, arrow_columns[i] = arrow_columns[i], None
            typed = _arrow_native(arrow_col, kind)
            if typed is not None:
                # stored with the contract's type: checked as such, never rendered as text (memory)
                frame_values, parsed, render = typed
                columns[col] = frame_values
                cache[(col, kind)] = parsed
                cache[("render", col)] = render
                native[col] = kind
                continue
            values = _arrow_to_text(arrow_col, kind)
            del arrow_col
            if values is None:
                errors.append(Problem(table, name, col, "column_type",
                                      f"{name}: column {col}: {stored} {types[i]}, "
                                      f"which cannot hold {_KIND_WORD[known[col].kind]}"))
                unusable.add(col)
                values = np.full(n_rows, "", dtype=object)
            columns[col] = values
        else:
            extras.append((i, col))
            columns[col] = None
    if extras:
        extra_frame = extras_arrow.to_pandas()
        for _, col in extras:
            columns[col] = extra_frame[col]
    del extras_arrow, arrow_columns
    release_memory()
    frame = pd.DataFrame({k: (pd.Series(v.to_numpy(), copy=False) if isinstance(v, pd.Series)
                              else pd.Series(v, dtype=object)) for k, v in columns.items()}, copy=False)
    if frame.shape[1] == 0:
        frame = pd.DataFrame(index=range(n_rows))
    for key, parsed in cache.items():
        if isinstance(parsed, Parsed):
            parsed.values.index = frame.index
    return RawTable(table, path, fmt, frame, RowNumbers(n_rows) if locations is None else locations, unusable,
                    cache=cache, native=native)


#: datetime64[ns] holds 1677-09-21 .. 2262-04-11; dates outside take the text path (and are reported there)
_NS_MIN, _NS_MAX = np.datetime64("1677-09-22", "D"), np.datetime64("2262-04-10", "D")


def _arrow_native(col, kind: str):
    """A Parquet column whose stored type already is the contract's, parsed without text.

    Returns ``(frame values, Parsed, render)`` exactly as the text path would produce them (same typed
    values, same masks; ``render(positions)`` gives the text the text path would have shown for those rows),
    or None when the column needs the text path: other types, decimals, dates outside the datetime64[ns]
    range. Text comes back as ``str`` objects, one object per distinct value (pyarrow deduplicates)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    has_null = col.null_count > 0
    valid = pc.is_valid(col).to_numpy(zero_copy_only=False) if has_null else np.ones(len(col), dtype=bool)
    bad: dict[str, np.ndarray] = {}
    if kind == TEXT:
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            return None
        filled = pc.fill_null(col, "") if has_null else col
        blank = pc.or_(pc.equal(pc.utf8_length(filled), 0), pc.utf8_is_space(filled)).to_numpy(zero_copy_only=False)
        text = filled.to_pandas(deduplicate_objects=True).astype(object, copy=False)
        del filled
        nonempty = ~blank
        values = text.where(nonempty, None).astype(object) if blank.any() else text
        return text, Parsed(values, nonempty, bad), lambda pos: text.to_numpy()[pos].astype(str)
    if kind == DATE:
        if pa.types.is_date(t):
            days = col.cast(pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False)
            if has_null:
                days = np.where(valid, days, 0)
            days = days.astype("datetime64[D]")
            midnight = None
        elif pa.types.is_timestamp(t) and t.tz is None:
            stamps = col.cast(pa.int64()).to_numpy(zero_copy_only=False)
            if has_null:
                stamps = np.where(valid, stamps, 0).astype(np.int64)
            per_day = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}[t.unit]
            midnight = stamps % per_day == 0
            if midnight.all():
                midnight = None
            days = (stamps // per_day).astype("datetime64[D]")
            del stamps
        else:
            return None
        ok = valid if midnight is None else valid & midnight
        span = days[ok]
        if len(span) and (span.min() < _NS_MIN or span.max() > _NS_MAX):
            return None
        del span
        values = days.astype("datetime64[ns]")
        if not ok.all():
            values[~ok] = np.datetime64("NaT")
        values = pd.Series(values)
        bad["not_date"] = np.zeros(len(values), dtype=bool) if midnight is None else valid & ~midnight
        odd = None if midnight is None else {int(i): col[int(i)] for i in np.flatnonzero(valid & ~midnight)[:10_000]}

        def render(pos: np.ndarray) -> np.ndarray:
            out = np.asarray(values.iloc[pos].dt.strftime("%Y-%m-%d").to_numpy(), dtype=object)
            for j, p in enumerate(pos):
                if odd is not None and int(p) in odd:
                    out[j] = _arrow_to_text(pa.chunked_array([pa.array([odd[int(p)].as_py()], t)]), DATE)[0]
                elif pd.isna(values.iloc[int(p)]):
                    out[j] = ""
            return out.astype(str)
        return values, Parsed(values, valid, bad), render
    if kind == NUMBER:
        if not (pa.types.is_floating(t) or pa.types.is_integer(t)):
            return None
        numbers = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
        if not numbers.flags.writeable:
            numbers = numbers.copy()
        if has_null:
            numbers[~valid] = np.nan
        finite = np.isfinite(numbers)
        bad["not_number"] = np.zeros(len(numbers), dtype=bool)
        bad["not_finite"] = valid & ~finite
        shown = None
        if not finite.all():
            # inf and NaN are reported with their text: keep those few before they become NA
            shown = {int(i): numbers[i] for i in np.flatnonzero(valid & ~finite)[:10_000]}
            numbers[~finite] = np.nan
        values = pd.Series(numbers, dtype="float64")

        def render(pos: np.ndarray) -> np.ndarray:
            raw = np.array([shown.get(int(p), numbers[p]) if shown else numbers[p] for p in pos], dtype=float)
            text = _arrow_to_text(pa.chunked_array([pa.array(raw, pa.float64())]), NUMBER)
            if has_null:
                text = np.where(valid[pos], text, "")
            return np.asarray(text, dtype=object).astype(str)
        return values, Parsed(values, valid, bad), render
    return None


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
               warnings: list[Problem], options: ReadOptions | None = None) -> RawTable | None:
    if path.suffix == ".parquet":
        return read_parquet(table, path, data, errors, warnings)
    return read_csv(table, path, data, errors, warnings, options)


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


def yaml_load(text: str) -> Any:
    """dataset.yaml as data: dates stay text, and only true/false are booleans (YAML 1.2), so that a value
    map can say ``Yes: churned`` and ``churned: [Yes, No]`` without the words turning into booleans."""
    import yaml

    from .._yaml import DatesAsTextLoader

    class Loader(DatesAsTextLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in DatesAsTextLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


OPTION_KEYS = ("delimiter", "encoding", "decimal", "date_format")


def parse_options(where: str, value: Any, errors: list[Problem], base: ReadOptions | None = None,
                  only: tuple[str, ...] = OPTION_KEYS) -> ReadOptions:
    """Reading options from a mapping of dataset.yaml (``where`` names it: "files: accounts.csv:");
    keys outside ``only`` are left to the caller. Bad values are errors naming the key."""
    opts = dict(delimiter=None, encoding=None, decimal=".", date_format=None) if base is None else \
        dict(delimiter=base.delimiter, encoding=base.encoding, decimal=base.decimal, date_format=base.date_format)

    def bad(key: str, text: str) -> None:
        errors.append(Problem(None, DATASET_YAML, key, "bad_option",
                              f"{DATASET_YAML}: {where} {key}: {text} ({doc('reading-files')})"))

    for key in only:
        if key not in value or value[key] is None:
            continue
        v = value[key]
        if key == "delimiter":
            v = {"\\t": "\t", "tab": "\t"}.get(v, v) if isinstance(v, str) else v
            if not isinstance(v, str) or len(v) != 1 or v in "\"\r\n":
                bad(key, f"must be one character such as ';' or \"\\t\", found {quote_value(v)}")
                continue
        elif key == "decimal":
            if v not in (".", ","):
                bad(key, f"must be '.' or ',', found {quote_value(v)}")
                continue
        elif key == "encoding":
            try:
                codecs.lookup(str(v))
            except LookupError:
                bad(key, f"{quote_value(v)} is not an encoding Python knows (e.g. utf-8, utf-16, cp1252, latin-1)")
                continue
            v = str(v)
        elif key == "date_format":
            if not isinstance(v, str) or not _full_date_format(v):
                bad(key, f"must be a strftime format of a whole date such as \"%d/%m/%Y\", found {quote_value(v)}")
                continue
        opts[key] = v
    return ReadOptions(**opts, where=where)


def _full_date_format(fmt: str) -> bool:
    """Does ``fmt`` write and read back a whole date (day, month and year)?"""
    probe = dt.date(2031, 11, 23)
    try:
        text = probe.strftime(fmt)
        back = pd.to_datetime(text, format=fmt)
    except (ValueError, TypeError):
        return False
    return back == pd.Timestamp(probe)


def read_dataset_yaml(path: Path, data: bytes, errors: list[Problem],
                      warnings: list[Problem]) -> dict[str, Any]:
    name = path.name
    out: dict[str, Any] = {}
    text = decode(name, None, data, errors)
    if text is None:
        return out
    try:
        content = yaml_load(text)
    except Exception as exc:  # yaml.YAMLError, but also anything a constructor raises
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or _first_line(exc)
        errors.append(Problem(None, name, None, "yaml_syntax", f"{name}: not valid YAML{where}: {problem}"))
        return out
    if content is None:
        warnings.append(Problem(None, name, None, "yaml_empty", f"{name}: empty: nothing set"))
        return out
    if not isinstance(content, dict):
        errors.append(Problem(None, name, None, "yaml_structure",
                              f"{name}: must be a mapping of keys (as_of, observed_from, description, ...), "
                              f"found {type(content).__name__} ({doc('folder-settings')})"))
        return out
    for key, value in content.items():
        if key not in DATASET_KEYS:
            warnings.append(Problem(None, name, str(key), "unknown_key",
                                    f"{name}: unknown key {key!r}: ignored (known: {', '.join(DATASET_KEYS)})"))
            continue
        if value is None:
            continue
        if key in ("description", "raw_dir"):
            if not isinstance(value, str):
                errors.append(Problem(None, name, key, "not_text",
                                      f"{name}: {key} must be text, found {type(value).__name__}"))
            else:
                out[key] = value
            continue
        if key == "label_horizon_days":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                shown = quote_value(value) if isinstance(value, str) else repr(value)
                errors.append(Problem(None, name, key, "not_days",
                                      f"{name}: label_horizon_days must be a whole number of days (1 or more), "
                                      f"found {shown} ({doc('label-exports')})"))
            else:
                out[key] = value
            continue
        if key in ("files", "columns"):
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                what = "file names" if key == "files" else "table names"
                errors.append(Problem(None, name, key, "yaml_structure",
                                      f"{name}: {key} must map {what} to settings, e.g. "
                                      + ("`files: {accounts.csv: {delimiter: ';'}}`" if key == "files"
                                         else "`columns: {accounts: {file: export.csv, account_id: id}}`")
                                      + f" ({doc('folder-settings' if key == 'files' else 'the-columns-map')})"))
                continue
            if key == "files":
                files: dict[str, ReadOptions] = {}
                for fname, opts in value.items():
                    where = f"files: {fname}:"
                    unknown = [k for k in opts if k not in OPTION_KEYS]
                    for k in unknown:
                        errors.append(Problem(None, name, str(k), "unknown_key",
                                              f"{name}: {where} unknown setting {k!r} (known: "
                                              f"{', '.join(OPTION_KEYS)}) ({doc('reading-files')})"))
                    files[str(fname)] = parse_options(where, opts, errors)
                out["files"] = files
            else:
                out["columns"] = {str(k): v for k, v in value.items()}
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
