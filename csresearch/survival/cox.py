"""Cox proportional-hazards regression (``fit_cox``) with R ``coxph`` semantics, and its two engines.

statsmodels is the reference implementation: ``fit_cox`` runs
``statsmodels.duration.hazard_regression.PHReg`` on small problems.  For large
problems (where PHReg's per-event-time Python loops and its robust covariance
become the bottleneck) it switches to a vectorised numpy Newton-Raphson
(``_CoxProblem``, ``_numpy_cox``) that is tested against PHReg, lifelines and
published R output.

statsmodels rough edges handled here (each also noted at the point of use)
--------------------------------------------------------------------------
1. ``PHReg`` defaults to ``ties="breslow"``; R's ``coxph`` defaults to Efron.
   ``fit_cox`` defaults to ``ties="efron"`` and always passes ``ties``.
2. ``PHReg`` treats a row as at risk at ``t`` when ``entry <= t`` (R:
   ``entry < t``), so start/stop data whose start coincides with an event time
   (every monthly-episode table) gets a wrong risk set.  We pass
   ``nextafter(entry, +inf)``, which makes its ``searchsorted`` reproduce R.
3. ``PHReg.fit(groups=...)`` (robust covariance) is unusable for this
   module's data: (a) its score residuals use the Breslow formula even when
   ``ties="efron"``, so it disagrees with R's ``coxph(..., cluster=)``;
   (b) it returns NaN when some row is never in a risk set (censored before
   the first event *of its stratum* -- frequent once ``strata`` is used --,
   entry after the last event, a stratum without events);
   (c) a row whose ``(entry, stop]`` contains no event time (common in
   monthly-episode tables) is removed from its set-based risk set before it
   is added and then stays "at risk" for all earlier times, giving wrong
   residuals (the likelihood itself is unaffected: there the add and the
   remove cancel); (d) it is O(n * event times) in Python.  We never use it:
   the grouped sandwich ``D'D`` (``D`` = dfbeta = score residuals times the
   inverse information, summed by cluster) is computed here, vectorised, with
   Efron score residuals that reproduce R's ``residuals(fit, "score")``.
4. ``PHReg(missing="drop")`` is the default and silently drops NaN rows; we
   validate first and pass ``missing="none"``.
5. ``PHReg`` silently drops strata without events and rows that are never at
   risk before fitting; its ``nobs`` therefore is not R's ``n``.  We report
   ``n`` (all rows) and ``events`` ourselves.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._checks import _as_list, _check_engine, _check_missing, _check_rank, _codes, _count_events, _design
from ._checks import _dense_rank, _event_array, _require_columns, _times, _z
from ._newton import _halving_step, _warn_if_infinite
from .fit import Fit, _ph_fit

#: ``fit_cox(engine="auto")`` runs statsmodels' PHReg when the problem is at
#: most this many rows ...
SM_MAX_ROWS = 50_000
#: ... has at most this many distinct event times (PHReg loops over them in
#: Python three times per Newton step) ...
SM_MAX_EVENT_TIMES = 5_000
#: ... and at most this many strata; otherwise the numpy engine is used.
SM_MAX_STRATA = 50


class _CoxProblem:
    """Risk-set bookkeeping for a (stratified, counting-process) Cox model.

    Event times are numbered globally 0..K-1, stratum by stratum.  Row j is at
    risk at event times ``lo[j] <= k < hi[j]`` (R semantics: entry < t <= stop,
    same stratum).  Rows never at risk are dropped (``rows`` maps back); they
    contribute nothing to the likelihood and have zero score residuals.
    """

    def __init__(self, X, stop, event, entry, strata, ties):
        n = len(stop)
        strata = np.zeros(n, dtype=np.int64) if strata is None else strata
        # rank all time values jointly so that (stratum, time) can be encoded as
        # exact int64 keys (no float arithmetic on times)
        allt = stop if entry is None else np.concatenate([stop, entry])
        uniq, inv = _dense_rank(allt)
        base = len(uniq) + 1
        r_stop = inv[:n]
        key_stop = strata * base + r_stop
        ev_keys = np.unique(key_stop[event])
        self.K = len(ev_keys)
        hi = np.searchsorted(ev_keys, key_stop, side="right")
        if entry is None:
            lo = np.searchsorted(ev_keys, strata * base - 1, side="right")
        else:
            lo = np.searchsorted(ev_keys, strata * base + inv[n:], side="right")
        active = hi > lo
        self.rows = np.flatnonzero(active)
        self.lo = lo[active]
        self.hi = hi[active]
        # column-major: every pass reads the covariates a column at a time (the risk sums of r x_a)
        self.X = np.empty((len(self.rows), X.shape[1]), order="F")
        for a in range(X.shape[1]):
            self.X[:, a] = X[self.rows, a]
        ev = event[active]
        self.death = np.flatnonzero(ev)  # positions within active rows
        self.kd = self.hi[self.death] - 1  # event-time index of each death
        self.Xd = self.X[self.death]
        self.dk = np.bincount(self.kd, minlength=self.K)
        # Efron: the d_k deaths at time k give d_k denominators
        # S0 - (l/d_k) * S0_deaths, l = 0..d_k-1 (Breslow: l/d_k -> 0)
        self.kp = np.repeat(np.arange(self.K), self.dk)
        first = np.concatenate([[0], np.cumsum(self.dk)[:-1]])
        lidx = np.arange(len(self.kp)) - np.repeat(first, self.dk)
        self.frac = lidx / self.dk[self.kp] if ties == "efron" else np.zeros(len(self.kp))
        self.sum_xd = self.Xd.sum(axis=0)

    def _risk_sums(self, w):
        """sum over the risk set at each event time of weights ``w`` (n,)->(K,)."""
        K = self.K
        return np.cumsum(np.bincount(self.lo, w, K + 1) - np.bincount(self.hi, w, K + 1))[:K]

    def evaluate(self, beta, need_info=True, need_resid=False):
        X = self.X
        eta = X @ beta
        eta_max = eta.max()
        r = np.exp(eta - eta_max)  # the shift cancels in every quantity below
        p = X.shape[1]
        S0 = self._risk_sums(r)
        S1 = np.column_stack([self._risk_sums(r * X[:, a]) for a in range(p)])
        rd = r[self.death]
        S0D = np.bincount(self.kd, rd, self.K)
        S1D = np.column_stack([np.bincount(self.kd, rd * self.Xd[:, a], self.K) for a in range(p)])
        kp, frac = self.kp, self.frac
        c = S0[kp] - frac * S0D[kp]
        A = (S1[kp] - frac[:, None] * S1D[kp]) / c[:, None]  # Efron-weighted means
        loglik = float((eta[self.death] - eta_max).sum() - np.log(c).sum())
        grad = self.sum_xd - A.sum(axis=0)
        out = {"loglik": loglik, "grad": grad}
        if need_info or need_resid:
            W = np.bincount(kp, 1.0 / c, self.K)
            cumW = np.concatenate([[0.0], np.cumsum(W)])
            Wj = cumW[self.hi] - cumW[self.lo]
        if need_info:
            V = np.bincount(kp, frac / c, self.K)
            info = (X * (r * Wj)[:, None]).T @ X
            info -= (self.Xd * (rd * V[self.kd])[:, None]).T @ self.Xd
            info -= A.T @ A
            out["info"] = info
        if need_resid:
            out["resid"] = self._score_residuals(r, rd, c, A, Wj)
        return out

    def _score_residuals(self, r, rd, c, A, Wj):
        """Score residuals U_j (rows x p), R's ``residuals(coxph, "score")``.

        For event time k with Efron terms l: c_kl, xbar_kl = A_kl.  An at-risk
        row j accrues -r_j * sum_l w_jl (x_j - xbar_kl) / c_kl with w_jl = 1,
        or (1 - l/d_k) for the rows dying at k; a death adds
        x_j - mean_l xbar_kl.  sum_j U_j is the score vector.
        """
        kp, frac, K, p = self.kp, self.frac, self.K, self.X.shape[1]
        abar = np.column_stack([np.bincount(kp, A[:, a], K) for a in range(p)]) / self.dk[:, None]
        M = np.column_stack([np.bincount(kp, A[:, a] / c, K) for a in range(p)])
        Mf = np.column_stack([np.bincount(kp, frac * A[:, a] / c, K) for a in range(p)])
        V = np.bincount(kp, frac / c, K)
        cumM = np.vstack([np.zeros((1, p)), np.cumsum(M, axis=0)])
        U = -r[:, None] * (self.X * Wj[:, None] - (cumM[self.hi] - cumM[self.lo]))
        kd = self.kd
        U[self.death] += (self.Xd - abar[kd]) + rd[:, None] * (self.Xd * V[kd][:, None] - Mf[kd])
        return U


def _newton(prob: _CoxProblem, p: int, tol: float, max_iter: int):
    """Newton-Raphson with step halving (as R's coxph) from beta = 0."""
    beta = np.zeros(p)
    cur = prob.evaluate(beta)
    loglik_null = cur["loglik"]
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(cur["info"], cur["grad"])
        except np.linalg.LinAlgError as exc:
            raise ValueError(
                "fit_cox: singular information matrix -- covariates are collinear "
                "(or constant within every stratum)"
            ) from exc
        beta, cur, step = _halving_step(prob.evaluate, beta, step, cur)
        if np.max(np.abs(step)) <= tol * (1.0 + np.max(np.abs(beta))):
            converged = True
            break
    return beta, cur, loglik_null, converged, it


def _statsmodels_cox(X, stop, event, entry, strata, ties, tol, max_iter):
    """Fit with statsmodels' PHReg (reference engine); returns beta, vcov, ll, ll0, conv, iters."""
    from statsmodels.base.model import LikelihoodModel
    from statsmodels.duration.hazard_regression import PHReg

    # Rough edge 2: PHReg keeps a row in the risk set at t when entry <= t;
    # R (and this module) use entry < t.  The next float above entry makes
    # PHReg's searchsorted(entry) land on the first event time > entry.
    sm_entry = None if entry is None else np.nextafter(entry, np.inf)
    # Rough edge 1 and 4: pass ties explicitly (PHReg defaults to Breslow) and
    # missing="none" (PHReg defaults to silently dropping NaN rows).
    model = PHReg(
        stop,
        X,
        status=event.astype(float),
        entry=sm_entry,
        strata=strata,
        ties=ties,
        missing="none",
    )
    # PHReg.fit() discards the optimizer's convergence report, so call the
    # LikelihoodModel.fit it wraps (its Newton-Raphson, PHReg's own
    # loglike/score/hessian); PHReg.fit without groups does exactly this.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = LikelihoodModel.fit(model, method="newton", disp=False, tol=tol, maxiter=max_iter)
    beta = np.asarray(res.params, dtype=float)
    if getattr(res, "normalized_cov_params", None) is None:
        raise ValueError("fit_cox: singular information matrix -- covariates are collinear within strata")
    vcov = np.asarray(res.cov_params(), dtype=float)
    retvals = getattr(res, "mle_retvals", None) or {}
    converged = bool(retvals.get("converged", False))
    iters = int(retvals.get("iterations", -1))
    return beta, vcov, float(model.loglike(beta)), float(model.loglike(np.zeros(len(beta)))), converged, iters


def _numpy_cox(prob: _CoxProblem, p: int, tol: float, max_iter: int):
    """Fit with the vectorised Newton-Raphson; returns beta, vcov, ll, ll0, conv, iters (as ``_statsmodels_cox``)."""
    beta, cur, loglik_null, converged, iters = _newton(prob, p, tol, max_iter)
    try:
        vcov_naive = np.linalg.inv(cur["info"])
    except np.linalg.LinAlgError as exc:
        raise ValueError("fit_cox: singular information matrix -- covariates are collinear") from exc
    return beta, vcov_naive, cur["loglik"], loglik_null, converged, iters


def _cox_data(df: pd.DataFrame, duration: str, event: str, covariates: list[str], entry: str | None,
              other_cols: list[str], func: str):
    """The checked inputs: stop times, entry times (or None), event flags and the covariate matrix."""
    cols = [duration, event] + covariates + _as_list(entry) + other_cols
    _require_columns(df, cols, func)
    _check_missing(df, cols, func)
    stop, start = _times(df, duration, entry, func)
    ev = _event_array(df, event, func)
    X = _design(df, covariates, func, order="F")  # read a column at a time (the rank check, the risk sums)
    return stop, start, ev, X


def _cox_engine(engine: str, n: int, n_event_times: int, n_strata: int) -> str:
    """The engine ``"auto"`` stands for: statsmodels on small problems (see ``SM_MAX_ROWS``), numpy otherwise."""
    if engine != "auto":
        return engine
    small = n <= SM_MAX_ROWS and n_event_times <= SM_MAX_EVENT_TIMES and n_strata <= SM_MAX_STRATA
    return "statsmodels" if small else "numpy"


def _cox_clusters(df: pd.DataFrame, cluster: str | None, robust: bool, n: int):
    """Cluster codes and count for the sandwich: by ``cluster``, every row its own (``robust``), or none."""
    if cluster is not None:
        return _codes(df, [cluster])
    if robust:
        return np.arange(n), n
    return None, None


def _cox_sandwich(prob: _CoxProblem, beta: np.ndarray, vcov_naive: np.ndarray, clusters: np.ndarray,
                  n_clusters: int) -> np.ndarray:
    """Robust covariance D'D, D = dfbeta (Efron score residuals times the inverse information) summed by cluster."""
    # Rough edge 3: statsmodels' robust covariance is not used (Breslow
    # residuals under Efron ties, NaN rows, slow); grouped sandwich here.
    D = prob.evaluate(beta, need_info=False, need_resid=True)["resid"] @ vcov_naive
    g = clusters[prob.rows]
    Dg = np.column_stack([np.bincount(g, D[:, a], n_clusters) for a in range(D.shape[1])])
    return Dg.T @ Dg


def fit_cox(
    df: pd.DataFrame,
    duration: str,
    event: str,
    covariates: str | Sequence[str],
    entry: str | None = None,
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    ties: str = "efron",
    alpha: float = 0.05,
    *,
    robust: bool = False,
    engine: str = "auto",
    tol: float = 1e-9,
    max_iter: int = 50,
) -> Fit:
    """Cox proportional-hazards regression with R ``coxph`` semantics.

    Parameters
    ----------
    df : DataFrame
    duration, event : str
        Stop time (>= 0) and 0/1 event flag.
    covariates : str or list of str
        Numeric (or bool) columns; no intercept.  Categorical columns must be
        encoded by the caller.  A NaN in any used column, a constant column or
        a non-numeric column raises.
    entry : str, optional
        Start time of a ``(entry, duration]`` episode: the counting-process
        model ``coxph(Surv(entry, duration, event) ~ ...)``.  A row is at risk
        at event time t iff ``entry < t <= duration``.  Several rows per
        subject (time-varying covariates) are allowed; use ``cluster`` for the
        subject id to get robust standard errors.
    strata : str or list of str, optional
        Stratification columns (separate baseline hazards; ``strata()`` in R).
    cluster : str, optional
        Cluster id: robust (grouped sandwich) standard errors as R's
        ``coxph(..., cluster=id)``.  Implies ``robust=True``.
    ties : {"efron", "breslow"}
        Tie handling; "efron" is R's default.
    alpha : float
        1 - confidence level of the Wald intervals.
    robust : bool
        Sandwich variance with each row its own cluster (R ``robust=TRUE``).
    engine : {"auto", "statsmodels", "numpy"}
        "statsmodels": statsmodels ``PHReg`` Newton-Raphson (the reference
        implementation, with the entry fix described in the module notes).
        "numpy": this module's vectorised Efron/Breslow Newton-Raphson with
        step halving (O(n p^2) per iteration, no Python loop over event times).
        "auto" uses statsmodels when the data has at most ``SM_MAX_ROWS`` rows,
        ``SM_MAX_EVENT_TIMES`` distinct event times and ``SM_MAX_STRATA``
        strata, numpy otherwise.  Both agree to ~1e-9 (tested); the engine
        used is in ``info["engine"]``.
    tol, max_iter : float, int
        Convergence: max |step| <= tol * (1 + max |beta|) (numpy engine) or
        max |step| <= tol (statsmodels' Newton).

    Returns
    -------
    Fit
        ``method`` = "cox".  ``summary`` is indexed by covariate with columns
        ``coef, se, hr, ci_low, ci_high, z, p``: log hazard ratio, its
        standard error (robust when ``cluster`` or ``robust``), hazard ratio
        exp(coef), the Wald interval for the hazard ratio exp(coef -+
        z_{1-alpha/2} se) (R's ``lower .95``/``upper .95``), Wald z and
        two-sided p.  ``vcov`` is the covariance behind ``se``; ``loglik`` the
        log partial likelihood at the estimate; ``n`` the rows; ``events`` the
        events.  ``info`` holds ``loglik_null`` (at beta = 0; see
        ``lr_test``), ``n_clusters``, ``ties``, ``robust``, ``engine``,
        ``converged``, ``iterations``, ``alpha``, ``strata``, ``cluster``,
        ``entry`` and ``vcov_naive`` (the inverse information, a covariate x
        covariate frame).

    Method
    ------
    Maximum partial likelihood; variance = inverse information.  Robust
    variance = D'D where D is the dfbeta matrix (score residuals times the
    inverse information, R's ``residuals(fit, "dfbeta")``) summed within
    clusters; like R there is no finite-sample factor (Stata multiplies by
    G/(G-1)).  Score residuals follow Efron's weighting of tied deaths and
    reproduce R's ``residuals(coxph, "score")``.

    lifelines comparison (tested): coefficients and naive SEs equal
    ``CoxPHFitter`` / ``CoxTimeVaryingFitter`` (Efron, start < t <= stop).
    ``CoxTimeVaryingFitter`` has no robust variance (``robust=True`` raises
    NotImplementedError).  ``CoxPHFitter(robust=True / cluster_col=...)`` uses
    D'D as well, but its score residuals ignore tied event times (they depend
    on the row order within ties) and ignore ``entry_col``; they equal ours
    (and R's) only for data without tied event times and without entry.
    """
    func = "fit_cox"
    covariates = _as_list(covariates)
    strata_cols = _as_list(strata)
    if ties not in ("efron", "breslow"):
        raise ValueError(f"{func}: ties must be 'efron' or 'breslow', got {ties!r}")
    _check_engine(engine, func)
    stop, start, ev, X = _cox_data(df, duration, event, covariates, entry, strata_cols + _as_list(cluster), func)
    z = _z(alpha)
    n, p = X.shape
    n_events = _count_events(ev, event, func)
    strata_codes, n_strata = (None, 1) if not strata_cols else _codes(df, strata_cols)
    clus_codes, n_clusters = _cox_clusters(df, cluster, robust, n)
    robust = clus_codes is not None

    # Centering changes neither coefficients nor variances but keeps exp() and
    # the information matrix well conditioned.
    Xc = X - X.mean(axis=0)
    _check_rank(Xc, covariates, func)
    prob = _CoxProblem(Xc, stop, ev, start, strata_codes, ties)

    engine = _cox_engine(engine, n, prob.K, n_strata)
    if engine == "statsmodels":
        est = _statsmodels_cox(Xc, stop, ev, start, strata_codes, ties, tol, max_iter)
    else:
        est = _numpy_cox(prob, p, tol, max_iter)
    beta, vcov_naive, loglik, loglik_null, converged, iters = est
    # Monotone likelihood (a covariate orders the events perfectly) drives a
    # coefficient to infinity: Newton either runs out of iterations or stops
    # on a likelihood so flat that the score underflows to 0.  Flag both; the
    # symptom of the latter is a large per-SD coefficient with a per-SD
    # standard error > 10 (a CI for the per-SD hazard ratio of e^+-20).
    sd = Xc.std(axis=0)
    _warn_if_infinite(func, converged, max_iter, covariates, beta, sd, vcov_naive, "monotone likelihood / separation")
    vcov = _cox_sandwich(prob, beta, vcov_naive, clus_codes, n_clusters) if robust else vcov_naive

    return _ph_fit(
        "cox", beta, vcov, vcov_naive, covariates, z, loglik=loglik, n=n, events=n_events,
        info={
            "loglik_null": float(loglik_null),
            "n_clusters": None if n_clusters is None else int(n_clusters),
            "ties": ties,
            "robust": bool(robust),
            "engine": engine,
            "converged": bool(converged),
            "iterations": int(iters),
            "alpha": float(alpha),
            "strata": tuple(strata_cols) or None,
            "cluster": cluster,
            "entry": entry,
        },
    )
