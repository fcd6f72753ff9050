"""What this data can and cannot answer, in plain words: the lead of the executive summary.

Without goals (maturity level 2: usage, no recorded success criteria) the study's question, whether reaching
customers' goals predicts retention better than usage, cannot be measured; the lead says so, says what the rest
of the report holds instead, and sizes the next step from the team's own churn over the window observed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..models import AnalysisError
from ..result import Result
from ..design import sample_size

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "study_scope"
TITLE = "What this study can answer"
INTRO = ""
#: runs even when the study is too small to show: what the export holds decides it
ALWAYS = True
#: the relative churn reduction the lead sizes the next study for
REDUCTION = 0.10


def requires(ctx: "StudyContext") -> str | None:
    return None


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {"study_scope": {"goals": ctx.has_goals, "window_days": None, "label_horizon_days": ctx.label_horizon,
                            "next_study_accounts": None}}


def run(ctx: "StudyContext") -> Result:
    label = ctx.label_horizon is not None
    basis = ctx.base_churn if ctx.visible else {"rate": None, "days": 0, "text": "", "twelve_month": False}
    window = (f"the {ctx.label_horizon}-day label horizon" if label else
              "12 months of follow-up" if basis["twelve_month"] else
              f"the {basis['days']}-day window observed" if basis["days"] else "the data's window")
    n_next = _next_study(ctx, basis)
    record = {"study_scope": {"goals": ctx.has_goals, "window_days": basis["days"] or None,
                              "label_horizon_days": ctx.label_horizon, "next_study_accounts": n_next}}
    res = Result(NAME, TITLE, record=record)
    if not ctx.visible:
        return res
    if ctx.has_goals:
        res.lead = (f"This study measures whether reaching customers' goals predicts retention better than usage, "
                    f"over {window}.")
    else:
        sized = (f" a study of about {n_next:,} accounts (sized from your own churn, {basis['rate']:.0%} "
                 f"{basis['text']}) would detect a {REDUCTION:.0%} reduction." if n_next else
                 " the churn observed here is too little to size such a study yet.")
        res.lead = ("Whether reaching customers' goals predicts retention better than usage cannot be measured here, "
                    "because no goals are recorded. What follows is what your usage and account data say, over "
                    f"{window}. Recording each customer's success criteria at onboarding is the next maturity step;"
                    + sized)
    res.text = res.lead
    return res


def _next_study(ctx: "StudyContext", basis: dict) -> int | None:
    """Accounts a two-arm study needs to detect :data:`REDUCTION` of the churn observed (log-rank); None without churn."""
    rate = basis["rate"]
    if rate is None or not 0 < rate < 1:
        return None
    try:
        design = sample_size(rate, [REDUCTION], alpha=ctx.alpha, power=ctx.power)
    except AnalysisError:
        return None
    return int(design["n_total_logrank"].iloc[0])
