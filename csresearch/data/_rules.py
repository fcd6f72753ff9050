"""The contract's rules as pandera schemas, and the translation of pandera failures into Problems.

Two stages per table, each one pandera ``DataFrameSchema`` validated with ``lazy=True``:

1. *text*: on the raw text (every contract column as ``str``): required columns present, required
   values not empty, dates in YYYY-MM-DD form, numbers parseable and finite.
2. *typed*: on the coerced frame (values that failed stage 1 are NA there and so skipped):
   uniqueness, ranges, comparisons between columns, and the cross-table rules, checked on frames
   merged with the referenced table (a goal with its account's start_date, a progress row with its
   goal's set_date, a usage row with its account's start month) or with ``isin`` for foreign keys.

Each Check carries a rule key (``error=``), which pandera reports in ``failure_cases.check``;
:data:`RULES` turns a key into plain words. Failure cases are grouped per (rule, column) into one
line: count, offending values and up to five example ids or line numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ._read import ISO_DATE, Parsed, RawTable
from ._report import MAX_EXAMPLES, Problem, capped, locations_text, quote
from ._spec import DATE, ID_COLUMNS, TABLES, TEXT, doc


@dataclass(frozen=True)
class Rule:
    one: str                      # phrase after "1 "
    many: str                     # phrase after "N "
    column: str | None = None     # reported column for frame-level checks; "" = whole row
    values: str | None = "column"  # "column": offending values; "ids": distinct row keys; None
    where: str = "ids"            # "ids" (fall back to locations) | "locations"
    warning: bool = False


RULES: dict[str, Rule] = {
    # stage 1: text
    "empty": Rule("row is empty", "rows are empty", values=None),
    "not_date": Rule("row is not a date ({date_format})", "rows are not dates ({date_format})"),
    "not_number": Rule("row is not a number{decimal}", "rows are not numbers{decimal}"),
    "not_finite": Rule("row is not a finite number", "rows are not finite numbers"),
    # stage 1: mapped columns (the columns map of dataset.yaml)
    "not_mapped": Rule("row has a value the value map does not list", "rows have values the value map does not list"),
    "not_tenure": Rule("row is not a tenure (a whole number >= 0)", "rows are not tenures (whole numbers >= 0)"),
    "not_label": Rule("row is not a churn label ({labels})", "rows are not churn labels ({labels})"),
    # stage 2: typed, one table
    "duplicate": Rule("row has a duplicated value", "rows have a duplicated value", where="locations"),
    "negative": Rule("row is negative", "rows are negative"),
    "not_positive": Rule("row is not greater than 0", "rows are not greater than 0"),
    "after_as_of": Rule("row is after as_of {as_of}", "rows are after as_of {as_of}"),
    "end_before_start": Rule("row is before start_date", "rows are before start_date", column="end_date"),
    "equals_baseline": Rule("row equals baseline", "rows equal baseline", column="target", values=None),
    "due_before_set": Rule("row is before set_date", "rows are before set_date", column="due_date"),
    "duplicate_key": Rule("row repeats the (account_id, metric, date) of another row",
                          "rows repeat the (account_id, metric, date) of another row",
                          column="", values="ids", where="locations"),
    # stage 2: cross-table
    "orphan_account": Rule("row names an account_id not in {accounts}", "rows name an account_id not in {accounts}"),
    "orphan_goal": Rule("row names a goal_id not in {goals}", "rows name a goal_id not in {goals}"),
    "before_account_start": Rule("row is before its account's start_date",
                                 "rows are before their account's start_date", column="set_date"),
    "before_goal_set": Rule("row is before its goal's set_date", "rows are before their goal's set_date",
                            column="date"),
    "before_start_month": Rule("row is before the month its account started",
                               "rows are before the month their account started", column="date"),
    # warnings
    "before_label_horizon": Rule("row is before the label horizon's first day {label_from}",
                                 "rows are before the label horizon's first day {label_from}", column="end_date"),
    # warnings
    "exact_duplicate_account": Rule(
        "account is an exact copy of an earlier one in every column except account_id, kept",
        "accounts are exact copies of an earlier one in every column except account_id, kept",
        column="", values=None, warning=True),
    "started_in_label_horizon": Rule(
        "row is after the label horizon's first day {label_from}: its label covers less than {horizon} days",
        "rows are after the label horizon's first day {label_from}: their labels cover less than {horizon} days",
        warning=True),
    "no_progress": Rule("goal has no goal_progress rows", "goals have no goal_progress rows",
                        values=None, warning=True),
    "later_than_as_of": Rule("row is after as_of {as_of}, the extraction date",
                             "rows are after as_of {as_of}, the extraction date", warning=True),
    "ended_before_observed_from": Rule(
        "row is before observed_from {observed_from} (a snapshot should not contain it)",
        "rows are before observed_from {observed_from} (a snapshot should not contain them)",
        warning=True),
}
_RULE_ORDER = {k: i for i, k in enumerate(RULES)}


def _check(fn: Callable[[Any], Any], rule: str, **kwargs: Any) -> pa.Check:
    return pa.Check(fn, name=rule, error=rule, **kwargs)


# -- stage 1: raw text -----------------------------------------------------------------------------

_NUMBER = r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*"
_NONFINITE = r"\s*[+-]?(?:inf|infinity|nan)\s*"


def _text(s: pd.Series) -> pd.Series:
    s = s.astype(object)
    return s.where(s.notna(), "").astype(str)


_MIDNIGHT = r"(?:[ T]00:00(?::00(?:\.0+)?)?)?"
_ISO_OR_MIDNIGHT = ISO_DATE.pattern + _MIDNIGHT


def parse_dates(s: pd.Series, date_format: str | None = None) -> pd.Series:
    """Strict dates -> datetime64[ns]; anything else (and "") -> NaT.

    Without ``date_format``: YYYY-MM-DD, also written as a timestamp at midnight (``2024-01-31 00:00:00``,
    ``2024-01-31T00:00:00``), as spreadsheets and databases export dates; any other time of day is not a date.
    With it (dataset.yaml ``date_format``, e.g. ``%d/%m/%Y``): that format, a midnight time allowed after it."""
    s = _text(s)
    if date_format is None:
        ok = s.str.fullmatch(_ISO_OR_MIDNIGHT).astype(bool)  # to_datetime alone accepts 2024-1-5
        out = pd.to_datetime(s.where(ok).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
    else:
        day = s.str.replace(r"[ T]00:00(?::00(?:\.0+)?)?$", "", regex=True)
        out = pd.to_datetime(day, format=date_format, errors="coerce")
        out = out.where(out.isna() | (out == out.dt.normalize()))
    return out.astype("datetime64[ns]")


def number_text(s: pd.Series, decimal: str) -> pd.Series:
    """Text of numbers with a decimal comma rewritten with a point ("1,5" -> "1.5"; "1.5" then is not a number)."""
    if decimal == ".":
        return s
    return s.where(~s.str.contains(".", regex=False), "x").str.replace(",", ".", regex=False)


def parse_column(raw: RawTable, name: str, kind: str) -> Parsed:
    key = (name, kind)
    if key in raw.cache:
        return raw.cache[key]
    s = _text(raw.frame[name])
    nonempty = ((s != "") & ~s.str.isspace()).to_numpy(dtype=bool)
    bad: dict[str, np.ndarray] = {}
    if kind == TEXT:
        values = s.where(nonempty, None).astype(object)
    elif kind == DATE:
        values = parse_dates(s, None if name in raw.iso_columns else raw.date_format)
        bad["not_date"] = nonempty & values.isna().to_numpy()
    else:
        s = number_text(s, raw.decimal)
        is_num = s.str.fullmatch(_NUMBER).to_numpy(dtype=bool)
        numbers = np.full(len(s), np.nan)
        idx = np.flatnonzero(is_num)
        if len(idx):
            # Python float(): correctly rounded, so text written with repr() round-trips exactly
            # (pandas.to_numeric does not always).
            numbers[idx] = [float(x) for x in s.to_numpy()[idx]]
        words = np.zeros(len(s), dtype=bool)
        other = np.flatnonzero(nonempty & ~is_num)
        if len(other):
            words[other] = s.iloc[other].str.fullmatch(_NONFINITE, case=False).to_numpy(dtype=bool)
        finite = np.isfinite(numbers)
        bad["not_number"] = nonempty & ~is_num & ~words
        bad["not_finite"] = words | (is_num & ~finite)
        numbers[~finite] = np.nan
        values = pd.Series(numbers, index=s.index, dtype="float64")
    parsed = Parsed(values, nonempty, bad)
    raw.cache[key] = parsed
    return parsed


def _mask_check(mask: np.ndarray, rule: str) -> pa.Check:
    # ignore_na=False: Parquet columns stored with their contract type hold NA (not "") for missing values,
    # which pandera would otherwise drop before the check, misaligning the mask
    return _check(lambda s: pd.Series(~mask, index=s.index), rule, ignore_na=False)


def text_schema(raw: RawTable) -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {}
    for spec in TABLES[raw.table]:
        checks: list[pa.Check] = []
        if spec.name in raw.frame.columns and spec.name not in raw.unusable:
            parsed = parse_column(raw, spec.name, spec.kind)
            if spec.nonempty:
                checks.append(_mask_check(~parsed.nonempty, "empty"))
            for rule, mask in parsed.bad.items():
                checks.append(_mask_check(mask, rule))
        columns[spec.name] = pa.Column(checks=checks, required=spec.required, nullable=True)
    return pa.DataFrameSchema(columns, name=f"{raw.table} (text)")


def coerce(raw: RawTable) -> pd.DataFrame:
    """Contract columns present in ``raw`` with their contract types; bad values become NA."""
    out = {spec.name: parse_column(raw, spec.name, spec.kind).values
           for spec in TABLES[raw.table] if spec.name in raw.frame.columns}
    return pd.DataFrame(out, index=raw.frame.index, copy=False)


# -- stage 2: typed and cross-table ----------------------------------------------------------------

def _unique(s: pd.Series) -> pd.Series:
    return s.isna() | ~s.duplicated(keep=False)


def _isin(ids: pd.Index | None, rule: str) -> list[pa.Check]:
    """A value must be one of ``ids`` (no check when None). Not pandera's ``Check.isin``: that keeps the ids as
    a set in its statistics and its error text, and every schema built from the check deep-copies them, id by id
    (a million accounts, millions of goals)."""
    return [_check(lambda s: s.isin(ids), rule)] if ids is not None else []


def _not_before(col: str, ref: str, rule: str) -> pa.Check:
    return _check(lambda d: d[col].isna() | d[ref].isna() | (d[col] >= d[ref]), rule)


@dataclass
class Context:
    """What the typed checks of one table need from the others."""
    as_of: pd.Timestamp | None
    observed_from: pd.Timestamp | None
    typed: dict[str, pd.DataFrame]
    raws: dict[str, RawTable]
    #: label exports (dataset.yaml label_horizon_days): the horizon's length and first day
    label_horizon_days: int | None = None
    label_from: pd.Timestamp | None = None

    def words(self) -> dict[str, str]:
        return {
            "as_of": self.as_of.date().isoformat() if self.as_of is not None else "?",
            "observed_from": self.observed_from.date().isoformat() if self.observed_from is not None else "?",
            "accounts": self.raws["accounts"].ref if "accounts" in self.raws else "accounts",
            "goals": self.raws["goals"].ref if "goals" in self.raws else "goals",
            "label_from": self.label_from.date().isoformat() if self.label_from is not None else "?",
            "horizon": str(self.label_horizon_days),
        }

    def ids(self, table: str, column: str) -> pd.Index | None:
        """The ids a foreign key may take, each once; None (no check) when the table could not be read, or
        is an accounts table without rows (an error of its own: no need to repeat it per row)."""
        if table not in self.typed or column not in self.typed[table].columns:
            return None
        if table == "accounts" and not len(self.typed[table]):
            return None
        return pd.Index(pd.unique(self.typed[table][column].dropna()))


def _col(dtype: Any, checks: list[pa.Check] | None = None) -> pa.Column:
    return pa.Column(dtype, checks=checks or [], required=False, nullable=True)


def typed_checks(table: str, frame: pd.DataFrame, ctx: Context) -> list[tuple[pa.DataFrameSchema, pd.DataFrame]]:
    """The (schema, frame) pairs for one table's typed and cross-table rules."""
    as_of = ctx.as_of
    cols = set(frame.columns)
    before_as_of = [pa.Check.le(as_of, error="after_as_of")] if as_of is not None else []
    # start_date and set_date after as_of: not a rule of the contract, so only a warning, but
    # as_of is the extraction date, so nothing should start after it.
    not_later = [pa.Check.le(as_of, error="later_than_as_of")] if as_of is not None else []
    out: list[tuple[pa.DataFrameSchema, pd.DataFrame]] = []

    def isin(table_ref: str, column_ref: str, rule: str) -> list[pa.Check]:
        return _isin(ctx.ids(table_ref, column_ref), rule)

    if table == "accounts":
        checks = [_not_before("end_date", "start_date", "end_before_start")] \
            if {"end_date", "start_date"} <= cols else []
        in_horizon = [pa.Check.ge(ctx.label_from, error="before_label_horizon")] if ctx.label_from is not None else []
        out.append((pa.DataFrameSchema({
            "account_id": _col(object, [_check(_unique, "duplicate")]),
            "segment": _col(object),
            "start_date": _col("datetime64[ns]", not_later),
            "end_date": _col("datetime64[ns]", before_as_of + in_horizon),
            "arr": _col("float64", [pa.Check.ge(0, error="negative")]),
        }, checks=checks, name="accounts"), frame))

    elif table == "goals":
        checks = []
        if {"target", "baseline"} <= cols:
            checks.append(_check(lambda d: d["target"].isna() | d["baseline"].isna()
                                 | (d["target"] != d["baseline"]), "equals_baseline"))
        if {"due_date", "set_date"} <= cols:
            checks.append(_not_before("due_date", "set_date", "due_before_set"))
        out.append((pa.DataFrameSchema({
            "goal_id": _col(object, [_check(_unique, "duplicate")]),
            "account_id": _col(object, isin("accounts", "account_id", "orphan_account")),
            "metric": _col(object),
            "baseline": _col("float64"),
            "target": _col("float64"),
            "set_date": _col("datetime64[ns]", not_later),
            "due_date": _col("datetime64[ns]"),
            "weight": _col("float64", [pa.Check.gt(0, error="not_positive")]),
        }, checks=checks, name="goals"), frame))
        # cross-table: goals merged with their account's start_date
        merged = _merge_ref(frame, ctx, "accounts", "account_id", "start_date", "account_start_date")
        if merged is not None and "set_date" in cols:
            out.append((pa.DataFrameSchema(checks=[
                _not_before("set_date", "account_start_date", "before_account_start")],
                name="goals x accounts"), merged[["account_id", "set_date", "account_start_date"]]))

    elif table == "goal_progress":
        out.append((pa.DataFrameSchema({
            "goal_id": _col(object, isin("goals", "goal_id", "orphan_goal")),
            "date": _col("datetime64[ns]", before_as_of),
            "value": _col("float64"),
        }, name="goal_progress"), frame))
        merged = _merge_ref(frame, ctx, "goals", "goal_id", "set_date", "goal_set_date")
        if merged is not None and "date" in cols:
            out.append((pa.DataFrameSchema(checks=[
                _not_before("date", "goal_set_date", "before_goal_set")],
                name="goal_progress x goals"), merged[["goal_id", "date", "goal_set_date"]]))

    elif table == "usage":
        key = ["account_id", "metric", "date"]
        checks = []
        if set(key) <= cols:
            checks.append(_check(lambda d: d[key].isna().any(axis=1) | ~d.duplicated(key, keep=False),
                                 "duplicate_key"))
        out.append((pa.DataFrameSchema({
            "account_id": _col(object, isin("accounts", "account_id", "orphan_account")),
            "date": _col("datetime64[ns]", before_as_of),
            "metric": _col(object),
            "value": _col("float64", [pa.Check.ge(0, error="negative")]),
        }, checks=checks, name="usage"), frame[[c for c in frame.columns if c in key + ["value"]]]))
        merged = _merge_ref(frame, ctx, "accounts", "account_id", "start_date", "account_start")
        if merged is not None and "date" in cols:
            start = merged["account_start"].to_numpy(dtype="datetime64[ns]")
            merged["account_start_month"] = start.astype("datetime64[M]").astype("datetime64[ns]")
            out.append((pa.DataFrameSchema(checks=[
                _not_before("date", "account_start_month", "before_start_month")],
                name="usage x accounts"), merged[["account_id", "date", "account_start_month"]]))
    return out


def _merge_ref(frame: pd.DataFrame, ctx: Context, ref_table: str, key: str, ref_col: str,
               as_name: str) -> pd.DataFrame | None:
    """``frame`` left-joined with ``ref_table[ref_col]`` on ``key`` (first row per key), same index."""
    ref = ctx.typed.get(ref_table)
    if ref is None or key not in frame.columns or key not in ref.columns or ref_col not in ref.columns:
        return None
    right = ref[[key, ref_col]].dropna(subset=[key]).drop_duplicates(key)
    # a hash lookup rather than a merge: the many side can be tens of millions of rows
    pos = pd.Index(right[key]).get_indexer(frame[key])
    values = right[ref_col].to_numpy()
    missing = np.datetime64("NaT") if values.dtype.kind == "M" else np.nan
    looked_up = values[np.maximum(pos, 0)] if len(values) else np.full(len(pos), missing, dtype=values.dtype)
    if (pos < 0).any():
        looked_up[pos < 0] = missing
    merged = pd.DataFrame({c: frame[c] for c in frame.columns}, index=frame.index, copy=False)
    merged[as_name] = looked_up
    return merged


def _comparable(s: pd.Series) -> pd.Series:
    """Parquet list/struct values (unhashable) as their repr, so duplicates can be found."""
    if s.dtype != object:
        return s
    nested = s.map(lambda v: isinstance(v, (list, dict, np.ndarray)))
    if not nested.any():
        return s
    return s.map(lambda v: repr(v.tolist() if isinstance(v, np.ndarray) else v))


#: accounts columns that many accounts share by chance: copies across only these are not reported
THIN_ACCOUNT_COLUMNS = ("segment", "start_date", "end_date")


def warning_checks(table: str, raw: RawTable, frame: pd.DataFrame,
                   ctx: Context) -> list[tuple[pa.DataFrameSchema, pd.DataFrame]]:
    out: list[tuple[pa.DataFrameSchema, pd.DataFrame]] = []
    if table == "accounts":
        others = [c for c in raw.frame.columns if c != "account_id"]
        # copies are only worth a word when the table says more than the contract's few columns: on a thin
        # table (segment, start and end dates) many accounts are alike by chance
        if len(raw.frame) and set(others) - set(THIN_ACCOUNT_COLUMNS):
            compared = pd.DataFrame({c: _comparable(raw.frame[c]) for c in others}, index=raw.frame.index)
            # each copy after the first, found here: pandera's unique= reshapes every copied cell into its failure
            # cases (25 s for 58,000 copies among a million accounts); one flag per row is the same rows at once
            copy = pd.DataFrame({"_copy": compared.duplicated(keep="first")}, index=raw.frame.index)
            out.append((pa.DataFrameSchema({"_copy": _col(bool, [_check(lambda s: ~s, "exact_duplicate_account")])},
                                           name="accounts (exact duplicates)"), copy))
        if ctx.label_from is not None and "start_date" in frame.columns:
            out.append((pa.DataFrameSchema({"start_date": _col("datetime64[ns]", [
                pa.Check.le(ctx.label_from, error="started_in_label_horizon")])}), frame[["start_date"]]))
        if ctx.observed_from is not None and ctx.label_from is None and "end_date" in frame.columns:
            out.append((pa.DataFrameSchema({"end_date": _col("datetime64[ns]", [
                pa.Check.ge(ctx.observed_from, error="ended_before_observed_from")])}),
                frame[["end_date"]]))
    if table == "goals" and "goal_id" in frame.columns:
        ids = ctx.ids("goal_progress", "goal_id")
        if ids is not None:
            out.append((pa.DataFrameSchema({"goal_id": _col(object, _isin(ids, "no_progress"))}), frame[["goal_id"]]))
    return out


# -- translation -----------------------------------------------------------------------------------

def run(schema: pa.DataFrameSchema, frame: pd.DataFrame, raw: RawTable, ctx: Context | None,
        errors: list[Problem], warnings: list[Problem]) -> None:
    """Validate lazily and add one Problem per (rule, column) that failed."""
    try:
        schema.validate(frame, lazy=True, inplace=True)  # nothing is coerced: no copy of the frame
        return
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
    words = ctx.words() if ctx is not None else {}
    found: list[tuple[tuple, Problem, bool]] = []
    missing = fc.loc[fc["check"] == "column_in_dataframe", "failure_case"].astype(str).tolist()
    for name in missing:
        found.append(((-1, _RULE_ORDER.get("empty", 0) - 1, name),
                      _missing_column(raw, name), False))
    rest = fc[fc["check"] != "column_in_dataframe"]
    if len(rest):
        checks = [str(c) for c in rest["check"]]
        rcol = [RULES[c].column if c in RULES and RULES[c].column is not None else col
                for c, col in zip(checks, rest["column"])]
        grouped = pd.DataFrame({"check": checks, "column": [("" if c is None else str(c)) for c in rcol],
                                "index": pd.to_numeric(rest["index"], errors="coerce").to_numpy(),
                                "case": rest["failure_case"].to_numpy()})
        for (check, column), grp in grouped.groupby(["check", "column"], sort=False):
            positions = np.unique(grp["index"].dropna().astype(np.int64).to_numpy())
            rule = RULES.get(check)
            if rule is None:  # a check that raised, or a dtype mismatch: a bug here, not in the data
                cases = capped([quote(c) for c in pd.unique(grp["case"].astype(str))])
                found.append(((_col_order(raw.table, column), 999, check), Problem(
                    raw.table, raw.file, column or None, "internal",
                    f"{raw.file}: column {column}: could not be checked ({check}: {cases})",
                    tuple(int(x) for x in raw.locations[positions])), False))
                continue
            for part in _split_by_source(raw, column, positions):
                problem = _problem(raw, check, rule, column, part, words)
                found.append(((_col_order(raw.table, column), _RULE_ORDER[check], check), problem, rule.warning))
    for _, problem, is_warning in sorted(found, key=lambda t: t[0]):
        (warnings if is_warning else errors).append(problem)


def _col_order(table: str, column: str) -> int:
    names = [c.name for c in TABLES[table]]
    return names.index(column) if column in names else len(names)


def _missing_column(raw: RawTable, name: str) -> Problem:
    near = [c for c in raw.frame.columns if isinstance(c, str) and c != name
            and c.strip().lower().replace(" ", "_") == name]
    hint = ""
    if near:
        c = near[0]
        hint = (f" (found {c}: names are case-sensitive)" if c.lower() == name
                else f" (found {quote(c)}: names must match exactly)")
    if raw.mapper is not None and raw.mapper.endswith(".sql"):
        return Problem(raw.table, raw.mapper, name, "missing_column",
                       f"{raw.mapper}: missing required column {name}{hint} (the view's columns: "
                       f"{_some([str(c) for c in raw.frame.columns])}; {doc(raw.table)})")
    if raw.mapper is not None:
        return Problem(raw.table, raw.file, name, "missing_column",
                       f"{raw.file}: missing required column {name}{hint}: map it under `columns: {raw.table}:` in "
                       f"dataset.yaml, e.g. `{name}: <a column of {raw.file}>` (its columns: "
                       f"{_some([str(c) for c in raw.frame.columns if c not in raw.origin])}; "
                       f"{doc('the-columns-map')})")
    return Problem(raw.table, raw.file, name, "missing_column",
                   f"{raw.file}: missing required column {name}{hint}")


def _some(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "") if names else "none"


def _split_by_source(raw: RawTable, column: str, positions: np.ndarray) -> list[np.ndarray]:
    """Positions grouped by the raw file and raw column they come from (one message each), in order of first row."""
    keys = []
    if raw.row_files is not None:
        keys.append(raw.row_files[positions])
    if column in raw.origin_rows:
        keys.append(raw.origin_rows[column][positions])
    if not keys or not len(positions):
        return [positions]
    key = pd.Series(list(zip(*keys)))
    return [positions[np.asarray(idx)] for _, idx in key.groupby(key, sort=False).indices.items()]


def _problem(raw: RawTable, key: str, rule: Rule, column: str, positions: np.ndarray,
             words: dict[str, str]) -> Problem:
    n = len(positions)
    words = {**words, **_raw_words(raw, column)}
    phrase = (rule.one if n == 1 else rule.many).format(**words)
    file = raw.file if raw.row_files is None or not n else str(raw.row_files[positions[0]])
    if column and column in raw.origin_rows and n:
        label = raw.column_text(column, str(raw.origin_rows[column][positions[0]]))
    else:
        label = raw.column_text(column) if column else (
            f"{raw.table} (made by {raw.mapper})" if raw.mapper is not None else "")
    head = f"{file}: {label}: " if label else f"{file}: "
    text = f"{head}{n:,} {phrase}"
    if rule.values == "column" and column in raw.frame.columns:
        vals = pd.unique(raw.texts(column, positions))
        text += ": " + capped([quote(v) for v in vals[:MAX_EXAMPLES]], len(vals))
    elif rule.values == "ids":
        keys = _id_texts(raw, positions, distinct=True)
        if keys:
            text += ": " + capped(keys[:MAX_EXAMPLES], len(keys))
    text += f" ({_where(raw, positions, rule.where)})"
    rows = _rows(raw, positions) if raw.mapper is not None else [int(x) for x in raw.locations[positions]]
    return Problem(raw.table, file, column or None, key, text, tuple(rows))


def _rows(raw: RawTable, positions: np.ndarray) -> list[int]:
    """The raw rows of ``positions``, each once, in order (a wide row becomes several usage rows)."""
    return [int(x) for x in pd.unique(np.asarray(raw.locations[positions], dtype=np.int64))]


def _raw_words(raw: RawTable, column: str) -> dict[str, str]:
    return {"date_format": raw.date_format or "YYYY-MM-DD",
            "decimal": " (decimal mark ',')" if raw.decimal == "," else "",
            "labels": raw.cache.get(("labels", column), "")}


def _id_texts(raw: RawTable, positions: np.ndarray, distinct: bool = False) -> list[str] | None:
    cols = ID_COLUMNS[raw.table]
    if any(c not in raw.frame.columns for c in cols):
        return None
    sub = pd.DataFrame({c: raw.texts(c, positions) for c in cols})
    if distinct:
        sub = sub.drop_duplicates()
    out = []
    for values in sub.itertuples(index=False):
        if any(v.strip() == "" for v in values):
            return None
        text = values[0]
        if raw.table == "usage":
            text += f" {values[1]} on {values[2]}"
        elif raw.table == "goal_progress":
            text += f" on {values[1]}"
        out.append(text)
    return out


def _where(raw: RawTable, positions: np.ndarray, mode: str) -> str:
    if raw.mapper is not None and not raw.result_rows:
        return locations_text("row", _rows(raw, positions))
    if mode == "ids":
        ids = _id_texts(raw, positions[:MAX_EXAMPLES])
        if ids is not None:
            label = ID_COLUMNS[raw.table][0]
            return f"{label} {capped(ids, len(positions))}"
    return locations_text(raw.loc_word, [int(x) for x in raw.locations[positions]])
