"""Verdict rules, in one place: from an estimate, its interval at the study's alpha and the data behind it, what a
report may say.

Every claim a report, its executive summary or the index prints is the ``claim`` of a :class:`Finding`, and every
claim is chosen by its verdict:

* ``supported`` — the interval excludes no effect, on the side the claim states, and reaches beyond the margin;
* ``not_supported`` — the interval excludes every effect larger than the margin (a params key: ``margin_hr`` for
  hazard ratios, ``margin_c`` for C-index differences), or points the other way: the data rules the claim out;
* ``inconclusive`` — otherwise: the data cannot tell;
* ``not_estimable`` — there is no estimate, or it is below the data floors (:class:`Floors`: events per parameter,
  accounts that churned, accounts in each compared group, an unstable robust standard error): the reason says why.

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


def interval_verdict(ci_low: float | None, ci_high: float | None, *, null: float, direction: str,
                     margin: float | None = None) -> str:
    """``supported`` / ``not_supported`` / ``inconclusive`` from where the interval lies against ``null`` and the
    ``margin`` (the smallest effect worth claiming, on the claim's side: e.g. HR 0.9 for "less churn", ΔC 0.01
    for "ranks better"; None: no margin, only the null counts).

    ``direction`` is the side the claim states: ``"below"`` (a hazard ratio under 1) or ``"above"`` (a gain over
    0). Supported: the interval excludes the null on that side and is not wholly inside the margin. Not supported:
    the interval excludes every effect beyond the margin (it may still exclude the null: a real but negligible
    effect is no claim), or lies wholly on the other side. Missing or non-finite limits give ``not_estimable``.
    """
    if direction not in ("below", "above"):
        raise ValueError(f"direction must be 'below' or 'above', not {direction!r}")
    if not _finite(ci_low, ci_high):
        return "not_estimable"
    m = null if margin is None else margin
    if direction == "below":
        if ci_high < null and ci_low < m:
            return "supported"
        return "not_supported" if ci_low >= m else "inconclusive"
    if ci_low > null and ci_high > m:
        return "supported"
    return "not_supported" if ci_high <= m else "inconclusive"


def steady_verdict(ci_low: float | None, ci_high: float | None, *, null: float, margin: tuple[float, float]) -> str:
    """For a claim of *no change* (e.g. the effect holds steady over tenure): ``supported`` when the interval lies
    inside ``margin``, ``not_supported`` when it excludes the null, ``inconclusive`` otherwise."""
    if not _finite(ci_low, ci_high):
        return "not_estimable"
    if margin[0] <= ci_low and ci_high <= margin[1]:
        return "supported"
    if ci_low > null or ci_high < null:
        return "not_supported"
    return "inconclusive"


@dataclass(frozen=True)
class Floors:
    """The data below which an estimate is not shown as a finding (params keys of the same names)."""

    #: churn events per model parameter (the rule of thumb for a stable proportional-hazards fit)
    min_events_per_parameter: int = 10
    #: accounts in each group a claim compares (e.g. with goals reached, and with no progress)
    min_group_accounts: int = 20
    #: a cluster-robust SE below this share of the model-based SE means too few clusters to trust it
    min_se_ratio: float = 0.5

    @classmethod
    def from_params(cls, p: dict) -> "Floors":
        return cls(min_events_per_parameter=int(p.get("min_events_per_parameter", cls.min_events_per_parameter)),
                   min_group_accounts=int(p.get("min_group_accounts", cls.min_group_accounts)))

    def reason(self, *, events: int | None, parameters: int, groups: dict[str, int] | None = None,
               se: float | None = None, se_naive: float | None = None) -> str | None:
        """Why an estimate is below the floors, in plain words; None when it is not."""
        if events is None:
            return "there is no estimate"
        need = self.min_events_per_parameter * max(parameters, 1)
        if events < need:
            return (f"only {events:,} churn events for {parameters} model term{'s' if parameters != 1 else ''}; at least "
                    f"{need:,} ({self.min_events_per_parameter} per term) are needed for a stable estimate")
        for name, n in (groups or {}).items():
            if n < self.min_group_accounts:
                return (f"only {n:,} accounts {name}; at least {self.min_group_accounts} are needed to compare "
                        "that group")
        if _finite(se, se_naive) and se_naive > 0 and se / se_naive < self.min_se_ratio:
            return (f"the account-clustered standard error is {se / se_naive:.0%} of the model-based one, a sign of too "
                    "few churned accounts for the robust interval to be trusted")
        return None


@dataclass(frozen=True)
class Claim:
    """How a finding reads for each verdict. Each text is a format string over the finding's fields and ``ci``
    (the interval in words, e.g. "95% CI 0.12 to 0.34"); ``cannot_tell`` is also used for ``not_estimable``
    with ``{reason}``."""

    id: str
    supported: tuple[str, str]      # (headline, sentence)
    not_supported: tuple[str, str]  # the interval excludes any effect beyond the margin
    cannot_tell: tuple[str, str]    # inconclusive: "the data cannot tell ..."
    not_estimable: tuple[str, str]
    #: not_supported because the interval lies wholly on the other side of no effect (default: ``not_supported``)
    opposite: tuple[str, str] | None = None


def judge(claim: Claim, *, estimate: float | None, ci_low: float | None, ci_high: float | None, null: float,
          direction: str, level: float, method: str, reason: str | None = None, margin: float | None = None,
          describe: Callable[[float, float, float], dict] | None = None, verdict: str | None = None) -> Finding:
    """The finding for ``claim`` from its evidence: the verdict by :func:`interval_verdict` (or ``verdict`` when
    an analysis decides on other evidence, e.g. a test), the sentence of that verdict filled with the numbers.
    A ``reason`` (e.g. from :meth:`Floors.reason`) makes it ``not_estimable``: no number reaches its sentence.

    ``describe(estimate, ci_low, ci_high)`` may return extra fields for the sentences (rounded words, say).
    """
    if reason is not None or not _finite(estimate):
        verdict = "not_estimable"
    elif verdict is None:
        verdict = interval_verdict(ci_low, ci_high, null=null, direction=direction, margin=margin)
    opposite = (verdict == "not_supported" and claim.opposite is not None and _finite(ci_low, ci_high)
                and (ci_low > null if direction == "below" else ci_high < null))
    fields: dict[str, Any] = {"estimate": estimate, "ci_low": ci_low, "ci_high": ci_high, "reason": reason or "",
                              "ci": ci_text(ci_low, ci_high, level)}
    if verdict != "not_estimable" and describe is not None:
        fields.update(describe(estimate, ci_low, ci_high))
    headline, sentence = {"supported": claim.supported, "not_supported": claim.opposite if opposite else claim.not_supported,
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


# ---------------------------------------------------------------------------------------------------------
# how sure: the interval in calibrated plain words
# ---------------------------------------------------------------------------------------------------------
#: chance bands and their words (the IPCC's calibrated likelihood scale): the first band the chance reaches
CHANCE_WORDS = ((0.99, "virtually certain"), (0.90, "very likely"), (0.66, "likely"),
                (0.33, "about as likely as not"), (0.10, "unlikely"), (0.01, "very unlikely"),
                (0.0, "exceptionally unlikely"))


def direction_chance(estimate: float | None, ci_low: float | None, ci_high: float | None, *, level: float,
                     null: float, direction: str, log: bool) -> float | None:
    """The chance that the effect lies on the claim's side of ``null``, reading the interval as a normal range of
    belief around the estimate (on the log scale for ratios: ``log=True``); None without an interval.

    It is one minus the one-sided p-value of the same interval, so a claim the verdict supports at ``alpha`` has a
    chance of at least ``1 - alpha / 2``."""
    from statistics import NormalDist

    if not _finite(estimate, ci_low, ci_high) or (log and min(estimate, ci_low, ci_high) <= 0):
        return None
    t = math.log if log else (lambda v: v)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    se = (t(ci_high) - t(ci_low)) / (2 * z)
    if se <= 0:
        return None
    above = 1 - NormalDist().cdf((t(null) - t(estimate)) / se)
    return above if direction == "above" else 1 - above


def chance_words(chance: float) -> str:
    """"very likely" for 0.95: the calibrated word of :data:`CHANCE_WORDS` for a chance."""
    return next(words for floor, words in CHANCE_WORDS if chance >= floor)


def chance_text(chance: float) -> str:
    """"about 97 in 100", never "100 in 100" or "0 in 100"."""
    n = min(99, max(1, round(100 * chance)))
    if chance > 0.995:
        return "more than 99 in 100"
    if chance < 0.005:
        return "less than 1 in 100"
    return f"about {n} in 100"
