"""Does outcome attainment go with less churn? The headline, checked at landmarks, beside the biased naive figure.

* :func:`time_varying_effect` — the headline: a proportional-hazards model of churn on *current* attainment
  (known at the start of each monthly interval), hazard ratio for full versus no attainment, robust standard
  errors clustered by account. Across segments, stratified by segment.
* :func:`landmark_effect` — attainment at ``L`` days of tenure versus churn after ``L``, among accounts still
  active at ``L``: simple to explain, and free of immortal time because nobody is classified by the future.
* :func:`naive_effect` — final attainment used as if it had been known from the start. It is *immortal-time
  biased*: an account that churned early had little time to make progress, so low attainment is partly a
  consequence of churning early, not its cause. Computed only to show the size of that bias.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import pandas as pd

from .. import plots
from ..attainment import account_attainment, episodes
from ..cohorts import survival_table
from ..findings import Claim, judge, not_estimable
from ..landmarks import landmark_table
from ..models import (DEFAULT_ENGINE, AnalysisError, Engine, account_covariates, effect, goal_progress, model_frame,
                      require_events, require_goals, require_variation, strata_of)
from ..result import Figure, Result
from ..survival import Fit
from ._gates import goals_reason

if TYPE_CHECKING:
    from ..context import StudyContext
    from ..data import Dataset

NAME = "attainment_effect"
TITLE = "Attainment and churn, three ways"
INTRO = ("The hazard ratio compares the churn rate of accounts that fully reached their goals with accounts that made "
         "no progress (below 1: fewer churn). The headline uses attainment as known at the start of each month; the "
         "landmark analyses use attainment at a fixed point of the subscription among accounts still active then; the "
         "naive analysis uses final attainment as if it had been known all along, and is shown only to expose its "
         "bias. Bars are {level} confidence intervals.")
NAIVE_LABEL = "immortal-time biased: final attainment treated as known from the start"
EFFECT_KEYS = ("hr", "ci_low", "ci_high", "p")

CLAIM = Claim(
    "attainment_effect",
    supported=("Outcomes predict retention.",
               "Accounts that had fully reached their goals churned at {estimate:.2f} times the rate of accounts that "
               "had made no progress ({ci}), comparing accounts of the same tenure{adjusted}. Partial progress counts "
               "in proportion."),
    not_supported=("Outcomes go with more churn here.",
                   "Accounts that had fully reached their goals churned at {estimate:.2f} times the rate of accounts "
                   "with no progress ({ci}): more churn, not less, comparing accounts of the same tenure{adjusted}."),
    cannot_tell=("The data cannot tell whether outcomes predict retention.",
                 "Accounts that had fully reached their goals and accounts with no progress cannot be told apart on "
                 "churn (hazard ratio {ci}, an interval that includes no difference)."),
    not_estimable=("Whether outcomes predict retention could not be estimated.", "Not estimated: {reason}."),
)
LANDMARK_CLAIM = Claim(
    "landmark_effect",
    supported=("Checked a second way.",
               "Among the {n_at_risk:,} accounts still active after {days:.0f} days, those that had reached their goals "
               "by then churned less afterwards: hazard ratio {estimate:.2f} ({ci})."),
    not_supported=("Checked a second way: the other direction.",
                   "Among the {n_at_risk:,} accounts still active after {days:.0f} days, those that had reached their "
                   "goals by then churned more afterwards: hazard ratio {estimate:.2f} ({ci})."),
    cannot_tell=("Checked a second way: the data cannot tell.",
                 "Among the {n_at_risk:,} accounts still active after {days:.0f} days, attainment at that point does "
                 "not clearly separate the churn that followed (hazard ratio {ci})."),
    not_estimable=("The landmark check could not be estimated.", "Not estimated: {reason}."),
)


# ---------------------------------------------------------------------------------------------------------
# the estimators (tidy frames in, a coefficient table and a plain dict out)
# ---------------------------------------------------------------------------------------------------------
def time_varying_effect(ds: "Dataset", *, covariates: Sequence[str] | None = None, lag_days: int = 0,
                        panel: pd.DataFrame | None = None, engine: Engine = DEFAULT_ENGINE) -> tuple[Fit, dict]:
    """Churn on current attainment in ``(start, stop]`` monthly intervals (``engine.panel``: Cox, or the
    discrete-time model above the engine's row limit).

    Attainment is the account's attainment known at each interval's start (``lag_days`` earlier still).
    Robust standard errors are clustered by account; across segments the model is stratified by segment.
    Accounts without any goal are left out (said in the result's ``warnings``).

    Returns the :class:`~csresearch.survival.Fit` and ``{hr, ci_low, ci_high, p, coef, se, n_accounts, n_events, n_rows,
    covariates, stratified_by, lag_days, warnings, model, method}`` where ``hr`` is the hazard ratio of full
    versus no attainment.
    """
    require_goals(ds)
    ep = panel if panel is not None else episodes(ds, lag_days=lag_days)
    cov, names, warnings = account_covariates(ds, covariates)
    missing = ep["attainment"].isna().to_numpy()
    if missing.any():
        # months before an account's first goal are left out (it enters at its first goal: no immortal time)
        n_never = ep["account_id"].nunique() - ep.loc[~missing, "account_id"].nunique()
        if n_never:
            warnings.append(f"{n_never} accounts never recorded a goal and were left out of the attainment models.")
    ep = model_frame(ep, ["attainment"], rows=~missing, covariates=cov)
    require_events(ep, "event", "time-varying model", minimum=2)
    require_variation(ep, "attainment", "time-varying model")
    strata = strata_of(ep)
    fit = engine.panel(ep, ["attainment", *names], strata)
    discrete = fit.method == "discrete_cloglog"
    if discrete:
        method = (f"discrete-time proportional hazards (cloglog GLM on {len(ep):,} account-months, more than the "
                  f"Cox limit of {engine.cox_max_rows:,}), spline baseline in tenure, robust SE by account")
    else:
        method = "Cox, counting process (start, stop], Efron ties, robust SE by account"
    out = effect(fit)
    out.update({"n_accounts": int(ep["account_id"].nunique()), "n_events": int(ep["event"].sum()),
                "n_rows": int(len(ep)), "covariates": names, "stratified_by": strata, "lag_days": int(lag_days),
                "warnings": warnings, "model": "discrete" if discrete else "cox", "method": method})
    return fit, out


def landmark_effect(ds: "Dataset", landmark_days: float, *, covariates: Sequence[str] | None = None,
                    lag_days: int = 0, threshold: float = 1.0,
                    engine: Engine = DEFAULT_ENGINE) -> tuple[Fit, dict]:
    """Cox model of churn after ``landmark_days`` on attainment at the landmark, among accounts active then.

    Returns the :class:`~csresearch.survival.Fit` and ``{landmark_days, hr, ci_low, ci_high, p, n_at_risk, n_events, ...}``.
    """
    lm = landmark_table(ds, landmark_days, lag_days=lag_days, threshold=threshold)
    if len(lm) == 0:
        raise AnalysisError(f"landmark {landmark_days:g} days: no account was still active then")
    cov, names, warnings = account_covariates(ds, covariates)
    lm = lm.join(cov, on="account_id")
    require_events(lm, "event", f"landmark {landmark_days:g} days", minimum=2)
    require_variation(lm, "attainment", f"landmark {landmark_days:g} days")
    entry = "entry_after" if (lm["entry_after"] > 0).any() else None
    fit = engine.cox(lm, "time", "event", ["attainment", *names], entry=entry, strata=strata_of(lm))
    out = {"landmark_days": float(landmark_days), **effect(fit), "n_at_risk": int(len(lm)),
           "n_events": int(lm["event"].sum()), "covariates": names, "stratified_by": strata_of(lm),
           "warnings": warnings}
    return fit, out


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
    """The attainment effect by analysis, one row each (time-varying, landmarks, naive), for a forest plot."""
    rows = []
    if effect_record["time_varying"].get("hr") is not None:
        rows.append({"label": "time-varying (headline)", **{k: effect_record["time_varying"][k] for k in EFFECT_KEYS}})
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
    kw = {"covariates": ctx["covariates"], "lag_days": ctx["lag_days"], "engine": ctx.engine}

    def attempt(what: str, fn):
        try:
            return fn()[1]
        except (AnalysisError, ValueError) as exc:
            res.warnings.append(f"{what} could not be estimated: {exc}.")
            return None

    tv = attempt("The time-varying attainment effect", lambda: time_varying_effect(ctx.ds, panel=ctx.panel, **kw))
    effect_record = {"time_varying": tv or _empty_effect(res.warnings[-1])}
    landmarks = []
    for days in ctx["landmark_days"]:
        lm = attempt(f"The landmark analysis at {days} days",
                     lambda days=days: landmark_effect(ctx.ds, days, threshold=ctx["attainment_threshold"], **kw))
        landmarks.append(lm or {"landmark_days": float(days), "n_at_risk": None, **_empty_effect(res.warnings[-1])})
    effect_record["landmark"] = landmarks[0]
    effect_record["landmarks"] = landmarks
    nv = attempt("The naive analysis", lambda: naive_effect(ctx.ds, covariates=ctx["covariates"], engine=ctx.engine))
    effect_record["naive"] = nv or _empty_effect(res.warnings[-1])
    res.record = {"attainment_effect": effect_record}

    table = effects_table(effect_record)
    if len(table):
        res.tables["effects"] = table
        res.figures.append(Figure("effects", lambda: plots.forest(
            table, title="Hazard ratio, full versus no attainment: three analyses"),
            alt="Forest plot of the hazard ratio of full versus no attainment in the headline, landmark and naive "
                "analyses, with confidence intervals"))
    res.findings = [headline_finding(ctx, effect_record["time_varying"]),
                    landmark_finding(ctx, effect_record["landmark"])]
    if tv and nv:
        res.highlights.append(
            f"**The trap avoided.** Using each account's *final* attainment as if it had been known from the start "
            f"would claim a hazard ratio of {nv['hr']:.2f} — {'an exaggeration' if nv['hr'] < tv['hr'] else 'a distortion'}: "
            "accounts that left early simply had less time to make progress (immortal-time bias).")
    return res


def headline_finding(ctx: "StudyContext", tv: dict):
    adjusted = (" within each segment" if tv.get("stratified_by") else "") + \
               (" and ARR" if "log_arr" in (tv.get("covariates") or []) else "")
    return judge(CLAIM, estimate=tv.get("hr"), ci_low=tv.get("ci_low"), ci_high=tv.get("ci_high"), null=1.0,
                 direction="below", level=ctx.level, method=tv.get("method", "time-varying proportional hazards"),
                 reason=tv.get("not_estimated"), describe=lambda *_: {"adjusted": adjusted})


def landmark_finding(ctx: "StudyContext", lm: dict):
    return judge(LANDMARK_CLAIM, estimate=lm.get("hr"), ci_low=lm.get("ci_low"), ci_high=lm.get("ci_high"), null=1.0,
                 direction="below", level=ctx.level,
                 method=f"Cox on attainment at {lm['landmark_days']:.0f} days, accounts active then",
                 reason=lm.get("not_estimated"),
                 describe=lambda *_: {"n_at_risk": lm["n_at_risk"], "days": lm["landmark_days"]})
