"""The health-score audit: does the vendor's health score predict churn, add to raw usage, and fall band by band?"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import plots
from ..findings import Claim, interval_verdict, judge, not_estimable, p_text
from ..health import audit
from ..result import Figure, Result
from ._gates import models_reason

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "health_score"
TITLE = "Health-score audit"
USES_SAMPLE = True
INTRO = ("Teams often export a vendor health score and never test it. Does it predict churn, does it add to raw usage, "
         "and does churn fall as the score rises?")

CLAIM = Claim(
    "health_score",
    supported=("The health score earns its place.",
               "The health score predicts churn (hazard ratio {estimate:.2f} per standard deviation, {ci}) and adds to "
               "what raw usage says."),
    not_supported=("The health score does not earn its place.", "{sentence}"),
    cannot_tell=("The health score adds nothing clear.", "{sentence}"),
    not_estimable=("The health score could not be audited.", "Not estimated: {reason}."),
)


def requires(ctx: "StudyContext") -> str | None:
    if not ctx["health_score_metric"]:
        return "no health score was named (set health_score_metric to a usage metric holding one)"
    metric = ctx["health_score_metric"]
    if ctx.secondary.usage is None:
        return f"the health score {metric} could not be audited: the data has no usage table"
    reason = models_reason(ctx)
    return None if reason is None else f"the health score {metric} could not be audited: {reason}"


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {}


def findings_when_empty(ctx: "StudyContext", reason: str) -> list:
    return [not_estimable(CLAIM, reason)] if ctx["health_score_metric"] else []


def run(ctx: "StudyContext") -> Result:
    table, info = audit(ctx.secondary, ctx["health_score_metric"], panel=ctx.sample_panel,
                        usage_metrics=ctx.usage_metrics, alpha=ctx.alpha, min_cell=ctx.min_cell, engine=ctx.engine)
    res = Result(NAME, TITLE, record={"health_score_audit": info}, tables={"health_calibration": table})
    res.figures.append(Figure("health_calibration", lambda: plots.calibration(table, metric=ctx.names(info["metric"])),
                              alt=f"Bar chart of churn per 100 account-months in each fifth of the health score "
                                  f"(metric: {ctx.names(info['metric'])}), lowest to highest: " + ", ".join(
                                      f"{a:g}-{b:g}: " + ("suppressed" if s else f"{100 * m:.1f}")
                                      for a, b, m, s in zip(table["score_from"], table["score_to"],
                                                            table["monthly_churn"], table["suppressed"])) + "."))
    # informative: supported; redundant: it predicts, but adds nothing (the data cannot tell it from usage);
    # decoration: it does not predict churn or points the wrong way
    verdict = {"informative": "supported", "redundant": "inconclusive", "decoration": "not_supported"}[info["verdict"]]
    raw = f"health score {info['metric']}"
    named = "health score" if info["metric"] == "health_score" else f"health score ({ctx.names(info['metric'])})"
    info = {**info, "sentence": info["sentence"].replace(raw, named)}
    sentence = info["sentence"]
    if info["verdict"] == "decoration":
        # "does not predict churn" needs an interval that rules out any effect worth having; a wide one cannot tell
        by_interval = interval_verdict(1 / info["ci_high"], 1 / info["ci_low"], null=1.0, direction="below",
                                       margin=ctx["margin_hr"])  # higher score = healthier: read as 1/HR
        if by_interval == "inconclusive":
            verdict = "inconclusive"
            sentence = (f"The data cannot tell whether the {named} predicts churn: its hazard "
                        f"ratio per SD could be anywhere from {info['ci_low']:.2f} to {info['ci_high']:.2f} "
                        f"({ctx.level_text} CI), an interval that includes no effect and effects worth having.")
    finding = judge(CLAIM, estimate=info["hr_per_sd"], ci_low=info["ci_low"], ci_high=info["ci_high"], null=1.0,
                    direction="below", level=ctx.level, verdict=verdict,
                    method="time-varying proportional hazards per SD of the score; likelihood-ratio test beyond usage",
                    describe=lambda *_: {"sentence": sentence})
    res.findings = [finding]
    lr = f"; beyond raw usage, likelihood-ratio p {p_text(info['lr_test_p'])}" if info.get("lr_test_p") is not None else ""
    label = "cannot tell" if sentence is not info["sentence"] else info["verdict"]
    res.text = (f"**Verdict: {label}.** {sentence} On its own it ranks churn risk at C = "
                f"{info['c_index']:.2f}{lr}. The chart shows the monthly churn rate in each fifth of the score: a score "
                "worth its place falls band by band. " + _coverage_text(info))
    return res


def _coverage_text(info: dict) -> str:
    """Which accounts the audit used and why the others were left out (plain words)."""
    why = []
    if info["n_dropped_no_score"]:
        why.append(f"{info['n_dropped_no_score']:,} had no score known before any month")
    if info["n_dropped_missing_usage"]:
        why.append(f"{info['n_dropped_missing_usage']:,} lacked another usage metric in every month with a score")
    text = f"The audit used {info['n_used']:,} accounts" + ("; left out: " + " and ".join(why) + "." if why else
                                                              ", every account.")
    return text + (f" {info['known_at']}." if info.get("known_at") else "")
