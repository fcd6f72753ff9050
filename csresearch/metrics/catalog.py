"""The metric catalog: reading ``metrics.yaml`` and checking it against the data contract.

A catalog is a YAML list of metric definitions, one mapping per metric (see the header of
``csresearch/metrics/metrics.yaml`` and the "metrics" section of the data contract)::

    - name: qualified_leads
      description: Leads the customer's sales team accepts as worth working, per month.
      owner: customer            # customer | vendor: whose success the number describes
      level: outcome             # activity | output | outcome | business_result
      countable: true            # can it be counted before and after adoption?
      unit: leads per month
      function: marketing        # optional: the business function it belongs to
      label: Qualified leads     # optional: the short name reports show (else the name made readable)

:func:`load_catalog` reads such a file into a DataFrame with one row per metric and the columns
:data:`FIELDS`. Nothing is classified here (see :mod:`csresearch.metrics.definition`).

Checking happens in three steps, and every problem of every step is collected before anything is
raised, so a user fixes a catalog in one pass:

1. *the file*: it exists, is UTF-8, is valid YAML (errors name the line) and its top level is a
   non-empty list;
2. *the shape of each entry*: a mapping, no unknown fields (with a "did you mean" hint for typos),
   no field given twice in one entry (``yaml.safe_load`` would silently keep the last one, so the
   file is read with a safe loader that records duplicates and the line of every value);
3. *the values*: a pandera ``DataFrameSchema`` (lazy, element-wise checks, each carrying a rule
   key) over the raw values: required fields present, text where text is expected, ``owner`` and
   ``level`` from their vocabularies, ``countable`` a real boolean (not ``"yes"`` or ``1``), a
   unit for every countable metric, unique names.

Each problem becomes one line naming the file, the entry (numbered from 1, as a reader counts the
items of the list) with its name, the field and the line, e.g.
``metrics.yaml: entry 7 (cost_per_lead): field owner: 'client' is not one of customer, vendor (line 52)``.
All of them are raised together as one :class:`CatalogError`.

The bundled catalog is package data, a single file beside this module (``metrics.yaml``), so an installed copy
classifies without a checkout: see :func:`bundled_catalog_path`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pandera.pandas as pa
import yaml

#: Fields of a metric definition, in the order of the catalog's columns.
FIELDS = ("name", "description", "owner", "level", "countable", "unit", "function", "label")
REQUIRED_FIELDS = ("name", "description", "owner", "level", "countable", "unit")
#: ``function``: the business function a metric belongs to; ``label``: the short human name a report shows for
#: the metric (tables, figures, sentences; see :mod:`csresearch.names`), else the name made readable.
OPTIONAL_FIELDS = ("function", "label")
#: Whose success a metric describes.
OWNERS = ("customer", "vendor")
#: How far a metric is from the reason the customer buys: what people do in or with the product
#: (activity), what the product produces (output), the result the customer's team is after
#: (outcome), the whole company's bottom line (business_result).
LEVELS = ("activity", "output", "outcome", "business_result")
CATALOG_FILE = "metrics.yaml"


class CatalogError(ValueError):
    """A metric catalog that cannot be used. ``problems`` holds one line per problem found."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def bundled_catalog_path() -> Path:
    """The catalog that ships with the workbook: ``metrics.yaml`` beside this module (package data).

    There is one copy of the catalog, inside the package, so an installed wheel classifies and
    studies with the same catalog as a checkout. To start a catalog of your own, copy it and pass
    its path (``load_catalog(path)``, ``csresearch classify PATH``).
    """
    path = Path(__file__).resolve().with_name(CATALOG_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"the bundled metric catalog is missing from the package: {path}")
    return path


# --------------------------------------------------------------------------------------------
# step 1 and 2: the YAML file and the shape of each entry


class _Mapping(dict):
    """A YAML mapping that remembers the line of each value and the keys given twice."""

    line: int
    lines: dict[Any, int]
    repeated: dict[Any, list[int]]
    unhashable: list[int]


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings are :class:`_Mapping` (lines, repeated keys)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode):
    data = _Mapping()
    data.line = node.start_mark.line + 1
    data.lines, data.repeated, data.unhashable = {}, {}, []
    yield data
    own = {id(k) for k, _ in node.value}  # keys written in this mapping, not merged in with "<<: *anchor"
    loader.flatten_mapping(node)
    written: set[Any] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=False)
        value = loader.construct_object(value_node, deep=False)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            data.unhashable.append(line)
            continue
        if id(key_node) in own:
            if key in written:
                data.repeated.setdefault(key, [data.lines[key]]).append(line)
            written.add(key)
        data[key] = value
        data.lines[key] = line


class _Sequence(list):
    """A YAML sequence that remembers the line of each item."""

    lines: list[int]


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode):
    data = _Sequence()
    data.lines = [child.start_mark.line + 1 for child in node.value]
    yield data
    data.extend(loader.construct_sequence(node))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _kind(value: Any) -> str:
    """A YAML reader's word for the type of ``value``."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _show(value: Any) -> str:
    """``value`` as it would be quoted in a message."""
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "an empty value"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_yaml(path: Path) -> Any:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CatalogError([f"{path.name}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                            "save the catalog as UTF-8"]) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a yaml.SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = exc.problem or str(exc)
        if exc.context:
            started = exc.context_mark
            at = f" (line {started.line + 1})" if started is not None and started.line != getattr(mark, "line", None) else ""
            what = f"{exc.context}{at}: {what}"
        raise CatalogError([f"{path.name}: {where}YAML syntax error: {what}"]) from None
    except yaml.YAMLError as exc:
        raise CatalogError([f"{path.name}: YAML error: {exc}"]) from None


def _resolve(path: str | Path | None) -> Path:
    if path is None:
        return bundled_catalog_path()
    p = Path(path).expanduser()
    if p.is_dir():
        inner = p / CATALOG_FILE
        if not inner.is_file():
            raise FileNotFoundError(f"metric catalog not found: {p} is a folder without {CATALOG_FILE}")
        return inner
    if not p.is_file():
        raise FileNotFoundError(f"metric catalog not found: {p}")
    return p


# --------------------------------------------------------------------------------------------
# step 3: the values, as a pandera schema over the raw entries


class _Missing:
    """Marks a field that an entry does not give (as opposed to a field given with no value)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


def _given(x: Any) -> bool:
    return x is not MISSING


def _is_text(x: Any) -> bool:
    return isinstance(x, str)


def _is_bool(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_))  # numpy's bool when the value comes out of a DataFrame


@dataclass(frozen=True)
class _Rule:
    field: str
    ok: Callable[[Any], bool]  # element-wise; MISSING values are only judged by the "missing" rule
    message: Callable[[Any], str]


def _text_rules(field: str, *, nonempty: bool) -> dict[str, _Rule]:
    rules = {
        f"{field}_missing": _Rule(field, _given, lambda v: "missing"),
        f"{field}_text": _Rule(field, lambda x: x is MISSING or _is_text(x) or (x is None and not nonempty),
                               lambda v: "is empty" if v is None else f"must be text, got {_kind(v)} ({_show(v)})"),
    }
    if nonempty:
        rules[f"{field}_empty"] = _Rule(field, lambda x: not _is_text(x) or x.strip() != "", lambda v: "is empty")
    return rules


def _choice_rule(field: str, choices: tuple[str, ...]) -> dict[str, _Rule]:
    def message(v: Any) -> str:
        if v is None:
            return f"is empty; expected one of {', '.join(choices)}"
        return f"{_show(v)} is not one of {', '.join(choices)}"

    return {
        f"{field}_missing": _Rule(field, _given, lambda v: "missing"),
        f"{field}_choice": _Rule(field, lambda x: x is MISSING or (_is_text(x) and x in choices), message),
    }


def _bool_message(v: Any) -> str:
    if v is None:
        return "is empty; write true or false"
    if _is_text(v):
        return f"{_show(v)} is text, not a boolean; write true or false, without quotes"
    return f"{_show(v)} is not a boolean; write true or false"


#: Element-wise value rules, keyed by the rule name pandera reports in ``failure_cases.check``.
RULES: dict[str, _Rule] = {
    **_text_rules("name", nonempty=True),
    "name_spaces": _Rule("name", lambda x: not _is_text(x) or x == x.strip(),
                         lambda v: f"{_show(v)} starts or ends with spaces"),
    **_text_rules("description", nonempty=True),
    **_choice_rule("owner", OWNERS),
    **_choice_rule("level", LEVELS),
    "countable_missing": _Rule("countable", _given, lambda v: "missing"),
    "countable_bool": _Rule("countable", lambda x: x is MISSING or _is_bool(x), _bool_message),
    **_text_rules("unit", nonempty=False),
    "function_text": _Rule("function", lambda x: x is MISSING or x is None or _is_text(x),
                           lambda v: f"must be text, got {_kind(v)} ({_show(v)})"),
    "label_text": _Rule("label", lambda x: x is MISSING or x is None or _is_text(x),
                        lambda v: f"must be text, got {_kind(v)} ({_show(v)})"),
}
_FIELD_ORDER = {f: i for i, f in enumerate(FIELDS)}


def _duplicate_names(names: pd.Series) -> pd.Series:
    """True where a name is unique so far (later copies of a name fail, the first one passes)."""
    text = names.where(names.map(_is_text), None)
    return ~(text.notna() & text.duplicated(keep="first"))


def _unit_for_countable(frame: pd.DataFrame) -> pd.Series:
    """A countable metric needs a unit (a metric that cannot be counted may leave it empty)."""
    countable = frame["countable"].map(lambda x: _is_bool(x) and bool(x))
    unit = frame["unit"]
    no_unit = unit.map(lambda x: x is None or (_is_text(x) and x.strip() == ""))
    return ~(countable & no_unit)


def _raw_schema() -> pa.DataFrameSchema:
    columns: dict[str, list[pa.Check]] = {f: [] for f in FIELDS}
    for key, rule in RULES.items():
        columns[rule.field].append(pa.Check(rule.ok, element_wise=True, ignore_na=False, name=key, error=key))
    columns["name"].append(pa.Check(_duplicate_names, ignore_na=False, name="name_duplicate", error="name_duplicate"))
    return pa.DataFrameSchema(
        {f: pa.Column(checks=checks, nullable=True) for f, checks in columns.items()},
        checks=[pa.Check(_unit_for_countable, ignore_na=False, name="unit_needed", error="unit_needed")],
        name="metric catalog (raw)")


#: The loaded catalog: what :func:`load_catalog` returns and what classification expects.
CATALOG_SCHEMA = pa.DataFrameSchema(
    {
        "name": pa.Column(str, pa.Check.str_length(min_value=1), unique=True),
        "description": pa.Column(str, pa.Check.str_length(min_value=1)),
        "owner": pa.Column(str, pa.Check.isin(OWNERS)),
        "level": pa.Column(str, pa.Check.isin(LEVELS)),
        "countable": pa.Column(bool),
        "unit": pa.Column(str),
        "function": pa.Column(object, nullable=True),
        "label": pa.Column(object, nullable=True),
    },
    strict=True, ordered=True, name="metric catalog")


# --------------------------------------------------------------------------------------------
# putting it together


@dataclass
class _Entry:
    number: int  # 1-based position in the list
    raw: Any
    line: int | None

    @property
    def label(self) -> str:
        name = self.raw.get("name") if isinstance(self.raw, dict) else None
        if _is_text(name) and name.strip():
            return f"entry {self.number} ({name.strip()})"
        return f"entry {self.number}"

    def line_of(self, field: str | None) -> str:
        lines = getattr(self.raw, "lines", {})
        line = lines.get(field, self.line) if field is not None else self.line
        return f" (line {line})" if line else ""


def _shape_problems(entry: _Entry, file: str) -> list[tuple[int, int, str]]:
    """Problems with the shape of one entry: (entry number, field order, message)."""
    raw = entry.raw
    if not isinstance(raw, dict):
        what = "is empty" if raw is None else f"is {_kind(raw)} ({_show(raw)})"
        return [(entry.number, -1, f"{file}: {entry.label}: {what}; expected a mapping with the fields "
                                   f"{', '.join(FIELDS)}{entry.line_of(None)}")]
    out = []
    for key, lines in getattr(raw, "repeated", {}).items():
        order = _FIELD_ORDER.get(key, len(FIELDS))
        out.append((entry.number, order, f"{file}: {entry.label}: field {key}: given "
                                         f"{len(lines)} times (lines {', '.join(map(str, lines))}); keep one"))
    for line in getattr(raw, "unhashable", []):
        out.append((entry.number, len(FIELDS), f"{file}: {entry.label}: a field name must be text (line {line})"))
    for key in raw:
        if key in _FIELD_ORDER:
            continue
        close = difflib.get_close_matches(str(key), FIELDS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        out.append((entry.number, len(FIELDS), f"{file}: {entry.label}: field {key}: not a catalog field{hint}; "
                                               f"the fields are {', '.join(FIELDS)}{entry.line_of(key)}"))
    return out


def _value_problems(entries: list[_Entry], file: str) -> list[tuple[int, int, str]]:
    frame = pd.DataFrame([{f: e.raw.get(f, MISSING) for f in FIELDS} for e in entries],
                         columns=list(FIELDS), dtype=object)
    try:
        _raw_schema().validate(frame, lazy=True)
        return []
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    first_of: dict[str, int] = {}
    for e in entries:
        name = e.raw.get("name")
        if _is_text(name):
            first_of.setdefault(name, e.number)
    out, seen = [], set()
    for row in cases.itertuples(index=False):
        rule, idx = str(row.check), row.index
        if idx is None or pd.isna(idx) or (rule, idx) in seen:
            continue
        seen.add((rule, idx))
        entry = entries[int(idx)]
        if rule == "name_duplicate":
            name = entry.raw["name"]
            field, text = "name", f"{_show(name)} is already the name of entry {first_of[name]}"
        elif rule == "unit_needed":
            field, text = "unit", "is empty; a countable metric needs a unit (e.g. 'leads per month')"
        elif rule in RULES:
            field = RULES[rule].field
            text = RULES[rule].message(entry.raw.get(field, MISSING))
        else:  # pandera's own checks (should not happen with nullable columns and no dtypes)
            field, text = str(row.column), f"failed {rule}"
        line = entry.line_of(None if text == "missing" else field)
        if text == "missing":
            text = f"missing; every entry needs {', '.join(REQUIRED_FIELDS)}"
        out.append((entry.number, _FIELD_ORDER.get(field, len(FIELDS)), f"{file}: {entry.label}: field {field}: {text}{line}"))
    return out


def _typed(entries: list[_Entry]) -> pd.DataFrame:
    rows = []
    for e in entries:
        function = e.raw.get("function")
        label = e.raw.get("label")
        rows.append({
            "name": e.raw["name"],
            "description": " ".join(e.raw["description"].split()),
            "owner": e.raw["owner"],
            "level": e.raw["level"],
            "countable": bool(e.raw["countable"]),
            "unit": (e.raw.get("unit") or "").strip(),
            "function": function.strip() if _is_text(function) and function.strip() else None,
            "label": " ".join(label.split()) if _is_text(label) and label.strip() else None,
        })
    frame = pd.DataFrame(rows, columns=list(FIELDS))
    frame["countable"] = frame["countable"].astype(bool)
    frame["function"] = frame["function"].astype(object)
    frame["label"] = frame["label"].astype(object)
    return CATALOG_SCHEMA.validate(frame)


def parse_catalog(data: Any, file: str = CATALOG_FILE) -> pd.DataFrame:
    """Check already-parsed YAML (a list of mappings) and return the catalog frame.

    ``file`` names the source in messages. Raises :class:`CatalogError` listing every problem.
    """
    if data is None:
        raise CatalogError([f"{file}: the file is empty; expected a list of metric definitions"])
    if not isinstance(data, list):
        raise CatalogError([f"{file}: the top level is {_kind(data)}; expected a list of metric definitions, "
                            "each item starting with '- name: ...'"])
    if not data:
        raise CatalogError([f"{file}: the list is empty; expected at least one metric definition"])
    lines = getattr(data, "lines", None) or [getattr(raw, "line", None) for raw in data]
    entries = [_Entry(i + 1, raw, line) for i, (raw, line) in enumerate(zip(data, lines))]
    problems: list[tuple[int, int, str]] = []
    for e in entries:
        problems += _shape_problems(e, file)
    mappings = [e for e in entries if isinstance(e.raw, dict)]
    if mappings:
        problems += _value_problems(mappings, file)
    if problems:
        problems.sort(key=lambda p: (p[0], p[1]))
        raise CatalogError([text for _, _, text in problems])
    return _typed(entries)


def load_catalog(path: str | Path | None = None) -> pd.DataFrame:
    """Read and check a metric catalog; one row per metric, columns :data:`FIELDS`.

    ``path`` is a ``metrics.yaml`` file, or a data folder containing one; ``None`` means the
    bundled catalog (:func:`bundled_catalog_path`). ``countable`` is a boolean column;
    ``function`` and ``label`` are ``None`` where an entry leaves them out. The file is only read.

    Raises :class:`FileNotFoundError` when there is no such file and :class:`CatalogError` (a
    ``ValueError``) listing every problem when the catalog is malformed.
    """
    p = _resolve(path)
    frame = parse_catalog(_read_yaml(p), p.name)
    frame.attrs["source"] = str(p)
    return frame


def catalog_labels(data_dir: str | Path | None = None) -> dict[str, str]:
    """``{name: label}`` of the catalog a study reads: the data folder's own ``metrics.yaml`` when it has one, else
    the bundled catalog. Entries without a ``label`` are left out; a catalog that cannot be read gives no labels
    (the study's metric classification reports its problems)."""
    own = Path(data_dir) / CATALOG_FILE if data_dir is not None else None
    try:
        frame = load_catalog(own if own is not None and own.is_file() else None)
    except (CatalogError, FileNotFoundError, OSError):
        return {}
    if "label" not in frame.columns:
        return {}
    return {str(n): str(l) for n, l in zip(frame["name"], frame["label"]) if isinstance(l, str) and l.strip()}
