"""The attainment models: churn on attainment as known at each month's start, at a landmark, and (biased) at the end.

Tidy frames in, a fitted model (:class:`~csresearch.survival.Fit`) and a plain dict out. The analyses
(:mod:`csresearch.analyses`) choose among these and word their findings; lessons call them directly.

* :func:`attainment_frame` — the model frame: rows with attainment known (and usage, when adjusting), account
  covariates, ``log_<metric>`` (last month's usage) and ``hist_<metric>`` (the mean of the months so far).
* :func:`time_varying_effect` — the headline: a proportional-hazards model of churn on *current* attainment,
  hazard ratio for full versus no attainment, robust standard errors clustered by account; with ``usage_metrics``
  also adjusted for usage (lagged, time-varying), which carries the engagement that drives both usage and
  progress. Across segments, stratified by segment.
* :func:`proportional_hazards_check` — does the effect change with tenure? (attainment x log tenure)
* :func:`landmark_effect` — attainment at ``L`` days of tenure versus churn in a fixed window after ``L``, among
  accounts still active at ``L``: free of immortal time because nobody is classified by the future; the contrast is
  limited to attainment levels enough accounts had reached by then.
* :func:`comparison_frame` — the account-months on which usage and outcomes are compared head to head.
* :func:`naive_effect` — final attainment used as if it had been known from the start. It is *immortal-time
  biased*: an account that churned early had little time to make progress, so low attainment is partly a
  consequence of churning early, not its cause. Computed only to show the size of that bias.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .attainment import account_attainment, episodes
from .cohorts import survival_table
from .landmarks import landmark_table
from .models import (DEFAULT_ENGINE, AnalysisError, Engine, account_covariates, count_accounts, effect, goal_progress,
                     model_frame, require_events, require_goals, require_variation, strata_of, usage_features,
                     usage_history)
from .survival import Fit

if TYPE_CHECKING:
    from .data import Dataset

NAIVE_LABEL = "immortal-time biased: final attainment treated as known from the start"
#: attainment levels a landmark contrast may stop at
LEVELS = tuple(round(x, 1) for x in np.arange(0.1, 1.01, 0.1))


def contrast_words(level: float) -> str:
    """"that had fully reached their goals" or "40% of the way to their goals"."""
    return "that had fully reached their goals" if level >= 1 else f"{level:.0%} of the way to their goals"


# ---------------------------------------------------------------------------------------------------------
def attainment_frame(ds: "Dataset", panel: pd.DataFrame, covariates, usage_metrics, extra: Sequence[str] = ()):
    """The model frame of the attainment models: rows with attainment (and usage, when adjusting), covariates,
    ``log_<metric>`` usage features. Returns ``(frame, covariate names, usage feature names, warnings)``."""
    cov, names, warnings = account_covariates(ds, covariates)
    missing = panel["attainment"].isna().to_numpy()
    if missing.any():
        # months before an account's first goal are left out (it enters at its first goal: no immortal time)
        n_never = count_accounts(panel) - count_accounts(panel, ~missing)
        if n_never:
            warnings.append(f"{n_never} accounts never recorded a goal and were left out of the attainment models.")
    usage_cols: list[str] = []
    if usage_metrics:
        usage_cols = [f"usage_{m}" for m in usage_metrics if f"usage_{m}" in panel.columns]
        if not usage_cols:
            raise AnalysisError("the panel has none of the usage metrics to adjust for")
        missing |= panel[usage_cols].isna().any(axis=1).to_numpy()
    frame = model_frame(panel, ["attainment", *extra, *usage_cols], rows=~missing, covariates=cov)
    metrics = [c[6:] for c in usage_cols]
    features = [*usage_features(frame, metrics), *usage_history(frame, metrics)] if usage_cols else []
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
    ep, names, features, warnings = attainment_frame(ds, ep, covariates, usage_metrics)
    require_events(ep, "event", "time-varying model", minimum=2)
    require_variation(ep, "attainment", "time-varying model")
    strata = strata_of(ep)
    terms = ["attainment", *names, *features]
    fit = engine.panel(ep, terms, strata)
    discrete = fit.method == "discrete_cloglog"
    if discrete:
        method = (f"discrete-time proportional hazards (cloglog GLM on {len(ep):,} account-months, more than the "
                  f"Cox limit of {engine.cox_max_rows:,}), log-exposure offset for partial months, spline baseline in "
                  "tenure, robust SE by account")
    else:
        method = "Cox, counting process (start, stop], Efron ties, robust SE by account"
    if features:
        method += (f"; adjusted for usage ({', '.join(f[4:] for f in features if f.startswith('log_'))}): last "
                   "month's and the mean of the months so far")
    att = ep["attainment"].to_numpy()
    groups = {"with goals reached": count_accounts(ep, att >= threshold),
              "with no progress": count_accounts(ep, att <= 0)}
    out = effect(fit)
    out.update({"se_naive": _naive_se(fit), "n_accounts": count_accounts(ep),
                "n_events": int(ep["event"].sum()), "n_rows": int(len(ep)), "n_params": len(terms), "groups": groups,
                "covariates": names, "usage_adjusted_for": [f[4:] for f in features if f.startswith("log_")], "stratified_by": strata,
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
    ep, names, features, _ = attainment_frame(ds, panel, covariates, usage_metrics)
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
                    window_days: float | None = None, min_group_accounts: int = 20, panel: pd.DataFrame | None = None,
                    usage_metrics: Sequence[str] | None = None) -> tuple[Fit, dict]:
    """Cox model of churn after ``landmark_days`` on attainment at the landmark, among accounts active then.

    Follow-up is censored ``window_days`` after the landmark (None: until the data ends). The model is linear in
    attainment; its contrast is reported up to the highest level of :data:`LEVELS` that at least
    ``min_group_accounts`` accounts had reached by the landmark (``contrast_to``; 1 when enough had fully reached
    their goals), against no progress, which needs as many accounts: a contrast beyond the data would be an
    extrapolation. Below that ``contrast`` is None and ``contrast_reason`` says why. With ``panel`` and ``usage_metrics`` the model also holds
    the usage known at the landmark (the panel row that covers it: last month's usage and the mean so far);
    accounts without it are left out.

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
    features: list[str] = []
    if panel is not None and usage_metrics:
        at_landmark, features = _usage_at(panel, usage_metrics, landmark_days)
        lm = lm.join(at_landmark, on="account_id", how="inner")
    require_events(lm, "event", f"landmark {landmark_days:g} days", minimum=2)
    require_variation(lm, "attainment", f"landmark {landmark_days:g} days")
    att = lm["attainment"].to_numpy()
    n_none = int((att <= 0).sum())
    reached = {lv: int((att >= lv - 1e-9).sum()) for lv in LEVELS}
    top = max((lv for lv, n in reached.items() if n >= min_group_accounts), default=None)
    contrast_reason = None
    if top is None or n_none < min_group_accounts:
        who = (f"{n_none} accounts with no progress" if n_none < min_group_accounts else
               f"{reached[LEVELS[0]]} accounts a tenth of the way to their goals")
        contrast_reason = (f"only {who} by day {landmark_days:g}, fewer than the {min_group_accounts} a comparison "
                           "needs")
    entry = "entry_after" if (lm["entry_after"] > 0).any() else None
    fit = engine.cox(lm, "time", "event", ["attainment", *names, *features], entry=entry, strata=strata_of(lm))
    out = {"landmark_days": float(landmark_days), "window_days": None if window_days is None else float(window_days),
           **effect(fit)}
    z = stats.norm.ppf(1 - engine.alpha / 2)
    if contrast_reason is None:
        out["contrast"] = {"to": top, "hr": math.exp(out["coef"] * top),
                           "ci_low": math.exp((out["coef"] - z * out["se"]) * top),
                           "ci_high": math.exp((out["coef"] + z * out["se"]) * top), "accounts_at_level": reached[top],
                           "accounts_none": n_none}
    else:
        out["contrast"], out["contrast_reason"] = None, contrast_reason
        top = 1.0
    window = "until the data ends" if window_days is None else f"in the {window_days:g} days after it"
    out.update({"n_at_risk": int(len(lm)), "n_events": int(lm["event"].sum()), "covariates": names,
                "usage_adjusted_for": [f[4:] for f in features if f.startswith("log_")],
                "n_params": 1 + len(names) + len(features),
                "stratified_by": strata_of(lm), "warnings": warnings,
                "estimand": (f"among accounts still active at day {landmark_days:g}, the hazard ratio of churn {window} "
                             f"for accounts {contrast_words(top)} by that day against accounts with no progress then"
                             + (", adjusted for " + ", ".join("ARR (log)" if n == "log_arr" else n for n in names)
                                if names else "")
                             + (" and the product usage known then" if features else "")
                             + (", within segments" if strata_of(lm) else ""))})
    return fit, out


def _usage_at(panel: pd.DataFrame, metrics: Sequence[str], days: float) -> tuple[pd.DataFrame, list[str]]:
    """Per account, the usage features of the panel row that covers tenure ``days`` (indexed by account_id)."""
    cols = [f"usage_{m}" for m in metrics if f"usage_{m}" in panel.columns]
    if not cols:
        raise AnalysisError("the panel has none of the usage metrics to adjust for")
    frame = model_frame(panel, cols)
    names = [*usage_features(frame, [c[6:] for c in cols]), *usage_history(frame, [c[6:] for c in cols])]
    cover = (frame["start"] < days) & (frame["stop"] >= days)
    rows = frame.loc[cover, ["account_id", *names]].dropna().drop_duplicates("account_id")
    return rows.set_index("account_id"), names


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


def comparison_frame(ds: "Dataset", *, usage_metrics: Iterable[str] | None = None, lag_days: int = 0,
                     panel: pd.DataFrame | None = None, covariates: pd.DataFrame | None = None
                     ) -> tuple[pd.DataFrame, list[str]]:
    """The account-months on which usage and outcomes are compared: rows where attainment and every usage metric
    are known, as a lean model frame (:func:`csresearch.models.model_frame`, with the columns of ``covariates``
    when given) with ``log(1 + usage)`` features. Returns ``(frame, usage feature names)``.

    Usage is that of the last completed period before the interval, so an account's first month has none and is
    left out: every model compared on these rows sees identical data.
    """
    require_goals(ds)
    ep = panel if panel is not None else episodes(ds, lag_days=lag_days)
    if not any(c.startswith("usage_") for c in ep.columns):
        raise AnalysisError("the dataset has no usage table, so usage cannot be compared with outcomes")
    usage_cols = [c for c in ep.columns if c.startswith("usage_")]
    if usage_metrics is not None:
        usage_cols = [f"usage_{m}" for m in usage_metrics if f"usage_{m}" in ep.columns]
    keep = ep[["attainment", *usage_cols]].notna().all(axis=1).to_numpy()
    rows = np.flatnonzero(keep)
    raw = pd.DataFrame({c: ep[c].to_numpy()[rows] for c in usage_cols}, copy=False)
    names = usage_features(raw, usage_metrics)  # log(1 + usage) columns, and the check of the metric names
    frame = model_frame(ep, ["attainment"], rows=keep, covariates=covariates)
    for name in names:
        frame[name] = raw[name].to_numpy()
    return frame, names
