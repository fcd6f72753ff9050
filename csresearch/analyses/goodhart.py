"""When the metric turns on the goal: vendor metrics that climb while customer outcomes stall, and the 2x2 of
accounts green by usage against reaching their goals."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import plots
from ..metrics.goodhart import goodhart_divergence, goodhart_monthly, vendor_customer_gap
from ..models import AnalysisError
from ..result import Figure, Result
from ._gates import goals_reason

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "goodhart"
TITLE = "When the metric turns on the goal"
USES_SAMPLE = True
INTRO = ("A vendor metric can climb while the customer's own outcome stalls, for instance when a team is rewarded for "
         "logins. Per segment: the trend of each vendor metric next to the trend of goal attainment at equal tenure. "
         "Below, accounts that looked healthy by usage, split by whether they reached their goals.")


def requires(ctx: "StudyContext") -> str | None:
    return goals_reason(ctx) or (None if ctx.secondary.usage is not None else "no usage table")


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {"goodhart": None, "vendor_gap": None}


def run(ctx: "StudyContext") -> Result:
    ds, panel = ctx.secondary, ctx.sample_panel
    res = Result(NAME, TITLE, record={"goodhart": None, "vendor_gap": None})
    min_accounts = max(30, ctx.min_cell)

    def attempt(what: str, fn):
        try:
            return fn()
        except (AnalysisError, ValueError) as exc:
            res.warnings.append(f"{what} could not be estimated: {exc}.")
            return None

    gh = attempt("The Goodhart view", lambda: goodhart_divergence(ds, baseline=ctx["usage_baseline"], alpha=ctx.alpha,
                                                                   min_accounts=min_accounts, panel=panel))
    series = attempt("The Goodhart series", lambda: goodhart_monthly(ds, min_accounts=min_accounts, panel=panel))
    gap = attempt("The vendor-customer gap", lambda: vendor_customer_gap(ds, usage_metric=ctx["usage_baseline"],
                                                                          min_cell=ctx.min_cell, alpha=ctx.alpha))
    lines = []
    if gh:
        res.tables["goodhart"] = gh[0]
        res.record["goodhart"] = gh[1]
        flagged = [row for row in gh[0].to_dict("records") if row.get("diverging")]
        lines += [f"- **{row['sentence']}**" for row in flagged] or [
            "- No vendor metric rose while customer attainment stalled: no Goodhart divergence found."]
    if series:
        table = gh[0] if gh else None
        res.tables["goodhart_series"] = series[0]
        res.figures.append(Figure("goodhart_series", lambda: plots.goodhart_trends(series[0], table, names=ctx.names),
                                  alt=_series_alt(ctx, series[0], table)))
    if gap:
        res.tables["gap"] = gap[0]
        res.record["vendor_gap"] = gap[1]
        lines += _gap_sentence(ctx, gap[0], gap[1])
        cells = gap[0][gap[0]["segment"] == "all"]
        if len(cells) and not cells["suppressed"].all():  # every cell suppressed: nothing to draw
            res.figures.append(Figure("gap", lambda: plots.vendor_gap(gap[0], min_cell=ctx.min_cell, names=ctx.names),
                                      alt=_gap_alt(gap[0], ctx.min_cell)))
    res.text = "\n".join(lines)
    if not (gh or series or gap):
        res.not_estimated = "; ".join(res.warnings) or "nothing could be estimated"
    return res


def _gap_sentence(ctx: "StudyContext", gap, info) -> list[str]:
    cells = gap[gap["segment"] == "all"].set_index("cell")
    gn, ga = cells.loc["green usage, goals not attained"], cells.loc["green usage, goals attained"]
    if gn["suppressed"] or ga["suppressed"]:
        return []
    return [f"- **Green is not success.** Accounts whose usage looked healthy but whose goals were not met churned "
            f"{gn['churn_rate']:.0%} within {info['horizon_days']:.0f} days ({ctx.level_text} CI {gn['ci_low']:.0%} to "
            f"{gn['ci_high']:.0%}), against {ga['churn_rate']:.0%} ({ga['ci_low']:.0%} to {ga['ci_high']:.0%}) for "
            "healthy-looking accounts that met them."]


def _series_alt(ctx: "StudyContext", series, table) -> str:
    """The Goodhart panels in words: segments, metrics, months, and which metric diverges where."""
    segs = ctx.names.of(sorted(series["segment"].unique()))
    metrics = ctx.names.of(dict.fromkeys(series["metric"]))
    months = series["month"].nunique()
    hit = table[table["diverging"]] if table is not None and "diverging" in table else None
    div = ("; diverging (vendor metric up, outcomes not): " + ", ".join(
        f"{ctx.names(r['metric'])} in {ctx.names(r['segment'])}" for _, r in hit.iterrows())
        if hit is not None and len(hit) else "; no metric diverges from customer progress")
    return (f"Monthly index (100 = an average month) of {', '.join(metrics)} over {months} calendar months, beside "
            f"bars of the mean month-on-month change in goal attainment, one panel per segment ({', '.join(segs)})"
            f"{div}.")


def _gap_alt(gap, min_cell: int) -> str:
    """The 2x2 gap in words: each cell's churn rate and count, or that it is suppressed."""
    t = gap[gap["segment"] == "all"]
    cells = []
    for _, r in t.iterrows():
        name = (f"{'usage green' if r['usage_green'] else 'usage low'}, "
                f"{'goals attained' if r['goals_attained'] else 'goals not attained'}")
        cells.append(f"{name}: fewer than {min_cell} accounts, suppressed" if r["suppressed"] else
                     f"{name}: {r['churn_rate']:.0%} churned ({r['ci_low']:.0%} to {r['ci_high']:.0%}, "
                     f"n = {int(r['n'])})")
    return "Two-by-two chart of churn by the vendor's view (usage) and the customer's (goals): " + "; ".join(cells) + "."
