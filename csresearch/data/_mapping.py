"""Tables a folder *describes* instead of holding: SQL views (``accounts.sql``) and the ``columns:`` map of
dataset.yaml. Both turn raw exports into contract tables that are then validated like contract files, and
both keep, for every row, the raw file and the row a spreadsheet shows it on (header = row 1), so that
messages name the raw file, the raw column and the raw rows (docs/data-contract.md#mapping).

Raw files are looked up by name in the folder, then in ``raw_dir`` (dataset.yaml, relative to the folder).
Each is read once, by csresearch's own CSV reader (declared ``delimiter``, ``encoding``, ``decimal`` and
``date_format`` honoured, the same messages as for contract files) or by pyarrow (Parquet) or DuckDB (JSON),
and its bytes go into the dataset's fingerprint.

*SQL views*: ``TABLE.sql`` holds one DuckDB SELECT. A raw file named in a FROM clause (``FROM 'telco.csv'``)
is a table of the raw file's columns plus ``_row`` (its spreadsheet row) and ``_file`` (its name); numbers
become BIGINT or DOUBLE, dates (YYYY-MM-DD, or the declared date_format) DATE, everything else VARCHAR, and an
empty field NULL. The view's SELECT lists are given ``_row`` and ``_file`` (rewritten with DuckDB's own
parser) so that every result row knows its raw row; a view that aggregates cannot keep them and its problems
are located by the rows of its result. DuckDB variables ``as_of``, ``observed_from``, ``label_from``,
``label_horizon_days`` and ``label_churn_date`` hold dataset.yaml's dates (``getvariable('as_of')``).

*The columns map* (``columns: accounts: {file: export.csv, account_id: customerID, ...}``): renames, value
maps, fixed values, tenure to start_date and a churn label to end_date, wide usage (one column per metric).
"""
from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ._read import (OPTION_KEYS, CsvText, RawTable, ReadOptions, _arrow_to_text, csv_frame, decode, from_arrow,
                    parse_csv, parse_date, parse_options, quote_value, sniff_delimiter)
from ._report import Problem, quote
from ._spec import DATASET_YAML, DATE, TABLES, TEXT, column_spec, doc

RAW_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".json", ".ndjson", ".jsonl")
PROVENANCE = ("_row", "_file")
#: DuckDB's memory budget for views (raw exports are small next to events, but a view may join)
VIEW_MEMORY_LIMIT = "1GB"


# -- the folder's settings that mapping needs --------------------------------------------------------

@dataclass
class Settings:
    """What dataset.yaml and the command line say, as far as mapping needs it."""
    folder: Path
    files: dict[str, ReadOptions]
    raw_dir: str | None
    as_of: pd.Timestamp | None                 # given or from dataset.yaml (not the latest date in the data)
    observed_from: pd.Timestamp | None
    label_horizon_days: int | None
    label_from: pd.Timestamp | None

    @property
    def label_churn_date(self) -> pd.Timestamp | None:
        """The date a churner of a label export without churn dates gets: the middle day of the horizon."""
        if self.label_from is None or self.label_horizon_days is None:
            return None
        return self.label_from + pd.Timedelta(days=self.label_horizon_days // 2)


# -- raw files ---------------------------------------------------------------------------------------

@dataclass
class RawFile:
    name: str                 # as the view or map names it
    path: Path
    fmt: str                  # csv | parquet | json
    columns: list[str]
    text: pd.DataFrame | None  # CSV: every column as str ("" = missing)
    arrow: Any                # Parquet/JSON: the table; CSV: built when a view needs it
    rows: np.ndarray          # per row: spreadsheet row (CSV, header = row 1) or 1-based row
    options: ReadOptions
    #: CSV columns read as text only because of a few values (see :class:`Note`)
    notes: list[Note] = field(default_factory=list)


class Sources:
    """Finds raw files (the folder first, then raw_dir) and reads each once."""

    def __init__(self, settings: Settings, errors: list[Problem], warnings: list[Problem],
                 read_bytes: Callable[[Path], bytes | None]) -> None:
        self.settings = settings
        self.errors, self.warnings = errors, warnings
        self.read_bytes = read_bytes
        self.cache: dict[str, RawFile | None] = {}
        #: names of files in the folder that a view or the map reads (not "unknown files")
        self.used: set[str] = set()

    def locate(self, name: str) -> Path | None:
        for base in self.dirs():
            p = base / name
            if p.is_file():
                return p
        return None

    def dirs(self) -> list[Path]:
        """Where raw files are looked for, in order: the folder, then raw_dir."""
        dirs = [self.settings.folder]
        if self.settings.raw_dir:
            dirs.append((self.settings.folder / self.settings.raw_dir))
        return dirs

    def missing(self, name: str, who: str) -> str:
        if not self.settings.raw_dir:
            return (f"{who}: reads {name}, which is not in the folder: copy it there, or set raw_dir in dataset.yaml "
                    f"to the folder that holds it ({doc('raw-files')})")
        raw = self.settings.folder / self.settings.raw_dir
        state = "" if raw.is_dir() else ", no such folder"
        return (f"{who}: reads {name}, which is neither in the folder nor in raw_dir {self.settings.raw_dir} "
                f"({raw.resolve()}{state}): copy it into the folder, or point raw_dir at the folder that holds it "
                f"({doc('raw-files')})")

    def get(self, name: str, who: str, options: ReadOptions | None = None) -> RawFile | None:
        """The raw file ``name`` (read once); None after an error naming ``who`` (the view or map)."""
        if name in self.cache:
            return self.cache[name]
        path = self.locate(name)
        if path is None:
            self.errors.append(Problem(None, who, None, "no_raw_file", self.missing(name, who)))
            self.cache[name] = None
            return None
        if path.parent.resolve() == self.settings.folder.resolve():
            self.used.add(path.name)
        opts = options or self.settings.files.get(name) or ReadOptions(where=f"files: {name}:")
        data = self.read_bytes(path)
        raw = None if data is None else self._read(name, path, data, opts)
        self.cache[name] = raw
        return raw

    def _read(self, name: str, path: Path, data: bytes, opts: ReadOptions) -> RawFile | None:
        errors = self.errors
        suffix = path.suffix.lower()
        if not data:
            errors.append(Problem(None, name, None, "empty_file", f"{name}: file is empty"))
            return None
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq
            try:
                arrow = pq.read_table(pa.BufferReader(data)).replace_schema_metadata(None)
            except Exception as exc:
                errors.append(Problem(None, name, None, "parquet_unreadable",
                                      f"{name}: not a readable Parquet file: {str(exc).splitlines()[0]}"))
                return None
            return RawFile(name, path, "parquet", list(arrow.schema.names), None, arrow,
                           np.arange(1, arrow.num_rows + 1), opts)
        if suffix in (".json", ".ndjson", ".jsonl"):
            import duckdb
            try:
                lit = "'" + str(path).replace("'", "''") + "'"
                arrow = duckdb.connect().sql(f"SELECT * FROM read_json({lit})").to_arrow_table()
            except duckdb.Error as exc:
                errors.append(Problem(None, name, None, "json_unreadable",
                                      f"{name}: not readable as JSON: {str(exc).splitlines()[0]}"))
                return None
            return RawFile(name, path, "json", list(arrow.schema.names), None, arrow,
                           np.arange(1, arrow.num_rows + 1), opts)
        if suffix == ".tsv" and opts.delimiter is None:
            opts = replace(opts, delimiter="\t")
        text = decode(name, None, data, errors, opts)
        if text is None:
            return None
        problem = sniff_delimiter(name, None, text, opts)
        if problem is not None:
            errors.append(problem)
            return None
        parsed: CsvText | None = parse_csv(name, None, text, opts.sep, errors, word="row")
        if parsed is None:
            return None
        frame = csv_frame(None, name, parsed, errors, self.warnings)
        if frame is None:
            return None
        return RawFile(name, path, "csv", [str(c) for c in frame.columns], frame.reset_index(drop=True), None,
                       np.asarray(parsed.records, dtype=np.int64), opts)

    def arrow(self, raw: RawFile):
        """The raw file as an Arrow table for DuckDB, with ``_row`` and ``_file``."""
        import pyarrow as pa

        if raw.arrow is None:  # CSV: typed by its values
            typed = {c: _infer(raw.text[c].to_numpy(dtype=object), raw.options, c) for c in raw.columns}
            raw.arrow = pa.table({c: arr for c, (arr, _) in typed.items()})
            raw.notes = [note for _, note in typed.values() if note is not None]
        table = raw.arrow
        for col in PROVENANCE:
            if col in table.schema.names:
                table = table.drop_columns([col])
        return table.append_column("_row", pa.array(raw.rows, pa.int64())).append_column(
            "_file", pa.array([raw.name] * len(raw.rows), pa.string()))

    def text_columns(self, raw: RawFile) -> pd.DataFrame:
        """Every column of the raw file as text ("" = missing), for the columns map."""
        if raw.text is None:
            raw.text = pd.DataFrame({c: _any_to_text(raw.arrow.column(c)) for c in raw.columns})
        return raw.text


_INT = re.compile(r"[+-]?(?:0|[1-9]\d{0,17})")
_NUM = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: a column whose values are this share numbers (or dates) but not all is noted: a view may trip on the others
_NEARLY = 0.8


@dataclass
class Note:
    """A raw column read as text because a few of its values are not numbers (or dates) like the rest."""
    column: str
    kind: str            # "numbers" | "dates"
    positions: np.ndarray


def _infer(values: np.ndarray, options: ReadOptions, column: str = "") -> tuple[Any, Note | None]:
    """A CSV column's type from its values (empty = NULL): BIGINT (no leading zeros, so ids like 007 stay text),
    DOUBLE, DATE (YYYY-MM-DD or the declared date_format, midnight times allowed) or VARCHAR; and a Note when the
    column is VARCHAR only because of a few values."""
    import pyarrow as pa

    from ._rules import number_text, parse_dates

    s = pd.Series(values, dtype=object).astype(str).str.strip()
    present = s != ""
    v = s[present]
    if not len(v):
        return pa.array([None] * len(s), pa.string()), None
    mask = ~present.to_numpy()
    if v.str.fullmatch(_INT.pattern).all():
        out = np.zeros(len(s), dtype=np.int64)
        out[present.to_numpy()] = v.astype(np.int64).to_numpy()
        return pa.array(out, pa.int64(), mask=mask), None
    nums = number_text(v, options.decimal)
    is_num = nums.str.fullmatch(_NUM.pattern)
    if is_num.all():
        out = np.zeros(len(s))
        out[present.to_numpy()] = [float(x) for x in nums]
        return pa.array(out, pa.float64(), mask=mask), None
    dates = parse_dates(v, options.date_format)
    if dates.notna().all():
        full = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
        full[present] = dates
        return pa.array(full.dt.date.where(present, None), pa.date32()), None
    note = None
    for kind, ok in (("numbers", is_num), ("dates", dates.notna())):
        if ok.mean() >= _NEARLY:
            note = Note(column, kind, np.flatnonzero(present.to_numpy())[~ok.to_numpy()])
            break
    return pa.array(s.where(present, None), pa.string()), note


def _any_to_text(col) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        return _arrow_to_text(col, DATE)
    return np.asarray(pc.fill_null(col.cast(pa.string()), "").to_numpy(zero_copy_only=False), dtype=object)


# -- SQL views ---------------------------------------------------------------------------------------

class Views:
    """Runs TABLE.sql files in one DuckDB connection; raw files are registered once."""

    def __init__(self, settings: Settings, sources: Sources, errors: list[Problem]) -> None:
        self.settings, self.sources, self.errors = settings, sources, errors
        self._con = None
        self.registered: set[str] = set()
        self.explained: set[tuple[str, str]] = set()

    @property
    def con(self):
        if self._con is None:
            import duckdb

            con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                         "autoload_known_extensions": False})
            dirs = ",".join(str(d.resolve()).replace("'", "''") for d in self.sources.dirs() if d.is_dir())
            con.execute(f"SET file_search_path = '{dirs}'").fetchall()
            con.execute(f"SET memory_limit = '{VIEW_MEMORY_LIMIT}'").fetchall()
            s = self.settings
            for name, value in (("as_of", s.as_of), ("observed_from", s.observed_from),
                                ("label_from", s.label_from), ("label_churn_date", s.label_churn_date)):
                if value is not None:
                    con.execute(f"SET VARIABLE {name} = DATE '{value.date().isoformat()}'").fetchall()
            if s.label_horizon_days is not None:
                con.execute(f"SET VARIABLE label_horizon_days = {int(s.label_horizon_days)}").fetchall()
            self._con = con
        return self._con

    def run(self, table: str, path: Path) -> RawTable | None:
        import duckdb

        name = path.name
        data = self.sources.read_bytes(path)
        if data is None:
            return None
        sql = decode(name, table, data, self.errors)
        if sql is None:
            return None
        if not sql.strip():
            self.errors.append(Problem(table, name, None, "empty_file", f"{name}: file is empty"))
            return None
        # a file of the folder that the query names is one of its raw files, even if the query fails
        self.sources.used.update(p.name for p in self.settings.folder.iterdir()
                                 if p.is_file() and p.name != name and p.name in sql)
        tree = self._parse(table, name, sql)
        if tree is None:
            return None
        refs = _base_tables(tree["statements"][0]["node"])
        files: list[str] = []
        for ref in refs:
            if ref in self.registered:
                files.append(ref)
                continue
            looks_like_file = Path(ref).suffix.lower() in RAW_SUFFIXES
            if not looks_like_file and self.sources.locate(ref) is None:
                continue  # a table DuckDB knows, or an error DuckDB will name
            raw = self.sources.get(ref, name)
            if raw is None:
                return None
            self.con.register(ref, self.sources.arrow(raw))
            self.registered.add(ref)
            files.append(ref)
        raw_columns = {ref: self.sources.cache[ref].columns for ref in files if self.sources.cache.get(ref)}
        node = tree["statements"][0]["node"]
        traced = copy.deepcopy(tree)
        result, provenance = None, False
        if files and _inject(traced["statements"][0]["node"], set(files)):
            try:
                rewritten = self.con.execute("SELECT json_deserialize_sql(?)", [json.dumps(traced)]).fetchall()[0][0]
                result = self.con.sql(rewritten).to_arrow_table()
                provenance = all(c in result.schema.names for c in PROVENANCE)
            except duckdb.Error:
                result = None
        if result is None:
            try:
                result = self.con.sql(sql).to_arrow_table()
            except duckdb.Error as exc:
                self.errors.append(Problem(table, name, None, "view_failed", _duckdb_message(name, exc)))
                self._explain(table, node, files)
                return None
        lineage, unpivots = _lineage(node, {ref: {c: (c,) for c in cols} for ref, cols in raw_columns.items()})
        return self._table(table, path, result, provenance, lineage, unpivots, files,
                           ordered=any(m.get("type") == "ORDER_MODIFIER" for m in node.get("modifiers", [])))

    def _explain(self, table: str, node: dict, files: list[str]) -> None:
        """After a failed view: the raw columns it uses that are text only because of a few values, with rows."""
        used = set(_refs(node))
        for ref in files:
            raw = self.sources.cache.get(ref)
            for note in (raw.notes if raw is not None else []):
                if note.column not in used or (ref, note.column) in self.explained:
                    continue
                self.explained.add((ref, note.column))
                n = len(note.positions)
                values = pd.unique(raw.text[note.column].to_numpy(dtype=object)[note.positions])
                shown = ", ".join(quote(str(v)) for v in values[:5]) + (f" and {len(values) - 5} more"
                                                                         if len(values) > 5 else "")
                rows = ", ".join(str(r) for r in raw.rows[note.positions][:5]) + (f" and {n - 5:,} more"
                                                                                   if n > 5 else "")
                self.errors.append(Problem(table, ref, note.column, "not_" + note.kind[:-1], (
                    f"{ref}: column {note.column}: {n:,} row{'s are' if n != 1 else ' is'} not "
                    f"{'a ' if n == 1 else ''}{note.kind if n != 1 else note.kind[:-1]}, so the column is text "
                    f"to the view: {shown} (row{'s' if n != 1 else ''} {rows})"),
                    tuple(int(r) for r in raw.rows[note.positions])))

    def _parse(self, table: str, name: str, sql: str) -> dict | None:
        import duckdb

        try:
            text = self.con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0]
        except duckdb.Error as exc:
            self.errors.append(Problem(table, name, None, "view_syntax", _duckdb_message(name, exc)))
            return None
        tree = json.loads(text)
        if tree.get("error"):
            message = tree.get("error_message", "")
            if "Only SELECT" in message:
                message = "must be one SELECT statement (a view only reads)"
            else:
                message = f"not valid DuckDB SQL: {message.splitlines()[0] if message else ''}"
            self.errors.append(Problem(table, name, None, "view_syntax", f"{name}: {message} ({doc('sql-views')})"))
            return None
        if len(tree["statements"]) != 1:
            self.errors.append(Problem(table, name, None, "view_syntax",
                                       f"{name}: must be one SELECT statement, found {len(tree['statements'])} "
                                       f"({doc('sql-views')})"))
            return None
        return tree

    def _table(self, table: str, path: Path, result, provenance: bool, lineage: dict, unpivots: dict,
               files: list[str], ordered: bool) -> RawTable:
        import pyarrow as pa

        name = path.name
        n = result.num_rows
        row_files = None
        if provenance:
            rows = np.asarray(pa.compute.fill_null(result.column("_row"), 0).to_numpy(zero_copy_only=False),
                              dtype=np.int64)
            file_col = np.asarray(pa.compute.fill_null(result.column("_file"), "").to_numpy(zero_copy_only=False),
                                  dtype=object)
            names = pd.unique(file_col)
            if len(names) == 1 and not ordered and n > 1 and (np.diff(rows) < 0).any():
                # file order, stably: DuckDB's threads may shuffle rows of a query without ORDER BY
                order = np.argsort(rows, kind="stable")
                result, rows, file_col = result.take(pa.array(order)), rows[order], file_col[order]
            if len(names) > 1:
                row_files = file_col
            result = result.drop_columns(list(PROVENANCE))
            main_file = str(names[0]) if len(names) else (files[0] if files else name)
        else:
            rows = np.arange(1, n + 1, dtype=np.int64)
            main_file = files[0] if len(files) == 1 else name
        source_path = self.sources.locate(main_file) if main_file != name else None
        raw = from_arrow(table, source_path or path, result, self.errors, fmt="view", locations=rows)
        raw.mapper = name
        raw.result_rows = not provenance
        raw.row_files = row_files
        raw.sources = tuple(files)
        if len(files) == 1 and self.sources.cache.get(files[0]) is not None:
            opts = self.sources.cache[files[0]].options
            raw.date_format, raw.decimal = opts.date_format, opts.decimal
        contract = {c.name for c in TABLES[table]}
        raw.origin = {c: tuple(cols) for c, cols in lineage.items() if c in contract and cols}
        for col in contract - set(raw.origin):
            raw.origin.pop(col, None)
        # usage's value out of an UNPIVOT: each row's raw column is the one its metric was unpivoted from
        if table == "usage" and unpivots.get("value") and unpivots["value"][0] == "metric" \
                and "metric" in raw.frame.columns:
            per_metric = unpivots["value"][1]
            metric = raw.frame["metric"].astype(str).to_numpy()
            raw.origin_rows["value"] = np.array([", ".join(per_metric.get(m, (m,))) for m in metric], dtype=object)
        return raw


def _duckdb_message(name: str, exc: Exception) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    hint = ""
    if "Conversion Error" in first or "Could not convert" in first:
        hint = (": select the raw value as it is (or use TRY_CAST): csresearch then reports each value it "
                "cannot read with its raw row")
    elif "does not exist" in first and "Table" in first:
        hint = ": name raw files with their file name, e.g. FROM 'export.csv'"
    elif "extension" in first.lower():
        hint = ": DuckDB extensions are not loaded (Excel: save the sheet as CSV)"
    line = next((ln.strip() for ln in text.splitlines()[1:] if ln.strip().startswith("LINE ")), "")
    where = f" ({line.split(':')[0].title()})" if line else ""
    first = first.rstrip(".!") if hint else first
    return f"{name}: DuckDB could not run it{where}: {first}{hint} ({doc('sql-views')})"


def _walk(obj: Any):
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def _base_tables(node: dict) -> list[str]:
    """Names in FROM clauses that are not CTEs, in order of appearance."""
    ctes = {e["key"] for d in _walk(node) if isinstance(d.get("cte_map"), dict) for e in d["cte_map"]["map"]}
    out: list[str] = []
    for d in _walk(node):
        if d.get("type") == "BASE_TABLE" and not d.get("schema_name") and not d.get("catalog_name"):
            name = d.get("table_name", "")
            if name and name not in ctes and name not in out:
                out.append(name)
    return out


def _ref(*names: str) -> dict:
    return {"class": "COLUMN_REF", "type": "COLUMN_REF", "alias": names[-1], "column_names": list(names)}


def _inject(node: dict, prov: set[str]) -> bool:
    """Add ``_row`` and ``_file`` to the SELECT lists of ``node`` (in place) down to the raw tables in ``prov``;
    True when the node's result then carries them."""
    if node.get("type") == "SET_OPERATION_NODE":
        children = node.get("children") or [c for c in (node.get("left"), node.get("right")) if c]
        ok = [_inject(c, prov) for c in children]
        return bool(children) and all(ok)
    if node.get("type") != "SELECT_NODE":
        return False
    local = set(prov)
    for entry in node.get("cte_map", {}).get("map", []):
        if _inject(entry["value"]["query_node"], local):
            local.add(entry["key"])
    ok, qualifier = _from_provides(node.get("from_table") or {}, local)
    if not ok:
        return False
    if any(m.get("type") == "DISTINCT_MODIFIER" for m in node.get("modifiers", [])) \
            or node.get("group_expressions") or node.get("aggregate_handling") not in (None, "STANDARD_HANDLING"):
        return False
    items = node.get("select_list", [])
    names = {(i.get("alias") or (i.get("column_names") or [""])[-1]) for i in items}
    for item in items:  # a star brings the columns it does not exclude
        if item.get("class") == "STAR" and not item.get("columns"):
            excluded = json.dumps([item.get("exclude_list"), item.get("qualified_exclude_list")])
            names |= {c for c in PROVENANCE if f'"{c}"' not in excluded}
    for col in PROVENANCE:
        if col not in names:
            items.append(_ref(qualifier, col) if qualifier else _ref(col))
    return True


def _from_provides(ref: dict, prov: set[str]) -> tuple[bool, str | None]:
    kind = ref.get("type")
    if kind == "BASE_TABLE":
        name = ref.get("table_name", "")
        return (name in prov, ref.get("alias") or name)
    if kind == "SUBQUERY":
        return (_inject(ref["subquery"]["node"], prov), ref.get("alias") or None)
    if kind == "JOIN":
        return _from_provides(ref.get("left") or {}, prov)
    if kind == "PIVOT":
        ok, _ = _from_provides(ref.get("source") or {}, prov)
        return (ok, ref.get("alias") or None)
    return (False, None)


def _refs(expr: Any) -> list[str]:
    return [d["column_names"][-1] for d in _walk(expr) if d.get("class") == "COLUMN_REF" and d.get("column_names")]


def _lineage(node: dict, env: dict[str, dict[str, tuple]]) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """For each output column of ``node``: the raw columns it is computed from (empty when none or unknown);
    and, for columns that come out of an UNPIVOT, ``{value column: (name column, {name: raw columns})}``."""
    if node.get("type") == "SET_OPERATION_NODE":
        children = node.get("children") or [c for c in (node.get("left"), node.get("right")) if c]
        merged: dict[str, tuple] = {}
        parts = [_lineage(c, env)[0] for c in children]
        if parts:
            names = list(parts[0])
            for i, name in enumerate(names):
                cols: list[str] = []
                for part in parts:
                    values = list(part.values())
                    if i < len(values):
                        cols += [c for c in values[i] if c not in cols]
                merged[name] = tuple(cols)
        return merged, {}
    if node.get("type") != "SELECT_NODE":
        return {}, {}
    local = dict(env)
    for entry in node.get("cte_map", {}).get("map", []):
        local[entry["key"]] = _lineage(entry["value"]["query_node"], local)[0]
    source, unpivots = _from_lineage(node.get("from_table") or {}, local)
    out: dict[str, tuple] = {}
    outer_unpivots: dict[str, tuple] = {}
    for item in node.get("select_list", []):
        if item.get("class") == "STAR":
            excluded = set(_refs(item.get("exclude_list"))) | {str(x) for x in item.get("exclude_list") or []
                                                               if isinstance(x, str)}
            for k, v in source.items():
                if k not in excluded:
                    out[k] = v
            outer_unpivots.update({k: v for k, v in unpivots.items() if k not in excluded})
            continue
        name = item.get("alias") or ((item.get("column_names") or [None])[-1]
                                     if item.get("class") == "COLUMN_REF" else None)
        if not name:
            continue
        cols: list[str] = []
        for r in _refs(item):
            cols += [c for c in source.get(r, ()) if c not in cols]
        out[name] = tuple(cols)
        if item.get("class") == "COLUMN_REF" and item["column_names"][-1] in unpivots:
            value_col = item["column_names"][-1]
            name_col, per = unpivots[value_col]
            outer_unpivots[name] = (name_col, per)
    return out, outer_unpivots


def _from_lineage(ref: dict, env: dict) -> tuple[dict[str, tuple], dict[str, tuple]]:
    kind = ref.get("type")
    if kind == "BASE_TABLE":
        return dict(env.get(ref.get("table_name", ""), {})), {}
    if kind == "SUBQUERY":
        return _lineage(ref["subquery"]["node"], env)
    if kind == "JOIN":
        left, lu = _from_lineage(ref.get("left") or {}, env)
        right, ru = _from_lineage(ref.get("right") or {}, env)
        return {**right, **left}, {**ru, **lu}
    if kind == "PIVOT":
        source, _ = _from_lineage(ref.get("source") or {}, env)
        values = ref.get("unpivot_names") or []
        out = dict(source)
        unpivots: dict[str, tuple] = {}
        for pivot in ref.get("pivots") or []:
            names = pivot.get("unpivot_names") or []
            per: dict[str, tuple] = {}
            for entry in pivot.get("entries") or []:
                for col in _refs(entry.get("star_expr")) + _refs(entry.get("values")):
                    per[entry.get("alias") or col] = source.get(col, (col,))
                    out.pop(col, None)
            for n in names:
                out[n] = ()
            for v in values:
                out[v] = tuple(c for cols in per.values() for c in cols)
                if names:
                    unpivots[v] = (names[0], per)
        return out, unpivots
    return {}, {}


# -- the columns map -----------------------------------------------------------------------------------

#: settings of a table's map that are not contract columns
MAP_KEYS = ("file",) + OPTION_KEYS
_FORMS = ("column", "values", "value", "tenure_months", "tenure_days", "churn_label", "churned", "active",
          "or_start_month")


@dataclass
class TableMap:
    table: str
    file: str
    options: ReadOptions
    columns: dict[str, Any] = field(default_factory=dict)   # contract column -> str | dict
    #: usage, wide: metric name -> raw column, or {column: raw column, values: {raw value: number}}
    metrics: dict[str, Any] | None = None


def parse_columns(spec: dict[str, Any], files: dict[str, ReadOptions],
                  errors: list[Problem]) -> dict[str, TableMap]:
    """The ``columns:`` key of dataset.yaml; every problem names its place (``columns: accounts: segment:``)."""
    out: dict[str, TableMap] = {}

    def bad(where: str, text: str, key: str | None = None) -> None:
        errors.append(Problem(None, DATASET_YAML, key, "bad_mapping",
                              f"{DATASET_YAML}: {where} {text} ({doc('the-columns-map')})"))

    for table, body in spec.items():
        where = f"columns: {table}:"
        if table not in TABLES:
            bad(where, f"not a table of the data contract (tables: {', '.join(TABLES)})", table)
            continue
        names = [c.name for c in TABLES[table]]
        if not isinstance(body.get("file"), str) or not body["file"].strip():
            bad(where, "needs `file:`, the raw file the table is read from (in the folder or raw_dir)", "file")
            continue
        fname = body["file"].strip()
        base = files.get(fname)
        options = parse_options(where, body, errors, base=base)
        tmap = TableMap(table, fname, options)
        for key, value in body.items():
            key = str(key)
            if key in MAP_KEYS:
                continue
            if key == "metrics" and table == "usage":
                if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                    tmap.metrics = {v: v for v in value}
                elif isinstance(value, dict) and value and all(
                        isinstance(v, str) or (isinstance(v, dict) and isinstance(v.get("column"), str)
                                               and isinstance(v.get("values", {}), dict)) for v in value.values()):
                    tmap.metrics = {str(k): v for k, v in value.items()}
                else:
                    bad(f"{where} metrics:", "must list the raw columns that are metrics, e.g. "
                        "`metrics: [logins, seats]`, `metrics: {logins: Logins (30d)}` or "
                        "`metrics: {phone: {column: PhoneService, values: {Yes: 1, No: 0}}}`", key)
                continue
            if key not in names:
                near = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                bad(where, f"unknown column {key!r}{hint}: the contract's {table} columns are {', '.join(names)}; "
                    f"settings are {', '.join(MAP_KEYS)}" + (", metrics" if table == "usage" else ""), key)
                continue
            problem = _check_form(table, key, value)
            if problem:
                bad(f"{where} {key}:", problem, key)
                continue
            tmap.columns[key] = value
        if tmap.metrics is not None and {"metric", "value"} & set(tmap.columns):
            bad(where, "metrics (one column per metric) and metric/value (one row per metric) exclude each other",
                "metrics")
            continue
        out[table] = tmap
    return out


def _check_form(table: str, col: str, value: Any) -> str | None:
    if isinstance(value, str):
        return None if value.strip() else "must name a raw column"
    if not isinstance(value, dict):
        return f"must name a raw column or be a mapping such as {{column: X, values: {{...}}}}, found {quote_value(value)}"
    unknown = [k for k in value if k not in _FORMS]
    if unknown:
        return f"unknown setting {unknown[0]!r} (known: column + values, value, tenure_months, tenure_days, " \
               "churn_label + churned + active)"
    kind = column_spec(table, col).kind
    if "tenure_months" in value or "tenure_days" in value:
        if col != "start_date":
            return "tenure_months and tenure_days make start_date (as_of minus the tenure) only"
        return None
    if "churn_label" in value:
        if col != "end_date":
            return "churn_label makes end_date only"
        for k in ("churned", "active"):
            v = value.get(k)
            if not (isinstance(v, list) and v) and not isinstance(v, (str, int)):
                return f"churn_label needs `{k}:`, the label values that mean {k} (e.g. churned: [Yes], active: [No])"
        return None
    if "value" in value:
        if kind == DATE and value["value"] not in ("", None) and parse_date(value["value"]) is None:
            return f"value must be a date YYYY-MM-DD, found {quote_value(value['value'])}"
        return None
    if "column" in value:
        if "values" in value and not isinstance(value["values"], dict):
            return "values must map raw values to contract values, e.g. values: {1: smb, 2: enterprise}"
        return None
    return "needs column (a raw column), value (one value for every row), tenure_months/tenure_days or churn_label"


def _labels(v: Any) -> list[str]:
    items = v if isinstance(v, list) else [v]
    return [_key_text(x) for x in items]


def _key_text(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


class ColumnsMap:
    """Applies a TableMap to its raw file: a RawTable in contract shape whose rows are the raw file's rows."""

    def __init__(self, settings: Settings, sources: Sources, errors: list[Problem], warnings: list[Problem]):
        self.settings, self.sources, self.errors, self.warnings = settings, sources, errors, warnings
        self.accounts: RawTable | None = None  # for usage dated {value: ..., or_start_month: true}

    def run(self, tmap: TableMap) -> RawTable | None:
        table = tmap.table
        who = f"{DATASET_YAML} (columns: {table}:)"
        raw = self.sources.get(tmap.file, who, tmap.options)
        if raw is None:
            return None
        text = self.sources.text_columns(raw)
        where = f"columns: {table}:"
        ok = True
        for col, form in tmap.columns.items():
            for src in _sources_of(form):
                if src not in text.columns:
                    ok = False
                    near = difflib.get_close_matches(src, list(text.columns), n=1)
                    hint = f" (did you mean {near[0]}?)" if near else ""
                    self.errors.append(Problem(table, DATASET_YAML, col, "bad_mapping",
                                               f"{DATASET_YAML}: {where} {col}: {tmap.file} has no column "
                                               f"{quote(src)}{hint} (its columns: {_some(list(text.columns))}; "
                                               f"{doc('the-columns-map')})"))
        for metric, form in (tmap.metrics or {}).items():
            src = _sources_of(form)[0]
            if src not in text.columns:
                ok = False
                self.errors.append(Problem(table, DATASET_YAML, "metrics", "bad_mapping",
                                           f"{DATASET_YAML}: {where} metrics: {tmap.file} has no column {quote(src)} "
                                           f"(its columns: {_some(list(text.columns))}; {doc('the-columns-map')})"))
        needs_as_of = [c for c, f in tmap.columns.items() if isinstance(f, dict)
                       and ({"tenure_months", "tenure_days", "churn_label"} & set(f))]
        if needs_as_of and self.settings.as_of is None:
            ok = False
            self.errors.append(Problem(table, DATASET_YAML, needs_as_of[0], "needs_as_of",
                                       f"{DATASET_YAML}: {where} {needs_as_of[0]}: needs as_of in dataset.yaml "
                                       f"(the day the export was taken; tenure and labels count back from it) "
                                       f"({doc('label-exports')})"))
        labelled = [c for c, f in tmap.columns.items() if isinstance(f, dict) and "churn_label" in f]
        if labelled and self.settings.label_horizon_days is None:
            ok = False
            self.errors.append(Problem(table, DATASET_YAML, "end_date", "needs_horizon",
                                       f"{DATASET_YAML}: {where} end_date: churn_label needs label_horizon_days in "
                                       f"dataset.yaml (the days before as_of that the label covers) "
                                       f"({doc('label-exports')})"))
        if not ok:
            return None
        if tmap.metrics is not None:
            out = self._wide(tmap, raw, text)
        else:
            out = self._long(tmap, raw, text)
        if table == "accounts":
            self.accounts = out
        return out

    def _base(self, tmap: TableMap, raw: RawFile, frame: pd.DataFrame, rows: np.ndarray) -> RawTable:
        out = RawTable(tmap.table, raw.path, "csv", frame.reset_index(drop=True), rows,
                       date_format=tmap.options.date_format, decimal=tmap.options.decimal)
        out.mapper = DATASET_YAML
        out.sources = (raw.name,)
        return out

    def _long(self, tmap: TableMap, raw: RawFile, text: pd.DataFrame) -> RawTable:
        table = tmap.table
        contract = [c.name for c in TABLES[table]]
        cols: dict[str, Any] = {}
        origin: dict[str, tuple[str, ...]] = {}
        moved: set[str] = set()
        for col in contract:
            form = tmap.columns.get(col)
            if form is None:
                if col in text.columns:
                    cols[col] = text[col]
                    origin[col] = (col,)
                    moved.add(col)
                continue
            if isinstance(form, str):
                cols[col] = text[form]
                origin[col] = (form,)
                moved.add(form)
            else:
                cols[col] = None  # filled below
                src = _sources_of(form)
                if src:
                    origin[col] = tuple(src)
        for c in text.columns:
            if c in moved:
                continue
            if c in contract:
                self.warnings.append(Problem(table, raw.name, c, "shadowed_column",
                                             f"{raw.name}: column {c} not kept: {table}.{c} is mapped from "
                                             f"{', '.join(origin.get(c, ())) or 'a fixed value'}"))
                continue
            cols.setdefault(c, text[c])
        n = len(text)
        frame = pd.DataFrame({k: (v if v is not None else pd.Series([""] * n, dtype=object))
                              for k, v in cols.items()}, index=text.index)
        out = self._base(tmap, raw, frame, raw.rows)
        out.origin = origin
        for col, form in tmap.columns.items():
            if isinstance(form, dict):
                self._derive(out, col, form, text)
        return out

    def _wide(self, tmap: TableMap, raw: RawFile, text: pd.DataFrame) -> RawTable:
        n, metrics = len(text), list(tmap.metrics.items())
        k = len(metrics)
        rep = np.repeat(np.arange(n), k)
        cols: dict[str, Any] = {}
        origin: dict[str, tuple[str, ...]] = {}
        derived: dict[str, dict] = {}
        for col in ("account_id", "date"):
            form = tmap.columns.get(col, col if col in text.columns else None)
            if form is None:
                continue
            if isinstance(form, str):
                cols[col] = text[form].to_numpy(dtype=object)[rep]
                origin[col] = (form,)
            else:
                cols[col] = np.full(n * k, "", dtype=object)
                derived[col] = form
        cols["metric"] = np.tile(np.array([m for m, _ in metrics], dtype=object), n)
        shown = np.column_stack([text[_sources_of(f)[0]].to_numpy(dtype=object) for _, f in metrics]) if n else \
            np.empty((0, k), dtype=object)
        mapped = shown.copy()
        unmapped = np.zeros(shown.shape, dtype=bool)
        for j, (_, form) in enumerate(metrics):
            if isinstance(form, dict) and "values" in form:
                lookup = {_key_text(a): _key_text(b) for a, b in form["values"].items()}
                stripped = np.array([str(v).strip() for v in shown[:, j]], dtype=object)
                known = np.isin(stripped, list(lookup))
                mapped[:, j] = [lookup.get(v, "") for v in stripped]
                unmapped[:, j] = (stripped != "") & ~known
        cols["value"] = mapped.reshape(-1)
        frame = pd.DataFrame(cols)
        out = self._base(tmap, raw, frame, raw.rows[rep])
        out.origin = origin
        out.origin_rows["value"] = np.tile(np.array([_sources_of(f)[0] for _, f in metrics], dtype=object), n)
        if unmapped.any():
            from ._rules import parse_column
            parsed = parse_column(out, "value", "number")
            bad = unmapped.reshape(-1)
            parsed.bad = {rule: mask & ~bad for rule, mask in parsed.bad.items()}
            parsed.bad["not_mapped"] = bad
            parsed.nonempty = parsed.nonempty | bad
            out.display["value"] = shown.reshape(-1).astype(object)
        expanded = text.iloc[rep].reset_index(drop=True)
        for col, form in derived.items():
            self._derive(out, col, form, expanded)
        return out

    def _derive(self, out: RawTable, col: str, form: dict, text: pd.DataFrame) -> None:
        """A contract column made from a form of the map: its text in ``out.frame``, its parse with the map's own
        failures (unmapped values, bad tenures or labels) in ``out.cache``, the raw values for messages."""
        from ._rules import parse_column

        s = self.settings
        n = len(out.frame)
        kind = column_spec(out.table, col).kind
        extra_bad: dict[str, np.ndarray] = {}
        display = None
        if "value" in form:
            value = form["value"]
            stamp = parse_date(value) if kind == DATE else None
            fixed = stamp.date().isoformat() if stamp is not None else _key_text(value)
            made = np.full(n, fixed, dtype=object)
            if kind == DATE and form.get("or_start_month") and self.accounts is not None:
                made = self._not_before_start_month(out, made)
            nonempty = np.ones(n, dtype=bool)
        else:
            src = _sources_of(form)[0]
            raw = text[src].astype(str).to_numpy(dtype=object)
            stripped = np.array([v.strip() for v in raw], dtype=object)
            nonempty = stripped != ""
            if "tenure_months" in form or "tenure_days" in form:
                from ._rules import number_text
                nums = pd.to_numeric(number_text(pd.Series(stripped), out.decimal), errors="coerce").to_numpy()
                good = nonempty & np.isfinite(nums) & (nums >= 0) & (np.mod(np.nan_to_num(nums), 1) == 0)
                made = np.full(n, "", dtype=object)
                as_of = s.as_of
                if "tenure_months" in form:
                    for m in np.unique(nums[good]).astype(int):
                        made[good & (nums == m)] = (as_of - pd.DateOffset(months=int(m))).date().isoformat()
                else:
                    days = (np.datetime64(as_of.date(), "D") - nums[good].astype("timedelta64[D]"))
                    made[good] = np.datetime_as_string(days, unit="D").astype(object)
                extra_bad["not_tenure"] = nonempty & ~good
                display = np.where(good, [f"{r} -> {m}" for r, m in zip(stripped, made)], stripped)
            elif "churn_label" in form:
                churned = {x.casefold() for x in _labels(form["churned"])}
                active = {x.casefold() for x in _labels(form["active"])}
                folded = np.array([v.casefold() for v in stripped], dtype=object)
                is_churned = np.isin(folded, list(churned))
                is_active = np.isin(folded, list(active))
                date = s.label_churn_date.date().isoformat()
                made = np.where(is_churned, date, "").astype(object)
                extra_bad["not_label"] = ~(is_churned | is_active)
                display = np.where(is_churned, [f"{r} -> {date}" for r in stripped], stripped)
                out.cache[("labels", col)] = (f"{'/'.join(_labels(form['churned']))} = churned, "
                                              f"{'/'.join(_labels(form['active']))} = active")
            elif "values" in form:
                lookup = {_key_text(k): _key_text(v) for k, v in form["values"].items()}
                made = np.array([lookup.get(v, "") for v in stripped], dtype=object)
                known = np.isin(stripped, list(lookup))
                extra_bad["not_mapped"] = nonempty & ~known
                display = stripped
            else:  # {column: X}
                made = raw
        out.frame[col] = pd.Series(made, index=out.frame.index, dtype=object)
        if kind == DATE and "column" not in form:
            out.iso_columns.add(col)  # made here, as YYYY-MM-DD
        parsed = parse_column(out, col, kind)
        if extra_bad:
            for rule, mask in extra_bad.items():
                parsed.bad[rule] = mask
                for other in list(parsed.bad):
                    if other != rule:
                        parsed.bad[other] = parsed.bad[other] & ~mask
            if kind != TEXT or "values" in form:
                parsed.nonempty = nonempty
        if display is not None:
            out.display[col] = np.asarray(display, dtype=object)

    def _not_before_start_month(self, out: RawTable, made: np.ndarray) -> np.ndarray:
        from ._rules import parse_column

        acc = self.accounts
        if "start_date" not in acc.frame.columns or "account_id" not in out.frame.columns:
            return made
        start = parse_column(acc, "start_date", DATE).values
        month = start.dt.to_period("M").dt.start_time
        lookup = pd.Series(month.to_numpy(), index=acc.frame["account_id"].astype(str)).groupby(level=0).first()
        theirs = lookup.reindex(out.frame["account_id"].astype(str)).to_numpy()
        fixed = pd.to_datetime(pd.Series(made), errors="coerce").to_numpy()
        later = ~pd.isna(theirs) & (theirs > fixed)
        made = made.copy()
        made[later] = pd.DatetimeIndex(theirs[later]).strftime("%Y-%m-%d").to_numpy(dtype=object)
        return made


def _sources_of(form: Any) -> list[str]:
    if isinstance(form, str):
        return [form]
    for key in ("column", "tenure_months", "tenure_days", "churn_label"):
        if key in form and isinstance(form[key], str):
            return [form[key]]
    return []


def _some(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "") if names else "none"


__all__ = ["ColumnsMap", "RawFile", "Settings", "Sources", "TableMap", "Views", "parse_columns"]
