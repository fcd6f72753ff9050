"""Study design: how many accounts (and churn events) a study needs to detect a given churn reduction."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .. import tables
from ..design import sample_size
from ..findings import level_text
from ..result import Result, Shown

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "study_design"
TITLE = "Study design"
INTRO = ("How many accounts a study (for example, recording each customer's success criteria at onboarding in half of "
         "the book) needs to detect a given relative reduction in churn over a year (or over the window the data "
         "observed, when shorter), at {alpha_pct} two-sided "
         "significance and {power_pct} power.")


def requires(ctx: "StudyContext") -> str | None:
    base = ctx.base_churn
    if base["rate"] is None or not 0 < base["rate"] < 1:
        return f"churn {base['text']} could not be estimated for this study" if base["days"] else \
            "churn could not be estimated for this study: too few accounts were observed"
    return None


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {}


def run(ctx: "StudyContext") -> Result:
    basis = ctx.base_churn
    base = basis["rate"]
    design = sample_size(base, ctx["churn_reductions"], alpha=ctx.alpha, power=ctx.power)
    record = {"base_churn_12m": base if basis["twelve_month"] else None, "base_churn": base,
              "window_days": basis["days"], "rows": design.to_dict("records")}
    res = Result(NAME, TITLE, record={"study_design": record}, tables={"sample_size": design})
    res.shown.append(Shown(_readable(design, basis)))
    row = next((x for x in design.to_dict("records") if abs(x["reduction"] - 0.10) < 1e-9), design.iloc[0].to_dict())
    res.highlights.append(
        f"**Study size.** With {base:.0%} of accounts churning {basis['text']}, detecting a {row['reduction']:.0%} "
        f"relative churn reduction ({level_text(ctx.power)} power, {level_text(ctx.alpha)} two-sided) takes about "
        f"{int(row['n_total_logrank']):,} accounts ({int(row['events_logrank']):,} churn events)"
        + ("." if basis["twelve_month"] else
           f", followed for {basis['days']} days; a 12-month figure is not extrapolated from a shorter window."))
    if not basis["twelve_month"]:
        res.text = (f"The data does not follow accounts for 12 months, so the study is sized on the churn observed "
                    f"{basis['text']} ({base:.1%}): a study of the same length.")
    return res


def _readable(frame: pd.DataFrame, basis: dict) -> pd.DataFrame:
    """The design table for readers: a row per relative churn reduction; churn now and after as percentages, the
    hazard ratio to 3 decimals, accounts and events as counts with thousands separators."""
    now = "12-month churn now" if basis["twelve_month"] else f"Churn over {basis['days']} days now"
    out = pd.DataFrame({
        now: [tables.percent(x) for x in frame["churn_control"]],
        "Churn after the reduction": [tables.percent(x) for x in frame["churn_treated"]],
        "Hazard ratio": [tables.number(x, 3) for x in frame["hazard_ratio"]],
        "Accounts needed (two proportions)": [tables.count(x) for x in frame["n_total_proportions"]],
        "Churn events needed (log-rank)": [tables.count(x) for x in frame["events_logrank"]],
        "Accounts needed (log-rank)": [tables.count(x) for x in frame["n_total_logrank"]],
    }, index=[tables.percent(x, 0) for x in frame["reduction"]])
    out.columns.name = "Relative churn reduction"
    return tables.readable(out)
