"""Usage versus outcomes out of sample: cross-validated discrimination (C-index, time-dependent AUC) and calibration.

This analysis decides the study's second question, ``outcomes_vs_usage``: does goal attainment rank churn risk
better than product usage on accounts the models have not seen?
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .. import plots
from .. import tables
from ..cohorts import survival_table
from ..findings import Claim, judge, not_estimable
from ..models import DEFAULT_ENGINE, AnalysisError, Engine, count_accounts, ever_churned, strata_of
from ..result import Figure, Result, Shown
from ..survival import (bootstrap_concordance, breslow_baseline, brier_score, calibration_fit, calibration_table,
                        concordance, cumulative_dynamic_auc, cumulative_hazard_at, fit_cox, fit_km, grouped_folds)
from ._gates import usage_and_goals_reason
from ..attainment_models import AttainmentFrame, comparison_frame

if TYPE_CHECKING:
    from ..context import StudyContext
    from ..data import Dataset

NAME = "discrimination"
TITLE = "Usage versus outcomes, out of sample"
INTRO = ("Which ranks churn risk better on accounts a model has not seen: last month's usage or goal attainment? Each "
         "model is fitted on four fifths of the accounts and ranks the fifth it did not see, five times over, so no "
         "account is ranked by a model that learned from it.")

#: folds of the cross-validation
FOLDS = 5
#: account resamples behind every interval of this analysis
N_BOOT = 1000
#: fewer churn events than this on the compared rows: no cross-validation
MIN_EVENTS = 10
#: more account-months than this: the cross-validation runs on a seeded random sample of accounts (its 24 model
#: fits on every month of a book of a million accounts would take longer than the rest of the study)
CV_MAX_ROWS = 2_000_000
#: horizons of the time-dependent AUC, in months after the first landmark
AUC_MONTHS = (3, 6, 12)
#: horizon of the calibration, in months after the first landmark
CALIBRATION_MONTHS = 12
MODELS = ("baseline", "usage", "attainment", "both")
METHOD = (f"{FOLDS}-fold cross-validation grouped by account; intervals from the account bootstrap of the "
          "out-of-fold scores plus a delete-a-fold jackknife of the fitted models (estimation error)")


def horizon_days(months: int) -> int:
    """A horizon of ``months`` in whole days (3 -> 91, 6 -> 183, 12 -> 365)."""
    return int(round(months * 365.25 / 12))


CLAIM = Claim(
    "outcomes_vs_usage",
    supported=("Outcomes rank churn risk better than usage.",
               "On accounts the models had not seen, outcome attainment ranks churn risk at C = {c_attainment:.3f} "
               "and usage at C = {c_usage:.3f} (both together {c_both:.3f}; 0.5 is a coin toss, 1 a perfect ranking): "
               "attainment ranks better by ΔC = {estimate:+.3f} ({ci3})."),
    not_supported=("Usage ranks churn risk better than outcomes.",
                   "On accounts the models had not seen, usage ranks churn risk at C = {c_usage:.3f} and outcome "
                   "attainment at C = {c_attainment:.3f} (both together {c_both:.3f}; 0.5 is a coin toss): usage ranks "
                   "better by {gap:.3f} (ΔC = {estimate:+.3f}, {ci3})."),
    cannot_tell=("The data cannot tell whether outcomes rank churn risk better than usage.",
                 "On accounts the models had not seen, outcome attainment ranks churn risk at C = {c_attainment:.3f} "
                 "and usage at C = {c_usage:.3f} (both together {c_both:.3f}; 0.5 is a coin toss); the difference "
                 "could be nothing: the data cannot tell which ranks better (ΔC interval {lo:+.3f} to {hi:+.3f}, "
                 "{level} CI)."),
    not_estimable=("Usage and outcomes could not be compared.", "Not estimated: {reason}."),
)


# ---------------------------------------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------------------------------------
def cross_validated(ds: "Dataset", *, panel: pd.DataFrame | None = None, usage_metrics: Iterable[str] | None = None,
                    covariates: Sequence[str] | None = None, lag_days: int = 0, engine: Engine = DEFAULT_ENGINE,
                    seed: int = 2026, folds: int = FOLDS, landmark_days: float = 90, n_boot: int = N_BOOT,
                    survival: pd.DataFrame | None = None, max_rows: int = CV_MAX_ROWS,
                    frame: AttainmentFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Out-of-sample C-index, time-dependent AUC and calibration of four churn models on the same account-months.

    The rows are those of :func:`csresearch.analyses.usage_vs_outcome` (attainment and usage known). Every model
    has the **baseline** of segment (strata when several), tenure (the time scale) and the account
    ``covariates`` (:func:`csresearch.models.account_covariates`, default log ARR): ``baseline`` alone,
    ``usage`` (+ log usage), ``attainment`` (+ attainment) and ``both``. Accounts are dealt to ``folds`` folds
    (seeded, every month of an account in one fold, churned accounts spread evenly); each model is fitted on
    the other folds and its linear predictor scores the held-out rows. On the pooled out-of-fold scores:

    * Harrell's C within segments per model and ``ΔC = C(attainment) - C(usage)``, with normal intervals whose
      variance adds two sources of error: which accounts the C is measured on (an account bootstrap of the pooled
      out-of-fold scores, :func:`csresearch.survival.bootstrap_concordance`, ``n_boot`` resamples, scores held
      fixed) and which accounts the coefficients were estimated from (the ``folds`` fold models are a
      delete-a-fold jackknife of the fit: each scores every row, and ``(K - 1) / K`` times the sum of squared
      deviations of their C estimates that variance). The bootstrap alone held the scores fixed and covered a
      null ΔC in about 92% of worlds (benchmarks/bench_verdicts.py); and the in-sample C of the same models
      fitted on all rows, for the optimism of scoring on the fitting data;
    * the cumulative/dynamic AUC (:func:`csresearch.survival.cumulative_dynamic_auc`) 3, 6 and 12 months after
      ``landmark_days`` of tenure, among accounts active then, from each account's score on its row that
      covers the landmark;
    * on the Cox path, the calibration of the combined model's predicted churn in the 12 months after the
      landmark: 1 - exp(-[H0(L + 365) - H0(L)] exp(lp)) with the Breslow baseline (per stratum) of the
      training folds; intercept, slope, Brier score (and the Brier of predicting everyone the Kaplan-Meier
      risk) and a table by tenths of predicted risk. The discrete-time model's baseline is a spline whose
      absolute level is not a cumulative hazard this module reads, so calibration is not estimated there.

    Above ``max_rows`` account-months, all of this runs on a seeded random sample of accounts (every month of
    each) small enough to fit; ``sample`` says how many. Without covariates the baseline model knows nothing
    that differs within a risk set: it is not fitted and its C is 0.5 by construction. Models are fitted as
    :meth:`csresearch.models.Engine.panel` chooses (Cox, or the discrete-time model above the engine's row
    limit); on the Cox path with the numpy engine and no robust variance (the same coefficients, a fraction of
    the time: only the linear predictor is used).

    Returns the tidy frame ``model, c_index, ci_low, ci_high, in_sample, optimism`` and a dict: ``method, folds,
    seed, bootstrap, sample, n_rows, n_events, n_accounts, model, stratified_by, covariates, usage_metrics,
    c_index, c_index_ci, in_sample, optimism, delta_c, landmark_days, n_landmark, warnings``, ``td_auc_table``
    (a frame ``model, months, time, auc, cases, controls``) and ``calibration`` (``intercept, slope, brier,
    brier_null, ...`` and its ``table`` frame, or ``not_estimated``). :func:`record` turns it into the
    results.json entry with the privacy rule applied. ``frame``, the comparison frame already built (a study's
    shared :class:`~csresearch.attainment_models.AttainmentFrame`), stands for ``panel``, ``usage_metrics``,
    ``covariates`` and ``lag_days``.
    """
    if frame is None:
        frame = comparison_frame(ds, usage_metrics=usage_metrics, lag_days=lag_days, panel=panel,
                                 covariates=covariates)
    cov_names, usage_names, warnings = frame.covariates, frame.last_usage, list(frame.covariate_warnings)
    ep, sample = _sampled(frame.data, max_rows, seed)
    n_events = int(ep["event"].sum())
    if n_events < MIN_EVENTS:
        raise AnalysisError(f"out-of-sample comparison: {n_events} churn events with usage and attainment known, "
                            f"fewer than the {MIN_EVENTS} needed")
    strata = strata_of(ep)
    varying = {c for c in [*cov_names, *usage_names, "attainment"] if ep[c].nunique() > 1}
    for model, cols in (("usage", usage_names), ("attainment", ["attainment"])):
        if not varying & set(cols):
            raise AnalysisError(f"out-of-sample comparison: the {model} model has no varying covariate")
    base = [c for c in cov_names if c in varying]
    usage = [c for c in usage_names if c in varying]
    specs = {"baseline": base, "usage": [*base, *usage], "attainment": [*base, "attainment"],
             "both": [*base, *usage, "attainment"]}
    churned = ever_churned(ep)
    fold = grouped_folds(ep["account_id"], folds, seed, balance=churned)
    for k in range(folds):
        if not ep["event"].to_numpy()[fold == k].any():
            raise AnalysisError(f"out-of-sample comparison: fold {k + 1} of {folds} has no churn event "
                                f"({n_events} events in all)")
    discrete = engine.is_discrete(len(ep))
    st = survival if survival is not None else survival_table(ds)
    lm = _landmark_rows(ep, st, landmark_days)
    horizon = horizon_days(CALIBRATION_MONTHS)
    oof, risk, by_fold = _out_of_fold(ep, specs, fold, engine, strata, discrete, lm["row"], landmark_days, horizon)
    in_sample = {m: (_in_sample(engine, ep, cols, strata, discrete) if cols else 0.5) for m, cols in specs.items()}
    scores = pd.DataFrame({m: oof[m] for m in MODELS if specs[m]})
    point, draws = bootstrap_concordance(ep, "stop", "event", scores, cluster="account_id", entry="start",
                                         strata=strata, n_boot=n_boot, seed=seed)
    jack = {m: np.array([concordance(ep, "stop", "event", sc, entry="start", strata=strata)["c_index"]
                         for sc in by_fold[m]]) for m in by_fold}
    table = _c_table(point, draws, in_sample, engine.alpha, jack)
    lm_frame = lm["frame"].assign(**{m: oof[m][lm["rows"]] for m in MODELS}, risk=risk[lm["rows"]])
    auc = _td_auc(lm_frame)
    if discrete:
        calibration = {"not_estimated": "calibration is computed on the Cox path only: the discrete-time model's "
                                        "baseline is not read as a cumulative hazard"}
    else:
        calibration = _calibration(lm_frame, horizon, engine.alpha)
        calibration.update(_attainment_drift(ep, lm, landmark_days, horizon))
    delta = (draws["attainment"] - draws["usage"]).to_numpy()
    delta_jack = jack["attainment"] - jack["usage"]
    info = {
        "method": METHOD, "folds": int(folds), "seed": int(seed), "bootstrap": int(n_boot), "sample": sample,
        "bootstrap_subsample": draws.attrs.get("subsample"),
        "n_rows": int(len(ep)), "n_events": n_events, "n_accounts": count_accounts(ep),
        "model": "discrete" if discrete else "cox", "stratified_by": strata, "covariates": base,
        "usage_metrics": [n[4:] for n in usage_names],
        "c_index": {r.model: float(r.c_index) for r in table.itertuples()},
        "c_index_ci": {r.model: {"ci_low": _num(r.ci_low), "ci_high": _num(r.ci_high)} for r in table.itertuples()},
        "in_sample": {m: float(v) for m, v in in_sample.items()},
        "optimism": {r.model: float(r.optimism) for r in table.itertuples()},
        "delta_c": {"estimate": float(point["attainment"] - point["usage"]),
                    **_interval(delta, engine.alpha, center=float(point["attainment"] - point["usage"]),
                                jackknife=delta_jack)},
        "landmark_days": float(landmark_days), "n_landmark": int(len(lm_frame)),
        "td_auc_table": auc, "calibration": calibration, "warnings": warnings,
    }
    return table, info


def _out_of_fold(ep, specs, fold, engine, strata, discrete, landmark_rows, landmark_days, horizon):
    """Each model fitted on the other folds and scoring every held-out row: ``({model: scores}, predicted risk,
    {model: [each fold model's scores of every row]})``, the predicted risk (Cox path only) of the combined model on
    the rows that cover the landmark; the last, a delete-a-fold jackknife of the fit, for the intervals."""
    oof = {m: np.zeros(len(ep)) for m in MODELS}
    by_fold: dict[str, list[np.ndarray]] = {m: [] for m, cols in specs.items() if cols}
    everyone = np.ones(len(ep), dtype=bool)
    risk = np.full(len(ep), np.nan)
    for k in np.unique(fold):
        test = fold == k
        train = ep.loc[~test]
        for model, cols in specs.items():
            if not cols:
                continue
            beta = _fit(engine, train, cols, strata, discrete)
            center = train[cols].mean().to_numpy()
            oof[model][test] = _score(ep, cols, beta, center, test)
            by_fold[model].append(_score(ep, cols, beta, center, everyone))  # this fold model on every row
            if model == "both" and not discrete:
                rows = test & landmark_rows
                risk[rows] = _predicted_risk(train, cols, beta, center, strata, ep, oof[model], rows, landmark_days,
                                             horizon)
        del train
    return oof, risk, by_fold


def _sampled(ep: pd.DataFrame, max_rows: int, seed: int) -> tuple[pd.DataFrame, dict | None]:
    """``ep``, or above ``max_rows`` rows a seeded random sample of its accounts with every month of each, and
    ``{accounts, of_accounts}`` (None when all accounts are used)."""
    if len(ep) <= max_rows:
        return ep, None
    ids = pd.unique(ep["account_id"])
    n = max(2, int(len(ids) * max_rows / len(ep)))
    keep = np.random.default_rng(seed).choice(ids, n, replace=False)
    return (ep[ep["account_id"].isin(keep).to_numpy()].reset_index(drop=True),
            {"accounts": int(n), "of_accounts": int(len(ids))})


def _fit(engine: Engine, frame: pd.DataFrame, cols: list[str], strata: str | None, discrete: bool) -> np.ndarray:
    """The coefficients of ``cols``: the engine's discrete-time model above its row limit, else Cox (numpy engine,
    no robust variance: the coefficients :meth:`Engine.panel` would give, without its standard errors)."""
    if discrete:
        fit = engine.panel(frame, cols, strata)
    else:
        fit = fit_cox(frame, "stop", "event", cols, entry="start", strata=strata, alpha=engine.alpha, engine="numpy")
    return fit.summary.loc[cols, "coef"].to_numpy(float)


def _score(frame: pd.DataFrame, cols: list[str], beta: np.ndarray, center: np.ndarray,
           rows: np.ndarray | None = None) -> np.ndarray:
    """The linear predictor (x - center)'beta of ``cols`` (on ``rows`` when given), column by column (no copy of
    the whole frame). A Cox linear predictor is defined only up to a constant (the baseline hazard absorbs it):
    centring on the training rows' means, as R's ``predict.coxph`` does, puts the scores of different folds on
    one scale, so that pooling them compares like with like (uncentred, log ARR of about 10 turns a small
    difference in a fold's coefficient into a shift of all its scores)."""
    out = 0.0
    for c, b, m in zip(cols, beta, center):
        x = frame[c].to_numpy(float)
        out = out + b * ((x if rows is None else x[rows]) - m)
    return np.asarray(out, dtype=float)


def _in_sample(engine, ep, cols, strata, discrete) -> float:
    beta = _fit(engine, ep, cols, strata, discrete)
    score = _score(ep, cols, beta, np.zeros(len(cols)))  # one fit: a constant shift changes no ranking
    return float(concordance(ep, "stop", "event", score, entry="start", strata=strata)["c_index"])


def _landmark_rows(ep: pd.DataFrame, st: pd.DataFrame, days: float) -> dict:
    """Each account active at ``days`` of tenure with its row covering it (start < days <= stop) and its follow-up
    after the landmark (``time``, ``event``) from the survival table; accounts that churned by then are out."""
    acc = st.set_index("account_id")
    pos = acc.index.get_indexer(ep["account_id"])
    duration = acc["duration"].to_numpy(float)[pos]
    covers = (ep["start"].to_numpy() < days) & (ep["stop"].to_numpy() >= days) & (duration > days) & (pos >= 0)
    rows = np.flatnonzero(covers)
    frame = pd.DataFrame({"segment": ep["segment"].to_numpy()[rows], "time": duration[rows] - days,
                          "event": acc["event"].to_numpy()[pos][rows].astype(int)})
    return {"row": covers, "rows": rows, "frame": frame}


def _predicted_risk(train, cols, beta, center, strata, ep, lp, rows, landmark_days, horizon) -> np.ndarray:
    """1 - exp(-[H0(L + h) - H0(L)] exp(lp)) for ``rows``, H0 the Breslow baseline of the training rows (with their
    linear predictor centred as ``lp`` is)."""
    base = breslow_baseline(train, "stop", "event", _score(train, cols, beta, center), entry="start", strata=strata)
    groups = None if strata is None else ep[strata].to_numpy()[rows]
    n = int(rows.sum())
    gain = (cumulative_hazard_at(base, np.full(n, landmark_days + horizon), groups)
            - cumulative_hazard_at(base, np.full(n, float(landmark_days)), groups))
    return 1.0 - np.exp(-gain * np.exp(lp[rows]))


def _attainment_drift(ep: pd.DataFrame, lm: dict, landmark_days: float, horizon: int) -> dict:
    """Mean attainment of the landmark accounts at the landmark and over their months of the following horizon:
    the predictions hold the first fixed, the model lets it move."""
    later = (ep["start"].to_numpy() >= landmark_days) & (ep["start"].to_numpy() < landmark_days + horizon)
    later &= ep["account_id"].isin(set(ep["account_id"].to_numpy()[lm["rows"]])).to_numpy()
    att = ep["attainment"].to_numpy(float)
    return {"attainment_at_landmark": float(att[lm["rows"]].mean()) if len(lm["rows"]) else None,
            "attainment_after_landmark": float(att[later].mean()) if later.any() else None}


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _interval(draws: np.ndarray, alpha: float, *, center: float | None = None,
              jackknife: np.ndarray | None = None) -> dict:
    """The ``1 - alpha`` interval of a cross-validated figure: normal around ``center`` with the variance of the
    bootstrap ``draws`` plus the delete-a-fold ``jackknife`` variance ``(K - 1) / K * sum((x - mean)^2)``; without
    a jackknife, the percentile interval of the draws. None without draws."""
    draws = draws[np.isfinite(draws)]
    if len(draws) < 2 or np.ptp(draws) == 0:
        return {"ci_low": None, "ci_high": None}
    if jackknife is None or center is None:
        lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
        return {"ci_low": float(lo), "ci_high": float(hi)}
    k = len(jackknife)
    var = draws.var(ddof=1) + (k - 1) / k * float(((jackknife - jackknife.mean()) ** 2).sum())
    half = stats.norm.ppf(1 - alpha / 2) * math.sqrt(var)
    return {"ci_low": float(center - half), "ci_high": float(center + half)}


def _c_table(point: pd.Series, draws: pd.DataFrame, in_sample: dict, alpha: float,
             jack: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = []
    for m in MODELS:
        c = float(point[m]) if m in point else 0.5
        ci = (_interval(draws[m].to_numpy(), alpha, center=c, jackknife=jack.get(m)) if m in draws
              else {"ci_low": None, "ci_high": None})
        rows.append({"model": m, "c_index": c, "ci_low": ci["ci_low"], "ci_high": ci["ci_high"],
                     "in_sample": in_sample[m], "optimism": in_sample[m] - c})
    return pd.DataFrame(rows).astype({"ci_low": float, "ci_high": float})


def _td_auc(lm: pd.DataFrame) -> pd.DataFrame:
    times = [horizon_days(m) for m in AUC_MONTHS]
    parts = []
    for m in MODELS:
        part = cumulative_dynamic_auc(lm, "time", "event", lm[m].to_numpy(), times)
        parts.append(part.assign(model=m, months=list(AUC_MONTHS)))
    return pd.concat(parts, ignore_index=True)[["model", "months", "time", "auc", "cases", "controls"]]


def _calibration(lm: pd.DataFrame, horizon: int, alpha: float) -> dict:
    """Intercept, slope, Brier scores and the table by tenths of the landmark accounts' predicted risks."""
    lm = lm[lm["risk"].notna()]
    if not len(lm) or lm["time"].max() < horizon:
        return {"not_estimated": f"no account active at the landmark was followed {horizon} days"}
    fit = calibration_fit(lm, "time", "event", "risk", horizon)
    km = fit_km(lm, "time", "event")
    observed = 1.0 - float(km.loc[km["time"] <= horizon, "survival"].iloc[-1]) if (km["time"] <= horizon).any() else 0.0
    brier = brier_score(lm, "time", "event", "risk", horizon)
    null = brier_score(lm, "time", "event", np.full(len(lm), observed), horizon)
    table = calibration_table(lm, "time", "event", "risk", horizon, groups=10, alpha=alpha)
    return {"model": "both", "intercept": _num(fit["intercept"]), "slope": _num(fit["slope"]),
            "brier": _num(brier["brier"]), "brier_null": _num(null["brier"]),
            "mean_predicted": float(lm["risk"].mean()),
            "observed": observed, "n_accounts": int(len(lm)), "table": table.rename(columns={"n": "accounts"})}


# ---------------------------------------------------------------------------------------------------------
# the analysis
# ---------------------------------------------------------------------------------------------------------
def requires(ctx: "StudyContext") -> str | None:
    return usage_and_goals_reason(ctx)


def empty(ctx: "StudyContext", reason: str) -> dict:
    none = dict.fromkeys(MODELS)
    return {"discrimination": {"method": METHOD, "folds": FOLDS, "seed": ctx.seed, "c_index": none,
                               "in_sample": none, "optimism": none,
                               "delta_c": {"estimate": None, "ci_low": None, "ci_high": None},
                               "td_auc": {str(m): none for m in AUC_MONTHS},
                               "calibration": {"intercept": None, "slope": None, "brier": None, "brier_null": None,
                                               "horizon_days": horizon_days(CALIBRATION_MONTHS),
                                               "landmark_days": float(ctx["landmark_days"][0]), "table": []},
                               "not_estimated": reason}}


def findings_when_empty(ctx: "StudyContext", reason: str) -> list:
    return [not_estimable(CLAIM, reason, METHOD)]


def run(ctx: "StudyContext") -> Result:
    table, info = cross_validated(ctx.ds, frame=ctx.comparison_frame(), engine=ctx.engine,
                                  seed=ctx.seed, landmark_days=ctx["landmark_days"][0], survival=ctx.survival)
    rec, auc, cal_table = record(ctx, info)
    res = Result(NAME, TITLE, intro=_intro(rec), record={"discrimination": rec},
                 tables={"discrimination": table, "td_auc": auc})
    shown = table.assign(label=table["model"].map(_labels(rec)))
    res.figures.append(Figure("discrimination", lambda: plots.c_index_intervals(shown, level=ctx.level),
                              alt="Out-of-sample C-index of each churn model (0.5 is a coin toss): "
                                  + plots.describe_intervals(shown, "label", "c_index", digits=3, level=ctx.level)
                                  + "; in sample: " + "; ".join(f"{lab} {plots._num(v, 3)}" for lab, v in
                                                                 zip(shown["label"], shown["in_sample"])) + "."))
    if cal_table is not None:
        res.tables["calibration"] = cal_table
        days = int(rec["landmark_days"])
    if cal_table is not None and cal_table["observed"].notna().any():  # all tenths suppressed: no chart
        res.figures.append(Figure("calibration", lambda: plots.risk_calibration(
            cal_table, level=ctx.level, title=f"Predicted against observed churn in the 12 months after day {days}"),
            alt=_calibration_alt(cal_table, rec, days)))
    res.shown.append(Shown(_readable(ctx, table, rec), "C-index per model, out of sample and in sample, and the "
                                                       "time-dependent AUC after the landmark."))
    res.findings = [finding(ctx, rec)]
    res.text = "\n\n".join([res.findings[0].claim, *_text(ctx, rec)])
    return res


def record(ctx: "StudyContext", info: dict) -> tuple[dict, pd.DataFrame, pd.DataFrame | None]:
    """The results.json entry of :func:`cross_validated`'s dict, with the privacy rule applied (an AUC whose cases
    or controls, a calibration tenth whose accounts, are fewer than ``min_cell`` is blanked), and the two tables
    as shown: ``(record, td-AUC table, calibration table or None)``."""
    rec = dict(info)
    auc = rec.pop("td_auc_table")
    auc = ctx.suppress(auc.assign(smaller=auc[["cases", "controls"]].min(axis=1)), "smaller",
                       ["auc"]).drop(columns="smaller")
    rec["td_auc"] = {str(m): {r.model: _num(r.auc) for r in auc[auc["months"] == m].itertuples()} for m in AUC_MONTHS}
    rec["td_auc_accounts"] = {str(m): {"cases": int(g["cases"].iloc[0]), "controls": int(g["controls"].iloc[0])}
                              for m, g in auc.groupby("months")}
    cal = dict(rec["calibration"], horizon_days=horizon_days(CALIBRATION_MONTHS), landmark_days=rec["landmark_days"])
    cal_table = None
    if "table" in cal:
        cal_table = ctx.suppress(cal["table"], "accounts", ["risk_from", "risk_to", "mean_predicted", "observed",
                                                            "ci_low", "ci_high"])
        cal["table"] = cal_table.to_dict("records")
    rec["calibration"] = cal
    return rec, auc, cal_table


def _calibration_alt(table: pd.DataFrame, rec: dict, days: int) -> str:
    """The calibration figure in words: the range of predicted and observed risk, and the fit's slope."""
    shown = table[table["observed"].notna()] if "observed" in table else table
    cal = rec["calibration"]
    spread = (f" Predicted risk runs from {shown['mean_predicted'].min():.0%} to {shown['mean_predicted'].max():.0%}, "
              f"observed from {shown['observed'].min():.0%} to {shown['observed'].max():.0%}." if len(shown) else "")
    slope = f" Calibration slope {cal['slope']:.2f} (1 is ideal)." if cal.get("slope") is not None else ""
    return (f"Observed (Kaplan-Meier) against predicted churn in the 12 months after day {days}, for {len(shown)} "
            f"tenths of predicted risk, with the diagonal of perfect calibration.{spread}{slope}")


def finding(ctx: "StudyContext", info: dict):
    """Decided by the out-of-sample ΔC = C(attainment) - C(usage) and its bootstrap interval against 0."""
    c, d = info["c_index"], info["delta_c"]
    return judge(CLAIM, estimate=d["estimate"], ci_low=d["ci_low"], ci_high=d["ci_high"], null=0.0, direction="above",
                 level=ctx.level, method=METHOD,
                 describe=lambda est, lo, hi: {"c_usage": c["usage"], "c_attainment": c["attainment"],
                                               "c_both": c["both"], "gap": -est, "lo": lo, "hi": hi,
                                               "level": ctx.level_text, "ci3": ctx.ci(lo, hi, 3)})


def _covariate_words(names: list[str]) -> list[str]:
    return [n.replace("log_arr", "log ARR").replace("_", " ") for n in names]


def _labels(info: dict) -> dict:
    base = ", ".join(["segment", "tenure", *_covariate_words(info["covariates"])])
    return {"baseline": f"baseline ({base})", "usage": "baseline + usage", "attainment": "baseline + outcomes",
            "both": "baseline + usage + outcomes"}


def _intro(info: dict) -> str:
    adj = ", ".join(_covariate_words(info["covariates"])) or "no account covariate"
    return (INTRO + f" Every model knows the account's segment, tenure and {adj} (the baseline); one adds last "
            "month's usage, one goal attainment, one both. The C-index is the share of pairs of accounts ranked in "
            "the right order (0.5 is a coin toss, 1 a perfect ranking).")


def _text(ctx: "StudyContext", info: dict) -> list[str]:
    c, ins, opt = info["c_index"], info["in_sample"], info["optimism"]
    lines = []
    if not info["covariates"]:
        lines.append("With no account covariate the baseline knows only segment and tenure, which every account "
                     "compared at a moment shares: it cannot rank them, so its C-index is 0.5, a coin toss, and no "
                     "model was fitted for it.")
    else:
        lines.append(f"The baseline alone ranks at C = {c['baseline']:.3f}; adding usage changes that by "
                     f"{c['usage'] - c['baseline']:+.3f}, adding outcomes by {c['attainment'] - c['baseline']:+.3f} "
                     f"and adding both by {c['both'] - c['baseline']:+.3f}.")
    worst = max(MODELS, key=lambda m: opt[m])
    lines.append(f"In sample (the same four models fitted on all accounts and scored on them) the C-indices are "
                 f"{ins['usage']:.3f} for usage, {ins['attainment']:.3f} for outcomes and {ins['both']:.3f} for both; "
                 f"the optimism of scoring on the fitting data is at most {opt[worst]:+.3f} ({worst}).")
    auc = info["td_auc"]
    if all(auc[str(m)].get("both") is not None for m in AUC_MONTHS):
        lines.append(f"Among the {info['n_landmark']:,} accounts active at {info['landmark_days']:.0f} days of tenure, "
                     "the combined model's out-of-sample AUC for churn within "
                     + ", ".join(f"{m} months: {auc[str(m)]['both']:.2f}" for m in AUC_MONTHS)
                     + f" (outcomes alone {auc['12']['attainment']:.2f}, usage alone {auc['12']['usage']:.2f} at 12 "
                       "months; 0.5 is a coin toss).")
    cal = info["calibration"]
    if cal.get("slope") is not None:
        lines.append(f"**Calibration.** For churn in the 12 months after day {info['landmark_days']:.0f}, the combined "
                     f"model predicts {100 * cal['mean_predicted']:.1f}% on average against "
                     f"{100 * cal['observed']:.1f}% "
                     f"observed (Kaplan-Meier); calibration intercept {cal['intercept']:+.2f} (0 is right on average) "
                     f"and slope {cal['slope']:.2f} ({_slope_words(cal['slope'])}). Its "
                     f"Brier score is {cal['brier']:.3f}, against {cal['brier_null']:.3f} for predicting every account "
                     "the average risk (lower is better). The predicted risks use the baseline churn rate of the "
                     "training folds (Breslow" + (", per segment" if info["stratified_by"] else "") + ") and hold "
                     "each account's attainment and usage at their "
                     f"day-{info['landmark_days']:.0f} values for the whole year, while the model itself updates them "
                     "month by month"
                     + (f": mean attainment is {cal['attainment_at_landmark']:.2f} on day {info['landmark_days']:.0f} "
                        f"and {cal['attainment_after_landmark']:.2f} over the following year's months, so the risks "
                        "predicted from the landmark run "
                        + ("high." if cal["attainment_after_landmark"] > cal["attainment_at_landmark"] else "low.")
                        if cal.get("attainment_after_landmark") is not None
                        and abs(cal["attainment_after_landmark"] - cal["attainment_at_landmark"]) >= 0.05 else "."))
    elif cal.get("not_estimated"):
        lines.append(f"Calibration was not estimated: {cal['not_estimated']}.")
    if info.get("sample"):
        lines.append(f"**A sample of accounts.** This book has more than {CV_MAX_ROWS:,} account-months, so the "
                     f"cross-validation ran on a random {info['sample']['accounts']:,} of its "
                     f"{info['sample']['of_accounts']:,} accounts (every month of each; seed {info['seed']}); its "
                     "intervals are those of that sample.")
    sub = info.get("bootstrap_subsample")
    lines.append(f"**How the intervals were made.** Accounts were resampled with replacement {info['bootstrap']:,} "
                 "times, each with all its months and its out-of-fold scores held fixed"
                 + (f" (drawn from a random {sub:,} of the accounts and rescaled, to bound memory)" if sub else "")
                 + f"; each {ctx.level_text} CI is the middle of the resampled values. They show how precisely these "
                 "scores rank this book of accounts; they do not include the variation from drawing other folds or "
                 "refitting the models on each resample, so they are somewhat narrow.")
    return lines


def _slope_words(slope: float) -> str:
    if slope <= 0:
        return "1 is ideal; at 0 or below, the predicted risks do not even order the observed churn"
    return "1 is ideal; below 1 the predictions are too extreme, above 1 too timid"


def _readable(ctx: "StudyContext", table: pd.DataFrame, info: dict) -> pd.DataFrame:
    """The model table for readers: a row per model (its covariates named by ``ctx.names``), the C-index out of
    sample with its interval and in sample, and the time-dependent AUC after the landmark, to 3 decimals."""
    base = ", ".join(["segment", "tenure", *(ctx.names(c) for c in info["covariates"])])
    labels = {"baseline": f"Baseline ({base})", "usage": "Baseline + usage", "attainment": "Baseline + outcomes",
              "both": "Baseline + usage + outcomes"}
    out = pd.DataFrame({
        "C-index out of sample": [tables.number(x, 3) for x in table["c_index"]],
        f"{ctx.level_text} CI": [tables.interval(lo, hi, 3) for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "C-index in sample": [tables.number(x, 3) for x in table["in_sample"]],
    }, index=[labels.get(m, ctx.names(m)) for m in table["model"]])
    for m in AUC_MONTHS:
        out[f"AUC at {m} months"] = [tables.number(info["td_auc"][str(m)].get(k), 3) for k in table["model"]]
    out.columns.name = "Model"
    return tables.readable(out, ctx.names)
