"""Segment by segment: the headline effect in each segment, partially pooled, and whether segments differ.

A small segment's own estimate rests on few churn events and swings widely; the whole book's estimate ignores
that segments may differ. Partial pooling takes the middle road: a random-effects meta-analysis of the
per-segment log hazard ratios (:func:`statsmodels.stats.meta_analysis.combine_effects`) gives the
pooled effect and the spread between segments (tau², Paule-Mandel); each segment's empirical-Bayes estimate is its own estimate
pulled toward the pooled one, the more so the less precise it is. Cochran's Q tests whether the segments differ.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from statsmodels.stats.meta_analysis import combine_effects

from .. import plots
from ..findings import Claim, judge, p_text
from ..models import AnalysisError
from ..result import Figure, Result
from ._gates import goals_reason
from ..attainment_models import time_varying_effect

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "segment_effects"
TITLE = "Segment by segment"
INTRO = ("The headline effect estimated in each segment on its own (raw) and partially pooled: a random-effects "
         "estimate across segments, with each segment's estimate pulled toward it the more, the fewer churn events it "
         "rests on. Bars are {level} confidence intervals.")

CLAIM = Claim(
    "segment_heterogeneity",
    supported=("Segments differ.",
               "The attainment effect is not the same in every segment (Cochran's Q p {p}; {i2:.0%} of the spread "
               "between segments is beyond chance); read each segment's own estimate."),
    not_supported=("Segments do not differ.", "The segments' effects agree (Cochran's Q p {p})."),
    cannot_tell=("No clear difference between segments.",
                 "The segments' estimates differ no more than chance would make them (Cochran's Q p {p}); the pooled "
                 "estimate, hazard ratio {pooled_hr:.2f} ({pooled_ci}), is the better guide for each segment."),
    not_estimable=("Segments could not be compared.", "Not estimated: {reason}."),
)


POOLED_CLAIM = Claim(
    "pooled_effect",
    supported=("{segment}: outcomes predict retention, with the other segments' evidence.",
               "In {segment}, weighed with the other segments, accounts that had fully reached their goals churned at "
               "{estimate:.2f} times the rate of accounts with no progress ({ci}; partially pooled)."),
    not_supported=("{segment}: no difference worth having, with the other segments' evidence.",
                   "In {segment}, weighed with the other segments, the hazard ratio of goals reached against no "
                   "progress is {estimate:.2f} ({ci}; partially pooled): no reduction worth having."),
    opposite=("{segment}: more churn with goals reached, with the other segments' evidence.",
              "In {segment}, weighed with the other segments, accounts that had fully reached their goals churned at "
              "{estimate:.2f} times the rate of accounts with no progress ({ci}; partially pooled): more, not less."),
    cannot_tell=("{segment}: the data cannot tell, even with the other segments' evidence.",
                 "In {segment}, weighed with the other segments, the hazard ratio of goals reached against no progress "
                 "is {estimate:.2f} ({ci}; partially pooled): the data cannot tell."),
    not_estimable=("A segment's pooled estimate could not be made.", "Not estimated: {reason}."),
)


def pooled_findings(ctx: "StudyContext", table: pd.DataFrame) -> list:
    """One finding per segment, ``pooled_effect:<segment>``, from its partially pooled estimate, judged like the
    headline (same null, direction and margin). Pooling is no cure for garbage: a segment's pooled estimate is not
    estimable when no segment meets the data floors on its own, or when its own estimate is below them and it takes
    less than half of its pooled estimate from the others (``shrinkage`` < 0.5)."""
    from dataclasses import replace

    out = []
    sound = table["flag"].isna()
    for r in table.itertuples():
        claim = replace(POOLED_CLAIM, id=f"pooled_effect:{r.segment}")
        reason = None
        if not sound.any():  # garbage in: nothing sound to borrow from
            reason = "no segment has enough data for an estimate of its own, so there is nothing sound to borrow from"
        elif isinstance(r.flag, str) and r.shrinkage < 0.5:
            reason = (f"its own estimate is below the data floors ({r.flag}) and the segments differ too much for it "
                      "to borrow most of its estimate from the others")
        out.append(judge(claim, estimate=r.pooled_hr, ci_low=r.pooled_ci_low, ci_high=r.pooled_ci_high, null=1.0,
                         direction="below", level=ctx.level, margin=ctx["margin_hr"], reason=reason,
                         method="partially pooled (empirical Bayes) per-segment hazard ratio",
                         describe=lambda *_, seg=r.segment: {"segment": ctx.names(seg)}))
    return out


def pool(table: pd.DataFrame, *, alpha: float = 0.05) -> tuple[pd.DataFrame, dict]:
    """Random-effects pooling of per-segment effects: ``table`` has ``segment, coef, se`` (log hazard ratios).

    Returns the table with ``pooled_hr, pooled_ci_low, pooled_ci_high`` (empirical Bayes: posterior mean
    ``mu + B (coef - mu)`` with ``B = tau² / (tau² + se²)``, variance ``B se² + (1 - B)² var(mu)``) and
    ``{hr, ci_low, ci_high, tau2, q, q_df, q_p, i2, method}`` of the pooled random-effects estimate.
    """
    if len(table) < 2:
        raise AnalysisError("fewer than two segments have an estimate, so there is nothing to pool")
    res = combine_effects(table["coef"].to_numpy(float), table["se"].to_numpy(float) ** 2, method_re="iterated",
                          alpha=alpha, row_names=list(table["segment"]))
    mu, var_mu, tau2 = float(res.mean_effect_re), float(res.var_eff_w_re), float(res.tau2)
    from scipy import stats

    z = stats.norm.ppf(1 - alpha / 2)
    se2 = table["se"].to_numpy(float) ** 2
    shrink = tau2 / (tau2 + se2)
    post = mu + shrink * (table["coef"].to_numpy(float) - mu)
    post_se = np.sqrt(shrink * se2 + (1 - shrink) ** 2 * var_mu)
    out = table.assign(shrinkage=1 - shrink, pooled_hr=np.exp(post), pooled_ci_low=np.exp(post - z * post_se),
                       pooled_ci_high=np.exp(post + z * post_se))
    q, df = float(res.q), int(len(table) - 1)
    from scipy.stats import chi2

    summary = {"hr": math.exp(mu), "ci_low": math.exp(mu - z * math.sqrt(var_mu)),
               "ci_high": math.exp(mu + z * math.sqrt(var_mu)), "tau2": tau2, "q": q, "q_df": df,
               "q_p": float(chi2.sf(q, df)), "i2": float(max(0.0, (q - df) / q)) if q > 0 else 0.0,
               "method": "random-effects meta-analysis of per-segment log hazard ratios (Paule-Mandel between-segment variance), "
                         "empirical-Bayes shrinkage per segment, Cochran's Q"}
    return out, summary


def applies(ctx: "StudyContext") -> bool:
    """Only a study of several segments together has segments to compare."""
    return ctx["segment"] is None and len(ctx.ds.segments) >= 2


def requires(ctx: "StudyContext") -> str | None:
    if ctx["segment"] is not None:
        return "a study of one segment: nothing to pool"
    if len(ctx.ds.segments) < 2:
        return "the data has a single segment: nothing to pool"
    return goals_reason(ctx)


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {}


def run(ctx: "StudyContext") -> Result:
    usage = ctx.headline_usage or None
    shared = ctx.model_frame(usage)
    segment_of = shared.data["segment"].to_numpy()
    rows, skipped = [], []
    for seg in ctx.ds.segments:
        # its accounts and goals, not its goal measurements: its rows of the shared frame carry the attainment (the
        # copy was 0.4 GB at a million accounts)
        sub = ctx.ds.for_segment(seg, measurements=False)
        try:
            _, e = time_varying_effect(sub, frame=shared.subset(segment_of == seg, sub, ctx["covariates"]),
                                       lag_days=ctx["lag_days"], engine=ctx.engine,
                                       threshold=ctx["attainment_threshold"])
        except (AnalysisError, ValueError) as exc:
            skipped.append(f"{seg}: {exc}")
            continue
        flag = ctx.floors.reason(events=e["n_events"], parameters=e["n_params"], groups=e["groups"], se=e["se"],
                                 se_naive=e["se_naive"])
        rows.append({"segment": seg, "coef": e["coef"], "se": e["se"], "hr": e["hr"], "ci_low": e["ci_low"],
                     "ci_high": e["ci_high"], "n_events": e["n_events"], "n_accounts": e["n_accounts"], "flag": flag})
    table, summary = pool(pd.DataFrame(rows), alpha=ctx.alpha)
    summary.update({"segments": table.drop(columns=["coef", "se"]).to_dict("records"), "not_pooled": skipped,
                    "usage_adjusted_for": usage or []})
    res = Result(NAME, TITLE, record={"segment_effects": summary}, tables={"segment_effects": table})
    if skipped:
        res.warnings.append("Left out of the segment comparison: " + "; ".join(skipped) + ".")
    verdict = "supported" if summary["q_p"] < ctx.alpha else "inconclusive"
    sound = int(table["flag"].isna().sum())
    # segments whose own estimates are below the data floors cannot show that segments differ
    floor = (None if sound >= 2 else ("no segment meets" if sound == 0 else "only 1 segment meets")
             + " the data floors on its own; at least 2 must, to compare segments")
    res.findings = [judge(CLAIM, estimate=summary["i2"], ci_low=None, ci_high=None, null=0.0, direction="above",
                          level=ctx.level, verdict=verdict, method=summary["method"], reason=floor,
                          describe=lambda *_: {"p": p_text(summary["q_p"]), "i2": summary["i2"],
                                               "pooled_hr": summary["hr"],
                                               "pooled_ci": ctx.ci(summary["ci_low"], summary["ci_high"])}),
                    *pooled_findings(ctx, table)]
    seg_names = table["segment"].map(ctx.names)
    forest = pd.concat([
        table.assign(label=seg_names + " (own)", key=table["segment"], k=0)[["label", "key", "k", "hr", "ci_low",
                                                                             "ci_high"]],
        table.assign(label=seg_names + " (pooled)", key=table["segment"], k=1, hr=table["pooled_hr"],
                     ci_low=table["pooled_ci_low"], ci_high=table["pooled_ci_high"])[["label", "key", "k", "hr",
                                                                                      "ci_low", "ci_high"]],
    ]).sort_values(["key", "k"], kind="stable").reset_index(drop=True)
    res.figures.append(Figure("segment_effects", lambda: plots.forest(
        forest, title="Hazard ratio by segment: own estimate and partially pooled"),
        alt="Forest plot of each segment's hazard ratio of churn, goals reached versus no progress, own and "
            "partially pooled: " + plots.describe_intervals(forest, "label", "hr", level=ctx.level)
            + f"; pooled across segments {summary['hr']:.2f}."))
    flagged = [r for r in rows if r["flag"]]
    pooled_words = (f"Across segments the pooled hazard ratio is {summary['hr']:.2f} "
                    f"({ctx.ci(summary['ci_low'], summary['ci_high'])})." if floor is None else
                    f"The segments are not compared: {floor}; the chart shows their estimates for the record only.")
    res.text = " ".join(
        [pooled_words]
        + [f"The {r['segment']} estimate is not shown as a finding of its own: {r['flag']}." for r in flagged])
    return res
