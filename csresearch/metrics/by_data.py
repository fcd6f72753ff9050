"""Classifying metrics by data: does a metric predict churn (relevance), and does product usage move it
(attributability)? The two answers place every metric in one of the bears' quadrants, when the data can tell.

Classification *by definition* (:mod:`csresearch.metrics.definition`) reads what a metric is meant to be;
this module asks the data whether it behaves that way. Two questions, one per axis:

**Relevance: does the metric predict churn?** A time-varying Cox model on the account-month panel of
:func:`csresearch.attainment.episodes` (one ``(start, stop]`` row per account and calendar month; every
covariate known at the row's start; stratified by segment when there are several; robust standard errors
clustered by account; Efron ties).

* A customer KPI enters as the attainment of the account's goal(s) in that KPI at the row's ``period_start``
  (contract formula, :func:`csresearch.attainment.attainment_by_metric`; weight-averaged when an account has two
  goals in one KPI), on the rows of accounts that have set such a goal. The hazard ratio is per full
  attainment (0 -> 1).
* A usage metric enters as ``log(1 + value)`` of the last completed usage period (the panel's
  ``usage_<metric>``), standardised over the model's rows: the hazard ratio is per SD.
* By default (``adjust_for_baseline=True``) every metric except the baseline itself is tested *beyond the
  core usage*: the model also holds the baseline usage metric(s) (default ``active_users``) and the
  account covariates (default log ARR, see :func:`csresearch.models.account_covariates`). This is what makes
  a Mama Bear visible: a product output such as ``reports_created`` follows active users, so on its own it
  "predicts" churn exactly as far as usage does, and adds nothing once usage is in the model. A Goldilocks or
  Papa Bear KPI keeps its own effect, because churn responds to the outcome, not to the activity.
* ``c_gain`` = C(baseline + metric) - C(baseline): Harrell's C of the two models' linear predictors on the
  same rows, comparisons within segment (pairs across segments are not counted). It is the metric's gain in
  ranking churn risk over the usage baseline. For the baseline itself it is NaN (0 by definition).

**Attributability: does product usage move the metric?** A within-account (fixed-effects) regression,
OLS on demeaned variables with cluster-robust (CR1) standard errors by account:

* KPI: the month-on-month change of each goal's attainment between consecutive measurements, divided by the
  months between them (``per month``), regressed on the mean usage index over the usage periods that began
  in ``[previous measurement, this measurement)`` (the usage that could have moved it), with goal fixed
  effects (goal-demeaned variables; goals are nested in accounts, so this is within-account) and goal age in
  months as a control (progress slows as goals near their target; usage could trend with age in real data).
  The effect is the change in attainment per month for one within-account SD of log usage.
  ``clip=True`` (default) uses attainment as the contract defines it (clipped to [0, 1]); ``clip=False``
  uses the unclipped progress ratio, which keeps movement beyond the target or below the baseline.
* Usage metric other than the baseline: ``log(1 + value)`` regressed on the same period's usage index with
  account fixed effects and tenure as a control; the effect is in log points (about % / 100) per
  within-account SD of log usage. The baseline metric itself is attributable *by definition* (it is the usage).
* The usage index is the mean over the baseline metrics of ``log(1 + value)`` divided by that metric's
  within-account SD, so "per SD" means one typical month-to-month swing of an account's own usage (not the
  far larger spread between small and large accounts).

**Decisions: yes, no or unclear on each axis.** p-values are adjusted with Benjamini-Hochberg over the
metrics tested, separately for each axis (a long metric list does not manufacture findings). Each axis has
three states, read from the estimate's ``1 - alpha`` interval against the axis's minimum effect:

* relevance *yes*: q < ``alpha`` and ``|log HR| >= min_log_hr`` (either direction: a metric that predicts churn
  is relevant whatever its sign; the rationale says when the sign is unexpected); *no*: the interval lies within
  ``exp(-min_log_hr)`` to ``exp(min_log_hr)``, so it excludes every effect at least as large as the minimum;
  *unclear* otherwise (the interval is too wide to tell, whatever the point estimate).
* attributability *yes*: q < ``alpha`` and a *positive* effect of at least ``min_kpi_effect`` (KPIs, attainment
  per month per SD) or ``min_usage_effect`` (usage metrics, log points per SD); *no*: the interval's upper end is
  below that minimum (a significant negative association, more usage and less progress, is a no: it is reported,
  not credited); *unclear* otherwise.

The minimum effects keep a statistically detectable trace (a vendor score moving 0.2% per SD of usage in
80,000 account-months) from being called attributable, and they are the margins a *no* must clear: absence of
evidence is not read as evidence of absence. The table's ``relevant`` and ``attributable`` hold the states as
a nullable boolean: True (yes), False (no), NA (unclear, or not judged when the data are insufficient).

**Quadrants, on evidence only.** Customer KPIs: relevance yes + attributability yes = ``goldilocks``; yes + no
= ``papa``; no + yes = ``mama``; no + no = ``noise``. Vendor metrics (every usage-table metric; and a goal
metric whose catalog ``owner`` is ``vendor`` when a catalog is given) are never Goldilocks, since they
describe the vendor's success, not the customer's objective: relevance yes (whatever attributability) =
``leading_indicator`` (an early warning worth watching beyond core usage, not a customer outcome);
no + yes = ``mama``; no + no = ``noise``. The baseline is attributable by definition, so it is a
``leading_indicator`` when it predicts churn and ``mama`` when it shows it does not. Whenever an axis the class
depends on is unclear the verdict is ``inconclusive``, and the rationale names the interval that is too wide and
the classes it could still be. A metric with fewer than ``min_accounts`` accounts or ``min_events`` churn events
in its relevance model (or fewer than ``min_accounts`` accounts with consecutive measurements for
attributability) is ``insufficient_data``, with the reason.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .._json import jsonable, records
from ..findings import ci_text, level_text
from ..models import AnalysisError, account_covariates
from ..attainment import DAYS_PER_MONTH, attainment_by_metric, episodes
from ..attainment import usage_wide as attainment_usage_wide
from ..survival import concordance, fit_cox

if TYPE_CHECKING:
    from ..data import Dataset

DEFAULT_BASELINE = "active_users"
#: Verdicts for customer KPIs, in the order of the story.
KPI_VERDICTS = ("goldilocks", "papa", "mama", "noise", "inconclusive")
#: Verdicts for vendor metrics (never Goldilocks).
VENDOR_VERDICTS = ("leading_indicator", "mama", "noise", "inconclusive")
#: Every verdict :func:`classify_by_data` can give.
DATA_VERDICTS = ("goldilocks", "papa", "mama", "leading_indicator", "noise", "inconclusive", "insufficient_data")
#: Columns of :func:`classify_by_data`'s table, in order.
COLUMNS = ("metric", "kind", "owner", "n_accounts", "n_events", "relevance_hr", "relevance_ci_low",
           "relevance_ci_high", "relevance_p", "relevance_q", "relevance_unit", "c_baseline", "c_full", "c_gain",
           "attrib_effect", "attrib_ci_low", "attrib_ci_high", "attrib_p", "attrib_q", "attrib_std",
           "attrib_n_accounts", "attrib_n_obs", "attrib_unit", "relevant", "attributable", "verdict", "rationale")


# ---------------------------------------------------------------------------------------------------------
# shared helpers (also used by csresearch.metrics.goodhart)
# ---------------------------------------------------------------------------------------------------------
def requested_metrics(ds: "Dataset", metrics: Iterable[str] | None) -> list[str]:
    """``metrics`` checked against the usage table (all of its metrics when None)."""
    names = usage_metric_names(ds)
    wanted = names if metrics is None else list(metrics)
    unknown = [m for m in wanted if m not in names]
    if unknown:
        raise AnalysisError(f"usage metrics not in the usage table: {', '.join(map(str, unknown))}")
    return wanted


def usage_metric_names(ds: "Dataset") -> list[str]:
    """The usage metrics of a dataset, in order of first appearance; raises when there is no usage table."""
    if ds.usage is None or len(ds.usage) == 0:
        raise AnalysisError("the dataset has no usage table, so usage cannot be related to the metrics")
    return list(pd.unique(ds.usage["metric"]))


def resolve_baseline(ds: "Dataset", baseline: str | Sequence[str] | None) -> list[str]:
    """The core usage metric(s): ``baseline`` as given, or ``active_users`` when the usage table has it.

    Raises :class:`AnalysisError` when a named metric is not in the usage table, or when none is named and
    the table has no ``active_users``.
    """
    names = usage_metric_names(ds)
    if baseline is None:
        if DEFAULT_BASELINE not in names:
            raise AnalysisError(f"the usage table has no {DEFAULT_BASELINE!r}; name the core usage metric(s) with "
                                f"baseline= (available: {', '.join(map(str, names))})")
        return [DEFAULT_BASELINE]
    wanted = [baseline] if isinstance(baseline, str) else list(baseline)
    if not wanted:
        raise AnalysisError("baseline must name at least one usage metric")
    unknown = [m for m in wanted if m not in names]
    if unknown:
        raise AnalysisError(f"baseline usage metric(s) not in the usage table: {', '.join(map(str, unknown))} "
                            f"(available: {', '.join(map(str, names))})")
    return wanted


def usage_wide(ds: "Dataset", metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """The usage table wide: one row per ``(account_id, date)``, one column per metric (sum of duplicates)."""
    return attainment_usage_wide(ds.usage, usage_metric_names(ds) if metrics is None else metrics)


def within_sd(values: pd.Series | np.ndarray, groups: pd.Series | np.ndarray) -> float:
    """Standard deviation of ``values`` after removing each group's mean (the within-group SD)."""
    v = pd.Series(np.asarray(values, dtype=float))
    g = pd.Series(np.asarray(groups))
    dm = v - v.groupby(g.to_numpy()).transform("mean")
    return float(dm.std(ddof=1))


def usage_index(wide: pd.DataFrame, baseline: Sequence[str]) -> pd.Series:
    """Usage index per usage row: mean over ``baseline`` of ``log(1 + value) / within-account SD``.

    With one baseline metric it is ``log(1 + value)`` in units of its within-account SD; NaN where any
    baseline metric is missing.
    """
    parts = []
    for m in baseline:
        lx = np.log1p(wide[m].clip(lower=0))
        sd = within_sd(lx, wide["account_id"])
        if not np.isfinite(sd) or sd <= 0:
            raise AnalysisError(f"usage metric {m!r} does not vary within accounts; it cannot serve as the usage baseline")
        parts.append(lx / sd)
    return pd.concat(parts, axis=1).mean(axis=1, skipna=False)


def demean(frame: pd.DataFrame, columns: Sequence[str], groups: str) -> pd.DataFrame:
    """``frame[columns]`` minus their mean within ``groups`` (the fixed-effects / within transformation)."""
    return frame[list(columns)] - frame.groupby(groups, sort=False)[list(columns)].transform("mean")


def within_ols(frame: pd.DataFrame, y: str, x: Sequence[str], fe: str, cluster: str, alpha: float = 0.05) -> dict:
    """Fixed-effects OLS of ``y`` on ``x`` (``fe``-demeaned), cluster-robust (CR1) covariance by ``cluster``.

    The fixed effects used here are nested in the clusters (goals within accounts, or the accounts themselves),
    so no degrees of freedom are charged for them (as Stata's ``xtreg, fe vce(cluster)``); with fixed effects
    that are not nested (e.g. tenure months) the CR1 factor is the usual ``G/(G-1) (N-1)/(N-K)``. Confidence
    intervals and p use a t reference with ``G - 1`` degrees of freedom. Returns ``{coef, se, ci_low,
    ci_high, p, n_obs, n_clusters, sd_x, sd_y}`` for the first regressor, where ``sd_x``/``sd_y`` are the
    within SDs of the first regressor and of ``y``.
    """
    cols = [y, *x]
    dm = demean(frame, cols, fe)
    groups = pd.factorize(frame[cluster])[0]
    model = sm.OLS(dm[y].to_numpy(), dm[list(x)].to_numpy())
    res = model.fit(cov_type="cluster", cov_kwds={"groups": groups, "use_correction": True})
    b, se = float(res.params[0]), float(res.bse[0])
    n_clusters = int(len(np.unique(groups)))
    # t reference with G - 1 df (the usual small-sample choice for cluster-robust inference)
    q = stats.t.ppf(1 - alpha / 2, max(n_clusters - 1, 1))
    p = float(2 * stats.t.sf(abs(b / se), max(n_clusters - 1, 1))) if se > 0 else float("nan")
    return {"coef": b, "se": se, "ci_low": b - q * se, "ci_high": b + q * se, "p": p, "n_obs": int(len(frame)),
            "n_clusters": n_clusters, "sd_x": float(dm[x[0]].std(ddof=1)), "sd_y": float(dm[y].std(ddof=1))}


def bh(p: pd.Series) -> pd.Series:
    """Benjamini-Hochberg q-values over the non-missing entries of ``p`` (NaN stays NaN)."""
    q = pd.Series(np.nan, index=p.index, dtype=float)
    ok = p.notna()
    if ok.any():
        q[ok] = multipletests(p[ok].to_numpy(dtype=float), method="fdr_bh")[1]
    return q


def _c(rows: pd.DataFrame, score: np.ndarray, strata: str | None) -> float:
    """Harrell's C of ``score`` on the panel's ``(start, stop]`` rows, within strata."""
    return concordance(rows, "stop", "event", np.asarray(score, dtype=float), entry="start", strata=strata)["c_index"]


def _catalog_owners(catalog) -> dict[str, str]:
    if catalog is None:
        return {}
    if isinstance(catalog, (str, Path)):
        from .catalog import load_catalog
        catalog = load_catalog(catalog)
    if not isinstance(catalog, pd.DataFrame) or not {"name", "owner"} <= set(catalog.columns):
        raise AnalysisError("catalog must be a metric catalog frame (load_catalog) or the path of a metrics.yaml")
    return dict(zip(catalog["name"].astype(str), catalog["owner"].astype(str)))


# ---------------------------------------------------------------------------------------------------------
# relevance
# ---------------------------------------------------------------------------------------------------------
def kpi_attainment_panel(ds: "Dataset", panel: pd.DataFrame) -> pd.DataFrame:
    """Attainment of each KPI's goal(s) on every panel row: a frame aligned with ``panel`` (same index), one
    column per goal metric, NaN where the account has no goal in that KPI set by the row's ``period_start``.
    Two goals of one account in one KPI are weight-averaged."""
    progress = ds.goal_progress if ds.goal_progress is not None else pd.DataFrame(
        {"goal_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]"), "value": pd.Series(dtype=float)})
    return attainment_by_metric(ds.goals, progress, panel[["account_id", "period_start"]], date="period_start")


def _zscore(x: pd.Series) -> pd.Series:
    sd = x.std(ddof=1)
    return (x - x.mean()) / sd if sd > 0 else x * np.nan


def _model_rows(core: pd.DataFrame, columns: list[str], term: str, values, need: list[str]) -> pd.DataFrame:
    """The rows of ``core`` where ``values`` (aligned with it, or a scalar) and every ``need`` column are known: its
    ``columns`` and ``term`` holding ``values``, a fresh frame (only these columns are copied)."""
    values = pd.Series(values, index=core.index) if np.isscalar(values) else values
    known = values.notna() & core[need].notna().all(axis=1) if need else values.notna()
    sub = core.loc[known.to_numpy(), columns]
    sub[term] = values[known].to_numpy()
    return sub


def _relevance_one(rows: pd.DataFrame, term: str, base_cols: list[str], cov_cols: list[str], strata: str | None,
                   min_accounts: int, min_events: int, compare_baseline: bool, alpha: float) -> dict:
    n_acc = int(rows["account_id"].nunique())
    n_ev = int(rows["event"].sum())
    out = {"n_accounts": n_acc, "n_events": n_ev}
    if n_acc < min_accounts or n_ev < min_events:
        out["reason"] = (f"{n_acc} accounts and {n_ev} churn events in the relevance model, fewer than the "
                         f"{min_accounts} accounts / {min_events} events required")
        return out
    if rows[term].nunique() < 2:
        out["reason"] = "the metric has the same value on every account-month, so nothing can be compared"
        return out
    covs = [term, *base_cols, *cov_cols]
    covs = [c for c in covs if c == term or rows[c].nunique() > 1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = fit_cox(rows, "stop", "event", covs, entry="start", strata=strata, cluster="account_id", alpha=alpha,
                          engine="numpy")
        except ValueError as exc:
            out["reason"] = f"the Cox model could not be fitted: {exc}"
            return out
        r = fit.summary.loc[term]
        out.update({"coef": float(r["coef"]), "se": float(r["se"]), "hr": float(r["hr"]),
                    "ci_low": float(r["ci_low"]), "ci_high": float(r["ci_high"]), "p": float(r["p"])})
        full_score = rows[covs].to_numpy(float) @ fit.params.to_numpy()
        out["c_full"] = _c(rows, full_score, strata)
        if compare_baseline:
            reduced = [c for c in covs if c != term]
            out["c_baseline"] = 0.5 if not reduced else float("nan")
            if reduced:
                try:
                    fit0 = fit_cox(rows, "stop", "event", reduced, entry="start", strata=strata,
                                   cluster="account_id", engine="numpy")
                    score0 = rows[reduced].to_numpy(float) @ fit0.params.to_numpy()
                    out["c_baseline"] = _c(rows, score0, strata)
                except ValueError:
                    pass
            out["c_gain"] = out["c_full"] - out["c_baseline"]
    out["warnings"] = sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)})
    return out


# ---------------------------------------------------------------------------------------------------------
# attributability
# ---------------------------------------------------------------------------------------------------------
def _interval_usage(points: pd.DataFrame, usage: pd.DataFrame, lo: str, hi: str) -> np.ndarray:
    """Mean usage index over the usage periods with ``lo <= date < hi`` of each point's account (NaN if none).

    Vectorised with per-account cumulative sums and two backward as-of joins."""
    u = usage[["account_id", "date", "_u"]].dropna().sort_values(["account_id", "date"], kind="stable")
    u = u.assign(_cs=u.groupby("account_id", sort=False)["_u"].cumsum(),
                 _cn=u.groupby("account_id", sort=False).cumcount() + 1)
    u = u.assign(date=u["date"].astype("datetime64[ns]")).sort_values("date", kind="stable")

    def before(col: str) -> pd.DataFrame:
        left = pd.DataFrame({"_i": np.arange(len(points)), "account_id": points["account_id"].to_numpy(),
                             "_t": points[col].to_numpy().astype("datetime64[ns]")}).sort_values("_t", kind="stable")
        m = pd.merge_asof(left, u[["account_id", "date", "_cs", "_cn"]], left_on="_t", right_on="date",
                          by="account_id", direction="backward", allow_exact_matches=False)
        return m.sort_values("_i", kind="stable")[["_cs", "_cn"]].fillna(0.0).to_numpy()

    a, b = before(hi), before(lo)
    n = a[:, 1] - b[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (a[:, 0] - b[:, 0]) / n, np.nan)


def kpi_changes(ds: "Dataset", usage: pd.DataFrame, *, clip: bool = True) -> pd.DataFrame:
    """Consecutive measurements of every goal with the usage that fell between them.

    Returns one row per measurement that has a previous one: ``goal_id, account_id, metric, date, prev_date,
    months`` (between the two), ``change`` (attainment change per month; attainment clipped to [0, 1] when
    ``clip``, else the raw progress ratio), ``goal_age`` (months since the goal was set) and ``usage`` (mean
    usage index over the usage periods that began in ``[prev_date, date)``; NaN when there is none).
    ``usage`` is a frame with ``account_id, date, _u`` (the usage index).
    """
    g = ds.goals[["goal_id", "account_id", "metric", "baseline", "target", "set_date"]]
    p = ds.goal_progress[["goal_id", "date", "value"]].merge(g, on="goal_id", how="inner")
    p = p.sort_values(["goal_id", "date"], kind="stable").reset_index(drop=True)
    ratio = (p["value"].to_numpy(float) - p["baseline"].to_numpy(float)) / (p["target"].to_numpy(float) - p["baseline"].to_numpy(float))
    p["_a"] = np.clip(ratio, 0.0, 1.0) if clip else ratio
    same = p["goal_id"].eq(p["goal_id"].shift())
    p["prev_date"] = p["date"].shift().where(same)
    p["_prev_a"] = p["_a"].shift().where(same)
    p = p[same.to_numpy()].copy()
    p["months"] = (p["date"] - p["prev_date"]).dt.days.to_numpy(float) / DAYS_PER_MONTH
    p = p[p["months"] > 0]
    p["change"] = (p["_a"] - p["_prev_a"]) / p["months"]
    p["goal_age"] = (p["date"] - p["set_date"]).dt.days.to_numpy(float) / DAYS_PER_MONTH
    p["usage"] = _interval_usage(p, usage, "prev_date", "date")
    return p[["goal_id", "account_id", "metric", "date", "prev_date", "months", "change", "goal_age", "usage"]].reset_index(drop=True)


def _attrib_one(frame: pd.DataFrame, y: str, x: str, control: str, fe: str, min_accounts: int, alpha: float,
                sd_index: float) -> dict:
    frame = frame[list(dict.fromkeys([y, x, control, fe, "account_id"]))].dropna()
    n_acc = int(frame["account_id"].nunique())
    out: dict = {"attrib_n_accounts": n_acc, "attrib_n_obs": int(len(frame))}
    if n_acc < min_accounts:
        out["reason"] = (f"{n_acc} accounts with usage between consecutive values, fewer than the {min_accounts} "
                         "required to judge attributability")
        return out
    counts = frame.groupby(fe, sort=False)[y].transform("size")
    frame = frame[counts > 1]
    if len(frame) < 3 or frame[x].nunique() < 2:
        out["reason"] = "too few repeated values per account to estimate a within-account association"
        return out
    res = within_ols(frame, y, [x, control], fe=fe, cluster="account_id", alpha=alpha)
    if not np.isfinite(res["se"]) or res["sd_x"] <= 0:
        out["reason"] = "usage does not vary within accounts"
        return out
    # effect per within-account SD of the usage index (sd_index) -- the index is already in SD units per metric
    scale = sd_index
    out.update({"attrib_effect": res["coef"] * scale, "attrib_ci_low": res["ci_low"] * scale,
                "attrib_ci_high": res["ci_high"] * scale, "attrib_p": res["p"],
                "attrib_std": res["coef"] * res["sd_x"] / res["sd_y"] if res["sd_y"] > 0 else float("nan")})
    return out


# ---------------------------------------------------------------------------------------------------------
# the classification
# ---------------------------------------------------------------------------------------------------------
def _state(value) -> bool | None:
    """An axis state as True (yes), False (no) or None (unclear / not judged): pd.NA and NaN read as None."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value)


def relevance_state(hr: float, ci_low: float, ci_high: float, q: float, *, alpha: float,
                    min_log_hr: float) -> bool | None:
    """Does the metric predict churn? True (yes): q < ``alpha`` and ``|log HR| >= min_log_hr``; False (no): the
    interval lies within ``exp(-min_log_hr) .. exp(min_log_hr)``, so it excludes every effect that counts; None
    (unclear) otherwise: the interval is too wide to tell."""
    if q < alpha and abs(math.log(hr)) >= min_log_hr:
        return True
    if math.log(ci_low) > -min_log_hr and math.log(ci_high) < min_log_hr:
        return False
    return None


def attributability_state(effect: float, ci_high: float, q: float, *, alpha: float, minimum: float) -> bool | None:
    """Does usage move the metric? True (yes): q < ``alpha`` and a positive effect of at least ``minimum``; False
    (no): the interval's upper end is below ``minimum``, so it excludes every effect that counts (a negative or a
    trivial association is a no); None (unclear) otherwise."""
    if q < alpha and effect > 0 and effect >= minimum:
        return True
    if ci_high < minimum:
        return False
    return None


def data_verdict(kind: str, owner: str, relevant: bool | None, attributable: bool | None) -> str:
    """The quadrant of a metric from its two axis states (True = yes, False = no, None or pd.NA = unclear).

    Customer KPIs: yes/yes ``goldilocks``, yes/no ``papa``, no/yes ``mama``, no/no ``noise``. Vendor metrics
    (never Goldilocks): relevance yes ``leading_indicator`` (whatever usage does), no/yes ``mama``, no/no
    ``noise``. A class is given only on evidence: whenever an axis it depends on is unclear, ``inconclusive``.
    """
    rel, att = _state(relevant), _state(attributable)
    if owner == "vendor":
        if rel is True:
            return "leading_indicator"
        if rel is False and att is not None:
            return "mama" if att else "noise"
        return "inconclusive"
    if rel is None or att is None:
        return "inconclusive"
    if rel:
        return "goldilocks" if att else "papa"
    return "mama" if att else "noise"


def _fmt_p(q: float) -> str:
    return "q < 0.001" if q < 0.001 else f"q = {q:.3f}"


#: verdicts as a sentence names them ("it could be Goldilocks or Papa Bear")
_VERDICT_WORDS = {"goldilocks": "Goldilocks", "papa": "Papa Bear", "mama": "Mama Bear", "noise": "noise",
                  "leading_indicator": "a leading indicator"}


def _possible(kind: str, owner: str, rel: bool | None, att: bool | None) -> list[str]:
    """The verdicts an inconclusive metric could resolve to, once its unclear axes are decided."""
    rels = [True, False] if rel is None else [rel]
    atts = [True, False] if att is None else [att]
    found = dict.fromkeys(data_verdict(kind, owner, r, a) for r in rels for a in atts)
    return [v for v in found if v != "inconclusive"]


def _rationale(row: dict, base_label: str, reasons: list[str]) -> str:
    if row["verdict"] == "insufficient_data":
        return "Insufficient data: " + "; ".join(reasons) + "."
    level, alpha = row["_level"], row["_alpha"]
    kpi = row["kind"] == "kpi"
    unit = "per full attainment" if kpi else "per SD"
    beyond = f" beyond {base_label}" if row.get("_adjusted") else ""
    hr, q = row["relevance_hr"], row["relevance_q"]
    rel_ci = ci_text(row["relevance_ci_low"], row["relevance_ci_high"], level)
    rel, att = _state(row["relevant"]), _state(row["attributable"])
    m = row["_min_log_hr"]
    if rel is True:
        direction = "lower" if hr < 1 else "higher"
        note = "" if (hr < 1) else " (unexpected direction: higher values go with more churn)"
        first = f"It predicts churn{beyond} (HR {hr:.2f} {unit}, {rel_ci}, {_fmt_p(q)}: {direction} risk){note}"
    elif rel is False:
        first = (f"It does not predict churn{beyond} (HR {hr:.2f} {unit}, {rel_ci}: any effect is smaller than the "
                 f"minimum that counts, HR {math.exp(-m):.2f} to {math.exp(m):.2f})")
    else:
        # an interval that excludes HR 1 with q >= alpha: not significant once the metrics tested are counted
        multiple = " once the number of metrics tested is accounted for" if (
            q >= alpha and (row["relevance_ci_high"] < 1 or row["relevance_ci_low"] > 1)) else ""
        first = (f"The data cannot tell whether it predicts renewal{beyond} (HR {hr:.2f} {unit}, {rel_ci}, "
                 f"{_fmt_p(q)}{multiple})")
    if row.get("_is_baseline"):
        second = "it is the usage baseline, so attributable to usage by definition"
    else:
        eff, qa, hi, lo = row["attrib_effect"], row["attrib_q"], row["attrib_ci_high"], row["attrib_ci_low"]
        minimum = row["_minimum"]
        if kpi:
            text = (f"{100 * eff:+.2f} attainment points per month per SD of {base_label}, "
                    f"{ci_text(100 * lo, 100 * hi, level)}")
            least = f"{100 * minimum:.2f} attainment points per month"
        else:
            text = (f"{100 * (math.exp(eff) - 1):+.1f}% per SD of {base_label}, "
                    f"{level_text(level)} CI {100 * (math.exp(lo) - 1):.1f}% to {100 * (math.exp(hi) - 1):.1f}%")
            least = f"{100 * (math.exp(minimum) - 1):.1f}%"
        if att is True:
            second = f"it moves with usage ({text}, {_fmt_p(qa)})"
        elif att is False and qa < alpha and eff < 0:
            second = f"it moves against usage ({text}, {_fmt_p(qa)}), so it is not credited to the product"
        elif att is False and qa < alpha:
            second = f"it moves with usage only trivially ({text}, {_fmt_p(qa)}; below the minimum effect of {least})"
        elif att is False:
            second = f"it does not move with usage ({text}, {_fmt_p(qa)}: any effect is below the minimum of {least})"
        else:
            multiple = " once the number of metrics tested is accounted for" if (qa >= alpha and lo > 0) else ""
            second = (f"the data cannot tell whether usage moves it by the minimum effect of {least} or more "
                      f"({text}, {_fmt_p(qa)}{multiple})")
    names = {"goldilocks": "Goldilocks: a customer outcome the product moves and that keeps customers",
             "papa": "Papa Bear: it matters for retention, but usage does not move it",
             "mama": "Mama Bear: it follows usage but adds nothing to retention",
             "noise": "noise: neither moved by usage nor predictive of churn",
             "leading_indicator": "leading indicator: a vendor metric that warns of churn beyond core usage "
                                  "(never Goldilocks: it is not the customer's objective)"}
    if row["verdict"] == "inconclusive":
        options = [_VERDICT_WORDS[v] for v in _possible(row["kind"], row["owner"], rel, att)]
        names["inconclusive"] = ("inconclusive: the data cannot place it yet (it could be "
                                 + ", ".join(options[:-1]) + " or " + options[-1] + ")")
    if row.get("_is_baseline") and row["verdict"] == "leading_indicator":
        names = {**names, "leading_indicator": "leading indicator: the core usage metric, a vendor signal of churn "
                                               "risk (never Goldilocks: usage is not the customer's objective)"}
    if row["owner"] == "vendor" and row["verdict"] == "mama":
        names = {**names, "mama": "Mama Bear: vendor activity that follows usage but adds nothing to retention"}
    if row["owner"] == "vendor" and row["verdict"] == "noise":
        names = {**names, "noise": "noise: a vendor number neither driven by usage nor predictive of churn"}
    return f"{first}, and {second}: {names[row['verdict']]}."


def classify_by_data(ds: "Dataset", *, baseline: str | Sequence[str] | None = None, catalog=None,
                     kpis: Iterable[str] | None = None, usage_metrics: Iterable[str] | None = None,
                     alpha: float = 0.05, min_log_hr: float = 0.05, min_kpi_effect: float = 0.0005,
                     min_usage_effect: float = 0.05, min_accounts: int = 30, min_events: int = 10,
                     covariates: Sequence[str] | None = None, adjust_for_baseline: bool = True, clip: bool = True,
                     panel: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Classify every customer KPI (goal metric) and every usage metric by data: relevance x attributability.

    Method: see the module docstring (time-varying Cox for relevance, within-account regression for
    attributability, Benjamini-Hochberg per axis, quadrants).

    Args:
        ds: the dataset; needs a usage table and churn events; without a goals table only the usage metrics
            are classified (said in ``warnings``).
        baseline: the core usage metric(s); default ``active_users`` (must then be in the usage table).
        catalog: optional metric catalog (frame from :func:`load_catalog` or a path): goal metrics it marks
            ``owner: vendor`` are treated as vendor metrics (never Goldilocks).
        kpis, usage_metrics: restrict to these metrics (default: every goal metric / usage metric).
        alpha: false-discovery rate for each axis (BH q-values below it count); the intervals, on which a *no* is
            judged, are at ``1 - alpha``.
        min_log_hr: minimum |log hazard ratio| (per full attainment for KPIs, per SD for usage) to be relevant;
            not relevant needs the interval within ``exp(-min_log_hr)`` to ``exp(min_log_hr)``.
        min_kpi_effect: minimum attainment change per month per SD of usage for a KPI to be attributable (and
            the interval's upper end must be below it for not attributable).
        min_usage_effect: the same for a usage metric, in log points per SD of usage.
        min_accounts, min_events: below these a metric is ``insufficient_data``.
        covariates: account covariates for the Cox models (:func:`account_covariates`; default log ARR).
        adjust_for_baseline: hold the baseline usage in every relevance model except the baseline's own.
        clip: KPI attributability on contract attainment (clipped) rather than the raw progress ratio.
        panel: a precomputed :func:`episodes` panel (with usage columns) to reuse.

    Returns:
        The tidy table (columns :data:`COLUMNS`, one row per metric: KPIs first, then usage metrics) and a
        JSON-serialisable summary ``{baseline, alpha, thresholds, adjust_for_baseline, covariates,
        stratified_by, n_rows, n_accounts, n_events, verdicts: {metric: verdict}, counts: {verdict: n},
        table: [rows], warnings, method}``.
    """
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be in (0, 1), not {alpha}")
    base = resolve_baseline(ds, baseline)
    all_usage = usage_metric_names(ds)
    use_metrics = all_usage if usage_metrics is None else list(usage_metrics)
    unknown = [m for m in use_metrics if m not in all_usage]
    if unknown:
        raise AnalysisError(f"usage metrics not in the usage table: {', '.join(map(str, unknown))}")
    notes: list[str] = []
    has_goals = ds.goals is not None and len(ds.goals) > 0
    if not has_goals:
        if kpis:
            raise AnalysisError("the dataset has no goals table, so customer KPIs cannot be classified")
        notes.append("The dataset has no goals table: only usage metrics were classified.")
    owners = _catalog_owners(catalog)

    ep = panel if panel is not None else episodes(ds, usage_metrics=sorted(set(use_metrics) | set(base)))
    if int(ep["event"].sum()) == 0:
        raise AnalysisError("no account churned in the data, so relevance (does a metric predict churn?) cannot be judged")
    ep = ep.reset_index(drop=True)
    cov, cov_cols, cov_warn = account_covariates(ds, covariates)
    notes += cov_warn
    if cov_cols:
        ep = ep.join(cov, on="account_id")
    strata = "segment" if ep["segment"].nunique() > 1 else None
    base_cols = []
    for m in base:
        col = f"usage_{m}"
        if col not in ep.columns:
            raise AnalysisError(f"the panel has no column {col!r}")
        ep[f"_base_{m}"] = _zscore(np.log1p(ep[col].clip(lower=0)))
        base_cols.append(f"_base_{m}")
    base_label = " + ".join(f"log {m}" for m in base)
    # what the relevance models read, once: every KPI and usage metric below adds its column to this lean frame
    # rather than to a copy of the whole panel (gigabytes at a few million account-months)
    usage_cols = [f"usage_{m}" for m in use_metrics]
    core = ep[list(dict.fromkeys(["account_id", "segment", "period_start", "start", "stop", "event", *base_cols,
                                  *cov_cols, *usage_cols]))]
    # each model's rows: these columns and its own term, not a copy of every usage column
    lean = list(dict.fromkeys(["account_id", "segment", "start", "stop", "event", *base_cols, *cov_cols]))

    # usage index per usage period (for attributability)
    wide = usage_wide(ds, sorted(set(use_metrics) | set(base)))
    wide["_u"] = usage_index(wide, base)
    sd_index = within_sd(wide["_u"].dropna(), wide.loc[wide["_u"].notna(), "account_id"])

    rows: list[dict] = []
    reasons: dict[str, list[str]] = {}

    # ---- customer KPIs
    if has_goals:
        kpi_names = list(pd.unique(ds.goals["metric"].astype(str))) if kpis is None else list(kpis)
        known = set(ds.goals["metric"].astype(str))
        missing = [k for k in kpi_names if k not in known]
        if missing:
            raise AnalysisError(f"KPIs with no goal in the goals table: {', '.join(missing)}")
        kpi_names = sorted(kpi_names)
        att = kpi_attainment_panel(ds, ep)
        changes = kpi_changes(ds, wide[["account_id", "date", "_u"]], clip=clip) if ds.goal_progress is not None else None
        adj = base_cols if adjust_for_baseline else []
        for k in kpi_names:
            row = {"metric": k, "kind": "kpi", "owner": "vendor" if owners.get(k) == "vendor" else "customer"}
            why: list[str] = []
            sub = _model_rows(core, lean, "_kpi", att[k] if k in att.columns else np.nan, [*adj, *cov_cols])
            rel = _relevance_one(sub, "_kpi", adj, cov_cols, strata, min_accounts, min_events, True, alpha)
            notes += [f"{k}: {w}" for w in rel.get("warnings", [])]
            if "reason" in rel:
                why.append("relevance: " + rel["reason"])
            row.update(_rel_columns(rel, "per full attainment (0 -> 1) of the KPI's goal"))
            if changes is None or not (changes["metric"] == k).any():
                why.append("attributability: no consecutive goal measurements")
                att_res = {"attrib_n_accounts": 0, "attrib_n_obs": 0}
            else:
                att_res = _attrib_one(changes[changes["metric"] == k], "change", "usage", "goal_age", "goal_id",
                                      min_accounts, alpha, sd_index)
                if "reason" in att_res:
                    why.append("attributability: " + att_res["reason"])
            row.update(_att_columns(att_res, f"attainment change per month per within-account SD of {base_label}"))
            row["_adjusted"] = bool(adj)
            rows.append(row)
            reasons[k] = why

    # ---- usage (vendor) metrics
    for m in use_metrics:
        is_base = m in base
        row = {"metric": m, "kind": "usage", "owner": "vendor", "_is_baseline": is_base}
        why = []
        adj = [c for c in base_cols if c != f"_base_{m}"] if (adjust_for_baseline and not is_base) else []
        sub = _model_rows(core, lean, "_x", np.log1p(core[f"usage_{m}"].clip(lower=0)), [*adj, *cov_cols])
        sub["_x"] = _zscore(sub["_x"])
        rel = _relevance_one(sub, "_x", adj, cov_cols, strata, min_accounts, min_events, not is_base, alpha)
        notes += [f"{m}: {w}" for w in rel.get("warnings", [])]
        if "reason" in rel:
            why.append("relevance: " + rel["reason"])
        row.update(_rel_columns(rel, "per SD of log(1 + last completed month's value)"))
        if is_base:
            row.update(_att_columns({"attrib_n_accounts": int(wide.loc[wide[m].notna(), "account_id"].nunique()),
                                     "attrib_n_obs": int(wide[m].notna().sum())}, "the usage baseline (by definition)"))
            row["c_gain"] = float("nan")
        else:
            frame = pd.DataFrame({"account_id": wide["account_id"], "y": np.log1p(wide[m].clip(lower=0)),
                                  "usage": wide["_u"], "tenure": _tenure_months(ds, wide)})
            att_res = _attrib_one(frame, "y", "usage", "tenure", "account_id", min_accounts, alpha, sd_index)
            if "reason" in att_res:
                why.append("attributability: " + att_res["reason"])
            row.update(_att_columns(att_res, f"log points per within-account SD of {base_label}"))
        row["_adjusted"] = bool(adj)
        rows.append(row)
        reasons[m] = why

    table = pd.DataFrame(rows)
    table["relevance_q"] = bh(table["relevance_p"])
    is_baseline = table["metric"].isin(base) & table["kind"].eq("usage")
    table["attrib_q"] = bh(table["attrib_p"].where(~is_baseline))
    relevant, attributable, verdicts, rationale = [], [], [], []
    for i, r in table.iterrows():
        rd = r.to_dict()
        is_base = bool(is_baseline[i])
        minimum = min_kpi_effect if rd["kind"] == "kpi" else min_usage_effect
        rd.update(_alpha=alpha, _level=1 - alpha, _min_log_hr=min_log_hr, _minimum=minimum)
        why = reasons[rd["metric"]]
        if why:
            relevant.append(pd.NA)
            attributable.append(pd.NA)
            verdicts.append("insufficient_data")
            rd.update(verdict="insufficient_data")
            rationale.append(_rationale(rd, base_label, why))
            continue
        rel = relevance_state(rd["relevance_hr"], rd["relevance_ci_low"], rd["relevance_ci_high"], rd["relevance_q"],
                              alpha=alpha, min_log_hr=min_log_hr)
        att_ok = True if is_base else attributability_state(rd["attrib_effect"], rd["attrib_ci_high"], rd["attrib_q"],
                                                            alpha=alpha, minimum=minimum)
        v = data_verdict(rd["kind"], rd["owner"], rel, att_ok)
        rd.update(relevant=rel, attributable=att_ok, verdict=v, _is_baseline=is_base)
        relevant.append(pd.NA if rel is None else rel)
        attributable.append(pd.NA if att_ok is None else att_ok)
        verdicts.append(v)
        rationale.append(_rationale(rd, base_label, why))
    table["relevant"] = pd.array(relevant, dtype="boolean")
    table["attributable"] = pd.array(attributable, dtype="boolean")
    table["verdict"] = verdicts
    table["rationale"] = rationale
    for c in COLUMNS:
        if c not in table.columns:
            table[c] = np.nan
    table = table[list(COLUMNS)].reset_index(drop=True)
    for c in ("n_accounts", "n_events", "attrib_n_accounts", "attrib_n_obs"):
        table[c] = table[c].fillna(0).astype(int)

    summary = {
        "method": "relevance: time-varying Cox on monthly (start, stop] episodes, covariates known at interval start, "
                  "robust SE by account" + (", stratified by segment" if strata else "")
                  + ("; metrics other than the baseline adjusted for it" if adjust_for_baseline else "")
                  + "; attributability: within-account OLS (fixed effects), cluster-robust SE by account; "
                  "Benjamini-Hochberg per axis; each axis yes (significant and at least the minimum effect), no (the "
                  f"{level_text(1 - alpha)} CI excludes the minimum effect) or unclear; a class only on evidence, "
                  "else inconclusive",
        "baseline": base, "alpha": float(alpha),
        "thresholds": {"min_log_hr": float(min_log_hr), "min_kpi_effect": float(min_kpi_effect),
                       "min_usage_effect": float(min_usage_effect), "min_accounts": int(min_accounts),
                       "min_events": int(min_events)},
        "adjust_for_baseline": bool(adjust_for_baseline), "clip": bool(clip), "covariates": cov_cols,
        "stratified_by": strata, "n_rows": int(len(ep)), "n_accounts": int(ep["account_id"].nunique()),
        "n_events": int(ep["event"].sum()),
        "verdicts": dict(zip(table["metric"], table["verdict"])),
        "counts": {v: int((table["verdict"] == v).sum()) for v in DATA_VERDICTS if (table["verdict"] == v).any()},
        "table": records(table), "warnings": notes,
    }
    return table, jsonable(summary)


def _rel_columns(rel: dict, unit: str) -> dict:
    return {"n_accounts": rel.get("n_accounts", 0), "n_events": rel.get("n_events", 0),
            "relevance_hr": rel.get("hr", np.nan), "relevance_ci_low": rel.get("ci_low", np.nan),
            "relevance_ci_high": rel.get("ci_high", np.nan), "relevance_p": rel.get("p", np.nan),
            "relevance_unit": unit, "c_baseline": rel.get("c_baseline", np.nan), "c_full": rel.get("c_full", np.nan),
            "c_gain": rel.get("c_gain", np.nan)}


def _att_columns(att: dict, unit: str) -> dict:
    return {"attrib_effect": att.get("attrib_effect", np.nan), "attrib_ci_low": att.get("attrib_ci_low", np.nan),
            "attrib_ci_high": att.get("attrib_ci_high", np.nan), "attrib_p": att.get("attrib_p", np.nan),
            "attrib_std": att.get("attrib_std", np.nan), "attrib_n_accounts": att.get("attrib_n_accounts", 0),
            "attrib_n_obs": att.get("attrib_n_obs", 0), "attrib_unit": unit}


def _tenure_months(ds: "Dataset", frame: pd.DataFrame) -> np.ndarray:
    start = frame["account_id"].map(ds.accounts.set_index("account_id")["start_date"])
    return ((frame["date"] - start).dt.days.to_numpy(float)) / DAYS_PER_MONTH
