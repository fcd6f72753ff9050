"""Study design: how many accounts (and churn events) a study needs to detect a given churn reduction."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import pandas as pd
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from ..findings import level_text
from ..models import AnalysisError
from ..result import Result, Shown

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "study_design"
TITLE = "Study design"
INTRO = ("How many accounts a study (for example, recording each customer's success criteria at onboarding in half of "
         "the book) needs to detect a given relative reduction in churn over a year (or over the window the data "
         "observed, when shorter), at {alpha_pct} two-sided "
         "significance and {power_pct} power.")


def schoenfeld_events(hazard_ratio: float, *, alpha: float = 0.05, power: float = 0.80, ratio: float = 1.0) -> float:
    """Churn events a log-rank test needs to detect ``hazard_ratio`` (Schoenfeld 1983), two-sided.

    ``D = (z_{1-alpha/2} + z_{power})^2 / (q1 q2 (log HR)^2)`` with allocation shares ``q1 = 1 / (1 + ratio)``
    and ``q2 = ratio / (1 + ratio)``. Not rounded.
    """
    if hazard_ratio <= 0 or hazard_ratio == 1:
        raise AnalysisError(f"hazard ratio must be positive and differ from 1, not {hazard_ratio}")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    q1, q2 = 1 / (1 + ratio), ratio / (1 + ratio)
    return z ** 2 / (q1 * q2 * math.log(hazard_ratio) ** 2)


def sample_size(base_churn: float, reductions: Sequence[float] = (0.05, 0.10, 0.15, 0.20), *, alpha: float = 0.05,
                power: float = 0.80, ratio: float = 1.0) -> pd.DataFrame:
    """Accounts (and churn events) needed to detect a relative churn reduction, two-sided test.

    Two formulas side by side, for a two-arm comparison (e.g. accounts whose success criteria are recorded at
    onboarding and reviewed at renewal, versus accounts without) over a fixed horizon in which the control arm
    churns ``base_churn``:

    * two proportions: statsmodels' ``NormalIndPower`` on Cohen's h (arcsine effect size);
    * log-rank: :func:`schoenfeld_events` with ``HR = log(1 - p_treated) / log(1 - p_control)`` (proportional
      hazards over the horizon); accounts = events divided by the pooled probability of churning in the horizon.

    Returns one row per reduction: ``reduction, churn_control, churn_treated, hazard_ratio,
    n_per_arm_control, n_per_arm_treated, n_total_proportions, events_logrank, n_total_logrank``.
    """
    if not 0 < base_churn < 1:
        raise AnalysisError(f"base churn must be a proportion in (0, 1), not {base_churn}")
    rows = []
    q1, q2 = 1 / (1 + ratio), ratio / (1 + ratio)
    for r in reductions:
        if not 0 < r < 1:
            raise AnalysisError(f"a churn reduction must be in (0, 1), not {r}")
        p1, p2 = base_churn, base_churn * (1 - r)
        h = proportion_effectsize(p1, p2)
        n1 = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio, alternative="two-sided")
        hr = math.log(1 - p2) / math.log(1 - p1)
        events = schoenfeld_events(hr, alpha=alpha, power=power, ratio=ratio)
        pooled = q1 * p1 + q2 * p2
        rows.append({"reduction": r, "churn_control": p1, "churn_treated": p2, "hazard_ratio": hr,
                     "n_per_arm_control": math.ceil(n1), "n_per_arm_treated": math.ceil(n1 * ratio),
                     "n_total_proportions": math.ceil(n1) + math.ceil(n1 * ratio),
                     "events_logrank": math.ceil(events), "n_total_logrank": math.ceil(events / pooled)})
    return pd.DataFrame(rows)


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
    t = frame.assign(reduction=(frame["reduction"] * 100).round(0).astype(int).astype(str) + "%",
                     churn_control=(frame["churn_control"] * 100).round(1).astype(str) + "%",
                     churn_treated=(frame["churn_treated"] * 100).round(1).astype(str) + "%",
                     hazard_ratio=frame["hazard_ratio"].round(3))
    t = t[["reduction", "churn_control", "churn_treated", "hazard_ratio", "n_total_proportions", "events_logrank",
           "n_total_logrank"]]
    now = "12-month churn now" if basis["twelve_month"] else f"{basis['days']}-day churn now"
    t.columns = ["churn reduction", now, "churn after", "hazard ratio",
                 "accounts (two proportions)", "churn events (log-rank)", "accounts (log-rank)"]
    return t.set_index("churn reduction")
