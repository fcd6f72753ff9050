"""What goes with churn in usage and account data: each usage metric and account attribute, one at a time.

Dated exports: a Cox model per driver on the account-month panel (usage as known at each month's start, log1p of
last month's usage; attributes per account), stratified by segment, robust SEs clustered by account; the effect
is the hazard ratio per SD (numeric) or of a level against the most common one (categorical). Label exports: a
logistic regression per driver of the churn label on it and the segment; the effect is an odds ratio. p-values
are corrected across all drivers (Benjamini-Hochberg, ``q``). These are associations, each driver on its own.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from .. import features as F
from .. import plots
from .. import tables
from ..findings import Claim, judge, not_estimable
from ..models import AnalysisError, count_accounts, model_frame, strata_of
from ..result import Figure, Result, Shown
from ._gates import models_reason

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "churn_drivers"
TITLE = "What goes with churn"
USES_SAMPLE = True
INTRO = ("Each usage metric and account attribute on its own: how much more or less often accounts churn per "
         "standard deviation of it (or in one category against the most common), with {level} intervals, "
         "corrected for testing many at once. An association, not a cause: it says where to look.")
COLUMNS = ["name", "level", "kind", "effect", "ci_low", "ci_high", "p", "q", "n"]
#: drivers the finding names at most
TOP = 3

CLAIM = Claim(
    "churn_drivers",
    supported=("Some signals go with churn.", "{sentence}"),
    not_supported=("No signal goes with churn.", "{sentence}"),
    cannot_tell=("No usage metric or attribute clearly goes with churn.", "{sentence}"),
    not_estimable=("What goes with churn could not be estimated.", "Not estimated: {reason}."),
)


def requires(ctx: "StudyContext") -> str | None:
    return models_reason(ctx)


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {"churn_drivers": {"not_estimated": reason, "drivers": []}}


def findings_when_empty(ctx: "StudyContext", reason: str) -> list:
    return [not_estimable(CLAIM, reason)]


def drivers(ctx: "StudyContext") -> tuple[pd.DataFrame, dict]:
    """The driver table (``name, level, kind, effect, ci_low, ci_high, p, q, n``, strongest first) and its info."""
    ds = ctx.secondary
    attrs = F.attributes(ds, ctx.min_cell)
    label = ctx.label_horizon is not None
    metrics = (ctx.usage_metrics or []) if ds.usage is not None else []
    rows = (_label_rows if label else _dated_rows)(ctx, ds, metrics, attrs)
    if not rows:
        raise AnalysisError("there is no usage metric or account attribute to relate to churn")
    table = pd.DataFrame(rows)
    ok = table["p"].notna()
    table["q"] = np.nan
    if ok.any():
        table.loc[ok, "q"] = multipletests(table.loc[ok, "p"], method="fdr_bh")[1]
    strength = np.abs(np.log(table["effect"].astype(float)))
    table = table.assign(_s=strength).sort_values(["q", "_s"], ascending=[True, False]).drop(columns="_s")
    info = {"model": "logistic" if label else "cox",
            "effect": "odds ratio" if label else "hazard ratio",
            "method": ("logistic regression of the churn label per driver, adjusted for segment; Benjamini-Hochberg q"
                       if label else "time-varying Cox per driver, stratified by segment, robust SEs clustered by "
                       "account; Benjamini-Hochberg q"),
            "excluded": attrs.excluded}
    return table[COLUMNS].reset_index(drop=True), info


def _dated_rows(ctx, ds, metrics, attrs: F.Features) -> list[dict]:
    panel = ctx.sample_panel
    rows = []
    for m in metrics:
        col = f"usage_{m}"
        if col not in panel.columns:
            continue
        frame = model_frame(panel, [col], rows=panel[col].notna())
        frame[col] = np.log1p(frame[col].clip(lower=0))
        if F.standardise(frame, col) is None or frame["event"].sum() < 1:
            continue
        rows += _cox_rows(ctx, frame, [col], [F.Feature(col, m, "usage", None, "log1p of last month's usage")])
    for name, group in _by_name(attrs):
        frame = model_frame(panel, [], covariates=attrs.frame[[f.column for f in group]])
        rows += _cox_rows(ctx, frame, [f.column for f in group], group)
    return rows


def _cox_rows(ctx, frame: pd.DataFrame, cols: list[str], feats: list[F.Feature]) -> list[dict]:
    try:
        fit = ctx.engine.panel(frame, cols, strata_of(frame))
    except (AnalysisError, ValueError, np.linalg.LinAlgError):
        return []
    n = count_accounts(frame)
    return [_row(f, fit.summary.loc[f.column, "hr"], fit.summary.loc[f.column, "ci_low"],
                 fit.summary.loc[f.column, "ci_high"], fit.summary.loc[f.column, "p"], n) for f in feats]


def _label_rows(ctx, ds, metrics, attrs: F.Features) -> list[dict]:
    st = ctx.survival.set_index("account_id")
    y = st["event"].astype(float)
    seg = pd.get_dummies(st["segment"].astype(str), prefix="seg", drop_first=True, dtype=float)
    rows = []
    if metrics and ds.usage is not None:
        wide, _ = F.label_usage(ds, metrics, ds.as_of - pd.Timedelta(days=ctx.label_horizon - 1))
        for m in metrics:
            col = f"log_{m}"
            if col not in wide.columns:
                continue
            x = wide[col].reindex(st.index).to_frame()
            if F.standardise(x, col) is None:
                continue
            rows += _logit_rows(ctx, y, seg, x, [F.Feature(col, m, "usage", None, "log1p of mean monthly usage")])
    for name, group in _by_name(attrs):
        x = attrs.frame[[f.column for f in group]].reindex(st.index)
        rows += _logit_rows(ctx, y, seg, x, group)
    return rows


def _logit_rows(ctx, y: pd.Series, seg: pd.DataFrame, x: pd.DataFrame, feats: list[F.Feature]) -> list[dict]:
    keep = x.notna().all(axis=1)
    X = sm.add_constant(pd.concat([seg, x], axis=1)[keep], has_constant="add")
    try:
        fit = sm.GLM(y[keep], X, family=sm.families.Binomial()).fit()
    except (ValueError, np.linalg.LinAlgError):
        return []
    ci = fit.conf_int(alpha=ctx.alpha)
    n = int(keep.sum())
    return [_row(f, np.exp(fit.params[f.column]), np.exp(ci.loc[f.column, 0]), np.exp(ci.loc[f.column, 1]),
                 fit.pvalues[f.column], n) for f in feats]


def _row(f: F.Feature, effect, lo, hi, p, n) -> dict:
    finite = all(np.isfinite([effect, lo, hi, p]))
    return {"name": f.name, "level": f.level, "kind": f.kind, "effect": float(effect) if finite else np.nan,
            "ci_low": float(lo) if finite else np.nan, "ci_high": float(hi) if finite else np.nan,
            "p": float(p) if finite else np.nan, "n": int(n)}


def _by_name(attrs: F.Features):
    names = list(dict.fromkeys(f.name for f in attrs.features))
    return [(n, [f for f in attrs.features if f.name == n]) for n in names]


def _label(r) -> str:
    return r["name"] if r["level"] is None or pd.isna(r["level"]) else f"{r['name']}: {r['level']}"


def _words(r, ratio: str) -> str:
    e = r["effect"]
    per = "per SD" if r["level"] is None or pd.isna(r["level"]) else ""
    direction = f"{e:.2f}× the churn" if e >= 1 else f"{1 - e:.0%} less churn"
    return f"{_label(r)} ({direction}{' ' + per if per else ''}, {ratio} {e:.2f})"


def run(ctx: "StudyContext") -> Result:
    table, info = drivers(ctx)
    ratio = info["effect"]
    record = {"churn_drivers": {**info, "drivers": table.to_dict("records")}}
    res = Result(NAME, TITLE, record=record, tables={"churn_drivers": table})
    shown = table[table["effect"].notna()]
    sig = shown[shown["q"] < ctx.alpha]
    if len(shown):
        plot = shown.assign(label=[ctx.names(r["name"]) if r["level"] is None or pd.isna(r["level"]) else
                                   f"{ctx.names(r['name'])}: {ctx.names(r['level'])}" for _, r in shown.iterrows()])
        res.figures.append(Figure("churn_drivers", lambda: plots.effects(plot, ratio=ratio, level=ctx.level),
                                  alt=f"The {ratio} of churn of each usage metric (per SD) and account attribute, "
                                      f"log scale, strongest first: "
                                      + plots.describe_intervals(plot, "label", "effect", level=ctx.level, limit=8)
                                      + "."))
    res.shown.append(Shown(_readable(ctx, shown, ratio),
                           caption=f"Strongest first ({info['method']}). A usage metric or numeric attribute's "
                                   f"{ratio} is per standard deviation of it; a category's is against the most "
                                   "common one."))
    n = len(shown)
    if len(sig):
        top = sig.head(TOP)
        sentence = (f"Of {n} usage metrics and account attributes, {len(sig)} go with churn after correcting for "
                    f"testing {n} (q < {ctx.alpha:g}); the strongest: " + "; ".join(_words(r, ratio) for _, r in
                                                                                 top.iterrows()) + ".")
        best = top.iloc[0]
        finding = judge(CLAIM, estimate=float(best["effect"]), ci_low=float(best["ci_low"]),
                        ci_high=float(best["ci_high"]), null=1.0, direction="below", level=ctx.level,
                        verdict="supported", method=info["method"], describe=lambda *_: {"sentence": sentence})
    elif n:
        sentence = (f"None of the {n} usage metrics and account attributes goes with churn clearly enough after "
                    f"correcting for testing {n} (every q ≥ {ctx.alpha:g}): the data cannot tell which matter.")
        best = shown.iloc[0]
        finding = judge(CLAIM, estimate=float(best["effect"]), ci_low=float(best["ci_low"]),
                        ci_high=float(best["ci_high"]), null=1.0, direction="below", level=ctx.level,
                        verdict="inconclusive", method=info["method"], describe=lambda *_: {"sentence": sentence})
    else:
        finding = not_estimable(CLAIM, "no driver could be estimated", info["method"])
        sentence = finding.claim
    res.findings = [finding]
    excluded = "; ".join(f"{k} ({v})" for k, v in info["excluded"].items())
    res.text = sentence + (f" Left out: {excluded}." if excluded else "")
    return res


#: the kind of a driver, for readers
KINDS = {"usage": "Usage metric", "attribute": "Account attribute"}


def _readable(ctx: "StudyContext", shown: pd.DataFrame, ratio: str) -> pd.DataFrame:
    """The driver table for readers: a row per driver named by ``ctx.names`` ("Plan: Pro" for a category's level),
    its ratio and interval to 2 decimals, what it reads as, its q and the accounts it was estimated on."""
    rows = list(shown.itertuples(index=False))
    out = pd.DataFrame({
        "Kind": [KINDS.get(r.kind, ctx.names(r.kind)) for r in rows],
        ratio[:1].upper() + ratio[1:]: [tables.number(r.effect, 2) for r in rows],
        f"{ctx.level_text} CI": [tables.interval(r.ci_low, r.ci_high, 2) for r in rows],
        "Reads as": [("more churn" if r.effect > 1 else "less churn") if r.q < ctx.alpha else "no clear link"
                     for r in rows],
        "q (corrected for testing)": [tables.q_value(r.q) for r in rows],
        "Accounts": [tables.count(r.n) for r in rows],
    }, index=[ctx.names(r.name) if r.level is None or pd.isna(r.level) else f"{ctx.names(r.name)}: {ctx.names(r.level)}"
              for r in rows])
    out.columns.name = "Driver"
    return tables.readable(out, ctx.names)
