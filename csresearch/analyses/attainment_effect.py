"""Does outcome attainment go with less churn? The headline, adjusted for usage, checked at landmarks and for
proportional hazards, beside the biased naive figure, with how strong confounding would have to be to explain it.

* :func:`time_varying_effect` — the headline: a proportional-hazards model of churn on *current* attainment
  (known at the start of each monthly interval), hazard ratio for full versus no attainment, robust standard
  errors clustered by account; with ``usage_metrics`` also adjusted for last month's usage (lagged, time-varying),
  which carries the engagement that drives both usage and progress. Across segments, stratified by segment.
* :func:`proportional_hazards_check` — does the effect change with tenure? (attainment x log tenure)
* :func:`landmark_effect` — attainment at ``L`` days of tenure versus churn in a fixed window after ``L``, among
  accounts still active at ``L``: free of immortal time because nobody is classified by the future; the contrast is
  limited to attainment levels enough accounts had reached by then.
* :func:`naive_effect` — final attainment used as if it had been known from the start. It is *immortal-time
  biased*: an account that churned early had little time to make progress, so low attainment is partly a
  consequence of churning early, not its cause. Computed only to show the size of that bias.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .. import plots
from ..attainment import DAYS_PER_MONTH, account_attainment, episodes
from ..cohorts import survival_table
from ..findings import Claim, judge, not_estimable, steady_verdict
from ..landmarks import landmark_table
from ..models import (DEFAULT_ENGINE, AnalysisError, Engine, account_covariates, effect, goal_progress, model_frame,
                      require_events, require_goals, require_variation, strata_of, usage_features)
from ..result import Figure, Result
from ..sensitivity import evalue
from ..survival import Fit
from ._gates import goals_reason

if TYPE_CHECKING:
    from ..context import StudyContext
    from ..data import Dataset

NAME = "attainment_effect"
TITLE = "Attainment and churn, four ways"
INTRO = ("The hazard ratio compares the churn rate of accounts that fully reached their goals with accounts that made "
         "no progress (below 1: fewer churn). The headline uses attainment as known at the start of each month and "
         "compares accounts of the same tenure, ARR and last month's product usage; the same model without the usage "
         "adjustment is shown beside it. The landmark analyses use attainment at a fixed point of the subscription "
         "among accounts still active then; the naive analysis uses final attainment as if it had been known all "
         "along, and is shown only to expose its bias. Bars are {level} confidence intervals.")
NAIVE_LABEL = "immortal-time biased: final attainment treated as known from the start"
EFFECT_KEYS = ("hr", "ci_low", "ci_high", "p")
#: attainment levels a landmark contrast may stop at
LEVELS = tuple(round(x, 1) for x in np.arange(0.1, 1.01, 0.1))

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


# ---------------------------------------------------------------------------------------------------------
# the estimators (tidy frames in, a fitted model and a plain dict out)
# ---------------------------------------------------------------------------------------------------------
def _attainment_frame(ds: "Dataset", panel: pd.DataFrame, covariates, usage_metrics, extra: Sequence[str] = ()):
    """The model frame of the attainment models: rows with attainment (and usage, when adjusting), covariates,
    ``log_<metric>`` usage features. Returns ``(frame, covariate names, usage feature names, warnings)``."""
    cov, names, warnings = account_covariates(ds, covariates)
    missing = panel["attainment"].isna().to_numpy()
    if missing.any():
        # months before an account's first goal are left out (it enters at its first goal: no immortal time)
        n_never = panel["account_id"].nunique() - panel.loc[~missing, "account_id"].nunique()
        if n_never:
            warnings.append(f"{n_never} accounts never recorded a goal and were left out of the attainment models.")
    usage_cols: list[str] = []
    if usage_metrics:
        usage_cols = [f"usage_{m}" for m in usage_metrics if f"usage_{m}" in panel.columns]
        if not usage_cols:
            raise AnalysisError("the panel has none of the usage metrics to adjust for")
        missing |= panel[usage_cols].isna().any(axis=1).to_numpy()
    frame = model_frame(panel, ["attainment", *extra, *usage_cols], rows=~missing, covariates=cov)
    features = usage_features(frame, [c[6:] for c in usage_cols]) if usage_cols else []
    return frame, names, features, warnings


def time_varying_effect(ds: "Dataset", *, covariates: Sequence[str] | None = None, lag_days: int = 0,
                        panel: pd.DataFrame | None = None, engine: Engine = DEFAULT_ENGINE,
                        usage_metrics: Sequence[str] | None = None, threshold: float = 1.0) -> tuple[Fit, dict]:
    """Churn on current attainment in ``(start, stop]`` monthly intervals (``engine.panel``: Cox, or the
    discrete-time model above the engine's row limit).

    Attainment is the account's attainment known at each interval's start (``lag_days`` earlier still).
    Robust standard errors are clustered by account; across segments the model is stratified by segment.
    Accounts without any goal are left out (said in the result's ``warnings``). With ``usage_metrics`` the model
    also holds ``log(1 + usage)`` of the last completed usage period of each metric (months without one, such as
    an account's first, are left out).

    Returns the :class:`~csresearch.survival.Fit` and ``{hr, ci_low, ci_high, p, coef, se, se_naive, n_accounts,
    n_events, n_rows, n_params, groups, covariates, usage_adjusted_for, stratified_by, lag_days, warnings, model,
    method}`` where ``hr`` is the hazard ratio of full versus no attainment and ``groups`` counts the accounts with
    goals reached (attainment at or above ``threshold``) and with no progress in some month.
    """
    require_goals(ds)
    ep = panel if panel is not None else episodes(ds, lag_days=lag_days)
    ep, names, features, warnings = _attainment_frame(ds, ep, covariates, usage_metrics)
    require_events(ep, "event", "time-varying model", minimum=2)
    require_variation(ep, "attainment", "time-varying model")
    strata = strata_of(ep)
    terms = ["attainment", *names, *features]
    fit = engine.panel(ep, terms, strata)
    discrete = fit.method == "discrete_cloglog"
    if discrete:
        method = (f"discrete-time proportional hazards (cloglog GLM on {len(ep):,} account-months, more than the "
                  f"Cox limit of {engine.cox_max_rows:,}), spline baseline in tenure, robust SE by account")
    else:
        method = "Cox, counting process (start, stop], Efron ties, robust SE by account"
    if features:
        method += f"; adjusted for last month's usage ({', '.join(f[4:] for f in features)})"
    att = ep["attainment"].to_numpy()
    groups = {"with goals reached": int(ep.loc[att >= threshold, "account_id"].nunique()),
              "with no progress": int(ep.loc[att <= 0, "account_id"].nunique())}
    out = effect(fit)
    out.update({"se_naive": _naive_se(fit), "n_accounts": int(ep["account_id"].nunique()),
                "n_events": int(ep["event"].sum()), "n_rows": int(len(ep)), "n_params": len(terms), "groups": groups,
                "covariates": names, "usage_adjusted_for": [f[4:] for f in features], "stratified_by": strata,
                "lag_days": int(lag_days), "warnings": warnings, "model": "discrete" if discrete else "cox",
                "method": method})
    return fit, out


def _naive_se(fit: Fit, term: str = "attainment") -> float | None:
    naive = fit.info.get("vcov_naive")
    if naive is None:
        return None
    return float(np.sqrt(np.asarray(naive.loc[term, term] if hasattr(naive, "loc") else naive)))


def proportional_hazards_check(ds: "Dataset", *, covariates: Sequence[str] | None = None, panel: pd.DataFrame,
                               engine: Engine = DEFAULT_ENGINE, usage_metrics: Sequence[str] | None = None) -> dict:
    """Does the attainment effect change with tenure? The headline model plus ``attainment x log2(tenure)``.

    Tenure is months since the start plus one, at each interval's start, centred at its mean so the main effect
    stays the effect at average tenure. Returns ``{ratio_per_doubling, ci_low, ci_high, p, n_rows, n_events}``:
    the factor by which the hazard ratio of full versus no attainment changes per doubling of tenure (1: it does not
    change: proportional hazards hold).
    """
    ep, names, features, _ = _attainment_frame(ds, panel, covariates, usage_metrics)
    require_events(ep, "event", "proportional-hazards check", minimum=5)
    log_t = np.log2(ep["tenure_months"].to_numpy() + 1.0)
    ep["attainment_x_log2_tenure"] = ep["attainment"].to_numpy() * (log_t - log_t.mean())
    fit = engine.panel(ep, ["attainment", "attainment_x_log2_tenure", *names, *features], strata_of(ep))
    e = effect(fit, "attainment_x_log2_tenure")
    return {"ratio_per_doubling": e["hr"], "ci_low": e["ci_low"], "ci_high": e["ci_high"], "p": e["p"],
            "n_rows": int(len(ep)), "n_events": int(ep["event"].sum()),
            "method": "headline model plus attainment x log2(tenure months + 1), centred"}


def landmark_effect(ds: "Dataset", landmark_days: float, *, covariates: Sequence[str] | None = None,
                    lag_days: int = 0, threshold: float = 1.0, engine: Engine = DEFAULT_ENGINE,
                    window_days: float | None = None, min_group_accounts: int = 20) -> tuple[Fit, dict]:
    """Cox model of churn after ``landmark_days`` on attainment at the landmark, among accounts active then.

    Follow-up is censored ``window_days`` after the landmark (None: until the data ends). The model is linear in
    attainment; its contrast is reported up to the highest level of :data:`LEVELS` that at least
    ``min_group_accounts`` accounts had reached by the landmark (``contrast_to``; 1 when enough had fully reached
    their goals), against no progress, which needs as many accounts: a contrast beyond the data would be an
    extrapolation. Below that, an AnalysisError says why.

    Returns the :class:`~csresearch.survival.Fit` and ``{landmark_days, window_days, hr, ci_low, ci_high, p}`` (full
    versus none, per unit of attainment) plus ``contrast: {to, hr, ci_low, ci_high, accounts_at_level}``,
    ``n_at_risk, n_events, estimand, ...}``.
    """
    lm = landmark_table(ds, landmark_days, lag_days=lag_days, threshold=threshold)
    if len(lm) == 0:
        raise AnalysisError(f"landmark {landmark_days:g} days: no account was still active then")
    if window_days is not None:
        late = lm["time"] > window_days
        lm.loc[late, "event"] = 0
        lm.loc[late, "time"] = float(window_days)
    cov, names, warnings = account_covariates(ds, covariates)
    lm = lm.join(cov, on="account_id")
    require_events(lm, "event", f"landmark {landmark_days:g} days", minimum=2)
    require_variation(lm, "attainment", f"landmark {landmark_days:g} days")
    att = lm["attainment"].to_numpy()
    n_none = int((att <= 0).sum())
    reached = {lv: int((att >= lv - 1e-9).sum()) for lv in LEVELS}
    top = max((lv for lv, n in reached.items() if n >= min_group_accounts), default=None)
    if top is None or n_none < min_group_accounts:
        who = (f"{n_none} accounts with no progress" if n_none < min_group_accounts else
               f"{reached[LEVELS[0]]} accounts a tenth of the way to their goals")
        raise AnalysisError(f"landmark {landmark_days:g} days: only {who} by then, fewer than the "
                            f"{min_group_accounts} a comparison needs")
    entry = "entry_after" if (lm["entry_after"] > 0).any() else None
    fit = engine.cox(lm, "time", "event", ["attainment", *names], entry=entry, strata=strata_of(lm))
    out = {"landmark_days": float(landmark_days), "window_days": None if window_days is None else float(window_days),
           **effect(fit)}
    z = stats.norm.ppf(1 - engine.alpha / 2)
    out["contrast"] = {"to": top, "hr": math.exp(out["coef"] * top), "ci_low": math.exp((out["coef"] - z * out["se"]) * top),
                       "ci_high": math.exp((out["coef"] + z * out["se"]) * top), "accounts_at_level": reached[top],
                       "accounts_none": n_none}
    window = "until the data ends" if window_days is None else f"in the {window_days:g} days after it"
    out.update({"n_at_risk": int(len(lm)), "n_events": int(lm["event"].sum()), "covariates": names,
                "stratified_by": strata_of(lm), "warnings": warnings,
                "estimand": (f"among accounts still active at day {landmark_days:g}, the hazard ratio of churn {window} "
                             f"for accounts {_contrast_words(top)} by that day against accounts with no progress then"
                             + (", adjusted for " + ", ".join(names) if names else "")
                             + (", within segments" if strata_of(lm) else ""))})
    return fit, out


def _contrast_words(level: float) -> str:
    return "that had fully reached their goals" if level >= 1 else f"{level:.0%} of the way to their goals"


def naive_effect(ds: "Dataset", *, covariates: Sequence[str] | None = None,
                 engine: Engine = DEFAULT_ENGINE) -> tuple[Fit, dict]:
    """Cox model from the start on *final* attainment (at churn or ``as_of``): the immortal-time-biased analysis.

    Returned so that lessons and reports can show the size of the bias; never the answer. The result dict
    carries ``label`` saying so.
    """
    require_goals(ds)
    st = survival_table(ds)
    end = st["end_date"].fillna(ds.as_of)
    att = account_attainment(ds.goals, goal_progress(ds), pd.DataFrame({"account_id": st["account_id"], "date": end}))
    st["attainment"] = att["attainment"].to_numpy()
    st = st[st["attainment"].notna()]
    cov, names, warnings = account_covariates(ds, covariates)
    st = st.join(cov, on="account_id")
    require_events(st, "event", "naive model", minimum=2)
    require_variation(st, "attainment", "naive model")
    entry = "entry" if (st["entry"] > 0).any() else None
    fit = engine.cox(st, "duration", "event", ["attainment", *names], entry=entry, strata=strata_of(st))
    out = {**effect(fit), "n_accounts": int(len(st)), "n_events": int(st["event"].sum()), "covariates": names,
           "label": NAIVE_LABEL, "warnings": warnings}
    return fit, out


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

    def attempt(what: str, fn, keep=lambda out: out[1]):
        try:
            return keep(fn())
        except (AnalysisError, ValueError) as exc:
            res.warnings.append(f"{what} could not be estimated: {exc}.")
            return None

    usage = [m for m in (ctx.usage_metrics or []) if f"usage_{m}" in ctx.panel.columns]
    tv = attempt("The time-varying attainment effect",
                 lambda: time_varying_effect(ctx.ds, panel=ctx.panel, lag_days=ctx["lag_days"],
                                             threshold=ctx["attainment_threshold"], **kw))
    effect_record = {"time_varying": tv or _empty_effect(res.warnings[-1])}
    if usage:
        adj = attempt("The usage-adjusted attainment effect",
                      lambda: time_varying_effect(ctx.ds, panel=ctx.panel, lag_days=ctx["lag_days"], usage_metrics=usage,
                                                  threshold=ctx["attainment_threshold"], **kw))
        effect_record["usage_adjusted"] = adj or _empty_effect(res.warnings[-1])
    headline = effect_record.get("usage_adjusted") or effect_record["time_varying"]
    ph = attempt("The proportional-hazards check",
                 lambda: proportional_hazards_check(ctx.ds, panel=ctx.panel, usage_metrics=usage or None, **kw),
                 keep=lambda out: out) if headline.get("hr") is not None else None
    effect_record["proportional_hazards"] = ph
    landmarks = []
    for days in ctx["landmark_days"]:
        lm = attempt(f"The landmark analysis at {days} days",
                     lambda days=days: landmark_effect(ctx.ds, days, threshold=ctx["attainment_threshold"],
                                                       lag_days=ctx["lag_days"], window_days=ctx["landmark_window_days"],
                                                       min_group_accounts=ctx["min_group_accounts"], **kw))
        landmarks.append(lm or {"landmark_days": float(days), "n_at_risk": None, **_empty_effect(res.warnings[-1])})
    effect_record["landmark"] = landmarks[0]
    effect_record["landmarks"] = landmarks
    nv = attempt("The naive analysis", lambda: naive_effect(ctx.ds, **kw))
    effect_record["naive"] = nv or _empty_effect(res.warnings[-1])

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
            alt="Forest plot of the hazard ratio of full versus no attainment in the usage-adjusted headline, the "
                "unadjusted, landmark and naive analyses, with confidence intervals"))
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
               (" and last month's product usage" if e.get("usage_adjusted_for") else "")

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
    reason = lm.get("not_estimated") or ctx.floors.reason(
        events=lm.get("n_events"), parameters=1 + len(lm.get("covariates") or []))
    return judge(LANDMARK_CLAIM, estimate=c.get("hr"), ci_low=c.get("ci_low"), ci_high=c.get("ci_high"), null=1.0,
                 direction="below", level=ctx.level, margin=ctx["margin_hr"], reason=reason,
                 method=f"Cox on attainment at {lm['landmark_days']:.0f} days, accounts active then, "
                        f"follow-up {ctx['landmark_window_days']} days; estimand: {lm.get('estimand', '')}",
                 describe=lambda hr, lo, hi: {"n_at_risk": lm["n_at_risk"], "days": lm["landmark_days"],
                                              "window": ctx["landmark_window_days"],
                                              "contrast_words": _contrast_words(c["to"]),
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
    return (f"Holding last month's product usage fixed moves the hazard ratio from {tv['hr']:.2f} "
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
