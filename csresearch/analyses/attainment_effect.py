"""Does outcome attainment go with less churn? The headline, adjusted for usage, checked at landmarks and for
proportional hazards, beside the biased naive figure, with how strong confounding would have to be to explain it.
The estimators are in :mod:`csresearch.attainment_models`; this module chooses, judges and words them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .. import plots
from ..attainment_models import (contrast_words, landmark_effect, naive_effect, proportional_hazards_check,
                                 time_varying_effect)
from ..findings import Claim, judge, not_estimable, steady_verdict
from ..models import AnalysisError
from ..result import Figure, Result
from ..sensitivity import evalue
from ._gates import goals_reason

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "attainment_effect"
#: reads the full panel (the landmark analyses, the unadjusted model's frame) and lets it go on a large book once
#: done: see csresearch.analyses
USES_PANEL = True
#: reads the goal measurements (the landmarks, the naive model): see csresearch.analyses
USES_GOALS = True
TITLE = "Attainment and churn, four ways"
INTRO = ("The hazard ratio compares the churn rate of accounts that fully reached their goals with accounts that made "
         "no progress (below 1: fewer churn). The headline uses attainment as known at the start of each month and "
         "compares accounts of the same tenure, ARR and product usage (last month's and the mean so far); the same model "
         "without the usage "
         "adjustment is shown beside it. The landmark analyses use attainment at a fixed point of the subscription "
         "among accounts still active then; the naive analysis uses final attainment as if it had been known all "
         "along, and is shown only to expose its bias. Bars are {level} confidence intervals.")
EFFECT_KEYS = ("hr", "ci_low", "ci_high", "p")

CLAIM = Claim(
    "attainment_effect",
    supported=("Outcomes predict retention.",
               "Accounts that had fully reached their goals churned at {estimate:.2f} times the rate of accounts that "
               "had made no progress ({ci}), comparing accounts of the same tenure{adjusted}. {evalue_sentence}"),
    not_supported=("Outcomes make no difference worth having here.",
                   "Accounts that had fully reached their goals churned at {estimate:.2f} times the rate of accounts "
                   "with no progress ({ci}): the interval rules out any reduction beyond the {margin_pct} counted as "
                   "worth having, comparing accounts of the same tenure{adjusted}."),
    opposite=("Outcomes go with more churn here.",
              "Accounts that had fully reached their goals churned at {estimate:.2f} times the rate of accounts with no "
              "progress ({ci}): more churn, not less, comparing accounts of the same tenure{adjusted}."),
    cannot_tell=("The data cannot tell whether outcomes predict retention.",
                 "Accounts that had fully reached their goals and accounts with no progress cannot be told apart on "
                 "churn: the hazard ratio could be anywhere from {ci_words}, comparing accounts of the same "
                 "tenure{adjusted}."),
    not_estimable=("Whether outcomes predict retention could not be estimated.", "Not estimated: {reason}."),
)
LANDMARK_CLAIM = Claim(
    "landmark_effect",
    supported=("Checked a second way.",
               "Among the {n_at_risk:,} accounts still active after {days:.0f} days, those {contrast_words} by then "
               "churned less in the following {window:.0f} days than those with no progress: hazard ratio "
               "{estimate:.2f} ({ci})."),
    not_supported=("Checked a second way: no difference worth having.",
                   "Among the {n_at_risk:,} accounts still active after {days:.0f} days, those {contrast_words} by then "
                   "churned about as often in the following {window:.0f} days as those with no progress (hazard ratio "
                   "{estimate:.2f}, {ci})."),
    opposite=("Checked a second way: the other direction.",
              "Among the {n_at_risk:,} accounts still active after {days:.0f} days, those {contrast_words} by then "
              "churned more in the following {window:.0f} days than those with no progress: hazard ratio "
              "{estimate:.2f} ({ci})."),
    cannot_tell=("Checked a second way: the data cannot tell.",
                 "Among the {n_at_risk:,} accounts still active after {days:.0f} days, attainment at that point does "
                 "not clearly separate the churn of the following {window:.0f} days (hazard ratio {ci_words})."),
    not_estimable=("The landmark check could not be estimated.", "Not estimated: {reason}."),
)
PH_CLAIM = Claim(
    "proportional_hazards",
    supported=("The effect holds over tenure.",
               "The attainment effect is about the same early and late in a subscription: each doubling of tenure "
               "multiplies the hazard ratio by {estimate:.2f} ({ci}), within the margin."),
    not_supported=("The effect changes with tenure.",
                   "The attainment effect is not the same early and late in a subscription: each doubling of tenure "
                   "multiplies the hazard ratio by {estimate:.2f} ({ci}); the headline is an average over tenure."),
    cannot_tell=("Whether the effect holds over tenure cannot be told.",
                 "Each doubling of tenure multiplies the hazard ratio by {estimate:.2f} ({ci}); the data cannot tell "
                 "whether the effect is steady, so read the headline as an average over tenure."),
    not_estimable=("The proportional-hazards check could not be run.", "Not estimated: {reason}."),
)


def effects_table(effect_record: dict) -> pd.DataFrame:
    """The attainment effect by analysis, one row each (adjusted, time-varying, landmarks, naive), for a forest plot."""
    rows = []
    adjusted = effect_record.get("usage_adjusted") or {}
    if adjusted.get("hr") is not None:
        rows.append({"label": "time-varying, usage-adjusted (headline)", **{k: adjusted[k] for k in EFFECT_KEYS}})
    if effect_record["time_varying"].get("hr") is not None:
        label = "time-varying, not usage-adjusted" if adjusted.get("hr") is not None else "time-varying (headline)"
        rows.append({"label": label, **{k: effect_record["time_varying"][k] for k in EFFECT_KEYS}})
    for lm in effect_record.get("landmarks", []):
        if lm.get("hr") is not None:
            rows.append({"label": f"landmark {lm['landmark_days']:.0f} days", **{k: lm[k] for k in EFFECT_KEYS}})
    if effect_record["naive"].get("hr") is not None:
        rows.append({"label": "naive (immortal-time biased)", **{k: effect_record["naive"][k] for k in EFFECT_KEYS}})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# the analysis
# ---------------------------------------------------------------------------------------------------------
def _empty_effect(reason: str) -> dict:
    return {**{k: None for k in EFFECT_KEYS}, "not_estimated": reason}


def requires(ctx: "StudyContext") -> str | None:
    return goals_reason(ctx)


def empty(ctx: "StudyContext", reason: str) -> dict:
    effect_record = {k: _empty_effect(reason) for k in ("time_varying", "naive")}
    effect_record["landmark"] = {"landmark_days": float(ctx["landmark_days"][0]), "n_at_risk": None,
                                 **_empty_effect(reason)}
    return {"attainment_effect": effect_record}


def findings_when_empty(ctx: "StudyContext", reason: str) -> list:
    return [not_estimable(CLAIM, reason), not_estimable(LANDMARK_CLAIM, reason)]


def run(ctx: "StudyContext") -> Result:
    res = Result(NAME, TITLE)
    kw = {"covariates": ctx["covariates"], "engine": ctx.engine}
    failed: dict[str, str] = {}  # why a part could not be estimated, by part; warned in the report's order below

    def attempt(part: str, what: str, fn, keep=lambda out: out[1]):
        try:
            return keep(fn())
        except (AnalysisError, ValueError) as exc:
            failed[part] = f"{what} could not be estimated: {exc}."
            return None

    usage = ctx.headline_usage
    # the parts that read the panel first: the landmarks, then the headline without usage on its own frame; then the
    # study's shared frame is built and, on a large book, the panel let go before the usage-adjusted models run
    landmarks = [attempt(f"landmark {days}", f"The landmark analysis at {days} days",
                         lambda days=days: landmark_effect(ctx.ds, days, threshold=ctx["attainment_threshold"],
                                                           lag_days=ctx["lag_days"],
                                                           window_days=ctx["landmark_window_days"],
                                                           min_group_accounts=ctx["min_group_accounts"],
                                                           panel=ctx.panel, usage_metrics=usage or None, **kw))
                 for days in ctx["landmark_days"]]
    tv = attempt("time_varying", "The time-varying attainment effect",
                 lambda: time_varying_effect(ctx.ds, frame=ctx.model_frame(None), lag_days=ctx["lag_days"],
                                             threshold=ctx["attainment_threshold"], engine=ctx.engine))
    ctx.release_panel()
    effect_record = {"time_varying": tv or _empty_effect(failed["time_varying"])}
    if usage:
        adj = attempt("usage_adjusted", "The usage-adjusted attainment effect",
                      lambda: time_varying_effect(ctx.ds, frame=ctx.model_frame(usage), lag_days=ctx["lag_days"],
                                                  threshold=ctx["attainment_threshold"], engine=ctx.engine))
        effect_record["usage_adjusted"] = adj or _empty_effect(failed["usage_adjusted"])
    headline = effect_record.get("usage_adjusted") or effect_record["time_varying"]
    ph = attempt("proportional_hazards", "The proportional-hazards check",
                 lambda: proportional_hazards_check(ctx.ds, frame=ctx.model_frame(usage or None), engine=ctx.engine),
                 keep=lambda out: out) if headline.get("hr") is not None else None
    effect_record["proportional_hazards"] = ph
    landmarks = [lm or {"landmark_days": float(days), "n_at_risk": None, **_empty_effect(failed[f"landmark {days}"])}
                 for days, lm in zip(ctx["landmark_days"], landmarks)]
    effect_record["landmark"] = landmarks[0]
    effect_record["landmarks"] = landmarks
    nv = attempt("naive", "The naive analysis", lambda: naive_effect(ctx.ds, **kw))
    effect_record["naive"] = nv or _empty_effect(failed["naive"])
    order = ["time_varying", "usage_adjusted", "proportional_hazards", *(f"landmark {d}" for d in ctx["landmark_days"]),
             "naive"]
    res.warnings.extend(failed[part] for part in order if part in failed)

    head = headline_finding(ctx, headline)
    if head.verdict != "not_estimable":
        effect_record["evalue"] = evalue(headline["hr"], headline["ci_low"], headline["ci_high"])
    res.record = {"attainment_effect": effect_record}
    res.findings = [head, landmark_finding(ctx, effect_record["landmark"]), ph_finding(ctx, ph)]
    table = effects_table(effect_record)
    if len(table):
        res.tables["effects"] = table
        res.figures.append(Figure("effects", lambda: plots.forest(
            table, title="Hazard ratio, full versus no attainment: four analyses"),
            alt="Forest plot of the hazard ratio of churn, goals reached versus no progress, by analysis (below 1: "
                "less churn): " + plots.describe_intervals(table, "label", "hr", level=ctx.level) + "."))
    res.text = "\n\n".join(t for t in (_adjustment_text(ctx, effect_record), _landmark_text(effect_record["landmark"]))
                           if t)
    if tv and nv and head.verdict != "not_estimable":
        res.highlights.append(
            f"**The trap avoided.** Using each account's *final* attainment as if it had been known from the start "
            f"would claim a hazard ratio of {nv['hr']:.2f} — {'an exaggeration' if nv['hr'] < tv['hr'] else 'a distortion'}: "
            "accounts that left early simply had less time to make progress (immortal-time bias).")
    return res


def _floor_reason(ctx: "StudyContext", e: dict) -> str | None:
    if e.get("not_estimated"):
        return e["not_estimated"]
    return ctx.floors.reason(events=e.get("n_events"), parameters=e.get("n_params", 1), groups=e.get("groups"),
                             se=e.get("se"), se_naive=e.get("se_naive"))


def headline_finding(ctx: "StudyContext", e: dict):
    adjusted = (" within each segment" if e.get("stratified_by") else "") + \
               (", ARR" if "log_arr" in (e.get("covariates") or []) else "") + \
               (" and product usage (last month's and its history)" if e.get("usage_adjusted_for") else "")

    def describe(hr, lo, hi):
        ev = evalue(hr, lo, hi)
        return {"adjusted": adjusted, "margin_pct": f"{1 - ctx['margin_hr']:.0%}",
                "ci_words": f"{lo:.2f} to {hi:.2f} ({ctx.level_text} CI)",
                "evalue_sentence": (
                    "This is an association, not proof of an effect: customers who reach their goals may differ in ways "
                    "the data does not hold. To explain it away, an unmeasured factor would have to make reaching the "
                    f"goals and staying each about {ev['point']:.1f} times as likely (to make the interval include no "
                    f"effect: {ev['limit']:.1f} times), beyond what tenure, ARR and usage already account for.")}

    return judge(CLAIM, estimate=e.get("hr"), ci_low=e.get("ci_low"), ci_high=e.get("ci_high"), null=1.0,
                 direction="below", level=ctx.level, margin=ctx["margin_hr"],
                 method=e.get("method", "time-varying proportional hazards"), reason=_floor_reason(ctx, e),
                 describe=describe)


def landmark_finding(ctx: "StudyContext", lm: dict):
    c = lm.get("contrast") or {}
    reason = lm.get("not_estimated") or lm.get("contrast_reason") or ctx.floors.reason(
        events=lm.get("n_events"), parameters=lm.get("n_params", 1))
    return judge(LANDMARK_CLAIM, estimate=c.get("hr"), ci_low=c.get("ci_low"), ci_high=c.get("ci_high"), null=1.0,
                 direction="below", level=ctx.level, margin=ctx["margin_hr"], reason=reason,
                 method=f"Cox on attainment at {lm['landmark_days']:.0f} days, accounts active then, "
                        f"follow-up {ctx['landmark_window_days']} days; estimand: {lm.get('estimand', '')}",
                 describe=lambda hr, lo, hi: {"n_at_risk": lm["n_at_risk"], "days": lm["landmark_days"],
                                              "window": ctx["landmark_window_days"],
                                              "contrast_words": contrast_words(c["to"]),
                                              "ci_words": f"{lo:.2f} to {hi:.2f}, {ctx.level_text} CI"})


def ph_finding(ctx: "StudyContext", ph: dict | None):
    if not ph:
        return not_estimable(PH_CLAIM, "the headline could not be estimated")
    m = ctx["margin_hr"]
    verdict = steady_verdict(ph["ci_low"], ph["ci_high"], null=1.0, margin=(m, 1 / m))
    return judge(PH_CLAIM, estimate=ph["ratio_per_doubling"], ci_low=ph["ci_low"], ci_high=ph["ci_high"], null=1.0,
                 direction="below", level=ctx.level, verdict=verdict, method=ph["method"])


def _adjustment_text(ctx: "StudyContext", rec: dict) -> str:
    adj, tv = rec.get("usage_adjusted") or {}, rec["time_varying"]
    if adj.get("hr") is None or tv.get("hr") is None:
        return ("*The headline is not adjusted for product usage (the data has no usage table), so engagement that "
                "drives both usage and progress is not held fixed.*" if tv.get("hr") is not None else "")
    return (f"Holding product usage fixed (last month's, and the mean of the months so far) moves the hazard ratio from {tv['hr']:.2f} "
            f"({ctx.ci(tv['ci_low'], tv['ci_high'])}) to {adj['hr']:.2f} ({ctx.ci(adj['ci_low'], adj['ci_high'])}). "
            "Usage is a stand-in for engagement, which can drive both usage and progress toward goals; what usage does "
            "not capture of it is not adjusted for.")


def _landmark_text(lm: dict) -> str:
    c = lm.get("contrast")
    if not c:
        return ""
    limit = ("" if c["to"] >= 1 else f" Only {c['accounts_at_level']:,} accounts had gone {c['to']:.0%} of the way by "
             f"then (fewer had gone further), so the contrast stops there rather than extrapolating to goals reached.")
    return f"**Landmark estimand.** {lm['estimand'][0].upper()}{lm['estimand'][1:]}.{limit}"
