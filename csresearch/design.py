"""Sizing a study: how many accounts and churn events a two-arm comparison needs to detect a churn reduction.

* :func:`schoenfeld_events` — churn events a log-rank test needs (Schoenfeld 1983).
* :func:`sample_size` — accounts for a relative churn reduction, two proportions and log-rank side by side.
"""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from .models import AnalysisError


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
