"""Usage versus outcomes, head to head: which ranks churn risk better, last month's usage or goal attainment?"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

from .. import plots
from ..attainment import episodes
from ..findings import Claim, judge, not_estimable, p_text
from ..models import DEFAULT_ENGINE, AnalysisError, Engine, model_frame, require_events, require_goals, strata_of, \
    usage_features
from ..result import Figure, Result
from ..survival import concordance, lr_test
from ._gates import usage_and_goals_reason

if TYPE_CHECKING:
    from ..context import StudyContext
    from ..data import Dataset

NAME = "outcomes_vs_usage"
TITLE = "Usage versus outcomes"
INTRO = ("Three models rank accounts by churn risk each month: one knows only last month's product usage, one only the "
         "customer's goal attainment, one both. The C-index is the share of pairs of accounts that a model ranks in "
         "the right order (0.5 is a coin toss).")

CLAIM = Claim(
    "outcomes_vs_usage",
    supported=("Outcomes rank churn risk better than usage.",
               "Usage alone ranks churn risk at C = {c_usage:.2f}, outcome attainment at C = {c_attainment:.2f}, both "
               "together at C = {c_both:.2f} (0.5 is a coin toss, 1 a perfect ranking); adding attainment to usage "
               "improves the model (likelihood-ratio test p {p})."),
    not_supported=("Outcomes do not out-rank usage here.",
                   "Usage alone: C = {c_usage:.2f}; outcome attainment: C = {c_attainment:.2f}; both: C = {c_both:.2f} "
                   "(0.5 is a coin toss)."),
    cannot_tell=("The data cannot tell whether outcomes out-rank usage.",
                 "Usage alone: C = {c_usage:.2f}; outcome attainment: C = {c_attainment:.2f}; both: C = {c_both:.2f} "
                 "(0.5 is a coin toss); adding attainment to usage is not a clear improvement (likelihood-ratio test "
                 "p {p})."),
    not_estimable=("Usage and outcomes could not be compared.", "Not estimated: {reason}."),
)


def usage_vs_outcome(ds: "Dataset", *, usage_metrics: Iterable[str] | None = None, lag_days: int = 0,
                     panel: pd.DataFrame | None = None, engine: Engine = DEFAULT_ENGINE) -> tuple[pd.DataFrame, dict]:
    """Usage-only, attainment-only and combined time-varying models on the same account-months.

    Usage features are ``log(1 + value)`` of each usage metric in the last completed period before the interval;
    rows without a completed usage period (an account's first month) are left out of all three models so that
    they are compared on identical data. The C-index is Harrell's, on ``(start, stop]`` rows with the model's
    linear predictor as risk score, within segments when there are several. The likelihood-ratio test asks
    whether attainment adds to usage.

    Returns a tidy frame ``model, c_index, loglik, n_params`` and ``{c_index: {usage, attainment, both},
    lr_test_p, lr_statistic, lr_df, n_rows, n_events, usage_metrics, model}``.
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
    raw = pd.DataFrame({c: ep[c].to_numpy()[rows] for c in usage_cols})
    names = usage_features(raw, usage_metrics)  # log(1 + usage) columns, and the check of the metric names
    ep = model_frame(ep, ["attainment"], rows=keep)
    for name in names:
        ep[name] = raw[name].to_numpy()
    del raw
    require_events(ep, "event", "usage versus outcome", minimum=2)
    strata = strata_of(ep)
    specs = {"usage": names, "attainment": ["attainment"], "both": [*names, "attainment"]}
    fits, table = {}, []
    for model, cols in specs.items():
        usable = [c for c in cols if ep[c].nunique() > 1]
        if not usable:
            raise AnalysisError(f"usage versus outcome: the {model} model has no varying covariate")
        fit = engine.panel(ep, usable, strata)
        fits[model] = fit
        score = np.zeros(len(ep))
        for c in usable:  # column by column: ep[usable].to_numpy() would copy every column at once
            score += fit.summary.loc[c, "coef"] * ep[c].to_numpy()
        c = concordance(ep, "stop", "event", score, entry="start", strata=strata)
        table.append({"model": model, "c_index": float(c["c_index"]), "loglik": float(fit.loglik),
                      "n_params": len(usable)})
    test = lr_test(fits["both"], fits["usage"])
    out = {"c_index": {r["model"]: r["c_index"] for r in table}, "lr_test_p": float(test["p"]),
           "lr_statistic": float(test["statistic"]), "lr_df": int(test["df"]), "n_rows": int(len(ep)),
           "n_events": int(ep["event"].sum()), "usage_metrics": [n[4:] for n in names],
           "model": "discrete" if fits["both"].method == "discrete_cloglog" else "cox"}
    return pd.DataFrame(table), out


def requires(ctx: "StudyContext") -> str | None:
    return usage_and_goals_reason(ctx)


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {"usage_vs_outcome": {"c_index": {"usage": None, "attainment": None, "both": None}, "lr_test_p": None,
                                 "not_estimated": reason}}


def findings_when_empty(ctx: "StudyContext", reason: str) -> list:
    return [not_estimable(CLAIM, reason)]


def run(ctx: "StudyContext") -> Result:
    table, info = usage_vs_outcome(ctx.ds, usage_metrics=ctx.usage_metrics, panel=ctx.panel, engine=ctx.engine)
    res = Result(NAME, TITLE, record={"usage_vs_outcome": info}, tables={"usage_vs_outcome": table})
    res.figures.append(Figure("usage_vs_outcome", lambda: plots.c_index_bars(table),
                              alt="C-index of the usage-only, outcomes-only and combined churn models"))
    res.findings = [outcomes_finding(ctx, info)]
    res.text = res.findings[0].claim
    return res


def outcomes_finding(ctx: "StudyContext", info: dict):
    """Today's rule, in-sample: supported when attainment out-ranks usage and adds to it (LR test at alpha)."""
    c = info["c_index"]
    gain = c["attainment"] - c["usage"]
    adds = info["lr_test_p"] < ctx.alpha
    verdict = "supported" if adds and gain > 0 else "not_supported" if gain <= 0 else "inconclusive"
    return judge(CLAIM, estimate=gain, ci_low=None, ci_high=None, null=0.0, direction="above", level=ctx.level,
                 verdict=verdict, method="in-sample Harrell's C (attainment minus usage) and likelihood-ratio test",
                 describe=lambda *_: {"c_usage": c["usage"], "c_attainment": c["attainment"], "c_both": c["both"],
                                      "p": p_text(info["lr_test_p"])})
