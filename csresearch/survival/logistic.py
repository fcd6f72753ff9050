"""Logistic regression (``fit_logit``): statsmodels ``Logit`` as a :class:`~csresearch.survival.fit.Fit`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import _as_list, _check_missing, _check_rank, _codes, _design, _event_array, _require_columns, _z
from .fit import Fit, _matrix


def fit_logit(
    df: pd.DataFrame,
    outcome: str,
    covariates: str | Sequence[str],
    cluster: str | None = None,
    alpha: float = 0.05,
    *,
    intercept: bool = True,
) -> Fit:
    """Logistic regression (statsmodels ``Logit``) as a tidy odds-ratio table.

    Parameters
    ----------
    df : DataFrame
    outcome : str
        0/1 (or bool) outcome column.
    covariates : str or list of str
        Numeric/bool columns.  NaN, constant or non-numeric columns raise.
    cluster : str, optional
        Cluster id for cluster-robust standard errors (statsmodels
        ``cov_type="cluster"`` with its default small-sample correction
        G/(G-1) * (N-1)/(N-K), the same as Stata and R's ``sandwich::vcovCL``
        default "HC1").
    alpha : float
        1 - confidence level.
    intercept : bool
        Add an ``Intercept`` term (default True).

    Returns
    -------
    Fit
        ``method`` = "logit".  ``summary`` is indexed by term (``Intercept``
        first) with ``coef, se, or, ci_low, ci_high, p``: log odds ratio, its
        standard error, odds ratio, Wald interval for the odds ratio
        exp(coef -+ z se), two-sided normal p.  ``loglik`` is statsmodels'
        ``llf``, ``events`` the rows with outcome = 1, ``vcov`` the
        (cluster-robust when ``cluster``) covariance.  ``info``:
        ``loglik_null`` (statsmodels' ``llnull``, the intercept-only model),
        ``n_clusters``, ``cluster``, ``converged``, ``alpha``.
    """
    import statsmodels.api as sm

    func = "fit_logit"
    covariates = _as_list(covariates)
    cols = [outcome] + covariates + _as_list(cluster)
    _require_columns(df, cols, func)
    _check_missing(df, cols, func)
    y = _event_array(df, outcome, func, "outcome").astype(float)
    if y.min() == y.max():
        raise ValueError(f"{func}: outcome {outcome!r} is constant; the model is not identified")
    X = _design(df, covariates, func)
    names = list(covariates)
    _check_rank(X - X.mean(axis=0), names, func)
    if intercept:
        X = np.column_stack([np.ones(len(X)), X])
        names = ["Intercept"] + names
    z = _z(alpha)
    model = sm.Logit(y, X, missing="none")
    fit_kw: dict[str, Any] = {"disp": 0, "method": "newton", "maxiter": 100}
    n_clusters = None
    if cluster is not None:
        codes, n_clusters = _codes(df, [cluster])
        fit_kw.update(cov_type="cluster", cov_kwds={"groups": codes})
    res = model.fit(**fit_kw)
    beta = np.asarray(res.params, dtype=float)
    vcov = np.asarray(res.cov_params(), dtype=float)
    se = np.sqrt(np.diag(vcov))
    zval = beta / se
    summary = pd.DataFrame(
        {
            "coef": beta,
            "se": se,
            "or": np.exp(beta),
            "ci_low": np.exp(beta - z * se),
            "ci_high": np.exp(beta + z * se),
            "p": 2 * stats.norm.sf(np.abs(zval)),
        },
        index=pd.Index(names, name="covariate"),
    )
    return Fit(
        method="logit",
        summary=summary,
        vcov=_matrix(vcov, names),
        loglik=float(res.llf),
        n=int(len(y)),
        events=int(y.sum()),
        info={
            "loglik_null": float(res.llnull),
            "n_clusters": None if n_clusters is None else int(n_clusters),
            "cluster": cluster,
            "converged": bool(res.mle_retvals.get("converged", True)),
            "alpha": float(alpha),
        },
    )
