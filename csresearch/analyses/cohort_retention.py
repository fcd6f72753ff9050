"""Retention by signup cohort: the share of each signup month's accounts retained after each month (Kaplan-Meier)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import plots
from ..cohorts import retention_matrix
from ..result import Figure, Result

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "retention"
TITLE = "Retention by signup cohort"
INTRO = ("Share of each signup month's accounts still retained after each month of subscription (Kaplan-Meier, so "
         "accounts that have not been customers long enough are not counted as lost). Empty cells are not observed "
         "yet or suppressed (fewer than {min_cell} accounts).")


def requires(ctx: "StudyContext") -> str | None:
    if ctx.label_horizon is not None:
        return ("a label export sees each account over one window, not month by month, so retention by signup "
                "cohort is not measured; churn by segment over the window is")
    return None


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {"retention_12m": None}


def run(ctx: "StudyContext") -> Result:
    matrix = retention_matrix(ctx.survival, months=24, min_at_risk=ctx.min_cell)
    matrix = ctx.suppress(matrix, "accounts", ["retention"], flag=None)
    res = Result(NAME, TITLE, record={"retention_12m": ctx.retention_12m}, tables={"retention": matrix})
    if len(matrix):
        res.figures.append(Figure("retention", lambda: plots.retention_heatmap(matrix),
                                  alt="Heatmap of the share of each signup cohort retained after each month"))
    return res
