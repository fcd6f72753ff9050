"""Problems, the validation report and its text rendering."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._spec import CONTRACT_DOC, TABLES

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Problem:
    """One finding. ``message`` is the full line the report prints (without "warning: ")."""

    table: str | None
    file: str | None
    column: str | None
    rule: str
    message: str
    #: every offending CSV line number (header = line 1) or 1-based Parquet row number
    rows: tuple[int, ...] = ()

    def __str__(self) -> str:
        return self.message


@dataclass
class ValidationReport:
    path: Path
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    #: rows per table, as_of (+ source), observed_from, segments (when valid), files not read
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def problem_lines(self) -> list[str]:
        """Errors as they are, then warnings prefixed with "warning: "."""
        return [p.message for p in self.errors] + [f"warning: {p.message}" for p in self.warnings]

    def render_problems(self) -> str:
        return "\n".join(self.problem_lines())

    def render(self) -> str:
        """What ``csresearch validate`` prints: every problem, then a summary or INVALID line."""
        lines = self.problem_lines()
        n_err, n_warn = len(self.errors), len(self.warnings)
        if self.ok:
            s = self.summary
            width = len("observed_from")
            for table, n in s.get("rows", {}).items():
                lines.append(f"{table:<{width}}  {_count(n, 'row')} ({s['files'][table]})")
            for name in s.get("not_read", []):
                lines.append(f"{'':<{width}}  {name}: present, not read by validate "
                             "(the usage table wins; events are aggregated only when there is none)")
            src = s.get("as_of_source")
            lines.append(f"{'as_of':<{width}}  {s.get('as_of')}" + (f" ({src})" if src else ""))
            obs = s.get("observed_from")
            obs_src = s.get("observed_from_source")
            lines.append(f"{'observed_from':<{width}}  "
                         + (obs + (f" ({obs_src})" if obs_src and obs_src != "from dataset.yaml" else "")
                            if obs else "none (every account observed from its start date)"))
            if s.get("label_horizon_days"):
                lines.append(f"{'label horizon':<{width}}  {s['label_horizon_days']} days, {s['label_from']}.."
                             f"{s.get('as_of')}: churn is a label (an end_date = churned within the horizon)")
            if s.get("churn"):
                lines.append(f"{'churn':<{width}}  {s['churn']}")
            segs = s.get("segments") or {}
            lines.append(f"{'segments':<{width}}  "
                         + ", ".join(f"{k} {v:,}" for k, v in segs.items()))
            lines.append(f"OK: {self.path} meets the data contract ({_count(n_warn, 'warning')}; "
                         f"the rules: {CONTRACT_DOC})")
        else:
            lines.append(self.rules_line())
            lines.append(f"INVALID: {self.path}: {_count(n_err, 'error')}, {_count(n_warn, 'warning')}")
        return "\n".join(lines)


    def rules_line(self) -> str:
        """``the rules: docs/data-contract.md#accounts, #usage``: the sections of the contract the errors break."""
        sections: list[str] = []
        for p in self.errors:
            named = re.findall(r"data-contract\.md#([\w-]+)", p.message)
            if named:
                found = named
            elif p.table in TABLES:
                found = [p.table]
            elif p.table == "events":
                found = ["events"]
            elif p.file == "dataset.yaml" or p.column == "as_of":
                found = ["folder-settings"]
            else:
                found = ["validation"]
            sections += [f for f in found if f not in sections]
        return f"the rules: {CONTRACT_DOC}" + ("#" + ", #".join(sections) if sections else "")


class DataValidationError(ValueError):
    """Raised by :func:`load` when the folder breaks the data contract; ``str()`` lists the problems."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(report.render_problems() or "invalid data folder")


# -- formatting helpers --------------------------------------------------------------------------

def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def quote(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return json.dumps(text, ensure_ascii=False)


def capped(items: list[str], total: int | None = None) -> str:
    """``a, b, c, d, e and 7 more``."""
    total = len(items) if total is None else total
    shown = items[:MAX_EXAMPLES]
    text = ", ".join(shown)
    if total > len(shown):
        text += f" and {total - len(shown):,} more"
    return text


def locations_text(word: str, numbers: list[int]) -> str:
    """``line 7`` / ``lines 7, 9`` / ``row 3``; at most MAX_EXAMPLES shown."""
    plural = word + ("s" if len(numbers) != 1 else "")
    return f"{plural} {capped([str(n) for n in numbers])}"


def table_order(p: Problem) -> int:
    names = list(TABLES)
    return names.index(p.table) if p.table in names else -1
