"""Plain-text and JSON views of classified metrics (used by ``csresearch classify``)."""
from __future__ import annotations

import json
import textwrap
from typing import Any

import pandas as pd

from .catalog import FIELDS
from .definition import VERDICTS

#: (header, source column) of the text table; the rationale comes last and is wrapped.
_COLUMNS = (("metric", "name"), ("function", "function"), ("owner", "owner"), ("level", "level"), ("countable", "countable"),
            ("verdict", "verdict"))
_GAP = "  "
MIN_RATIONALE_WIDTH = 48


def _cell(column: str, value: Any) -> str:
    if column == "countable":
        return "yes" if value else "no"
    if column == "function":
        return value if isinstance(value, str) and value else "-"
    return "" if value is None else str(value)


def sort_by_verdict(classified: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped in the order of :data:`VERDICTS`, catalog order within a group."""
    order = classified["verdict"].map({v: i for i, v in enumerate(VERDICTS)})
    return classified.assign(_order=order).sort_values("_order", kind="stable").drop(columns="_order")


def verdict_counts(classified: pd.DataFrame) -> dict[str, int]:
    """Number of metrics per verdict, every verdict present (0 when none)."""
    counts = classified["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


def summary_line(classified: pd.DataFrame) -> str:
    counts = verdict_counts(classified)
    n = len(classified)
    return f"{n} metric{'s' if n != 1 else ''}: " + ", ".join(f"{c} {v}" for v, c in counts.items())


def render_table(classified: pd.DataFrame, width: int = 120) -> str:
    """An aligned text table grouped by verdict, with the rationale wrapped, and the counts at the end.

    The rationale is a last column when at least :data:`MIN_RATIONALE_WIDTH` characters are left of
    ``width``; otherwise it goes on its own indented lines under each row.
    """
    rows = sort_by_verdict(classified)
    cells = [[_cell(src, getattr(r, src)) for _, src in _COLUMNS] for r in rows.itertuples(index=False)]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _) in enumerate(_COLUMNS)]
    prefix = sum(widths) + len(_GAP) * len(widths)
    inline = width - prefix >= MIN_RATIONALE_WIDTH

    def line(values: list[str]) -> str:
        return _GAP.join(v.ljust(w) for v, w in zip(values, widths))

    headers = [h for h, _ in _COLUMNS]
    out = [(line(headers) + (_GAP + "rationale" if inline else "")).rstrip()]
    out.append((line(["-" * w for w in widths]) + (_GAP + "-" * 9 if inline else "")).rstrip())
    previous = None
    for values, rationale, verdict in zip(cells, rows["rationale"], rows["verdict"]):
        if previous is not None and verdict != previous:
            out.append("")
        previous = verdict
        if inline:
            wrapped = textwrap.wrap(rationale, width - prefix) or [""]
            out.append(line(values) + _GAP + wrapped[0])
            out.extend(" " * prefix + more for more in wrapped[1:])
        else:
            out.append(line(values).rstrip())
            out.extend(textwrap.wrap(rationale, max(width, 40), initial_indent="    ", subsequent_indent="    "))
    out.append("")
    out.append(summary_line(classified))
    return "\n".join(out)


def to_records(classified: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON-ready dict per metric: ``metric`` (the name), the other definition fields,
    ``verdict``, ``rule`` and ``rationale``; catalog order."""
    records = []
    for r in classified.to_dict("records"):
        rec: dict[str, Any] = {"metric": r["name"]}
        rec.update({f: r[f] for f in FIELDS if f != "name"})
        rec["countable"] = bool(rec["countable"])
        rec.update(verdict=r["verdict"], rule=r["rule"], rationale=r["rationale"])
        records.append(rec)
    return records


def render_json(classified: pd.DataFrame) -> str:
    return json.dumps(to_records(classified), indent=2, ensure_ascii=False)
