"""Tables for people: :func:`readable` turns any tidy frame into the frame a report shows.

Every table a reader sees goes through one rule, so the same kind of number looks the same everywhere:

* **names**: every column label and every text row label goes through ``names`` (normally ``ctx.names``, a
  :class:`csresearch.names.Names`: the study's ``labels:`` map, then the metric catalog's ``label``, then the
  identifier made readable, ``mid_market`` -> "Mid market"). With ``names=None``, :func:`csresearch.names.readable`.
* **counts**: a column of whole numbers (an integer dtype, or floats that are all whole, as counts become when a
  suppressed cell is blank) is shown as integers with thousands separators: ``52726`` -> "52,726". Columns named
  like a year, seed, ID, code or version keep their digits plain ("2024", not "2,024").
* **shares**: a float column whose name says it is a share (the word rate, share, proportion, pct or percent, or
  a ``%`` sign) and whose values all lie between -1 and 1 is shown as a percentage with one decimal: ``0.093`` ->
  "9.3%". ``percent=`` names more such columns.
* **other numbers** (ratios, indices, q-values): enough decimals for three significant digits of the column's
  largest absolute value, between 0 and 3: a column of values below 1 gets 3 decimals (C-index "0.421"), below 10
  gets 2 (hazard ratio "1.03"), below 100 gets 1, larger values none ("1,250"). ``digits=`` overrides it, for all
  float columns (an int) or per column (a mapping from the column's label, before renaming, to decimals).
* **no negative zero**: a value that rounds to zero is shown without a sign ("-0.000" -> "0.000").
* **missing values** (``NaN``, ``None``, ``pd.NA``, ``NaT``, and the texts "nan", "NaN", "None", "<NA>", "NaT",
  "—") are shown as an en dash "–".
* booleans are "yes" / "no"; dates are ISO days ("2024-12-31"), with the time only when it is not midnight.
* **no index-name row**: pandas prints a named index's name on a header line of its own. A named row index keeps
  its labels, and its name moves to the top-left header cell (``columns.name``, which pandas draws on the same
  line as the column labels); a row MultiIndex becomes leading columns, the first of which is the row label.
  An unnamed index (a plain RangeIndex included) is left as it is.

Text cells that are not missing are left as they are (an analysis that wants its values renamed, a segment or a
metric in a column, passes them through ``names`` itself), so the function is idempotent: a frame it made, or a
frame of already formatted text, comes back unchanged. The input frame is never modified.
"""
from __future__ import annotations

import datetime as _dt
import math
import numbers
import re
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from .names import readable as _readable_name

#: the names a table uses when it is given none: identifiers made readable (``mid_market`` -> "Mid market")
default_names = _readable_name
#: what every missing value is shown as
MISSING = "–"
#: texts taken for a missing value (pandas' and Python's spellings of it, and the em dash some tables used)
MISSING_TEXTS = frozenset({"nan", "NaN", "NAN", "None", "none", "<NA>", "NaT", "—", MISSING})
#: at most this many decimals by the automatic rule
MAX_DIGITS = 3
#: decimals of a percentage
PERCENT_DIGITS = 1

_SHARE = re.compile(r"(^|[^a-z])(rate|rates|share|shares|proportion|pct|percent|percentage)([^a-z]|$)|%", re.I)
_PLAIN = re.compile(r"(^|[^a-z])(year|seed|id|code|version)$", re.I)
_NEG_ZERO = re.compile(r"^-(0(?:[.,]0+)?)(%?)$")


def is_missing(x: Any) -> bool:
    """True for a value a table shows as :data:`MISSING`."""
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    if isinstance(x, str):
        return x.strip() in MISSING_TEXTS
    if isinstance(x, (float, np.floating)):
        return math.isnan(x)
    if isinstance(x, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(x))
    return False


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _no_negative_zero(text: str) -> str:
    m = _NEG_ZERO.match(text)
    return m.group(1) + m.group(2) if m else text


def number(x: Any, digits: int = 2, *, percent: bool = False, plain: bool = False) -> str:
    """One number as text: ``digits`` decimals, thousands separators (unless ``plain``), no negative zero, and
    :data:`MISSING` for a missing value. ``percent`` shows a share ×100 with a ``%`` sign."""
    if is_missing(x):
        return MISSING
    v = float(x) * (100 if percent else 1)
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    text = f"{v:.{digits}f}" if plain else f"{v:,.{digits}f}"
    return _no_negative_zero(text) + ("%" if percent else "")


def percent(x: Any, digits: int = PERCENT_DIGITS) -> str:
    """A share as a percentage: ``0.093`` -> "9.3%"; missing -> "–"."""
    return number(x, digits, percent=True)


def count(x: Any) -> str:
    """A count with thousands separators: ``52726`` -> "52,726"; missing -> "–"."""
    return number(x, 0)


def interval(low: Any, high: Any, digits: int = 2, *, as_percent: bool = False) -> str:
    """An interval as text: "0.66 to 1.09" (or "6.3% to 12.2%"); "–" when either end is missing."""
    if is_missing(low) or is_missing(high):
        return MISSING
    return f"{number(low, digits, percent=as_percent)} to {number(high, digits, percent=as_percent)}"


def q_value(x: Any, digits: int = 3) -> str:
    """A p- or q-value: 3 decimals, "< 0.001" below that; missing -> "–"."""
    if is_missing(x):
        return MISSING
    floor = 10.0 ** -digits
    return f"< {floor:.{digits}f}" if 0 <= float(x) < floor else number(x, digits)


def auto_digits(values: Iterable[float]) -> int:
    """Decimals for three significant digits of the largest absolute value, between 0 and :data:`MAX_DIGITS`."""
    finite = [abs(float(v)) for v in values if _is_number(v) and math.isfinite(float(v))]
    top = max(finite, default=0.0)
    if top == 0:
        return MAX_DIGITS
    return int(min(MAX_DIGITS, max(0, 3 - (math.floor(math.log10(top)) + 1))))


def _is_whole(values: list[float]) -> bool:
    return all(float(v).is_integer() for v in values if math.isfinite(float(v)))


def _format_values(values: list[Any], label: Any, *, is_int_dtype: bool, digits: int | None,
                   as_percent: bool) -> list[str]:
    """Format one column's (or the index's) values by the rule of the module docstring."""
    nums = [v for v in values if _is_number(v) and not is_missing(v)]
    name = " ".join(map(str, label)) if isinstance(label, tuple) else str(label)
    plain = bool(_PLAIN.search(name))
    kind, dec = "text", 0
    if nums:
        finite = [float(v) for v in nums if math.isfinite(float(v))]
        if is_int_dtype or (digits is None and not as_percent and all(isinstance(v, numbers.Integral) for v in nums)):
            kind = "int"
        elif (as_percent or _SHARE.search(name)) and all(-1 <= v <= 1 for v in finite):
            kind, dec = "percent", PERCENT_DIGITS if digits is None else digits
        elif digits is None and finite and _is_whole(finite):
            kind = "int"
        else:
            kind, dec = "float", auto_digits(finite) if digits is None else digits
    out = []
    for v in values:
        if is_missing(v):
            out.append(MISSING)
        elif isinstance(v, (bool, np.bool_)):
            out.append("yes" if v else "no")
        elif _is_number(v):
            if kind == "int":
                out.append(number(v, 0, plain=plain))
            else:
                out.append(number(v, dec, percent=kind == "percent", plain=plain))
        elif isinstance(v, (pd.Timestamp, _dt.datetime)):
            ts = pd.Timestamp(v)
            out.append(ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M"))
        elif isinstance(v, _dt.date):
            out.append(v.isoformat())
        elif isinstance(v, str):
            out.append(_no_negative_zero(v))
        else:
            out.append(str(v))
    return out


def _name(names: Callable[[Any], str], label: Any) -> Any:
    if isinstance(label, tuple):
        return tuple(_name(names, x) for x in label)
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return ""
    if _is_number(label):
        return number(label, 0 if float(label).is_integer() else auto_digits([label]))
    return names(label) if isinstance(label, str) else str(label)


def _digits_for(digits: int | Mapping[Any, int] | None, label: Any) -> int | None:
    if digits is None or isinstance(digits, int):
        return digits
    return digits.get(label)


def readable(frame: pd.DataFrame, names: Callable[[Any], str] | None = None, *,
             digits: int | Mapping[Any, int] | None = None, percent: Iterable[Any] = ()) -> pd.DataFrame:
    """``frame`` as a table for people (see the module docstring for the rule): every cell text, every label
    through ``names``, missing values "–", no index-name row. Idempotent; ``frame`` is not modified.

    ``digits``: decimals of the float columns (an int for all, or ``{column: decimals}`` by the column's label
    before renaming; the others by the automatic rule). ``percent``: more columns to show as percentages.
    """
    names = names or default_names
    shares = set(percent)
    t = frame.copy()
    if isinstance(t.index, pd.MultiIndex):
        t = t.reset_index()
        t = t.set_index(t.columns[0])
    index_name = t.index.name
    columns_name = t.columns.name if not isinstance(t.columns, pd.MultiIndex) else None
    out = pd.DataFrame(index=range(len(t)))
    for i, label in enumerate(t.columns):
        col = t.iloc[:, i]
        out[i] = _format_values(list(col.astype(object)), label,
                                is_int_dtype=pd.api.types.is_integer_dtype(col.dtype)
                                and not pd.api.types.is_bool_dtype(col.dtype),
                                digits=_digits_for(digits, label), as_percent=label in shares)
    if isinstance(t.columns, pd.MultiIndex):
        out.columns = pd.MultiIndex.from_tuples([_name(names, c) for c in t.columns])
    else:
        out.columns = [_name(names, c) for c in t.columns]
    if isinstance(t.index, pd.RangeIndex) and index_name is None:
        out.index = t.index
    else:
        idx = _format_values(list(t.index.astype(object)), index_name or "",
                             is_int_dtype=pd.api.types.is_integer_dtype(t.index.dtype), digits=None,
                             as_percent=False)
        idx = [names(v) if isinstance(v, str) and v != MISSING and not _is_number_text(v) else v for v in idx]
        out.index = pd.Index(idx, dtype=object)
    header = index_name if index_name is not None else columns_name
    top = "" if header is None else str(_name(names, header))
    if isinstance(out.columns, pd.MultiIndex):
        out.columns.names = [None] * (out.columns.nlevels - 1) + [top or None]
    else:
        out.columns.name = top or None
    out.index.name = None
    return out


def _is_number_text(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,]+(\.\d+)?%?", text))
