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
INTRO = ("Share of each signup quarter's accounts still retained after each month of subscription (Kaplan-Meier, so "
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
    # signup quarters, not months: a month's signups are seldom min_cell accounts on a segment (the monthly heatmap
    # of the enterprise sample was mostly empty rows), and a quarter's curve is steadier; the cohort column keeps its
    # name and holds the quarter's first day
    st = ctx.survival.assign(cohort=ctx.survival["start_date"].dt.to_period("Q").dt.to_timestamp())
    matrix = retention_matrix(st, months=24, min_at_risk=ctx.min_cell)
    matrix = ctx.suppress(matrix, "accounts", ["retention"], flag=None)
    matrix.attrs["period"] = "quarter"
    res = Result(NAME, TITLE, record={"retention_12m": ctx.retention_12m}, tables={"retention": matrix})
    if len(matrix) and matrix["retention"].notna().any():
        res.figures.append(Figure("retention", lambda: plots.retention_heatmap(
            matrix, period="Q", title="Retention by signup quarter (Kaplan-Meier)"), alt=_alt(matrix)))
    return res


def _alt(matrix) -> str:
    """The heatmap in words: how many quarters, how far they are observed, and the range of retention."""
    seen = matrix[matrix["retention"].notna()]
    quarters = seen["cohort"].nunique()
    lo, hi = seen["retention"].min(), seen["retention"].max()
    at12 = seen[seen["month"] == 12]["retention"]
    twelve = (f"; after 12 months between {at12.min():.0%} and {at12.max():.0%} of a quarter's accounts remain "
              f"({len(at12)} quarter(s) observed that long)" if len(at12) else "")
    return (f"Heatmap of the share of each signup quarter's accounts retained after each month (Kaplan-Meier): "
            f"{quarters} quarter(s) observed up to month {int(seen['month'].max())}, retention from {lo:.0%} to "
            f"{hi:.0%}{twelve}. Empty cells are not observed yet or suppressed.")
