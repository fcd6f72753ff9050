"""A churn model on usage and account attributes (no attainment), validated on accounts it has not seen.

Dated exports: a Cox model on the account-month panel (log1p of last month's usage per metric, the account
attributes, stratified by segment), 5-fold cross-validation grouped by account; the out-of-fold C-index (Harrell's,
within segments) with an account-bootstrap interval. Label exports: a logistic regression of the churn label
(mean usage per account, attributes, segment), 5-fold cross-validation; the out-of-fold AUC with a bootstrap
interval. Both: the calibration of predicted churn over the horizon (12 months, or the window observed when
shorter; the label horizon) and the lift by decile of predicted risk.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import rankdata

from .. import features as F
from .. import plots, windows
from .. import tables
from ..models import AnalysisError, model_frame, strata_of
from ..result import Figure, Result, Shown
from ..survival import (bootstrap_concordance, breslow_baseline, brier_score, calibration_fit, calibration_table,
                        cumulative_hazard_at, fit_cox, grouped_folds)
from ._gates import models_reason

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "usage_model"
TITLE = "How well usage and account data foresee churn"
USES_SAMPLE = True
INTRO = ("A churn model on everything but goals (usage metrics and account attributes), fitted on four fifths of the "
         "accounts and scored on the fifth it did not see, five times over. How well it ranks accounts by churn risk "
         "(0.5 is a coin toss, 1 a perfect ranking), whether its predicted churn matches what happened, and how much "
         "riskier its riskiest tenth is than the average account.")
FOLDS = 5
N_BOOT = 1000
MIN_EVENTS = 10


def requires(ctx: "StudyContext") -> str | None:
    return models_reason(ctx)


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {"usage_model": {"not_estimated": reason}}


def run(ctx: "StudyContext") -> Result:
    label = ctx.label_horizon is not None
    info, lm, horizon = (_label(ctx) if label else _dated(ctx))
    cal, table = _calibration(lm, horizon, ctx.alpha)
    table = ctx.suppress(table, "n", ["observed", "ci_low", "ci_high"])
    lift = _lift(table)
    info.update(calibration=cal, lift=lift, horizon_days=int(horizon))
    measure = "auc" if label else "c_index"
    res = Result(NAME, TITLE, record={"usage_model": info}, tables={"usage_model_calibration": table})
    when = windows.window_text(int(horizon), label)
    observed = table["observed"].notna().any() if "observed" in table else False  # all tenths suppressed: no chart
    res.figures.extend([] if not observed else [Figure("usage_model_calibration",
                              lambda: plots.risk_calibration(table, level=ctx.level,
                                                             title=f"Predicted against observed churn {when}"),
                              alt=f"Observed against predicted churn {when} by tenth of predicted risk, with the "
                                  f"diagonal of perfect calibration: calibration slope "
                                  f"{plots._num(cal.get('slope'))}, mean predicted "
                                  f"{plots._num(100 * lm['risk'].mean() if 'risk' in lm else None, 1)}%.")])
    deciles = table.rename(columns={"group": "decile"})
    res.figures.extend([] if not observed else [Figure("usage_model_lift", lambda: plots.lift(deciles, average=lift["average"]),
                              alt="Bar chart of observed churn in each decile of predicted churn risk: "
                                  + ", ".join(f"decile {int(d)} " + (f"{100 * o:.0f}%" if pd.notna(o) else "suppressed")
                                              for d, o in zip(deciles["decile"], deciles["observed"]))
                                  + (f"; average {lift['average']:.1%}" if lift["average"] is not None else "")
                                  + ".")])
    name = "AUC" if label else "C-index"
    ci = ctx.ci(info["ci_low"], info["ci_high"], 3)
    res.text = (f"On accounts the model had not seen, usage and account data rank churn risk at {name} "
                f"{info[measure]:.3f} ({ci}; {info['method']}). "
                + (f"The riskiest tenth of accounts churned {lift['top_lift']:.1f} times as often as the average "
                   f"({lift['top']:.1%} against {lift['average']:.1%} {when}). " if lift["top_lift"] else "")
                + (f"Calibration {when}: intercept {cal['intercept']:+.2f} (0 when predicted churn is right on "
                   f"average), slope {cal['slope']:.2f} (1 when predictions spread as much as outcomes), Brier score "
                   f"{cal['brier']:.3f}." if cal.get("slope") is not None else ""))
    res.shown.append(Shown(_readable(deciles),
                           caption=f"Predicted and observed churn {when} by tenth of predicted risk (10 = riskiest)."))
    return res


# ---------------------------------------------------------------------------------------------------------
# dated exports: cross-validated Cox on the panel
# ---------------------------------------------------------------------------------------------------------
def _dated(ctx: "StudyContext") -> tuple[dict, pd.DataFrame, int]:
    ds, panel = ctx.secondary, ctx.sample_panel
    attrs = F.attributes(ds, ctx.min_cell)
    usage = [f"usage_{m}" for m in (ctx.usage_metrics or []) if f"usage_{m}" in panel.columns]
    known = panel[usage].notna().all(axis=1) if usage else pd.Series(True, index=panel.index)
    ep = model_frame(panel, usage, rows=known, covariates=attrs.frame)
    for c in usage:
        ep[c] = np.log1p(ep[c].clip(lower=0))
    cols = [c for c in [*usage, *attrs.columns] if F.standardise(ep, c) is not None or ep[c].nunique() > 1]
    if not cols:
        raise AnalysisError("there is no usage metric or account attribute to model churn on")
    n_events = int(ep["event"].sum())
    if n_events < MIN_EVENTS:
        raise AnalysisError(f"{n_events} churn events with usage known, fewer than the {MIN_EVENTS} needed")
    strata = strata_of(ep)
    churned = ep.groupby("account_id")["event"].transform("max").to_numpy()
    fold = grouped_folds(ep["account_id"], FOLDS, ctx.seed, balance=churned)
    # each account from its first month with usage known: what the model predicts over the horizon from then
    first = ~ep["account_id"].duplicated().to_numpy()
    st = ctx.survival.set_index("account_id")
    t0 = ep["start"].to_numpy(float)[first]
    lm = pd.DataFrame({"account_id": ep["account_id"].to_numpy()[first],
                       "time": st["duration"].reindex(ep["account_id"].to_numpy()[first]).to_numpy(float) - t0,
                       "event": st["event"].reindex(ep["account_id"].to_numpy()[first]).to_numpy(int)})
    lm["time"] = lm["time"].clip(lower=0.5)
    horizon = int(min(windows.YEAR_DAYS, np.sort(lm["time"].to_numpy())[::-1][min(ctx.min_cell, len(lm)) - 1]))
    oof = np.zeros(len(ep))
    risk = np.full(len(ep), np.nan)
    for k in range(FOLDS):
        test = fold == k
        train = ep.loc[~test]
        fit = fit_cox(train, "stop", "event", cols, entry="start", strata=strata, alpha=ctx.alpha, engine="numpy")
        beta = fit.summary.loc[cols, "coef"].to_numpy(float)
        center = train[cols].mean().to_numpy(float)
        oof[test] = (ep.loc[test, cols].to_numpy(float) - center) @ beta
        base = breslow_baseline(train, "stop", "event", (train[cols].to_numpy(float) - center) @ beta,
                                entry="start", strata=strata)
        rows = test & first
        groups = None if strata is None else ep[strata].to_numpy()[rows]
        start = ep["start"].to_numpy(float)[rows]
        gain = _hazard_between(base, start, start + horizon, groups)
        risk[rows] = 1.0 - np.exp(-gain * np.exp(oof[rows]))
    point, draws = bootstrap_concordance(ep, "stop", "event", pd.DataFrame({"model": oof}), cluster="account_id",
                                         entry="start", strata=strata, n_boot=N_BOOT, seed=ctx.seed)
    lm["risk"] = risk[first]
    info = {"model": "cox", "c_index": float(point["model"]), **_interval(draws["model"].to_numpy(), ctx.alpha),
            "method": f"{FOLDS}-fold cross-validation grouped by account (Cox on the account-month panel, stratified "
                      "by segment); out-of-fold Harrell's C with an account bootstrap",
            "features": cols, "n_accounts": int(ep["account_id"].nunique()), "n_events": n_events,
            "n_dropped": int(ctx.secondary.accounts["account_id"].nunique() - ep["account_id"].nunique())}
    return info, lm, horizon


# ---------------------------------------------------------------------------------------------------------
# label exports: cross-validated logistic regression per account
# ---------------------------------------------------------------------------------------------------------
def _label(ctx: "StudyContext") -> tuple[dict, pd.DataFrame, int]:
    ds = ctx.secondary
    st = ctx.survival.set_index("account_id")
    attrs = F.attributes(ds, ctx.min_cell)
    parts = [pd.get_dummies(st["segment"].astype(str), prefix="seg", drop_first=True, dtype=float),
             attrs.frame.reindex(st.index)]
    if ds.usage is not None and ctx.usage_metrics:
        wide, _ = F.label_usage(ds, ctx.usage_metrics, ds.as_of - pd.Timedelta(days=ctx.label_horizon - 1))
        parts.append(wide.reindex(st.index))
    X = pd.concat(parts, axis=1)
    keep = X.notna().all(axis=1).to_numpy()
    X, y = X[keep], st["event"].to_numpy(float)[keep]
    cols = [c for c in X.columns if F.standardise(X, c) is not None or X[c].nunique() > 1]
    if int(y.sum()) < MIN_EVENTS:
        raise AnalysisError(f"{int(y.sum())} churned accounts, fewer than the {MIN_EVENTS} needed")
    X = sm.add_constant(X[cols], has_constant="add")
    fold = grouped_folds(X.index.to_numpy(), FOLDS, ctx.seed, balance=y)
    p = np.zeros(len(y))
    for k in range(FOLDS):
        test = fold == k
        fit = sm.GLM(y[~test], X[~test], family=sm.families.Binomial()).fit()
        p[test] = fit.predict(X[test])
    rng = np.random.default_rng(ctx.seed)
    draws = np.array([_auc(y[i], p[i]) for i in (rng.integers(0, len(y), len(y)) for _ in range(N_BOOT))])
    lm = pd.DataFrame({"account_id": X.index.to_numpy(), "time": float(ctx.label_horizon), "event": y.astype(int),
                       "risk": p})
    info = {"model": "logistic", "auc": _auc(y, p), **_interval(draws, ctx.alpha),
            "method": f"{FOLDS}-fold cross-validation (logistic regression of the churn label over the "
                      f"{ctx.label_horizon}-day horizon); out-of-fold AUC with an account bootstrap",
            "features": [c for c in cols], "n_accounts": int(len(y)), "n_events": int(y.sum()),
            "n_dropped": int((~keep).sum())}
    return info, lm, int(ctx.label_horizon)


def _hazard_between(base: pd.DataFrame, start: np.ndarray, stop: np.ndarray, groups) -> np.ndarray:
    """H0(stop) - H0(start) in each row's stratum; 0 in a stratum whose training rows had no churn (no baseline)."""
    if groups is None:
        return cumulative_hazard_at(base, stop) - cumulative_hazard_at(base, start)
    out = np.zeros(len(start))
    known = set(base["stratum"])
    for g in pd.unique(groups):
        m = groups == g
        if g in known:
            out[m] = cumulative_hazard_at(base, stop[m], groups[m]) - cumulative_hazard_at(base, start[m], groups[m])
    return out


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """The area under the ROC curve: the chance a churned account is scored above one that stayed (Mann-Whitney)."""
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if not n1 or not n0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# ---------------------------------------------------------------------------------------------------------
# both: calibration and lift
# ---------------------------------------------------------------------------------------------------------
def _calibration(lm: pd.DataFrame, horizon: int, alpha: float) -> tuple[dict, pd.DataFrame]:
    lm = lm[lm["risk"].notna()]
    fit = calibration_fit(lm, "time", "event", "risk", horizon)
    brier = brier_score(lm, "time", "event", "risk", horizon)
    table = calibration_table(lm, "time", "event", "risk", horizon, groups=10, alpha=alpha)
    return ({"horizon_days": int(horizon), "intercept": _num(fit["intercept"]), "slope": _num(fit["slope"]),
             "brier": _num(brier["brier"]), "mean_predicted": float(lm["risk"].mean()), "n_accounts": int(len(lm))},
            table)


def _lift(table: pd.DataFrame) -> dict:
    """Observed churn per decile of predicted risk and the top decile's lift over the average."""
    obs = table["observed"].to_numpy(float)
    n = table["n"].to_numpy(float)
    known = np.isfinite(obs)
    average = float((obs[known] * n[known]).sum() / n[known].sum()) if known.any() else None
    top = float(obs[-1]) if len(obs) and np.isfinite(obs[-1]) else None
    return {"deciles": [{"decile": int(g), "accounts": int(a), "mean_predicted": float(m), "observed": _num(o)}
                        for g, a, m, o in zip(table["group"], table["n"], table["mean_predicted"], obs)],
            "average": average, "top": top,
            "top_lift": top / average if top is not None and average else None}


def _interval(draws: np.ndarray, alpha: float) -> dict:
    draws = draws[np.isfinite(draws)]
    if len(draws) < 2:
        return {"ci_low": None, "ci_high": None}
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return {"ci_low": float(lo), "ci_high": float(hi)}


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _readable(deciles: pd.DataFrame) -> pd.DataFrame:
    """The lift table for readers: a row per tenth of predicted risk; accounts, mean predicted and observed churn
    as percentages ("–" where a tenth is too small to show)."""
    out = pd.DataFrame({
        "Accounts": [tables.count(x) for x in deciles["n"]],
        "Mean predicted churn": [tables.percent(x) for x in deciles["mean_predicted"]],
        "Observed churn": [tables.percent(x) for x in deciles["observed"]],
    }, index=[tables.count(x) for x in deciles["decile"]])
    out.columns.name = "Tenth of predicted risk"
    return tables.readable(out)
