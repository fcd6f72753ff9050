"""Churn versus outcome attainment: the analyses a study runs, per segment or across segments.

Every analysis takes a :class:`~csresearch.data.Dataset` (or tables derived from it) and returns tidy frames
plus one plain, JSON-serialisable dict. Across segments, models are stratified by segment (each segment keeps
its own baseline churn hazard) rather than pooled.

* :func:`time_varying_effect` — the headline: Cox model of churn on *current* attainment (known at the start of
  each monthly interval), hazard ratio for full versus no attainment, robust standard errors clustered by account.
* :func:`landmark_effect` — attainment at ``L`` days of tenure versus churn after ``L``, among accounts still
  active at ``L``: simple to explain, and free of immortal time because nobody is classified by the future.
* :func:`naive_effect` — final attainment used as if it had been known from the start. It is *immortal-time
  biased*: an account that churned early had little time to make progress, so low attainment is partly a
  consequence of churning early, not its cause. Computed only to show the size of that bias.
* :func:`attainment_km` — Kaplan-Meier curves and a log-rank test by attainment group at a landmark.
* :func:`usage_vs_outcome` — usage-only, attainment-only and combined models head to head (C-index, LR test).
* :func:`dose_response` — partial attainment as a dose: natural cubic spline versus linear.
* :func:`sample_size` — how many accounts and churn events a study needs to detect a given churn reduction.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd
import patsy
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from .attainment import account_attainment, episodes
from .cohorts import survival_table
from .survival import Fit, concordance, fit_cox, fit_discrete, fit_km, logrank, lr_test

if TYPE_CHECKING:
    from .data import Dataset

GROUPS = ("none", "partial", "attained")
NAIVE_LABEL = "immortal-time biased: final attainment treated as known from the start"


class AnalysisError(ValueError):
    """An analysis cannot be estimated on this data; the message says why in plain words."""


# ---------------------------------------------------------------------------------------------------------
# covariates
# ---------------------------------------------------------------------------------------------------------
def account_covariates(ds: "Dataset", covariates: Sequence[str] | None) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Account-level covariates for adjustment: ``(frame indexed by account_id, column names, warnings)``.

    ``covariates=None`` means the default: ``log_arr`` when every account has an ARR. A name that is an
    accounts column is used as is (numeric) or one-hot encoded (text, first level as reference); ``log_<col>``
    is ``log(col + 1)`` of a numeric column. A covariate with missing values or no variation is left out with
    a warning rather than silently dropping accounts.
    """
    acc = ds.accounts.set_index("account_id")
    warnings: list[str] = []
    if covariates is None:
        covariates = ["log_arr"] if "arr" in acc.columns and acc["arr"].notna().all() else []
    frame = pd.DataFrame(index=acc.index)
    for name in covariates:
        base = name[4:] if name.startswith("log_") and name not in acc.columns else name
        if base not in acc.columns:
            raise AnalysisError(f"covariate {name!r}: no column {base!r} in accounts")
        col = acc[base]
        if base != name:
            if not pd.api.types.is_numeric_dtype(col):
                raise AnalysisError(f"covariate {name!r}: column {base!r} is not numeric")
            if (col < 0).any():
                raise AnalysisError(f"covariate {name!r}: column {base!r} has negative values")
            col = np.log(col + 1.0)
        if col.isna().any():
            warnings.append(f"Covariate {name} was left out: {int(col.isna().sum())} accounts have no value.")
            continue
        if pd.api.types.is_numeric_dtype(col):
            if col.nunique() < 2:
                warnings.append(f"Covariate {name} was left out: it has the same value for every account.")
                continue
            frame[name] = col.astype(float)
        else:
            dummies = pd.get_dummies(col.astype(str), prefix=name, drop_first=True, dtype=float)
            if dummies.shape[1] == 0:
                warnings.append(f"Covariate {name} was left out: it has the same value for every account.")
                continue
            frame = frame.join(dummies)
    return frame, list(frame.columns), warnings


#: the panel columns every churn model on it needs
PANEL_KEYS = ("account_id", "segment", "start", "stop", "event", "tenure_months")


def model_frame(panel: pd.DataFrame, columns: Sequence[str], *, rows: np.ndarray | pd.Series | None = None,
                covariates: pd.DataFrame | None = None) -> pd.DataFrame:
    """What a model needs from the panel, and only that: :data:`PANEL_KEYS` plus ``columns``, on ``rows``
    (a boolean mask; all rows when None), plus the columns of ``covariates`` (a frame indexed by account_id,
    see :func:`account_covariates`) looked up by account. One lean copy rather than copies and joins of the
    whole panel, which at 20 million account-months is gigabytes a time."""
    keep = None if rows is None else np.flatnonzero(np.asarray(rows, dtype=bool))
    names = list(dict.fromkeys([*(c for c in PANEL_KEYS if c in panel.columns), *columns]))
    out = pd.DataFrame({c: panel[c].to_numpy() if keep is None else panel[c].to_numpy()[keep] for c in names})
    if covariates is not None and covariates.shape[1]:
        pos = covariates.index.get_indexer(out["account_id"])
        if (pos < 0).any():
            raise AnalysisError("the panel has accounts that are not in the accounts table")
        for c in covariates.columns:
            out[c] = covariates[c].to_numpy()[pos]
    return out


def _strata(frame: pd.DataFrame) -> str | None:
    return "segment" if frame["segment"].nunique() > 1 else None


#: a log hazard ratio beyond this (HR below 1/22,000 or above 22,000) means the model did not converge to a finite
#: estimate: typically one attainment group has no churn at all (separation)
MAX_ABS_COEF = 10.0


def _effect(fit: Fit, term: str = "attainment") -> dict:
    row = fit.summary.loc[term]
    if not (np.isfinite(row[["coef", "se", "ci_low", "ci_high"]].astype(float)).all()
            and abs(row["coef"]) < MAX_ABS_COEF and row["se"] > 0):
        raise AnalysisError(f"{term} separates accounts that churn from accounts that stay (for instance no account "
                            "with full attainment churned), so its hazard ratio has no finite estimate")
    return {"hr": float(row["hr"]), "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"]),
            "p": float(row["p"]), "coef": float(row["coef"]), "se": float(row["se"])}


def _require_goals(ds: "Dataset") -> None:
    if ds.goals is None or len(ds.goals) == 0:
        raise AnalysisError("the dataset has no goals table, so attainment cannot be measured")


def _require_events(frame: pd.DataFrame, event: str, what: str, minimum: int = 1) -> None:
    n = int(frame[event].sum())
    if n < minimum:
        raise AnalysisError(f"{what}: {n} churn events, fewer than the {minimum} needed")


def _require_variation(frame: pd.DataFrame, column: str, what: str) -> None:
    values = frame[column]
    if values.nunique() < 2:
        raise AnalysisError(f"{what}: every account has attainment {values.iloc[0]:.2f}, so there is nothing to compare")


# ---------------------------------------------------------------------------------------------------------
# the headline: time-varying attainment
# ---------------------------------------------------------------------------------------------------------
#: above this many account-month rows, the panel models fit the discrete-time model instead of Cox
COX_MAX_ROWS = 5_000_000


def panel_model(ep: pd.DataFrame, covariates: Sequence[str], strata: str | None, *,
                cox_max_rows: int = COX_MAX_ROWS, alpha: float = 0.05) -> Fit:
    """A proportional-hazards model of churn on the account-month panel, robust SEs clustered by account.

    Up to ``cox_max_rows`` rows: Cox on the ``(start, stop]`` rows (:func:`csresearch.survival.fit_cox`,
    stratified). Above: the discrete-time cloglog GLM on the same rows (:func:`csresearch.survival.fit_discrete`,
    spline baseline in ``tenure_months``, one baseline level per stratum), which estimates the same hazard
    ratios at a fraction of the cost. ``Fit.method`` says which (``"cox"`` or ``"discrete_cloglog"``).
    """
    if len(ep) > cox_max_rows:
        return fit_discrete(ep, "event", list(covariates), "tenure_months", strata=strata, cluster="account_id",
                            alpha=alpha)
    return fit_cox(ep, "stop", "event", list(covariates), entry="start", strata=strata, cluster="account_id",
                   alpha=alpha)


def time_varying_effect(ds: "Dataset", *, covariates: Sequence[str] | None = None, lag_days: int = 0,
                        panel: pd.DataFrame | None = None, cox_max_rows: int = COX_MAX_ROWS) -> tuple[Fit, dict]:
    """Cox model of churn on current attainment in ``(start, stop]`` monthly intervals.

    Attainment is the account's attainment known at each interval's start (``lag_days`` earlier still).
    Robust standard errors are clustered by account; across segments the model is stratified by segment.
    Accounts without any goal are left out (said in the result's ``warnings``).

    When the panel has more than ``cox_max_rows`` rows (about 250,000 accounts at the default), the model is
    the discrete-time proportional-hazards model on the same account-month rows
    (:func:`csresearch.survival.fit_discrete`: cloglog GLM, smooth baseline in tenure, a baseline level per
    segment, robust SEs by account), whose exp(coef) estimates the same hazard ratio; ``model`` says which.

    Returns the :class:`~csresearch.survival.Fit` and ``{hr, ci_low, ci_high, p, coef, se, n_accounts, n_events,
    n_rows, covariates, stratified_by, lag_days, warnings}`` where ``hr`` is the hazard ratio of full versus no
    attainment.
    """
    _require_goals(ds)
    ep = panel if panel is not None else episodes(ds, lag_days=lag_days)
    cov, names, warnings = account_covariates(ds, covariates)
    missing = ep["attainment"].isna().to_numpy()
    if missing.any():
        # months before an account's first goal are left out (it enters at its first goal: no immortal time)
        n_never = ep["account_id"].nunique() - ep.loc[~missing, "account_id"].nunique()
        if n_never:
            warnings.append(f"{n_never} accounts never recorded a goal and were left out of the attainment models.")
    ep = model_frame(ep, ["attainment"], rows=~missing, covariates=cov)
    _require_events(ep, "event", "time-varying model", minimum=2)
    _require_variation(ep, "attainment", "time-varying model")
    strata = _strata(ep)
    fit = panel_model(ep, ["attainment", *names], strata, cox_max_rows=cox_max_rows)
    model = fit.method
    if model == "discrete_cloglog":
        method = (f"discrete-time proportional hazards (cloglog GLM on {len(ep):,} account-months, more than the "
                  f"Cox limit of {cox_max_rows:,}), spline baseline in tenure, robust SE by account")
    else:
        method = "Cox, counting process (start, stop], Efron ties, robust SE by account"
    out = _effect(fit)
    out.update({"n_accounts": int(ep["account_id"].nunique()), "n_events": int(ep["event"].sum()),
                "n_rows": int(len(ep)), "covariates": names, "stratified_by": strata, "lag_days": int(lag_days),
                "warnings": warnings, "model": "discrete" if model == "discrete_cloglog" else "cox", "method": method})
    return fit, out


def attainment_at_tenure(ds: "Dataset", days: float, *, lag_days: int = 0, threshold: float = 1.0) -> pd.DataFrame:
    """Each account's attainment at a tenure of ``days`` (start_date + days): account_id, attainment, goals_set..."""
    pts = pd.DataFrame({"account_id": ds.accounts["account_id"],
                        "date": ds.accounts["start_date"] + pd.Timedelta(days=float(days))})
    return account_attainment(ds.goals, _progress(ds), pts, lag_days=lag_days, threshold=threshold)


def _progress(ds: "Dataset") -> pd.DataFrame:
    if ds.goal_progress is not None:
        return ds.goal_progress
    return pd.DataFrame({"goal_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]"),
                         "value": pd.Series(dtype=float)})


def landmark_table(ds: "Dataset", landmark_days: float, *, lag_days: int = 0, threshold: float = 1.0) -> pd.DataFrame:
    """Accounts active at ``landmark_days`` of tenure with their attainment then and their follow-up after it.

    Columns: the survival table's, plus ``attainment, goals_set, goals_attained, group`` (none / partial /
    attained at ``threshold``) and ``time`` (days after the landmark), ``entry_after`` (delayed entry after the
    landmark for snapshot exports whose observation began later).
    """
    _require_goals(ds)
    st = survival_table(ds)
    st = st[st["duration"] > landmark_days].copy()
    att = attainment_at_tenure(ds, landmark_days, lag_days=lag_days, threshold=threshold).set_index("account_id")
    st = st.join(att[["attainment", "goals_set", "goals_attained"]], on="account_id")
    st = st[st["attainment"].notna()]
    st["group"] = attainment_group(st["attainment"], threshold)
    st["time"] = st["duration"] - landmark_days
    st["entry_after"] = (st["entry"] - landmark_days).clip(lower=0)
    return st.reset_index(drop=True)


def attainment_group(attainment: pd.Series, threshold: float = 1.0) -> pd.Series:
    """none (0), partial (between 0 and the threshold) or attained (at or above the threshold)."""
    if not 0 < threshold <= 1:
        raise AnalysisError(f"attainment_threshold must be in (0, 1], not {threshold}")
    group = np.where(attainment >= threshold, "attained", np.where(attainment > 0, "partial", "none"))
    return pd.Series(pd.Categorical(group, categories=GROUPS), index=attainment.index)


def landmark_effect(ds: "Dataset", landmark_days: float, *, covariates: Sequence[str] | None = None,
                    lag_days: int = 0, threshold: float = 1.0) -> tuple[Fit, dict]:
    """Cox model of churn after ``landmark_days`` on attainment at the landmark, among accounts active then.

    Returns the :class:`~csresearch.survival.Fit` and ``{landmark_days, hr, ci_low, ci_high, p, n_at_risk, n_events,
    ...}``.
    """
    lm = landmark_table(ds, landmark_days, lag_days=lag_days, threshold=threshold)
    if len(lm) == 0:
        raise AnalysisError(f"landmark {landmark_days:g} days: no account was still active then")
    cov, names, warnings = account_covariates(ds, covariates)
    lm = lm.join(cov, on="account_id")
    _require_events(lm, "event", f"landmark {landmark_days:g} days", minimum=2)
    _require_variation(lm, "attainment", f"landmark {landmark_days:g} days")
    entry = "entry_after" if (lm["entry_after"] > 0).any() else None
    fit = fit_cox(lm, "time", "event", ["attainment", *names], entry=entry, strata=_strata(lm))
    out = {"landmark_days": float(landmark_days), **_effect(fit), "n_at_risk": int(len(lm)),
           "n_events": int(lm["event"].sum()), "covariates": names, "stratified_by": _strata(lm),
           "warnings": warnings}
    return fit, out


def naive_effect(ds: "Dataset", *, covariates: Sequence[str] | None = None) -> tuple[Fit, dict]:
    """Cox model from the start on *final* attainment (at churn or ``as_of``): the immortal-time-biased analysis.

    Returned so that lessons and reports can show the size of the bias; never the answer. The result dict
    carries ``label`` saying so.
    """
    _require_goals(ds)
    st = survival_table(ds)
    end = st["end_date"].fillna(ds.as_of)
    att = account_attainment(ds.goals, _progress(ds), pd.DataFrame({"account_id": st["account_id"], "date": end}))
    st["attainment"] = att["attainment"].to_numpy()
    st = st[st["attainment"].notna()]
    cov, names, warnings = account_covariates(ds, covariates)
    st = st.join(cov, on="account_id")
    _require_events(st, "event", "naive model", minimum=2)
    _require_variation(st, "attainment", "naive model")
    entry = "entry" if (st["entry"] > 0).any() else None
    fit = fit_cox(st, "duration", "event", ["attainment", *names], entry=entry, strata=_strata(st))
    out = {**_effect(fit), "n_accounts": int(len(st)), "n_events": int(st["event"].sum()), "covariates": names,
           "label": NAIVE_LABEL, "warnings": warnings}
    return fit, out


def attainment_km(ds: "Dataset", landmark_days: float, *, lag_days: int = 0,
                  threshold: float = 1.0) -> tuple[pd.DataFrame, dict]:
    """Kaplan-Meier curves after a landmark by attainment group at the landmark, and the log-rank test.

    Returns the tidy KM frame (``group`` = none / partial / attained; ``time`` in days after the landmark) and
    ``{landmark_days, threshold, groups: {group: {n, events}}, logrank: {statistic, df, p}}``. Groups with no
    account are left out of the test.
    """
    lm = landmark_table(ds, landmark_days, lag_days=lag_days, threshold=threshold)
    lm["group"] = lm["group"].astype(str)
    entry = "entry_after" if (lm["entry_after"] > 0).any() else None
    km = fit_km(lm, "time", "event", group="group", entry=entry)
    counts = lm.groupby("group")["event"].agg(["size", "sum"])
    groups = {g: {"n": int(counts.loc[g, "size"]), "events": int(counts.loc[g, "sum"])} for g in GROUPS if g in counts.index}
    test = None
    if len(groups) > 1 and lm["event"].sum() > 0:
        test = {k: float(v) for k, v in logrank(lm, "time", "event", "group", entry=entry).items()}
    return km, {"landmark_days": float(landmark_days), "threshold": float(threshold), "groups": groups, "logrank": test}


# ---------------------------------------------------------------------------------------------------------
# usage versus outcome, head to head
# ---------------------------------------------------------------------------------------------------------
def usage_features(panel: pd.DataFrame, metrics: Iterable[str] | None = None) -> list[str]:
    """Add ``log_<metric>`` = log(1 + usage of the last completed period) columns to ``panel``; return their names."""
    cols = [c for c in panel.columns if c.startswith("usage_")]
    if metrics is not None:
        wanted = {f"usage_{m}" for m in metrics}
        unknown = wanted - set(cols)
        if unknown:
            raise AnalysisError(f"usage metrics not in the usage table: {', '.join(sorted(m[6:] for m in unknown))}")
        cols = [c for c in cols if c in wanted]
    names = []
    for c in cols:
        name = f"log_{c[6:]}"
        panel[name] = np.log1p(panel[c].clip(lower=0))
        names.append(name)
    return names


def usage_vs_outcome(ds: "Dataset", *, usage_metrics: Iterable[str] | None = None, lag_days: int = 0,
                     panel: pd.DataFrame | None = None, cox_max_rows: int = COX_MAX_ROWS) -> tuple[pd.DataFrame, dict]:
    """Usage-only, attainment-only and combined time-varying Cox models on the same account-months.

    Usage features are ``log(1 + value)`` of each usage metric in the last completed period before the interval;
    rows without a completed usage period (an account's first month) are left out of all three models so that
    they are compared on identical data. The C-index is Harrell's, on ``(start, stop]`` rows with the model's
    linear predictor as risk score, within segments when there are several. The likelihood-ratio test asks
    whether attainment adds to usage.

    Returns a tidy frame ``model, c_index, loglik, n_params`` and ``{c_index: {usage, attainment, both},
    lr_test_p, lr_statistic, lr_df, n_rows, n_events, usage_metrics}``.
    """
    _require_goals(ds)
    ep = panel if panel is not None else episodes(ds, lag_days=lag_days)
    if not any(c.startswith("usage_") for c in ep.columns):
        raise AnalysisError("the dataset has no usage table, so usage cannot be compared with outcomes")
    usage_cols = [c for c in ep.columns if c.startswith("usage_")]
    if usage_metrics is not None:
        usage_cols = [f"usage_{m}" for m in usage_metrics if f"usage_{m}" in ep.columns]
    keep = ep[["attainment", *usage_cols]].notna().all(axis=1).to_numpy()
    rows = np.flatnonzero(keep)
    raw = pd.DataFrame({c: ep[c].to_numpy()[rows] for c in usage_cols})
    names = usage_features(raw, usage_metrics)  # log(1 + usage) columns, and the check of the metric names
    ep = model_frame(ep, ["attainment"], rows=keep)
    for name in names:
        ep[name] = raw[name].to_numpy()
    del raw
    _require_events(ep, "event", "usage versus outcome", minimum=2)
    strata = _strata(ep)
    specs = {"usage": names, "attainment": ["attainment"], "both": [*names, "attainment"]}
    fits, rows = {}, []
    for model, cols in specs.items():
        usable = [c for c in cols if ep[c].nunique() > 1]
        if not usable:
            raise AnalysisError(f"usage versus outcome: the {model} model has no varying covariate")
        fit = panel_model(ep, usable, strata, cox_max_rows=cox_max_rows)
        fits[model] = fit
        score = np.zeros(len(ep))
        for c in usable:  # column by column: ep[usable].to_numpy() would copy every column at once
            score += fit.summary.loc[c, "coef"] * ep[c].to_numpy()
        c = concordance(ep, "stop", "event", score, entry="start", strata=strata)
        rows.append({"model": model, "c_index": float(c["c_index"]), "loglik": float(fit.loglik),
                     "n_params": len(usable)})
    test = lr_test(fits["both"], fits["usage"])
    table = pd.DataFrame(rows)
    out = {"c_index": {r["model"]: r["c_index"] for r in rows}, "lr_test_p": float(test["p"]),
           "lr_statistic": float(test["statistic"]), "lr_df": int(test["df"]), "n_rows": int(len(ep)),
           "n_events": int(ep["event"].sum()), "usage_metrics": [n[4:] for n in names],
           "model": "discrete" if fits["both"].method == "discrete_cloglog" else "cox"}
    return table, out


# ---------------------------------------------------------------------------------------------------------
# dose-response of partial attainment
# ---------------------------------------------------------------------------------------------------------
def dose_response(ds: "Dataset", *, knots: Sequence[float] = (0.25, 0.5, 0.75), covariates: Sequence[str] | None = None,
                  lag_days: int = 0, panel: pd.DataFrame | None = None, grid_points: int = 101,
                  cox_max_rows: int = COX_MAX_ROWS) -> tuple[pd.DataFrame, dict]:
    """Partial attainment as a dose: hazard ratio versus attainment 0 along a natural cubic spline.

    The spline is patsy's ``cr`` with the given interior ``knots`` and boundary knots 0 and 1, centred (the
    Cox model has no intercept). A likelihood-ratio test compares it with the linear model (linear is nested
    in the natural spline). The curve's 95% CI uses the delta method with the robust covariance.

    Returns the curve ``attainment, hr, ci_low, ci_high, linear_hr`` and
    ``{knots, lr_nonlinearity_p, lr_statistic, lr_df, hr_at: {0.25, 0.5, 0.75, 1.0}}``.
    """
    _require_goals(ds)
    knots = [float(k) for k in knots]
    if not knots or any(not 0 < k < 1 for k in knots) or sorted(set(knots)) != knots:
        raise AnalysisError(f"spline knots must be increasing and strictly inside (0, 1), not {knots}")
    ep = panel if panel is not None else episodes(ds, lag_days=lag_days)
    cov, names, _ = account_covariates(ds, covariates)
    ep = model_frame(ep, ["attainment"], rows=ep["attainment"].notna(), covariates=cov)
    _require_events(ep, "event", "dose-response", minimum=len(knots) + 3)
    spec = f"cr(attainment, knots={knots}, lower_bound=0, upper_bound=1, constraints='center') - 1"
    # the basis a slice at a time (patsy's incremental builder learns the centring from every slice), written into
    # preallocated columns: on 20 million account-months the whole design at once would be gigabytes of temporaries
    att = ep["attainment"].to_numpy()
    step = 2_000_000
    info = patsy.incr_dbuilder(spec, lambda: ({"attainment": att[a:a + step]} for a in range(0, len(att), step)))
    cols = [f"spline_{i}" for i in range(len(info.column_names))]
    basis = [np.empty(len(att)) for _ in cols]
    for a in range(0, len(att), step):
        block = np.asarray(patsy.build_design_matrices([info], {"attainment": att[a:a + step]})[0])
        for i, column in enumerate(basis):
            column[a:a + step] = block[:, i]
    for c, column in zip(cols, basis):
        ep[c] = column
    del basis, block
    strata = _strata(ep)
    spline = panel_model(ep, [*cols, *names], strata, cox_max_rows=cox_max_rows)
    linear = panel_model(ep, ["attainment", *names], strata, cox_max_rows=cox_max_rows)
    # the linear term is nested in the spline's span but not by column name, so the LR test is computed here
    statistic = max(0.0, 2 * (spline.loglik - linear.loglik))
    df = len(cols) - 1
    test = {"statistic": statistic, "df": df, "p": float(stats.chi2.sf(statistic, df))}
    grid = np.linspace(0, 1, grid_points)
    design = patsy.build_design_matrices([info], {"attainment": grid})[0]
    zero = patsy.build_design_matrices([info], {"attainment": np.zeros(1)})[0]
    diff = np.asarray(design) - np.asarray(zero)
    beta = spline.summary.loc[cols, "coef"].to_numpy()
    vcov = spline.vcov.loc[cols, cols].to_numpy()
    lp = diff @ beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", diff, vcov, diff))
    z = stats.norm.ppf(0.975)
    linear_coef = linear.summary.loc["attainment", "coef"]
    curve = pd.DataFrame({"attainment": grid, "hr": np.exp(lp), "ci_low": np.exp(lp - z * se),
                          "ci_high": np.exp(lp + z * se), "linear_hr": np.exp(grid * linear_coef)})
    at = {f"{a:g}": float(np.interp(a, grid, curve["hr"])) for a in (0.25, 0.5, 0.75, 1.0)}
    return curve, {"knots": knots, "lr_nonlinearity_p": float(test["p"]), "lr_statistic": float(test["statistic"]),
                   "lr_df": int(test["df"]), "hr_at": at, "linear": _effect(linear)}


# ---------------------------------------------------------------------------------------------------------
# study design
# ---------------------------------------------------------------------------------------------------------
def schoenfeld_events(hazard_ratio: float, *, alpha: float = 0.05, power: float = 0.80, ratio: float = 1.0) -> float:
    """Churn events a log-rank test needs to detect ``hazard_ratio`` (Schoenfeld 1983), two-sided.

    ``D = (z_{1-alpha/2} + z_{power})^2 / (q1 q2 (log HR)^2)`` with allocation shares ``q1 = 1 / (1 + ratio)``
    and ``q2 = ratio / (1 + ratio)``. Not rounded.
    """
    if hazard_ratio <= 0 or hazard_ratio == 1:
        raise AnalysisError(f"hazard ratio must be positive and differ from 1, not {hazard_ratio}")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    q1, q2 = 1 / (1 + ratio), ratio / (1 + ratio)
    return z ** 2 / (q1 * q2 * math.log(hazard_ratio) ** 2)


def sample_size(base_churn: float, reductions: Sequence[float] = (0.05, 0.10, 0.15, 0.20), *, alpha: float = 0.05,
                power: float = 0.80, ratio: float = 1.0) -> pd.DataFrame:
    """Accounts (and churn events) needed to detect a relative churn reduction, two-sided test.

    Two formulas side by side, for a two-arm comparison (e.g. accounts whose success criteria are recorded at
    onboarding and reviewed at renewal, versus accounts without) over a fixed horizon in which the control arm
    churns ``base_churn``:

    * two proportions: statsmodels' ``NormalIndPower`` on Cohen's h (arcsine effect size);
    * log-rank: :func:`schoenfeld_events` with ``HR = log(1 - p_treated) / log(1 - p_control)`` (proportional
      hazards over the horizon); accounts = events divided by the pooled probability of churning in the horizon.

    Returns one row per reduction: ``reduction, churn_control, churn_treated, hazard_ratio,
    n_per_arm_control, n_per_arm_treated, n_total_proportions, events_logrank, n_total_logrank``.
    """
    if not 0 < base_churn < 1:
        raise AnalysisError(f"base churn must be a proportion in (0, 1), not {base_churn}")
    rows = []
    q1, q2 = 1 / (1 + ratio), ratio / (1 + ratio)
    for r in reductions:
        if not 0 < r < 1:
            raise AnalysisError(f"a churn reduction must be in (0, 1), not {r}")
        p1, p2 = base_churn, base_churn * (1 - r)
        h = proportion_effectsize(p1, p2)
        n1 = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio, alternative="two-sided")
        hr = math.log(1 - p2) / math.log(1 - p1)
        events = schoenfeld_events(hr, alpha=alpha, power=power, ratio=ratio)
        pooled = q1 * p1 + q2 * p2
        rows.append({"reduction": r, "churn_control": p1, "churn_treated": p2, "hazard_ratio": hr,
                     "n_per_arm_control": math.ceil(n1), "n_per_arm_treated": math.ceil(n1 * ratio),
                     "n_total_proportions": math.ceil(n1) + math.ceil(n1 * ratio),
                     "events_logrank": math.ceil(events), "n_total_logrank": math.ceil(events / pooled)})
    return pd.DataFrame(rows)
