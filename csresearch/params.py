"""Study parameters: the one place that says which keys a study takes, their types and defaults.

Parameter files (``params/*.yaml``) are read with ``yaml.safe_load``: values are data, never code. They are
validated *before* a notebook starts (papermill itself only warns about unknown parameters): an unknown key, a
value of the wrong type or a missing data folder is an error naming the file and the key.

Paths in a params file (:data:`PATH_KEYS`) are relative to the file's own folder, so a study runs the same from any
working directory; paths typed on the command line (``--data``, ``--set data_dir=...``) are relative to the working
directory.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ._yaml import safe_load
from .engine.backend import ENGINES


class ParamsError(ValueError):
    """Invalid study parameters; the message names the file and the keys."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # str, int, float, bool, date, int_list, float_list, str_list, mapping
    default: Any
    help: str
    nullable: bool = False


PARAMS: tuple[Param, ...] = (
    Param("study", "str", None, "study name: folder under the output folder (default: the params file's stem)", True),
    Param("data_dir", "str", "data/sample", "the data folder (data contract); in a params file relative to the file's folder, on the command line (--data, --set) to the working directory"),
    Param("segment", "str", None, "the segment to study; null studies all segments together, stratified by segment", True),
    Param("as_of", "date", None, "censoring date YYYY-MM-DD; null uses dataset.yaml's or the latest date in the data", True),
    Param("landmark_days", "int_list", [90, 180, 365], "landmarks (days of tenure) for the landmark analysis; the first one is the headline"),
    Param("landmark_window_days", "int", 365, "prediction window after each landmark: churn within this many days of it is counted, later follow-up is censored"),
    Param("attainment_threshold", "float", 1.0, "attainment at or above which a goal (or account) counts as attained, in (0, 1]"),
    Param("lag_days", "int", 0, "extra days by which attainment is lagged before it explains churn"),
    Param("covariates", "str_list", None, "adjustment covariates (account columns, or log_<column>); null = log_arr when ARR is present", True),
    Param("usage_metrics", "str_list", None, "usage metrics for the usage model; null = every metric in the usage table except the health score", True),
    Param("usage_baseline", "str", "active_users", "the core usage metric the data-driven metric classification compares with"),
    Param("spline_knots", "float_list", [0.25, 0.5, 0.75], "interior knots of the dose-response spline, strictly inside (0, 1)"),
    Param("churn_reductions", "float_list", [0.05, 0.10, 0.20], "relative churn reductions to size a study for"),
    Param("alpha", "float", 0.05, "significance level (two-sided) used for tests, CIs and sample sizes"),
    Param("margin_hr", "float", 0.9, "smallest effect worth claiming, as a hazard ratio below 1 (its inverse above): an interval inside 0.9-1.11 rules out any effect worth having"),
    Param("margin_c", "float", 0.01, "smallest gain in C-index worth claiming: an interval below it rules out a gain worth having"),
    Param("min_events_per_parameter", "int", 10, "data floor: churn events per model term below which an estimate is not estimable"),
    Param("min_group_accounts", "int", 20, "data floor: accounts each compared group (goals reached, no progress, an attainment level) needs"),
    Param("power", "float", 0.80, "power for the sample-size table"),
    Param("min_cell", "int", 10, "privacy: any group or cell with fewer accounts is suppressed in the report"),
    Param("health_score_metric", "str", None, "usage metric holding a vendor health score to audit (null: no audit)", True),
    Param("currency", "str", "$", "symbol or code written before ARR amounts in the report (the export's currency)"),
    Param("labels", "mapping", None, "human names for metrics, segments and covariates in the report (name: label), over the metric catalog's labels", True),
    Param("maturity", "mapping", None, "questionnaire: which measurement practices the team has (see csresearch.maturity)", True),
    Param("seed", "int", 2026, "random seed for resampling (bootstrap) so results reproduce"),
    Param("engine", "str", "duckdb", "where the account-month panel is built and the large-panel models are fitted: duckdb (embedded, the default) or spark (needs the csresearch[spark] extra)"),
    Param("spark_master", "str", None, "the Spark master when engine is spark (ignored otherwise): null = local[*] (this machine's cores), a master URL (spark://host:7077, yarn, k8s://...) or a Spark Connect URL (sc://host:15002)", True),
    Param("cox_max_rows", "int", 5_000_000, "largest account-month panel fitted with the Cox model; above it the time-varying model is the discrete-time cloglog GLM (same hazard ratio, lighter)"),
    Param("secondary_max_accounts", "int", 200_000, "the metric classification, Goodhart view, maturity ladder and health-score audit use a random sample of at most this many accounts (seed: seed); the headline models always use all accounts", True),
    Param("bootstrap", "int", 200, "bootstrap resamples of accounts for the maturity ladder's CIs (0: none)"),
    Param("output_dir", "str", ".", "where the notebook writes results.json and figures (set by csresearch study)"),
)
BY_NAME = {p.name: p for p in PARAMS}
#: parameters that are paths: in a params file they are relative to the file's folder
PATH_KEYS = ("data_dir", "output_dir")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def defaults() -> dict[str, Any]:
    """Every parameter with its default value."""
    return {p.name: (list(p.default) if isinstance(p.default, list) else p.default) for p in PARAMS}


def _check(param: Param, value: Any) -> tuple[Any, str | None]:
    """Return (normalised value, problem or None)."""
    if value is None:
        return None, None if param.nullable or param.default is None else "must not be null"
    kind = param.kind
    if kind == "str":
        return (value, None) if isinstance(value, str) and value.strip() else (value, "must be a non-empty text")
    if kind == "bool":
        return (value, None) if isinstance(value, bool) else (value, "must be true or false")
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return (value, None) if ok else (value, f"must be a whole number, not {value!r}")
    if kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return (float(value), None) if ok else (value, f"must be a number, not {value!r}")
    if kind == "date":
        text = value.isoformat() if hasattr(value, "isoformat") else value
        if isinstance(text, str) and DATE.match(text):
            try:
                import datetime as _dt

                _dt.date.fromisoformat(text)
                return text, None
            except ValueError:
                pass
        return value, f"must be a date YYYY-MM-DD, not {value!r}"
    if kind.endswith("_list"):
        item = kind[:-5]
        if not isinstance(value, list) or not value:
            return value, f"must be a non-empty list of {item}s, not {value!r}"
        out = []
        for v in value:
            norm, problem = _check(Param(param.name, item, None, ""), v)
            if problem:
                return value, f"every item {problem} (item {v!r})"
            out.append(norm)
        return out, None
    if kind == "mapping":
        return (value, None) if isinstance(value, dict) else (value, "must be a mapping (key: value lines)")
    raise AssertionError(kind)


def validate(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Check keys and types of ``values`` (from ``source``, for messages); return them normalised, defaults filled."""
    problems = []
    out = defaults()
    for key, value in values.items():
        param = BY_NAME.get(key)
        if param is None:
            close = suggest(key)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            problems.append(f"{source}: unknown parameter {key!r}{hint}")
            continue
        norm, problem = _check(param, value)
        if problem:
            problems.append(f"{source}: parameter {key}: {problem}")
        else:
            out[key] = norm
    if not problems:
        problems += _check_ranges(out, source)
    if problems:
        raise ParamsError("\n".join(problems))
    return out


def suggest(key: Any, n: int = 3) -> list[str]:
    """The valid parameter names nearest to an unknown ``key``, nearest first: those about as close as the closest
    (difflib ratio at least 0.6 and within 0.1 of the best), else those the key begins (``health``)."""
    text = str(key).strip().lower()
    scores = sorted(((difflib.SequenceMatcher(None, text, name).ratio(), name) for name in BY_NAME), reverse=True)
    close = [name for score, name in scores if score >= max(0.6, scores[0][0] - 0.1)]
    if not close and len(text) >= 4:
        close = [name for name in BY_NAME if name.startswith(text)]
    return close[:n]


def _check_ranges(p: dict[str, Any], source: str) -> list[str]:
    problems = []
    if not 0 < p["attainment_threshold"] <= 1:
        problems.append(f"{source}: parameter attainment_threshold: must be in (0, 1], not {p['attainment_threshold']}")
    if p["lag_days"] < 0:
        problems.append(f"{source}: parameter lag_days: must be 0 or more, not {p['lag_days']}")
    if not 0 < p["margin_hr"] < 1:
        problems.append(f"{source}: parameter margin_hr: must be a hazard ratio in (0, 1), not {p['margin_hr']}")
    if not 0 <= p["margin_c"] < 0.5:
        problems.append(f"{source}: parameter margin_c: must be in [0, 0.5), not {p['margin_c']}")
    for key in ("min_events_per_parameter", "min_group_accounts", "landmark_window_days"):
        if p[key] < 1:
            problems.append(f"{source}: parameter {key}: must be at least 1, not {p[key]}")
    if any(d <= 0 for d in p["landmark_days"]):
        problems.append(f"{source}: parameter landmark_days: every landmark must be a positive number of days")
    knots = p["spline_knots"]
    if any(not 0 < k < 1 for k in knots) or sorted(set(knots)) != knots:
        problems.append(f"{source}: parameter spline_knots: must be increasing and strictly inside (0, 1)")
    if any(not 0 < r < 1 for r in p["churn_reductions"]):
        problems.append(f"{source}: parameter churn_reductions: every reduction must be in (0, 1)")
    if not 0 < p["alpha"] < 0.5:
        problems.append(f"{source}: parameter alpha: must be in (0, 0.5), not {p['alpha']}")
    if not 0.5 <= p["power"] < 1:
        problems.append(f"{source}: parameter power: must be in [0.5, 1), not {p['power']}")
    if p["engine"] not in ENGINES:
        problems.append(f"{source}: parameter engine: must be one of {', '.join(ENGINES)}, not {p['engine']!r}")
    if p["cox_max_rows"] < 0:
        problems.append(f"{source}: parameter cox_max_rows: must be 0 or more (0: the discrete-time model always)")
    if p["min_cell"] < 1:
        problems.append(f"{source}: parameter min_cell: must be at least 1")
    if p["study"] is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", p["study"]):
        problems.append(f"{source}: parameter study: use letters, digits, '.', '_' and '-' only (it names a folder)")
    return problems


def read(path: str | Path) -> dict[str, Any]:
    """Read and validate a params YAML file (safe loader). The study name defaults to the file's stem.

    Relative paths (:data:`PATH_KEYS`) are resolved from the file's folder (see :func:`read_values`).
    """
    path = Path(path)
    values = read_values(path)
    values.setdefault("study", path.stem)
    return validate(values, str(path))


def read_values(path: str | Path) -> dict[str, Any]:
    """Only the keys a params file sets, checked (errors name the file), with its relative paths made absolute
    from the file's folder. An empty file (or one of comments only) is an error: it is almost always a mistake."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such params file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{path}: cannot be read ({exc})") from None
    try:
        values = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if values is None:
        raise ParamsError(f"{path}: the params file is empty (nothing but blank lines or comments); "
                          "give at least one parameter: value line")
    if not isinstance(values, dict):
        raise ParamsError(f"{path}: must be a mapping of parameter: value lines, not a {type(values).__name__}")
    values = dict(values)
    validate({"study": path.stem, **values}, str(path))  # types first: a path must be a text before it is joined
    folder = path.resolve().parent
    for key in PATH_KEYS:
        if isinstance(values.get(key), str):
            values[key] = str((folder / Path(values[key]).expanduser()).resolve())
    return values


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from ``--set``; the value is read as YAML (``lag_days=30``, ``covariates=[log_arr]``, ``segment=null``)."""
    if "=" not in text:
        raise ParamsError(f"--set {text!r}: expected KEY=VALUE")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if BY_NAME.get(key) is not None and BY_NAME[key].kind in ("str", "date") and value is not None and not isinstance(value, str):
        value = raw.strip()  # e.g. segment=2024 stays text; as_of=2024-01-31 stays a date string
    return key, value


def check_data_dir(p: dict[str, Any], source: str, base: Path | None = None) -> Path:
    """The study's data folder, resolved; a missing folder is an error naming the params source."""
    path = Path(p["data_dir"])
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_dir():
        raise ParamsError(f"{source}: parameter data_dir: no such folder {p['data_dir']!r}")
    return path.resolve()


def from_namespace(namespace: dict[str, Any], source: str = "notebook parameters") -> dict[str, Any]:
    """Collect and validate the study parameters defined in a namespace (a notebook's ``globals()``)."""
    return validate({k: namespace[k] for k in BY_NAME if k in namespace}, source)
