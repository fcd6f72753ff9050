"""What an analysis needs before it can run, as a plain reason (None: it can run)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..context import StudyContext

#: why nothing about attainment can be estimated on data without goals (the reason of their findings)
NO_GOALS = "no goals are recorded, so attainment cannot be measured"


def goals_reason(ctx: "StudyContext") -> str | None:
    """Attainment models need goals, churn and enough accounts."""
    if ctx.goals_ok:
        return None
    return NO_GOALS if not ctx.has_goals else "no churn" if ctx.n_churned == 0 else "too few accounts"


def usage_and_goals_reason(ctx: "StudyContext") -> str | None:
    if not ctx.has_usage:
        return "no usage table"
    if not ctx.has_goals:
        return NO_GOALS
    return None if ctx.goals_ok else "too few accounts or no churn"


def models_reason(ctx: "StudyContext") -> str | None:
    if ctx.can_model:
        return None
    return "no churn" if ctx.n_churned == 0 else "too few accounts"
