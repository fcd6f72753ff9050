"""How strong would unmeasured confounding have to be to explain an association away? (E-values)

The E-value (VanderWeele & Ding 2017, Annals of Internal Medicine 167:268) is the minimum strength of association,
on the risk-ratio scale, that an unmeasured confounder would need to have with both the exposure (here: reaching
the goals) and the outcome (churn), beyond the measured covariates, to move the observed estimate to no effect.
For the interval limit closest to no effect it says how strong confounding must be to make the interval include 1.

A hazard ratio is read as a risk ratio when the outcome is rare over the interval it describes (monthly churn is):
``rare=True``. For a common outcome (more than about 15% by the end of follow-up) the hazard ratio is first
converted with ``RR = (1 - 0.5**sqrt(HR)) / (1 - 0.5**sqrt(1/HR))`` (VanderWeele 2020).
"""
from __future__ import annotations

import math


def _evalue_rr(rr: float) -> float:
    """E-value of a risk ratio: ``RR + sqrt(RR (RR - 1))`` for RR >= 1, of ``1/RR`` below 1."""
    if not rr > 0 or not math.isfinite(rr):
        raise ValueError(f"a risk ratio must be positive and finite, not {rr}")
    rr = 1 / rr if rr < 1 else rr
    return rr + math.sqrt(rr * (rr - 1))


def hr_to_rr(hr: float, *, rare: bool = True) -> float:
    """The risk ratio a hazard ratio stands for: itself for a rare outcome, else VanderWeele's conversion."""
    if rare:
        return hr
    return (1 - 0.5 ** math.sqrt(hr)) / (1 - 0.5 ** math.sqrt(1 / hr))


def evalue(estimate: float, ci_low: float | None = None, ci_high: float | None = None, *, rare: bool = True) -> dict:
    """``{point, limit}``: the E-values of a ratio estimate and of its interval limit closest to 1.

    ``limit`` is 1 when the interval already includes 1 (no confounding is needed to explain it away), None without
    an interval.
    """
    point = _evalue_rr(hr_to_rr(estimate, rare=rare))
    limit = None
    if ci_low is not None and ci_high is not None:
        if ci_low <= 1 <= ci_high:
            limit = 1.0
        else:
            near = ci_high if estimate < 1 else ci_low
            limit = _evalue_rr(hr_to_rr(near, rare=rare))
    return {"point": point, "limit": limit}
