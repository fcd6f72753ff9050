"""Partial value: attainment as a dose. Is partial progress worth something, or only full attainment?"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
import patsy
from scipy import stats

from .. import plots
from ..attainment import episodes
from ..findings import Claim, judge, not_estimable, p_text
from ..attainment_models import AttainmentFrame, attainment_frame
from ..models import DEFAULT_ENGINE, AnalysisError, Engine, effect, require_events, require_goals, strata_of
from ..result import Figure, Result
from ._gates import goals_reason

if TYPE_CHECKING:
    from ..context import StudyContext
    from ..data import Dataset

NAME = "partial_value"
TITLE = "Partial value: attainment as a dose"
INTRO = ("Is partial progress worth something, or only full attainment? The curve shows the churn hazard at each level "
         "of attainment relative to no progress (a spline, with its {level} band), next to the straight-line model, "
         "comparing accounts of the same tenure, ARR and product usage, as the headline does.")

CLAIM = Claim(
    "partial_value",
    supported=("Partial progress counts.",
               "Halfway to their goals, accounts churn at {estimate:.2f} times the rate of accounts with no progress "
               "({ci})."),
    not_supported=("Partial progress goes with more churn.",
                   "Halfway to their goals, accounts churn at {estimate:.2f} times the rate of accounts with no "
                   "progress ({ci})."),
    cannot_tell=("The data cannot tell whether partial progress counts.",
                 "Halfway to their goals, accounts cannot be told apart from accounts with no progress (hazard ratio "
                 "{ci})."),
    not_estimable=("Partial value could not be estimated.", "Not estimated: {reason}."),
)


def dose_response(ds: "Dataset", *, knots: Sequence[float] = (0.25, 0.5, 0.75), covariates: Sequence[str] | None = None,
                  lag_days: int = 0, panel: pd.DataFrame | None = None, grid_points: int = 101,
                  engine: Engine = DEFAULT_ENGINE, usage_metrics: Sequence[str] | None = None,
                  frame: AttainmentFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Partial attainment as a dose: hazard ratio versus attainment 0 along a natural cubic spline.

    The spline is patsy's ``cr`` with the given interior ``knots`` and boundary knots 0 and 1, centred (the
    Cox model has no intercept). A likelihood-ratio test compares it with the linear model (linear is nested
    in the natural spline). The curve's interval (at the engine's alpha) uses the delta method with the robust
    covariance. With ``usage_metrics`` both models also hold usage (last month's and the mean so far), as the
    headline does. Both are fitted on ``frame`` when given (an :class:`~csresearch.attainment_models.AttainmentFrame`
    a study shares between its models), else on the attainment frame of ``panel``.

    Returns the curve ``attainment, hr, ci_low, ci_high, linear_hr`` and
    ``{knots, lr_nonlinearity_p, lr_statistic, lr_df, hr_at: {0.25, 0.5, 0.75, 1.0}, ci_at: {...}, linear}``.
    """
    require_goals(ds)
    knots = [float(k) for k in knots]
    if not knots or any(not 0 < k < 1 for k in knots) or sorted(set(knots)) != knots:
        raise AnalysisError(f"spline knots must be increasing and strictly inside (0, 1), not {knots}")
    if frame is None:
        frame = attainment_frame(ds, panel if panel is not None else episodes(ds, lag_days=lag_days), covariates,
                                 usage_metrics)
    ep = frame.data.copy(deep=False)  # the spline's columns are this model's alone: the frame may be shared
    names = [*frame.covariates, *frame.features]
    require_events(ep, "event", "dose-response", minimum=len(knots) + 3)
    info, cols = _spline_columns(ep, knots)
    strata = strata_of(ep)
    spline = engine.panel(ep, [*cols, *names], strata)
    linear = engine.panel(ep, ["attainment", *names], strata)
    # the linear term is nested in the spline's span but not by column name, so the LR test is computed here
    statistic = max(0.0, 2 * (spline.loglik - linear.loglik))
    df = len(cols) - 1
    grid = np.linspace(0, 1, grid_points)
    design = patsy.build_design_matrices([info], {"attainment": grid})[0]
    zero = patsy.build_design_matrices([info], {"attainment": np.zeros(1)})[0]
    diff = np.asarray(design) - np.asarray(zero)
    beta = spline.summary.loc[cols, "coef"].to_numpy()
    vcov = spline.vcov.loc[cols, cols].to_numpy()
    lp = diff @ beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", diff, vcov, diff))
    z = stats.norm.ppf(1 - engine.alpha / 2)
    curve = pd.DataFrame({"attainment": grid, "hr": np.exp(lp), "ci_low": np.exp(lp - z * se),
                          "ci_high": np.exp(lp + z * se), "linear_hr": np.exp(grid * linear.summary.loc["attainment", "coef"])})
    points = (0.25, 0.5, 0.75, 1.0)
    at = {f"{a:g}": float(np.interp(a, grid, curve["hr"])) for a in points}
    ci_at = {f"{a:g}": [float(np.interp(a, grid, curve["ci_low"])), float(np.interp(a, grid, curve["ci_high"]))]
             for a in points}
    return curve, {"knots": knots, "n_events": int(ep["event"].sum()), "n_params": len(cols) + len(names),
                   "lr_nonlinearity_p": float(stats.chi2.sf(statistic, df)),
                   "lr_statistic": float(statistic), "lr_df": int(df), "hr_at": at, "ci_at": ci_at,
                   "linear": effect(linear)}


def _spline_columns(ep: pd.DataFrame, knots: list[float]) -> tuple[object, list[str]]:
    """Add the centred natural-spline basis of ``attainment`` to ``ep``; return patsy's design info and the names.

    The basis is built a slice at a time (patsy's incremental builder learns the centring from every slice) into
    preallocated columns: on 20 million account-months the whole design at once would be gigabytes of temporaries.
    """
    spec = f"cr(attainment, knots={knots}, lower_bound=0, upper_bound=1, constraints='center') - 1"
    att = ep["attainment"].to_numpy()
    step = 2_000_000
    info = patsy.incr_dbuilder(spec, lambda: ({"attainment": att[a:a + step]} for a in range(0, len(att), step)))
    cols = [f"spline_{i}" for i in range(len(info.column_names))]
    basis = [np.empty(len(att)) for _ in cols]
    for a in range(0, len(att), step):
        block = np.asarray(patsy.build_design_matrices([info], {"attainment": att[a:a + step]})[0])
        for i, column in enumerate(basis):
            column[a:a + step] = block[:, i]
    for c, column in zip(cols, basis):
        ep[c] = column
    return info, cols


def requires(ctx: "StudyContext") -> str | None:
    return goals_reason(ctx)


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {}


def findings_when_empty(ctx: "StudyContext", reason: str) -> list:
    return [not_estimable(CLAIM, reason)]


def run(ctx: "StudyContext") -> Result:
    usage = ctx.headline_usage or None
    curve, info = dose_response(ctx.ds, knots=ctx["spline_knots"], frame=ctx.model_frame(usage), engine=ctx.engine)
    info["usage_adjusted_for"] = usage or []
    res = Result(NAME, TITLE, record={"dose_response": info}, tables={"dose_response": curve})
    half = info["hr_at"]["0.5"]
    lo, hi = info["ci_at"]["0.5"]
    reason = ctx.floors.reason(events=info["n_events"], parameters=info["n_params"])
    finding = judge(CLAIM, estimate=half, ci_low=lo, ci_high=hi, null=1.0, direction="below", level=ctx.level,
                    margin=ctx["margin_hr"], reason=reason,
                    method="natural cubic spline in attainment, hazard ratio at 0.5 versus 0 (delta-method interval)"
                           + ("; adjusted for usage" if usage else ""))
    res.findings = [finding]
    at = info["hr_at"]
    shape = ("bends: the test of a straight line against the curve is significant"
             if info["lr_nonlinearity_p"] < ctx.alpha else
             "is close to a straight line on the log scale (no significant bend)")
    if finding.verdict == "not_estimable":  # no figure: it would show a curve the finding says is not estimable
        res.text = finding.claim
        return res
    ci = info["ci_at"]
    res.figures.append(Figure("dose_response", lambda: plots.dose_response(curve, level=ctx.level),
                              alt=f"Hazard ratio of churn by attainment relative to no progress (log scale), a spline "
                                  f"with its {ctx.level_text} band and the straight-line model: "
                                  + "; ".join(f"{w} {at[k]:.2f} ({ctx.level_text} CI {ci[k][0]:.2f} to {ci[k][1]:.2f})"
                                              for k, w in (("0.25", "a quarter of the way"), ("0.5", "halfway"),
                                                           ("1", "goals reached")) if k in at and k in ci)
                                  + "."))
    res.text = (f"Relative to no progress, the churn hazard is {at['0.25']:.2f} times as high at a quarter of the way "
                f"to the goals, {at['0.5']:.2f} at halfway and {at['1']:.2f} at full attainment. {finding.claim} The "
                f"curve {shape}; likelihood-ratio p {p_text(info['lr_nonlinearity_p'])}.")
    return res

