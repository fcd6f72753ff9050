"""Where the team's measurement stands (from its data and its questionnaire), and what each level buys."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import maturity as M
from .. import plots
from ..findings import _finite, interval_verdict
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
                           bootstrap=ctx["bootstrap"], seed=ctx.seed, lag_days=ctx["lag_days"], engine=ctx.engine)
        except (AnalysisError, ValueError) as exc:
            res.warnings.append(f"The maturity ladder could not be estimated: {exc}.")
        else:
            if lad.attrs.get("note"):
                res.warnings.append(lad.attrs["note"])
            res.tables["ladder"] = lad
            summary["ladder"] = lad[["level", "knows", "c_index", "ci_low", "ci_high", "c_index_in_sample", "gain",
                                     "gain_ci_low", "gain_ci_high", "gain_over_usage", "gain_over_usage_ci_low",
                                     "gain_over_usage_ci_high"]].to_dict("records")
            res.figures.append(Figure("ladder", lambda: plots.ladder(lad, level=ctx.level),
                                      alt="Cross-validated C-index of churn models that know what each maturity "
                                          "level records (0.5 is a coin toss): " + plots.describe_intervals(
                                              lad.assign(name=[f"level {v}" for v in lad["level"]]), "name",
                                              "c_index", digits=3, level=ctx.level)
                                          + "; gains per step: " + ", ".join(
                                              f"{g:+.3f}" for g in lad["gain"].iloc[1:]) + "."))
            lines.append(_ladder_text(ctx, summary["ladder"], lad.attrs["folds"]))
    res.text = "\n\n".join(lines)
    return res


def _level_text(m: dict) -> str:
    inf = m["inferred"]
    lines = [f"**From the data: level {inf['level']} of 5.** {inf['reason']} Next step: {inf['next_step']}"]
    if m.get("assessed"):
        a = m["assessed"]
        lines.append(f"**From the team's questionnaire: level {a['level']} of 5.** {a['reason']} Next step: {a['next_step']}")
    return "\n\n".join(lines)


def _ladder_text(ctx: "StudyContext", lad: list[dict], folds: int) -> str:
    """One sentence per step of the ladder: what the next level of measurement buys in foresight (Markdown)."""
    lines = []
    for prev, cur in zip(lad, lad[1:]):
        head = (f"- Level {prev['level']} → {cur['level']} ({cur['knows']}): C-index {prev['c_index']:.3f} → "
                f"{cur['c_index']:.3f}, a gain of {cur['gain']:+.3f}")
        if not _finite(cur["gain_ci_low"], cur["gain_ci_high"]):
            lines.append(head + " (no interval: bootstrap was set to 0, or the book is too large for it).")
            continue
        verdict = _gain_words(ctx, cur["gain_ci_low"], cur["gain_ci_high"])
        lines.append(head + f" ({ctx.level_text} CI {cur['gain_ci_low']:+.3f} to {cur['gain_ci_high']:+.3f})" + verdict)
    first, last = lad[0], lad[-1]
    if len(lad) > 2 and _finite(last["gain_over_usage_ci_low"], last["gain_over_usage_ci_high"]):
        lo, hi = last["gain_over_usage_ci_low"], last["gain_over_usage_ci_high"]
        lines.append(f"- Altogether, level {last['level']} over level {first['level']} (usage alone): a gain of "
                     f"{last['gain_over_usage']:+.3f} ({ctx.level_text} CI {lo:+.3f} to {hi:+.3f})"
                     + _gain_words(ctx, lo, hi))
    lines.append(f"\nThe C-indices are cross-validated: each account is scored by a model fitted on the other accounts "
                 f"({folds}-fold, by account), so a level is credited only for foresight that carries over to accounts "
                 "the model has not seen, and a gain whose interval includes 0 is not distinguishable from no gain. "
                 + _optimism_text(first, last))
    return "\n".join(lines)


def _gain_words(ctx: "StudyContext", lo: float, hi: float) -> str:
    """A ladder step's gain in words, by the verdict rule of every C-index claim (margin ``margin_c``)."""
    verdict = interval_verdict(lo, hi, null=0.0, direction="above", margin=ctx["margin_c"])
    if verdict == "supported":
        return ": a gain."
    if verdict == "not_supported" and hi < 0:
        return ": a loss (the added features fit noise that does not carry over to other accounts)."
    if verdict == "not_supported":
        return f": no gain worth having (the interval rules out a gain of {ctx['margin_c']:.2f} or more)."
    return ": not distinguishable from no gain."


def _optimism_text(first: dict, last: dict) -> str:
    """The in-sample C beside the cross-validated one, at the lowest and the highest level."""
    both = (f"level {first['level']}: {first['c_index_in_sample']:.3f} instead of {first['c_index']:.3f}; "
            f"level {last['level']}: {last['c_index_in_sample']:.3f} instead of {last['c_index']:.3f}")
    if first["c_index_in_sample"] > first["c_index"] and last["c_index_in_sample"] > last["c_index"]:
        return f"Fitted and scored on the same accounts the models look better ({both}); that excess is in-sample " \
               "optimism, not foresight."
    return f"Fitted and scored on the same accounts the models reach ({both})."
