"""Usage versus outcomes, head to head and in sample: how well last month's usage, goal attainment and both rank
churn risk on the accounts the models were fitted on. Which ranks better is decided out of sample, by
:mod:`csresearch.analyses.discrimination`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

from ..attainment_models import AttainmentFrame, comparison_frame
from ..findings import p_text
from ..models import DEFAULT_ENGINE, AnalysisError, Engine, require_events, strata_of
from ..result import Result
from ..survival import concordance, lr_test
from ._gates import usage_and_goals_reason

if TYPE_CHECKING:
    from ..context import StudyContext
    from ..data import Dataset

NAME = "outcomes_vs_usage"
TITLE = "Usage versus outcomes"
INTRO = ("Three models rank accounts by churn risk each month: one knows only last month's product usage, one only the "
         "customer's goal attainment, one both. The C-index is the share of pairs of accounts that a model ranks in "
         "the right order (0.5 is a coin toss). The C-indices here are in-sample: each model is scored on the "
         "accounts it was fitted on, which flatters it a little; which ranks better is decided out of sample in the "
         "next section.")


def usage_vs_outcome(ds: "Dataset", *, usage_metrics: Iterable[str] | None = None, lag_days: int = 0,
                     panel: pd.DataFrame | None = None, engine: Engine = DEFAULT_ENGINE,
                     frame: AttainmentFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Usage-only, attainment-only and combined time-varying models on the same account-months.

    Usage features are ``log(1 + value)`` of each usage metric in the last completed period before the interval;
    rows without a completed usage period (an account's first month) are left out of all three models so that
    they are compared on identical data (:func:`comparison_frame`). The C-index is Harrell's, on ``(start, stop]``
    rows with the model's linear predictor as risk score, within segments when there are several, measured on the
    rows the models were fitted on (in-sample). The likelihood-ratio test asks whether attainment adds to usage.

    Returns a tidy frame ``model, c_index, loglik, n_params`` and ``{c_index: {usage, attainment, both},
    lr_test_p, lr_statistic, lr_df, n_rows, n_events, usage_metrics, model}``. ``frame``, the comparison frame
    already built (a study's shared :class:`~csresearch.attainment_models.AttainmentFrame`), is used as it is.
    """
    if frame is None:
        frame = comparison_frame(ds, usage_metrics=usage_metrics, lag_days=lag_days, panel=panel)
    ep, names = frame.data, frame.last_usage
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


def run(ctx: "StudyContext") -> Result:
    table, info = usage_vs_outcome(ctx.ds, frame=ctx.comparison_frame(), engine=ctx.engine)
    res = Result(NAME, TITLE, record={"usage_vs_outcome": info}, tables={"usage_vs_outcome": table})
    # no figure: in-sample C-indices have no interval here, and the out-of-sample chart (discrimination) draws them
    # as hollow circles beside the cross-validated ones with their intervals; the numbers are in the text
    res.text = in_sample_text(info)
    return res


def in_sample_text(info: dict) -> str:
    """The in-sample numbers in words, with no verdict (that is the out-of-sample comparison's)."""
    c = info["c_index"]
    return (f"In sample, usage alone ranks churn risk at C = {c['usage']:.3f}, outcome attainment alone at "
            f"C = {c['attainment']:.3f} and both together at C = {c['both']:.3f} (0.5 is a coin toss, 1 a perfect "
            f"ranking), on {info['n_rows']:,} account-months with {info['n_events']:,} churn events. The "
            f"likelihood-ratio test of adding attainment to usage gives p {p_text(info['lr_test_p'])}: it asks whether "
            "attainment adds to the fit on these same accounts, not whether it ranks accounts the model has not seen "
            "better, which the next section decides (and the report's verdict follows).")
