"""The attainment models: churn on attainment as known at each month's start, at a landmark, and (biased) at the end.

Tidy frames in, a fitted model (:class:`~csresearch.survival.Fit`) and a plain dict out. The analyses
(:mod:`csresearch.analyses`) choose among these and word their findings; lessons call them directly.

* :func:`attainment_frame` — the model frame (:class:`AttainmentFrame`), shared by the models fitted on it: rows
  with attainment known (and usage, when adjusting), account covariates, ``log_<metric>`` (last month's usage) and
  ``hist_<metric>`` (the mean of the months so far).
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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .attainment import account_attainment, episodes
from .cohorts import survival_table
from .landmarks import landmark_table
from .models import (DEFAULT_ENGINE, AnalysisError, Engine, account_codes, account_covariates, count_accounts, effect,
                     goal_progress, model_frame, require_events, require_goals, require_usage, require_variation,
                     strata_of, usage_features, usage_history)
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
@dataclass(frozen=True)
class AttainmentFrame:
    """The model frame of the attainment models (:func:`attainment_frame`), built once and read by every model fitted
    on it: ``data``, the lean copy of the panel's rows with attainment (and usage, when adjusting) known; the account
    ``covariates`` and usage ``features`` it holds (``log_<metric>``, last month's usage, then ``hist_<metric>``, the
    mean of the months so far); the ``usage`` metrics it adjusts for; why covariates were left out
    (``covariate_warnings``) and how many accounts never recorded a goal (``never_goal``).

    One frame serves the headline with usage, the proportional-hazards check, the dose-response, each segment's
    effect, the usage-versus-outcome comparison and the cross-validation (:meth:`StudyContext.model_frame
    <csresearch.context.StudyContext.model_frame>`): on a large book each copy of the panel is gigabytes. It is
    shared, so nothing writes into ``data``: a model that needs more columns adds them to :meth:`with_columns`."""

    data: pd.DataFrame
    covariates: list[str]
    features: list[str]
    usage: list[str]
    covariate_warnings: list[str]
    never_goal: int = 0

    @property
    def warnings(self) -> list[str]:
        """Why covariates or accounts were left out, in plain words."""
        out = list(self.covariate_warnings)
        if self.never_goal:
            out.append(f"{self.never_goal} accounts never recorded a goal and were left out of the attainment models.")
        return out

    @property
    def last_usage(self) -> list[str]:
        """The ``log_<metric>`` features: last completed period's usage, the usage model's covariates."""
        return [f for f in self.features if f.startswith("log_")]

    def with_usage_features(self) -> "AttainmentFrame":
        """The frame with its usage metrics' features (:func:`~csresearch.models.usage_features`, then
        :func:`~csresearch.models.usage_history`), added to ``data`` itself: the second step of
        :func:`attainment_frame`, on a frame not yet shared. A frame that has them, or has no usage, is itself."""
        if self.features or not self.usage:
            return self
        return replace(self, features=[*usage_features(self.data, self.usage), *usage_history(self.data, self.usage)])

    def without_raw_usage(self) -> "AttainmentFrame":
        """The frame without the panel's ``usage_<metric>`` columns its features were computed from, deleted from
        ``data`` itself (each is a column of its own: its memory goes; at a million accounts about 0.15 GB a
        metric): the models read the ``log_``/``hist_`` features. For a frame not yet shared."""
        if not self.features:
            return self
        for c in [f"usage_{m}" for m in self.usage]:
            if c in self.data.columns:
                del self.data[c]
        return self

    def with_columns(self, **columns: np.ndarray) -> pd.DataFrame:
        """``data`` plus ``columns``, in a shallow copy: the frame's arrays are shared, not copied, and stay unwritten."""
        out = self.data.copy(deep=False)
        for name, values in columns.items():
            out[name] = values
        return out

    def subset(self, rows: np.ndarray, ds: "Dataset", covariates: Sequence[str] | None) -> "AttainmentFrame":
        """The frame of part of the data (one segment's accounts ``ds``) from its ``rows``, a boolean mask: the rows,
        and the covariates of ``covariates`` that vary there (:func:`csresearch.models.account_covariates` of
        ``ds``). Every feature is per account, so the part's frame built from its own panel is the same (but for
        the raw usage columns a study's frame has let go, :meth:`without_raw_usage`)."""
        _, names, warnings = account_covariates(ds, covariates)
        data = pd.DataFrame({c: self.data[c].to_numpy()[rows] for c in self.data.columns}, copy=False)
        return replace(self, data=data, covariates=names, covariate_warnings=warnings, never_goal=0)


def attainment_frame(ds: "Dataset", panel: pd.DataFrame, covariates: Sequence[str] | None,
                     usage_metrics: Sequence[str] | None) -> AttainmentFrame:
    """The model frame of the attainment models (:class:`AttainmentFrame`): the panel's rows with attainment known
    (and every metric of ``usage_metrics`` known, when adjusting), the account ``covariates``
    (:func:`csresearch.models.account_covariates`), ``log_<metric>`` and ``hist_<metric>`` usage features. A metric
    the panel does not have is an :class:`~csresearch.models.AnalysisError`.

    It is :func:`attainment_rows` then :meth:`AttainmentFrame.with_usage_features`: a study that lets its panel go
    once the frame is built lets it go between the two (:meth:`csresearch.context.StudyContext.model_frame`, which
    then lets the raw usage columns go as well: :meth:`AttainmentFrame.without_raw_usage`)."""
    return attainment_rows(ds, panel, covariates, usage_metrics).with_usage_features()


def attainment_rows(ds: "Dataset", panel: pd.DataFrame, covariates: Sequence[str] | None,
                    usage_metrics: Sequence[str] | None) -> AttainmentFrame:
    """The first step of :func:`attainment_frame`, the only one that reads the panel: its rows copied, with the
    account covariates, and no usage feature yet (``features`` empty). At 1M accounts the panel is 2 GB and
    adding the usage features takes 1-2 GB more: a panel let go between the steps never meets that work."""
    cov, names, warnings = account_covariates(ds, covariates)
    missing = panel["attainment"].isna().to_numpy()
    n_never = 0
    if missing.any():
        # months before an account's first goal are left out (it enters at its first goal: no immortal time)
        n_never = count_accounts(panel) - count_accounts(panel, ~missing)
    metrics = list(usage_metrics or [])
    require_usage(panel.columns, metrics)
    usage_cols = [f"usage_{m}" for m in metrics]
    for c in usage_cols:  # one column at a time (a frame of all of them would be a copy)
        missing |= np.isnan(panel[c].to_numpy(np.float64))
    frame = model_frame(panel, ["attainment", *usage_cols], rows=~missing, covariates=cov)
    return AttainmentFrame(frame, names, [], metrics, warnings, n_never)


def time_varying_effect(ds: "Dataset", *, covariates: Sequence[str] | None = None, lag_days: int = 0,
                        panel: pd.DataFrame | None = None, engine: Engine = DEFAULT_ENGINE,
                        usage_metrics: Sequence[str] | None = None, threshold: float = 1.0,
                        frame: AttainmentFrame | None = None) -> tuple[Fit, dict]:
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

    ``frame``, an :class:`AttainmentFrame` already built (by a study, shared by its models), is fitted as it is;
    ``panel``, ``covariates`` and ``usage_metrics`` then play no part.
    """
    require_goals(ds)
    if frame is None:
        frame = attainment_frame(ds, panel if panel is not None else episodes(ds, lag_days=lag_days), covariates,
                                 usage_metrics)
    ep, names, features, warnings = frame.data, frame.covariates, frame.features, frame.warnings
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


def proportional_hazards_check(ds: "Dataset", *, covariates: Sequence[str] | None = None,
                               panel: pd.DataFrame | None = None, engine: Engine = DEFAULT_ENGINE,
                               usage_metrics: Sequence[str] | None = None,
                               frame: AttainmentFrame | None = None) -> dict:
    """Does the attainment effect change with tenure? The headline model plus ``attainment x log2(tenure)``.

    Tenure is months since the start plus one, at each interval's start, centred at its mean so the main effect
    stays the effect at average tenure. Returns ``{ratio_per_doubling, ci_low, ci_high, p, n_rows, n_events}``:
    the factor by which the hazard ratio of full versus no attainment changes per doubling of tenure (1: it does not
    change: proportional hazards hold). The model is fitted on ``frame`` when given (:func:`time_varying_effect`),
    else on the attainment frame of ``panel``.
    """
    if frame is None:
        if panel is None:
            raise TypeError("proportional_hazards_check needs the panel or an attainment frame")
        frame = attainment_frame(ds, panel, covariates, usage_metrics)
    require_events(frame.data, "event", "proportional-hazards check", minimum=5)
    log_t = np.log2(frame.data["tenure_months"].to_numpy() + 1.0)
    ep = frame.with_columns(attainment_x_log2_tenure=frame.data["attainment"].to_numpy() * (log_t - log_t.mean()))
    fit = engine.panel(ep, ["attainment", "attainment_x_log2_tenure", *frame.covariates, *frame.features],
                       strata_of(ep))
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
    """Per account, the usage features of the panel row that covers tenure ``days`` (indexed by account_id): the
    ``log_<metric>`` and ``hist_<metric>`` that :func:`csresearch.models.usage_features` and
    :func:`csresearch.models.usage_history` give that row, accounts with any of them missing left out.

    The rows up to the covering one are the account's rows that start before ``days`` (rows do not overlap), so
    the mean so far is one sum and one count per account over those rows: no copy of the panel is made (at a million
    accounts that copy, with its features, was gigabytes per landmark)."""
    cols = [f"usage_{m}" for m in metrics if f"usage_{m}" in panel.columns]
    if not cols:
        raise AnalysisError("the panel has none of the usage metrics to adjust for")
    start = panel["start"].to_numpy()
    before = start < days
    cover = np.flatnonzero(before & (panel["stop"].to_numpy() >= days))
    codes = account_codes(panel)
    size = int(codes.max()) + 1 if len(codes) else 0
    at = codes[cover]
    last, mean = {}, {}
    for c in cols:
        v = panel[c].to_numpy(dtype=float)
        known = before & ~np.isnan(v)
        total = np.bincount(codes[known], weights=v[known], minlength=size)[at]
        count = np.bincount(codes[known], minlength=size)[at]
        last[f"log_{c[6:]}"] = np.log1p(np.clip(v[cover], 0, None))
        mean[f"hist_{c[6:]}"] = np.log1p(np.clip(np.divide(total, count, out=np.full(len(at), np.nan),
                                                           where=count > 0), 0, None))
    rows = pd.DataFrame({"account_id": panel["account_id"].to_numpy()[cover], **last, **mean}).dropna()
    return rows.drop_duplicates("account_id").set_index("account_id"), [*last, *mean]


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
                     panel: pd.DataFrame | None = None, covariates: Sequence[str] | None = None) -> AttainmentFrame:
    """The account-months on which usage and outcomes are compared: the attainment frame (:func:`attainment_frame`)
    adjusted for ``usage_metrics`` (every usage metric of the panel when None), so its rows are those where
    attainment and every usage metric are known; :attr:`AttainmentFrame.last_usage` names the ``log(1 + usage)``
    features.

    Usage is that of the last completed period before the interval, so an account's first month has none and is
    left out: every model compared on these rows sees identical data.
    """
    require_goals(ds)
    ep = panel if panel is not None else episodes(ds, lag_days=lag_days)
    present = [c[6:] for c in ep.columns if c.startswith("usage_")]
    if not present:
        raise AnalysisError("the dataset has no usage table, so usage cannot be compared with outcomes")
    return attainment_frame(ds, ep, covariates, present if usage_metrics is None else list(usage_metrics))
