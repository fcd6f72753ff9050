"""Verdict rules, in one place: from an estimate, its interval at the study's alpha and the data behind it, what a
report may say.

Every claim a report, its executive summary or the index prints is the ``claim`` of a :class:`Finding`, and every
claim is chosen by its verdict:

* ``supported`` — the interval excludes no effect, on the side the claim states;
* ``not_supported`` — the interval excludes no effect, on the other side (the data points the opposite way);
* ``inconclusive`` — the interval includes no effect: the data cannot tell;
* ``not_estimable`` — there is no estimate (too little data, no goals, a separated fit): the reason says why.

An analysis states its claim three ways (what it says when supported, when the data points the other way, and
what question it cannot answer) and :func:`judge` picks one; analyses never print a verdict's sentence unchecked.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

VERDICTS = ("supported", "not_supported", "inconclusive", "not_estimable")


@dataclass
class Finding:
    """One claim a study makes, with its verdict and the evidence behind it (a results.json ``findings`` entry)."""

    id: str
    verdict: str
    claim: str
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    method: str = ""
    reason: str | None = None
    #: a short bold lead for the executive summary ("Outcomes predict retention.")
    headline: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(*values: float | None) -> bool:
    return all(v is not None and isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def interval_verdict(ci_low: float | None, ci_high: float | None, *, null: float, direction: str) -> str:
    """``supported`` / ``not_supported`` / ``inconclusive`` from where the interval lies against ``null``.

    ``direction`` is the side the claim states: ``"below"`` (e.g. a hazard ratio under 1: less churn) or
    ``"above"`` (e.g. a gain in C-index over 0). Missing or non-finite limits give ``not_estimable``.
    """
    if direction not in ("below", "above"):
        raise ValueError(f"direction must be 'below' or 'above', not {direction!r}")
    if not _finite(ci_low, ci_high):
        return "not_estimable"
    if ci_high < null:
        return "supported" if direction == "below" else "not_supported"
    if ci_low > null:
        return "supported" if direction == "above" else "not_supported"
    return "inconclusive"


@dataclass(frozen=True)
class Claim:
    """How a finding reads for each verdict. Each text is a format string over the finding's fields and ``ci``
    (the interval in words, e.g. "95% CI 0.12 to 0.34"); ``cannot_tell`` is also used for ``not_estimable``
    with ``{reason}``."""

    id: str
    supported: tuple[str, str]      # (headline, sentence)
    not_supported: tuple[str, str]
    cannot_tell: tuple[str, str]    # inconclusive: "the data cannot tell ..."
    not_estimable: tuple[str, str]


def judge(claim: Claim, *, estimate: float | None, ci_low: float | None, ci_high: float | None, null: float,
          direction: str, level: float, method: str, reason: str | None = None,
          describe: Callable[[float, float, float], dict] | None = None, verdict: str | None = None) -> Finding:
    """The finding for ``claim`` from its evidence: the verdict by :func:`interval_verdict` (or ``verdict`` when
    an analysis decides on other evidence, e.g. a test), the sentence of that verdict filled with the numbers.

    ``describe(estimate, ci_low, ci_high)`` may return extra fields for the sentences (rounded words, say).
    """
    if reason is not None or not _finite(estimate):
        verdict = "not_estimable"
    elif verdict is None:
        verdict = interval_verdict(ci_low, ci_high, null=null, direction=direction)
    fields: dict[str, Any] = {"estimate": estimate, "ci_low": ci_low, "ci_high": ci_high, "reason": reason or "",
                              "ci": ci_text(ci_low, ci_high, level)}
    if verdict != "not_estimable" and describe is not None:
        fields.update(describe(estimate, ci_low, ci_high))
    headline, sentence = {"supported": claim.supported, "not_supported": claim.not_supported,
                          "inconclusive": claim.cannot_tell, "not_estimable": claim.not_estimable}[verdict]
    return Finding(id=claim.id, verdict=verdict, claim=sentence.format(**fields), headline=headline.format(**fields),
                   estimate=estimate if verdict != "not_estimable" else None,
                   ci_low=ci_low if verdict != "not_estimable" else None,
                   ci_high=ci_high if verdict != "not_estimable" else None, method=method, reason=reason)


def not_estimable(claim: Claim, reason: str, method: str = "") -> Finding:
    """The finding of a claim that could not be estimated at all (no goals, too few accounts, an error)."""
    return judge(claim, estimate=None, ci_low=None, ci_high=None, null=0.0, direction="below", level=0.95,
                 method=method, reason=reason)


def ci_text(ci_low: float | None, ci_high: float | None, level: float, digits: int = 2) -> str:
    """"95% CI 0.12 to 0.34", with enough digits to tell the ends apart; "no interval" when there is none."""
    if not _finite(ci_low, ci_high):
        return "no interval available"
    # a large book gives intervals narrower than the usual two decimals: show enough digits to tell the ends apart
    while digits < 4 and f"{ci_low:.{digits}f}" == f"{ci_high:.{digits}f}":
        digits += 1
    return f"{level_text(level)} CI {ci_low:.{digits}f} to {ci_high:.{digits}f}"


def level_text(level: float) -> str:
    """A confidence level in words: 0.95 -> "95%", 0.9 -> "90%", 0.975 -> "97.5%"."""
    pct = level * 100
    return f"{pct:.0f}%" if abs(pct - round(pct)) < 1e-9 else f"{pct:.1f}%"


def p_text(p: float | None) -> str:
    """A p-value for a sentence that reads "p {p_text(x)}": "= 0.012", "< 0.001"."""
    if p is None:
        return "not available"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"
