"""The fitted-result type that every regression fitter returns (``fit_cox``, ``fit_discrete``, ``fit_logit``).

One shape for all of them, as lifelines' fitters share one: the coefficient table, the covariance it was computed
from, the log-likelihood, the counts, and whatever else the estimator reports in ``info``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True, eq=False, repr=False)
class Fit:
    """A fitted regression model.

    Attributes
    ----------
    method : str
        ``"cox"``, ``"discrete_cloglog"`` or ``"logit"``.
    summary : DataFrame
        One row per term (index named ``covariate``).  Proportional-hazards fits: ``coef, se, hr, ci_low,
        ci_high, z, p`` (``hr`` = exp(coef), the interval is for the hazard ratio).  Logit: ``coef, se, or,
        ci_low, ci_high, p`` (``or`` = exp(coef)).
    vcov : DataFrame
        Terms x terms covariance of ``coef`` used for the summary (the robust one when clustered).
    loglik : float
        (Partial) log-likelihood at the estimate.
    n : int
        Rows fitted.
    events : int
        Rows with the event (outcome = 1 for logit).
    info : dict
        Everything else the estimator reports: always ``loglik_null``, ``converged``, ``alpha``, ``n_clusters``
        and ``cluster``; per estimator see its docstring (``engine``, ``iterations``, ``robust``, ``ties``,
        ``strata``, ``entry``, ``vcov_naive``, the ``baseline_*`` terms of ``fit_discrete``, ...).
    """

    method: str
    summary: pd.DataFrame
    vcov: pd.DataFrame
    loglik: float
    n: int
    events: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> pd.Series:
        """The coefficients, ``summary["coef"]``."""
        return self.summary["coef"]

    @property
    def covariates(self) -> list[str]:
        """The terms in model order (``Intercept`` first for logit)."""
        return list(self.summary.index)

    def __repr__(self) -> str:
        return (f"<Fit {self.method}: n={self.n}, events={self.events}, loglik={self.loglik:.6g}>\n"
                f"{self.summary.to_string()}")


def _matrix(values: np.ndarray, terms: Sequence[str]) -> pd.DataFrame:
    """A terms x terms frame (a covariance matrix)."""
    return pd.DataFrame(np.asarray(values, dtype=float), index=pd.Index(terms, name="covariate"),
                        columns=pd.Index(terms, name="covariate"))


def _coef_table(beta: np.ndarray, vcov: np.ndarray, covariates: Sequence[str], z: float) -> pd.DataFrame:
    """The ``coef, se, hr, ci_low, ci_high, z, p`` table of a proportional-hazards fit (Wald intervals)."""
    se = np.sqrt(np.diag(vcov))
    zval = beta / se
    with np.errstate(over="ignore"):
        hr, ci_low, ci_high = np.exp(beta), np.exp(beta - z * se), np.exp(beta + z * se)
    return pd.DataFrame(
        {"coef": beta, "se": se, "hr": hr, "ci_low": ci_low, "ci_high": ci_high, "z": zval,
         "p": 2 * stats.norm.sf(np.abs(zval))},
        index=pd.Index(covariates, name="covariate"),
    )


def _ph_fit(method: str, beta: np.ndarray, vcov: np.ndarray, vcov_naive: np.ndarray, covariates: Sequence[str],
            z: float, *, loglik: float, n: int, events: int, info: dict[str, Any]) -> Fit:
    """The :class:`Fit` of a proportional-hazards model (Cox or discrete-time): Wald table, covariances as frames."""
    return Fit(
        method=method,
        summary=_coef_table(beta, vcov, covariates, z),
        vcov=_matrix(vcov, covariates),
        loglik=float(loglik),
        n=int(n),
        events=int(events),
        info={**info, "vcov_naive": _matrix(vcov_naive, covariates)},
    )
