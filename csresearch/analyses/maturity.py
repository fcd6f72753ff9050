"""Where the team's measurement stands (from its data and its questionnaire), and what each level buys."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import maturity as M
from .. import plots
from ..models import AnalysisError
from ..result import Figure, Result
from ._gates import goals_reason

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "maturity"
TITLE = "Measurement maturity"
USES_SAMPLE = True
INTRO = ""
#: runs even when the study is too small to show: the level is read from what the export holds, not from accounts
ALWAYS = True


def requires(ctx: "StudyContext") -> str | None:
    return None


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {"maturity": M.summary(ctx.secondary, ctx["maturity"], ctx["health_score_metric"])}


def run(ctx: "StudyContext") -> Result:
    summary = M.summary(ctx.secondary, ctx["maturity"], ctx["health_score_metric"])
    res = Result(NAME, TITLE, record={"maturity": summary})
    lines = [_level_text(summary)]
    if ctx.visible and goals_reason(ctx) is None and ctx.secondary.usage is not None:
        try:
            lad = M.ladder(ctx.secondary, ctx.sample_panel, usage_metrics=ctx.usage_metrics,
                           health_score_metric=ctx["health_score_metric"], threshold=ctx["attainment_threshold"],
                           bootstrap=ctx["bootstrap"], seed=ctx.seed, alpha=ctx.alpha, lag_days=ctx["lag_days"],
                           cox_max_rows=ctx["cox_max_rows"])
        except (AnalysisError, ValueError) as exc:
            res.warnings.append(f"The maturity ladder could not be estimated: {exc}.")
        else:
            if lad.attrs.get("note"):
                res.warnings.append(lad.attrs["note"])
            res.tables["ladder"] = lad
            summary["ladder"] = lad[["level", "knows", "c_index", "ci_low", "ci_high", "gain", "gain_ci_low",
                                     "gain_ci_high"]].to_dict("records")
            res.figures.append(Figure("ladder", lambda: plots.ladder(lad, level=ctx.level),
                                      alt="C-index of churn models that know what each maturity level records"))
            lines.append(_ladder_text(ctx, summary["ladder"]))
    res.text = "\n\n".join(lines)
    return res


def _level_text(m: dict) -> str:
    inf = m["inferred"]
    lines = [f"**From the data: level {inf['level']} of 5.** {inf['reason']} Next step: {inf['next_step']}"]
    if m.get("assessed"):
        a = m["assessed"]
        lines.append(f"**From the team's questionnaire: level {a['level']} of 5.** {a['reason']} Next step: {a['next_step']}")
    return "\n\n".join(lines)


def _ladder_text(ctx: "StudyContext", lad: list[dict]) -> str:
    """One sentence per step of the ladder: what the next level of measurement buys in foresight (Markdown)."""
    lines = []
    for prev, cur in zip(lad, lad[1:]):
        head = (f"- Level {prev['level']} → {cur['level']} ({cur['knows']}): C-index {prev['c_index']:.3f} → "
                f"{cur['c_index']:.3f}, a gain of {cur['gain']:+.3f}")
        if cur["gain_ci_low"] is None or cur["gain_ci_high"] is None or cur["gain_ci_low"] != cur["gain_ci_low"]:
            lines.append(head + " (no bootstrap interval: bootstrap was set to 0).")
            continue
        sig = cur["gain_ci_low"] > 0
        lines.append(head + f" ({ctx.level_text} CI {cur['gain_ci_low']:+.3f} to {cur['gain_ci_high']:+.3f})"
                     + ("." if sig else ": not distinguishable from no gain."))
    lines.append("\nC-indices are measured on the same accounts the models were fitted on, and the bootstrap holds each "
                 "model's coefficients fixed, so small gains are optimistic; read them as the ranking each level "
                 "reaches on this book of accounts.")
    return "\n".join(lines)
