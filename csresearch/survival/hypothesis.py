"""Hypothesis tests: K-sample log-rank (``logrank``) and the likelihood-ratio test of nested fits (``lr_test``).

``logrank`` runs ``statsmodels.duration.survfunc.survdiff``.  statsmodels rough edge handled here: ``survdiff``
computes its p-value as ``1 - chi2.cdf`` (underflows to 0 for large statistics); we recompute it with
``chi2.sf``.  (Its stratified branch also passes the full ``entry`` vector to every stratum; we do not expose
strata in ``logrank`` for that reason.)
"""

from __future__ import annotations

import pandas as pd
from scipy import stats

from ._checks import _as_list, _check_missing, _codes, _event_array, _require_columns, _times
from .fit import Fit

#: the ``Fit.method`` values ``lr_test`` accepts
_LR_METHODS = ("cox", "logit", "discrete_cloglog")


def logrank(
    df: pd.DataFrame,
    duration: str,
    event: str,
    group: str,
    entry: str | None = None,
) -> dict[str, float]:
    """K-sample log-rank test (R's ``survdiff(Surv(duration, event) ~ group)``).

    Parameters
    ----------
    df : DataFrame
    duration, event : str
        Time and 0/1 event columns.
    group : str
        Column defining the K >= 2 groups to compare.
    entry : str, optional
        Delayed-entry time (at risk iff ``entry < t <= duration``).

    Returns
    -------
    dict
        ``statistic`` (chi-square), ``df`` (K - 1), ``p`` (upper tail).

    Method
    ------
    ``statsmodels.duration.survfunc.survdiff`` (unweighted), i.e. the quadratic
    form (O - E)' V^-1 (O - E) over K - 1 groups with the hypergeometric
    variance; this equals R's ``survdiff`` chi-square (lung by sex: 10.3267)
    and lifelines' ``multivariate_logrank_test``.  statsmodels' entry handling
    is already exclusive (R semantics).  The p-value is recomputed with
    ``chi2.sf`` because survdiff's ``1 - cdf`` underflows to 0.
    """
    from statsmodels.duration.survfunc import survdiff

    func = "logrank"
    cols = [duration, event, group] + _as_list(entry)
    _require_columns(df, cols, func)
    _check_missing(df, cols, func)
    t, e = _times(df, duration, entry, func)
    d = _event_array(df, event, func)
    codes, k = _codes(df, [group])
    if k < 2:
        raise ValueError(f"{func}: group column {group!r} has {k} distinct value(s); need at least 2")
    if not d.any():
        raise ValueError(f"{func}: no events; the test is undefined")
    chisq, _ = survdiff(t, d.astype(float), codes, entry=e)
    chisq = float(chisq)
    return {"statistic": chisq, "df": k - 1, "p": float(stats.chi2.sf(chisq, k - 1))}


def lr_test(full: Fit, reduced: Fit | None = None) -> dict[str, float]:
    """Likelihood-ratio test of two nested fits from ``fit_cox``, ``fit_discrete`` or ``fit_logit``.

    Parameters
    ----------
    full : Fit
        Result of the larger model.
    reduced : Fit, optional
        Result of the nested model fitted on the same rows (its covariates a
        subset of ``full``'s).  ``None`` tests ``full`` against the null model
        (``info["loglik_null"]``: beta = 0 for Cox, the baseline-only model for
        ``fit_discrete``, intercept-only for logit) -- R's "Likelihood ratio
        test" line.

    Returns
    -------
    dict
        ``statistic`` = 2 (ll_full - ll_reduced), ``df`` = difference in the
        number of coefficients, ``p`` = chi-square upper tail.

    Notes
    -----
    The statistic uses the (partial) log-likelihoods, which ignore any
    ``cluster``/``robust`` option: with dependent rows prefer Wald tests on
    the robust ``vcov``.
    """
    if not isinstance(full, Fit) or full.method not in _LR_METHODS:
        raise ValueError("lr_test: `full` is not a fit_cox/fit_discrete/fit_logit result")
    kind = full.method
    terms = full.summary.index
    k_full = len(terms)
    if reduced is None:
        ll_red = full.info["loglik_null"]
        dof = k_full - (1 if kind == "logit" and "Intercept" in terms else 0)
    else:
        if not isinstance(reduced, Fit):
            raise ValueError("lr_test: `reduced` is not a fit_cox/fit_discrete/fit_logit result")
        if reduced.method != kind:
            raise ValueError("lr_test: `full` and `reduced` are different kinds of model")
        if reduced.n != full.n:
            raise ValueError(
                f"lr_test: models were fitted on different numbers of rows "
                f"({full.n} vs {reduced.n})"
            )
        extra = [c for c in reduced.summary.index if c not in terms]
        if extra:
            raise ValueError(f"lr_test: models are not nested; covariates only in `reduced`: {extra}")
        ll_red = reduced.loglik
        dof = k_full - len(reduced.summary.index)
    if dof <= 0:
        raise ValueError("lr_test: `full` must have more coefficients than `reduced`")
    ll_full = full.loglik
    stat = 2.0 * (ll_full - ll_red)
    if stat < -1e-6 * max(1.0, abs(ll_full)):
        raise ValueError(f"lr_test: negative statistic {stat:.6g}; are the models nested and fitted on the same data?")
    stat = max(stat, 0.0)
    return {"statistic": float(stat), "df": int(dof), "p": float(stats.chi2.sf(stat, dof))}
