"""Discrete-time (grouped-time) proportional hazards (``fit_discrete``): the large-panel fallback to ``fit_cox``.

A complementary log-log binomial GLM on the person-period rows with a spline
baseline in time, whose exp(coef) are hazard ratios comparable to Cox's
(Prentice & Gloeckler 1978); optionally with a log-exposure offset, so that
partial intervals count for their length.  It runs ``statsmodels.api.GLM`` (Binomial,
CLogLog link, Newton) up to ``DISCRETE_SM_MAX_ROWS`` rows; above that a
chunked numpy Newton-Raphson that never materialises the design (statsmodels'
GLM holds ~8 copies of it: ~17 GB at 20M rows x 14 columns), tested against
statsmodels and a direct scipy maximisation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._checks import (_as_list, _check_engine, _check_missing, _check_rank, _codes, _count_events,
                      _design_columns)
from ._checks import _event_array, _numeric, _require_columns, _z
from ._newton import _halving_step, _warn_if_infinite
from .fit import Fit, _ph_fit

#: ``fit_discrete(engine="auto")`` runs statsmodels' GLM on at most this many
#: rows and the chunked numpy Newton-Raphson above it.  Measured peak memory of
#: statsmodels 0.15 ``GLM(...).fit`` beyond the n x k design itself: ~6.7
#: copies of it with ``method="newton"`` (``_tmp_like_exog``, the IRLS start's
#: whitened copy and lstsq, the cluster ``score_obs``), 11-16 with the default
#: IRLS (pinv) -- ~17 GB at 20M rows x 14 columns even with Newton.
DISCRETE_SM_MAX_ROWS = 200_000
#: Default degrees of freedom of the baseline hazard spline.
DISCRETE_BASELINE_DF = 6
#: Design cells (rows x columns) per chunk of the numpy engine: 4M = 32 MB.
_DISCRETE_CHUNK_CELLS = 1 << 22
_DISCRETE_SINGULAR = (
    "{func}: singular information matrix at the last Newton iterate although the design has full rank: "
    "a coefficient diverges (separation / monotone likelihood, e.g. a covariate that is non-zero only on "
    "event rows)"
)


def _rcs_knots(x_ev: np.ndarray, df: int, func: str) -> tuple[np.ndarray, int]:
    """Knots of the restricted cubic spline with ``df`` non-constant terms.

    ``df + 1`` knots at equally spaced quantiles (5% ... 95%) of ``x_ev``;
    duplicated knots (few distinct event times) are merged with a warning and
    the degrees of freedom reduced accordingly.  ``df`` 0 and 1 need no knots.
    """
    if df <= 1:
        return np.empty(0), df
    knots = np.unique(np.quantile(x_ev, np.linspace(0.05, 0.95, df + 1)))
    if len(knots) < df + 1:
        new_df = len(knots) - 1 if len(knots) >= 3 else 1
        warnings.warn(
            f"{func}: only {len(knots)} distinct knot(s) at the event-time quantiles for baseline_df={df}; "
            f"using baseline_df={new_df}",
            RuntimeWarning,
            stacklevel=3,
        )
        if len(knots) < 3:
            return np.empty(0), 1
        return knots, new_df
    return knots, df


def _rcs_basis(x: np.ndarray, knots: np.ndarray, out: np.ndarray) -> None:
    """Write the restricted (natural) cubic spline basis of ``x`` into ``out``.

    Column 0 is ``x``; column j = 1..K-2 is Harrell's (Devlin & Weeks)
    truncated-power term for knot j, divided by (k_K - k_1)^2: cubic between
    the knots, linear beyond the outer ones.  With the intercept the K columns
    span all natural cubic splines with these knots (R ``ns``/``rcs``, patsy
    ``cr``).
    """
    out[:, 0] = x
    K = len(knots)
    if K < 3:
        return
    kK, kK1 = knots[-1], knots[-2]
    d = kK - kK1
    scale = (kK - knots[0]) ** 2

    def cube_plus(k):  # (x - k)_+^3 without np.power (slow for float arrays)
        t = x - k
        np.maximum(t, 0.0, out=t)
        t3 = t * t
        t3 *= t
        return t3

    tK, tK1 = cube_plus(kK), cube_plus(kK1)
    for j in range(K - 2):
        kj = knots[j]
        c = cube_plus(kj)
        c -= tK1 * ((kK - kj) / d)
        c += tK * ((kK1 - kj) / d)
        c *= 1.0 / scale
        out[:, 1 + j] = c


def _r_factor(A: np.ndarray) -> np.ndarray:
    """R of a QR decomposition of ``A`` (at most k x k), overwriting ``A``.

    LAPACK ``dgeqrf`` directly: ~6x faster than ``np.linalg.qr`` on tall
    chunks, and unlike ``scipy.linalg.qr(mode="r")`` it does not copy the
    whole m x k result through ``triu``.
    """
    from scipy.linalg import lapack

    qr, _, _, info = lapack.dgeqrf(np.asfortranarray(A), overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dgeqrf failed (info={info})")
    k = A.shape[1]
    return np.triu(qr[:k])


class _Centred:
    """A fit's covariates centred at their means, kept as the caller's columns (:func:`_design_columns`) rather than
    copied into one ``n x p`` matrix (at 19 million account-months and 8 covariates that copy was 1.2 GB, beside the
    frame it came from). ``X[lo:hi]`` builds the centred, column-major block of rows ``[lo, hi)`` (the chunked
    passes read a block at a time), ``X[:, j]`` the centred column ``j``; ``X.shape`` is ``(n, p)``. The values are
    those of the centred copy, to the bit (``x - mean``, the mean of each column as ``X.mean(axis=0)`` gives it)."""

    def __init__(self, columns: list[np.ndarray]):
        self.columns = columns
        self.means = [np.mean(c) for c in columns]
        self.shape = (len(columns[0]), len(columns))

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):
            lo, hi, step = index.indices(self.shape[0])
            if step != 1:
                raise IndexError("_Centred: rows are read as one contiguous block")
            out = np.empty((hi - lo, self.shape[1]), order="F")
            for j, (c, m) in enumerate(zip(self.columns, self.means)):
                np.subtract(c[lo:hi], m, out=out[:, j])
            return out
        rows, j = index
        if rows != slice(None):
            raise IndexError("_Centred: a column is read whole")
        return self.columns[j] - self.means[j]


class _DiscreteDesign:
    """Rows ``[lo, hi)`` of the design, built on demand (the numpy engine never
    holds the n x k matrix): Intercept, spline of log1p(time), stratum dummies
    (first level reference), then the centred covariates (if ``Xc`` given);
    ``offset`` (log exposure, or None) is added to the linear predictor."""

    def __init__(self, x, knots, spline_df, strata_codes, n_strata, Xc=None, offset=None, lookup=None, n=None):
        self.x, self.knots, self.df = x, knots, spline_df
        self.codes, self.S = strata_codes, n_strata
        self.Xc = Xc
        self.offset = offset
        self.p = 0 if Xc is None else Xc.shape[1]
        self.nb = 1 + spline_df + (n_strata - 1)
        self.k = self.nb + self.p
        #: rows; ``x`` and ``strata_codes`` may be None when ``lookup`` gives each row's baseline (then ``n`` is given)
        self.n = len(x) if n is None else n
        #: (key per row, baseline columns per key) from :func:`_baseline_lookup`, or None
        self.lookup = lookup

    def block(self, lo: int, hi: int, out: np.ndarray) -> np.ndarray:
        D = out[: hi - lo, : self.k]
        if self.lookup is not None:
            key, base = self.lookup
            k = key[lo:hi]
            for j in range(self.nb):  # one gather per column: the baseline of a row is its key's row of ``base``
                np.take(base[:, j], k, out=D[:, j])
            if self.p:
                D[:, self.nb :] = self.Xc[lo:hi]
            return D
        D[:, 0] = 1.0
        if self.df:
            _rcs_basis(self.x[lo:hi], self.knots, D[:, 1 : 1 + self.df])
        if self.S > 1:
            blk = D[:, 1 + self.df : self.nb]
            blk[:] = 0.0
            c = self.codes[lo:hi]
            r = np.flatnonzero(c > 0)
            blk[r, c[r] - 1] = 1.0
        if self.p:
            D[:, self.nb :] = self.Xc[lo:hi]
        return D

    def eta(self, lo: int, hi: int, D: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """The linear predictor of rows ``[lo, hi)`` (``D`` their block): ``D beta`` plus the offset."""
        e = D @ beta
        if self.offset is not None:
            e += self.offset[lo:hi]
        return e

    def eta_by_key(self, lo: int, hi: int, eta_b: np.ndarray, beta: np.ndarray,
                   X: np.ndarray | None = None) -> np.ndarray:
        """The linear predictor of rows ``[lo, hi)`` of a design with a baseline lookup, from ``eta_b`` (the
        baseline part of the linear predictor per key, ``base @ beta[:nb]``): gathered by key, plus the covariates'
        part (``X``, their block ``Xc[lo:hi]``, when the caller has built it) and the offset (the grouped passes,
        which never build the rows' baseline block)."""
        e = eta_b[self.lookup[0][lo:hi]]
        if self.p:
            e += (self.Xc[lo:hi] if X is None else X) @ beta[self.nb :]
        if self.offset is not None:
            e += self.offset[lo:hi]
        return e

    def chunks(self):
        rows = max(1, _DISCRETE_CHUNK_CELLS // self.k)
        buf = np.empty((min(rows, self.n), self.k), order="F")  # column writes are contiguous
        for lo in range(0, self.n, rows):
            hi = min(self.n, lo + rows)
            yield lo, hi, self.block(lo, hi, buf)

    def full(self) -> np.ndarray:
        return self.block(0, self.n, np.empty((self.n, self.k)))


def _baseline_lookup(x: np.ndarray, knots, spline_df: int, strata_codes: np.ndarray, n_strata: int):
    """The baseline columns (intercept, spline, stratum dummies) of each distinct ``(x, stratum)`` pair, computed once,
    and each row's pair: ``(key, base)`` with ``base[key[i]]`` row i's baseline, bitwise what
    :meth:`_DiscreteDesign.block` computes (the same elementwise operations on the same values). A panel's tenure
    takes a few thousand values over millions of rows, so every Newton pass gathers instead of recomputing the
    spline. None when the pairs are not few (more than an eighth of the rows or 2^20)."""
    import pandas as pd

    n = len(x)
    codes, uniq = pd.factorize(x, sort=False)
    if len(uniq) * n_strata > min(max(n // 8, 1), 1 << 20):
        return None
    key = codes.astype(np.int32 if len(uniq) * n_strata < 2**31 else np.int64)
    del codes
    if n_strata > 1:
        key *= n_strata
        key += strata_codes.astype(key.dtype)
    ux = np.repeat(np.asarray(uniq, dtype=np.float64), n_strata)
    sc = np.tile(np.arange(n_strata, dtype=np.int64), len(uniq))
    base = _DiscreteDesign(ux, knots, spline_df, sc, n_strata).full()
    return key, np.asfortranarray(base)


def _cloglog_terms(eta: np.ndarray, y: np.ndarray, need_w: bool = True):
    """Per-row log-likelihood sum, score u = dl/deta and weight w = -d2l/deta2.

    l = y log(1 - exp(-m)) - (1 - y) m with m = exp(eta); for y = 1,
    dl/deta = q = m / expm1(m) and -d2l/deta2 = q (m + q - 1) >= 0; for y = 0
    both are -m and m.  The log-likelihood is concave in eta.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        m = np.exp(eta)
        me = m[y]
        ll = float(np.log(-np.expm1(-me)).sum() - (m.sum() - me.sum()))
        q = me / np.expm1(me)
        q[me == 0] = 1.0
        u = -m
        u[y] = q
        if not need_w:
            return ll, u, None
        w = m
        w[y] = q * (me + q - 1.0)
    return ll, u, w


def _discrete_eval(design: _DiscreteDesign, y: np.ndarray, beta: np.ndarray):
    """Log-likelihood, score and observed information in one chunked pass."""
    if design.lookup is not None:
        return _discrete_eval_grouped(design, y, beta)
    k = design.k
    ll, g, info = 0.0, np.zeros(k), np.zeros((k, k))
    for lo, hi, D in design.chunks():
        l_c, u, w = _cloglog_terms(design.eta(lo, hi, D, beta), y[lo:hi])
        ll += l_c
        g += D.T @ u
        D *= np.sqrt(w)[:, None]
        info += D.T @ D
    return {"loglik": ll, "grad": g, "info": info}


#: rows per chunk of the grouped pass (:func:`_discrete_eval_grouped`): a few n-vectors of 8 MB each
_GROUPED_CHUNK_ROWS = 1 << 20


def _discrete_eval_grouped(design: _DiscreteDesign, y: np.ndarray, beta: np.ndarray):
    """What :func:`_discrete_eval` computes, for a design with a baseline lookup, without building its rows.

    Rows with the same key share their baseline columns ``b = base[key]``, so every baseline sum is a sum over the
    keys of per-key sums: the score's baseline part is ``base' (sum of u by key)``, the information's baseline
    block ``base' diag(sum of w by key) base`` and its baseline-covariate block ``base' (sum of w x by key)``.
    Each pass then costs a gather of the baseline predictor and ``2 + p`` bincounts per row (``p`` covariates)
    instead of building and multiplying the ``n x k`` design: the same sums, added in another order (they agree to
    rounding, ~1e-13 relative)."""
    key, base = design.lookup
    nb, p, n = design.nb, design.p, design.n
    K = base.shape[0]
    eta_b = base @ beta[:nb]  # the baseline part of the linear predictor, per key
    ll = 0.0
    uk, wk = np.zeros(K), np.zeros(K)
    wx = np.zeros((K, p))  # per key: the sum of w x_j
    gx, hxx = np.zeros(p), np.zeros((p, p))
    for lo in range(0, n, _GROUPED_CHUNK_ROWS):
        hi = min(n, lo + _GROUPED_CHUNK_ROWS)
        kc = key[lo:hi]
        X = design.Xc[lo:hi] if p else None
        l_c, u, w = _cloglog_terms(design.eta_by_key(lo, hi, eta_b, beta, X), y[lo:hi])
        ll += l_c
        uk += np.bincount(kc, weights=u, minlength=K)
        wk += np.bincount(kc, weights=w, minlength=K)
        if p:
            gx += X.T @ u
            Xw = X * w[:, None]
            for j in range(p):
                wx[:, j] += np.bincount(kc, weights=Xw[:, j], minlength=K)
            Xw = X * np.sqrt(w)[:, None]
            hxx += Xw.T @ Xw  # symmetric, as D' W D is
    Bw = base * np.sqrt(wk)[:, None]
    info = np.empty((nb + p, nb + p))
    info[:nb, :nb] = Bw.T @ Bw
    if p:
        info[:nb, nb:] = base.T @ wx
        info[nb:, :nb] = info[:nb, nb:].T
        info[nb:, nb:] = hxx
    return {"loglik": ll, "grad": np.concatenate([base.T @ uk, gx]), "info": info}


def _newton_raphson(evaluate, beta, tol, max_iter):
    """Newton-Raphson with step halving (the log-likelihood is concave) on ``evaluate(beta)`` -> ``{"loglik",
    "grad", "info"}``: the estimate, its state, whether it converged and the iterations.  Shared by the chunked
    numpy engine and the engine-side fit (:func:`csresearch.engine.discrete.fit_discrete`), whose ``evaluate``
    is one aggregate query."""
    cur = evaluate(beta)
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        # The design has full rank (checked), so a singular information matrix
        # means weights underflowing to 0: a coefficient running off to +-inf
        # (separation).  Stop; the caller reports it.
        if not np.all(np.isfinite(cur["info"])):
            break
        try:
            step = np.linalg.solve(cur["info"], cur["grad"])
        except np.linalg.LinAlgError:
            break
        beta, cur, step = _halving_step(evaluate, beta, step, cur)
        if np.max(np.abs(step)) <= tol * (1.0 + np.max(np.abs(beta))):
            converged = True
            break
    return beta, cur, converged, it


def _discrete_meat(design, y, beta, clusters, n_clusters):
    """sum over clusters of (sum of the rows' score vectors u_i d_i)^{outer 2}."""
    if design.lookup is not None:
        return _discrete_meat_grouped(design, y, beta, clusters, n_clusters)
    Sg = np.zeros((n_clusters, design.k))
    for lo, hi, D in design.chunks():
        _, u, _ = _cloglog_terms(design.eta(lo, hi, D, beta), y[lo:hi], need_w=False)
        D *= u[:, None]
        uc, inv = np.unique(clusters[lo:hi], return_inverse=True)
        for j in range(design.k):
            Sg[uc, j] += np.bincount(inv, weights=D[:, j], minlength=len(uc))
    return Sg.T @ Sg


def _discrete_meat_grouped(design, y, beta, clusters, n_clusters):
    """:func:`_discrete_meat` of a design with a baseline lookup: a cluster's baseline score sum is the sum of its
    rows' scores by key times ``base`` (a sparse cluster x key matrix of score sums, duplicates summed), its
    covariates' score sums one bincount each."""
    from scipy import sparse

    key, base = design.lookup
    nb, p, n = design.nb, design.p, design.n
    K = base.shape[0]
    eta_b = base @ beta[:nb]
    Sg = np.zeros((n_clusters, nb + p))
    # a chunk at a time: a cluster x key matrix of the chunk's score sums (duplicates summed), and one bincount per
    # covariate; at no point an n-vector of scores or an n-row sparse matrix (at 19 million rows, about 1 GB)
    for lo in range(0, n, _GROUPED_CHUNK_ROWS):
        hi = min(n, lo + _GROUPED_CHUNK_ROWS)
        X = design.Xc[lo:hi] if p else None
        _, u, _ = _cloglog_terms(design.eta_by_key(lo, hi, eta_b, beta, X), y[lo:hi], need_w=False)
        # the chunk's clusters as offsets from its lowest (a panel's rows come by account: a short range)
        first = int(clusters[lo:hi].min())
        c = clusters[lo:hi] - first
        G = int(c.max()) + 1
        Sg[first:first + G, :nb] += sparse.csr_matrix((u, (c, key[lo:hi])), shape=(G, K)) @ base
        for j in range(p):
            Sg[first:first + G, nb + j] += np.bincount(c, weights=u * X[:, j], minlength=G)
    return Sg.T @ Sg


def _discrete_statsmodels(design, design0, y, b0, tol, max_iter, clusters):
    """Reference engine: statsmodels GLM(Binomial, CLogLog), Newton-Raphson."""
    import statsmodels.api as sm

    fam = sm.families.Binomial(link=sm.families.links.CLogLog())
    yf = y.astype(float)
    kw: dict[str, Any] = {"method": "newton", "tol": tol, "maxiter": max_iter, "disp": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        null = sm.GLM(yf, design0.full(), family=fam, offset=design0.offset, missing="none").fit(
            start_params=b0, **kw)
        start = np.concatenate([np.asarray(null.params, dtype=float), np.zeros(design.p)])
        if clusters is not None:
            kw.update(cov_type="cluster", cov_kwds={"groups": clusters})
        res = sm.GLM(yf, design.full(), family=fam, offset=design.offset, missing="none").fit(
            start_params=start, **kw)
    beta = np.asarray(res.params, dtype=float)
    if res.normalized_cov_params is None:
        raise ValueError(_DISCRETE_SINGULAR.format(func="fit_discrete"))
    vcov_naive = np.asarray(res.normalized_cov_params, dtype=float) * float(res.scale)
    vcov = np.asarray(res.cov_params(), dtype=float)
    rv = getattr(res, "mle_retvals", None) or {}
    rv0 = getattr(null, "mle_retvals", None) or {}
    converged = bool(rv.get("converged", False)) and bool(rv0.get("converged", False))
    return beta, vcov_naive, vcov, float(res.llf), float(null.llf), converged, int(rv.get("iterations", -1))


def _discrete_estimates(evaluate0, evaluate, meat, b0, p, tol, max_iter, corr, func):
    """The null (baseline-only) model by Newton from ``b0``, then the full model from its estimate with the ``p``
    covariates at 0, the naive covariance and, when ``corr`` is given (clustered), the sandwich
    ``corr * H^-1 meat(beta) H^-1``; returns what ``_discrete_statsmodels`` returns.  ``evaluate0``/``evaluate``
    give ``{"loglik", "grad", "info"}`` at a beta, ``meat(beta)`` the sum over clusters of the outer products of
    the clusters' score sums: the chunked numpy passes here, aggregate queries in
    :func:`csresearch.engine.discrete.fit_discrete`."""
    b_null, cur0, conv0, _ = _newton_raphson(evaluate0, b0, tol, max_iter)
    beta, cur, converged, iters = _newton_raphson(evaluate, np.concatenate([b_null, np.zeros(p)]), tol, max_iter)
    try:
        vcov_naive = np.linalg.inv(cur["info"])
    except np.linalg.LinAlgError as exc:
        raise ValueError(_DISCRETE_SINGULAR.format(func=func)) from exc
    if corr is not None:
        # statsmodels' cov_cluster: H^-1 M H^-1 * G/(G-1) * (n-1)/(n-k)
        vcov = corr * vcov_naive @ meat(beta) @ vcov_naive
    else:
        vcov = vcov_naive
    return beta, vcov_naive, vcov, cur["loglik"], cur0["loglik"], converged and conv0, iters


def _discrete_numpy(design, design0, y, b0, tol, max_iter, clusters, n_clusters, corr, func):
    """This module's engine: chunked Newton-Raphson; returns what ``_discrete_statsmodels`` returns."""
    return _discrete_estimates(
        lambda b: _discrete_eval(design0, y, b), lambda b: _discrete_eval(design, y, b),
        lambda b: _discrete_meat(design, y, b, clusters, n_clusters), b0, design.p, tol, max_iter, corr, func)


def _discrete_engine(engine, design, design0, y, b0, tol, max_iter, clusters, n_clusters, corr, func):
    """Run the engine ``engine`` stands for (``"auto"``: statsmodels up to ``DISCRETE_SM_MAX_ROWS`` rows): its
    name and the estimates of ``_discrete_statsmodels`` / ``_discrete_numpy``."""
    if engine == "auto":
        engine = "statsmodels" if design.n <= DISCRETE_SM_MAX_ROWS else "numpy"
    if engine == "statsmodels":
        est = _discrete_statsmodels(design, design0, y, b0, tol, max_iter, clusters)
        return "statsmodels GLM(Binomial, CLogLog) newton", est
    est = _discrete_numpy(design, design0, y, b0, tol, max_iter, clusters, n_clusters, corr, func)
    return "numpy chunked Newton (cloglog)", est


def _discrete_data(df: pd.DataFrame, event: str, covariates: list[str], time: str, other_cols: list[str],
                   func: str):
    """The checked inputs: event flags, times (>= 0), the covariates (:class:`_Centred`: the frame's columns, centred
    a block at a time) and the number of events."""
    cols = [event, time] + covariates + other_cols
    _require_columns(df, cols, func)
    _check_missing(df, cols, func)
    y = _event_array(df, event, func)
    t = _numeric(df, time, func, "time")
    neg = int((t < 0).sum())
    if neg:
        raise ValueError(f"{func}: time column {time!r} has {neg} negative value(s)")
    # the caller's columns, centred a block at a time (no n x p copy); each block column-major: the grouped passes
    # read and weight the covariates a column at a time (bincounts by key, the cluster scores), and a column of a
    # row-major matrix is a strided gather (a Newton pass took about 2.5x as long)
    X = _Centred(_design_columns(df, covariates, func))
    n_events = _count_events(y, event, func)
    if n_events == len(y):
        raise ValueError(f"{func}: every row is an event (column {event!r} is all 1); the model is not identified")
    return y, t, X, n_events


def _discrete_offset(df: pd.DataFrame, exposure: str | None, func: str) -> np.ndarray | None:
    """The offset log(exposure) of each row (None without ``exposure``); every exposure must be finite and > 0.

    Missing values are reported by ``_check_missing`` (``_discrete_data``), before this runs."""
    if exposure is None:
        return None
    e = _numeric(df, exposure, func, "exposure")
    bad = int((e <= 0).sum())
    if bad:
        raise ValueError(
            f"{func}: exposure column {exposure!r} has {bad} non-positive value(s) (zero or negative) out of "
            f"{len(e)} rows; an exposure is the length of the row's interval at risk and must be > 0"
        )
    return np.log(e)  # a new array: e may be a view of the caller's column


def _baseline_df(baseline_df: int | None, func: str) -> int:
    """The spline degrees of freedom asked for (``DISCRETE_BASELINE_DF`` when None), checked."""
    if baseline_df is None:
        baseline_df = DISCRETE_BASELINE_DF
    if isinstance(baseline_df, bool) or not isinstance(baseline_df, (int, np.integer)) or baseline_df < 0:
        raise ValueError(f"{func}: baseline_df must be an integer >= 0, got {baseline_df!r}")
    return int(baseline_df)


def _discrete_strata(df: pd.DataFrame, strata_cols: list[str], y: np.ndarray, func: str):
    """Stratum codes, count and labels (sorted order); each stratum needs events and non-events."""
    if not strata_cols:
        return None, 1, []
    s_codes, n_strata = _codes(df, strata_cols)
    s_codes = _small_codes(s_codes, n_strata)
    # first row of each stratum, for the labels (O(n), no sort of n values)
    change = np.flatnonzero(np.r_[True, s_codes[1:] != s_codes[:-1]])
    first = np.empty(n_strata, dtype=np.int64)
    first[s_codes[change[::-1]]] = change[::-1]
    labels = [", ".join(str(df[c].iloc[i]) for c in strata_cols) for i in first]
    ev_by = np.bincount(s_codes[y], minlength=n_strata)
    rows_by = np.bincount(s_codes, minlength=n_strata)
    bad = [lab for lab, e, r in zip(labels, ev_by, rows_by) if e == 0 or e == r]
    if bad:
        raise ValueError(
            f"{func}: stratum/strata {bad} of {strata_cols} have no events (or only events); their "
            "intercept is infinite -- drop those rows or merge strata"
        )
    return s_codes, n_strata, labels


def _small_codes(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """``codes`` (0..n_codes-1) as int32 when they fit: held through the fit, half the memory of int64."""
    return codes.astype(np.int32) if n_codes < 2**31 else codes


def _discrete_clusters(df: pd.DataFrame, cluster: str | None, func: str):
    """Cluster codes and count (None, None without ``cluster``); robust SEs need two clusters at least."""
    if cluster is None:
        return None, None
    clus_codes, n_clusters = _codes(df, [cluster])
    clus_codes = _small_codes(clus_codes, n_clusters)
    if n_clusters < 2:
        raise ValueError(f"{func}: cluster column {cluster!r} has a single value; robust SEs need >= 2 clusters")
    return clus_codes, n_clusters


def _baseline_names(time: str, spline_df: int, labels: list[str]) -> list[str]:
    """Names of the baseline terms in design order: Intercept, the spline of log1p(time), the strata."""
    return (
        ["Intercept"]
        + ([f"log1p({time})"] if spline_df else [])
        + [f"rcs{j}(log1p({time}))" for j in range(1, spline_df)]
        + [f"strata[{lab}]" for lab in labels[1:]]
    )


def _discrete_rank(design: _DiscreteDesign, base_names: list[str], covariates: list[str], time: str,
                   func: str) -> np.ndarray:
    """Raise if the design is rank deficient; return the covariates' standard deviations."""
    # Rank check on the R factor of the whole design, from the R factors of
    # the chunks (TSQR): _check_rank(R) applies exactly the criterion
    # _check_rank(X) would (|r_jj| / ||x_j|| < 1e-8) without holding X.
    if design.lookup is not None:
        R = _grouped_r(design)
    else:
        Rs = [_r_factor(D) for _, _, D in design.chunks()]
        R = Rs[0] if len(Rs) == 1 else _r_factor(np.vstack(Rs))
    _discrete_rank_check(R, base_names, covariates, time, func)
    return np.sqrt((R[:, design.nb:] ** 2).sum(axis=0) / design.n)  # covariates are centred


def _grouped_r(design: _DiscreteDesign) -> np.ndarray:
    """An R factor of a design with a baseline lookup (``R'R = D'D``), without building its rows.

    With ``n_k`` rows and covariate mean ``xbar_k`` per key, ``D'D`` splits into the keys' part and the within-key
    scatter of the covariates: it is ``M'M`` for ``M`` stacking one row ``sqrt(n_k) [b_k, xbar_k]`` per key over the
    rows' ``[0, x_i - xbar_k]``. So the QR runs on ``K`` key rows of ``k`` columns and on ``n`` rows of only the ``p``
    covariate columns (TSQR over chunks), instead of on ``n`` rows of all ``k``."""
    key, base = design.lookup
    nb, p, n = design.nb, design.p, design.n
    K = base.shape[0]
    nk = np.bincount(key, minlength=K).astype(float)
    top = np.zeros((K, nb + p), order="F")
    top[:, :nb] = base * np.sqrt(nk)[:, None]
    means = np.zeros((K, p))
    seen = nk > 0
    for j in range(p):
        sums = np.bincount(key, weights=design.Xc[:, j], minlength=K)
        means[seen, j] = sums[seen] / nk[seen]
        top[:, nb + j] = means[:, j] * np.sqrt(nk)
    pieces = [_r_factor(top)]
    if p:
        rows = max(1, _DISCRETE_CHUNK_CELLS // p)
        for lo in range(0, n, rows):
            hi = min(n, lo + rows)
            within = design.Xc[lo:hi] - means[key[lo:hi]]
            piece = np.zeros((min(p, hi - lo), nb + p))
            piece[:, nb:] = _r_factor(within)
            pieces.append(piece)
    stacked = np.vstack(pieces)
    if len(stacked) < nb + p:  # fewer rows than columns: zero rows make R square, so no column escapes the check
        stacked = np.vstack([stacked, np.zeros((nb + p - len(stacked), nb + p))])
    return _r_factor(stacked)


def _discrete_rank_check(R: np.ndarray, base_names: list[str], covariates: list[str], time: str, func: str,
                         tol: float = 1e-8) -> None:
    """Raise if the design is rank deficient, given any ``R`` with ``R'R = X'X`` (its R factor, or a square root
    of the Gram matrix computed elsewhere); ``tol`` as in ``_check_rank``."""
    try:
        _check_rank(R, base_names + covariates, func, tol=tol)
    except ValueError as exc:
        raise ValueError(
            f"{exc} (design order: baseline terms {base_names}, then the covariates; a covariate that is "
            f"constant within strata or a function of {time!r} is collinear with the baseline)"
        ) from None


def _discrete_start(nb: int, n: int, n_events: int, mean_offset: float | None) -> np.ndarray:
    """Newton's start for the null model: the constant hazard of the observed event share (at the geometric-mean
    exposure, ``mean_offset`` = mean log exposure, when there is one), every other baseline term 0."""
    b0 = np.zeros(nb)
    b0[0] = math.log(-math.log1p(-n_events / n))
    if mean_offset is not None:
        b0[0] -= float(mean_offset)  # the same start at the geometric-mean exposure
    return b0


def _cluster_correction(n_clusters: int | None, n: int, k: int) -> float | None:
    """statsmodels' small-sample factor of the cluster sandwich, G/(G-1) * (n-1)/(n-k); None unclustered."""
    return None if n_clusters is None else n_clusters / (n_clusters - 1.0) * (n - 1.0) / (n - k)


def _discrete_fit(engine_name: str, est: tuple, *, nb: int, k: int, covariates: list[str], z: float, n: int,
                  n_events: int, n_clusters: int | None, cluster: str | None, alpha: float, strata_cols: list[str],
                  time: str, spline_df: int, knots: np.ndarray, base_names: list[str], corr: float | None,
                  exposure: str | None) -> Fit:
    """The :class:`Fit` of the estimates ``est`` (what ``_discrete_statsmodels`` returns; the first ``nb`` terms
    are the baseline's).  The caller warns when a coefficient looks infinite (``_warn_if_infinite``, so that the
    warning points at its caller)."""
    beta_all, vn_all, v_all, loglik, loglik_null, converged, iters = est

    beta = beta_all[nb:]
    vcov_naive = vn_all[nb:, nb:]
    vcov = v_all[nb:, nb:]
    return _ph_fit(
        "discrete_cloglog", beta, vcov, vcov_naive, covariates, z, loglik=loglik, n=n, events=n_events,
        info={
            "loglik_null": float(loglik_null),
            "n_clusters": None if n_clusters is None else int(n_clusters),
            "robust": cluster is not None,
            "engine": engine_name,
            "converged": bool(converged),
            "iterations": int(iters),
            "alpha": float(alpha),
            "strata": tuple(strata_cols) or None,
            "cluster": cluster,
            "time": time,
            "baseline_df": int(spline_df),
            "baseline_knots": tuple(np.expm1(knots).tolist()),
            "baseline_terms": tuple(base_names),
            "baseline_coef": tuple(beta_all[:nb].tolist()),
            "n_params": int(k),
            "cluster_correction": None if corr is None else float(corr),
            "exposure": exposure,
        },
    )


def fit_discrete(
    df: pd.DataFrame,
    event: str,
    covariates: str | Sequence[str],
    time: str,
    *,
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    baseline_df: int | None = None,
    alpha: float = 0.05,
    tol: float = 1e-10,
    max_iter: int = 50,
    engine: str = "auto",
    exposure: str | None = None,
) -> Fit:
    """Discrete-time (grouped-time) proportional hazards: cloglog binomial GLM on a person-period panel.

    One row per subject per interval at risk (e.g. the account-month panel);
    ``event`` is 1 on the interval in which the event happened.  The model is

        P(event in interval | at risk) = 1 - exp(-exp(eta)),
        eta = Intercept [+ stratum] + s(log1p(time)) + X beta.

    If the continuous-time hazard is proportional, h(t | x) = h0(t) exp(x beta),
    and x is constant within an interval, then this is *exactly* the
    probability of an event in the interval with the same beta (Prentice &
    Gloeckler 1978; Allison 1982): exp(coef) is a hazard ratio comparable to
    ``fit_cox``'s, only the baseline is parametrised differently.  It is the
    large-data fallback to ``fit_cox`` on the same ``(start, stop]`` panel.
    Without ``exposure`` every row counts as one whole interval: a partial
    first or last month (account start, censoring date, a late entry) is
    treated like a full one, which over-weights those rows.  With
    ``exposure`` the model is

        P(event in interval | at risk) = 1 - exp(-exp(eta + log exposure)),

    i.e. ``log(exposure)`` is an offset: the grouped-time PH model whose
    cumulative hazard over an interval is proportional to its length (the
    hazard is constant within it).  Late entry (left truncation) needs
    nothing else: a subject simply has no rows before it enters the risk set.

    Parameters
    ----------
    df : DataFrame
    event : str
        0/1 (or bool) event flag of the interval.
    covariates : str or list of str
        Numeric/bool columns (time-varying allowed: one value per row).
        NaN, constant or non-numeric columns raise, as in ``fit_cox``.
    time : str
        Position of the interval on the time axis, >= 0 (e.g. ``tenure_months``
        = start of the interval).  The baseline log cumulative hazard of an
        interval is a restricted (natural) cubic spline in log(1 + time) --
        Royston & Parmar's flexible parametric form, linear in log time beyond
        the outer knots (Weibull-like tails).
    strata : str or list of str, optional
        A separate intercept per stratum (dummy columns, first level in sorted
        order is the reference); the spline *shape* is shared.  So the
        baselines of the strata are proportional -- unlike ``fit_cox(strata=)``
        whose baselines are completely separate.  Every stratum needs at least
        one event and one non-event row (else its intercept is infinite).
    cluster : str, optional
        Cluster id (e.g. ``account_id``): cluster-robust (sandwich) standard
        errors, statsmodels ``GLM.fit(cov_type="cluster")`` with its default
        small-sample factor G/(G-1) * (n-1)/(n-k), k = all parameters
        including the baseline ones (Stata; R ``sandwich::vcovCL`` "HC1").
        Note ``fit_cox(cluster=)`` follows R's ``coxph`` and has no factor.
    baseline_df : int, optional
        Degrees of freedom of the time spline (default ``DISCRETE_BASELINE_DF``
        = 6): 0 = constant hazard, 1 = linear in log1p(time) (Weibull-like),
        d >= 2 = d + 1 knots at the 5%, ..., 95% quantiles of log1p(time)
        among the event rows (merged with a warning if they coincide).
    alpha : float
        1 - confidence level of the Wald intervals.
    tol, max_iter : float, int
        Newton-Raphson convergence: max |step| <= tol * (1 + max |beta|)
        (numpy engine) or max |step| <= tol (statsmodels).
    engine : {"auto", "statsmodels", "numpy"}
        "statsmodels": ``statsmodels.api.GLM(y, X, family=Binomial(
        link=CLogLog()))`` fitted with ``method="newton"`` (the reference; it
        materialises X and holds ~8 copies of it).  "numpy": this module's
        Newton-Raphson with step halving that streams the design in chunks of
        ~32 MB and never builds X, nor copies the covariates: it reads the
        frame's own float columns, centred a chunk at a time, so its memory
        is a few n-vectors (offsets, keys, int32 clusters; the times and strata
        too when they take too many values to be keyed) and the
        copies of any covariate that is not float64 (measured before the
        covariates were read in place: 1.1 GB above the DataFrame and 45 s at
        20M rows, 3 covariates, 3 strata, 1M clusters; see
        ``DISCRETE_SM_MAX_ROWS``).  "auto": statsmodels up to
        ``DISCRETE_SM_MAX_ROWS`` rows.  Both agree to ~1e-8 (tested).
    exposure : str, optional
        Column of the rows' interval lengths, finite and > 0 (zero, negative,
        missing values raise, naming the column and the count).  On the
        account-month panel (``csresearch.attainment.episodes``) the unit is
        the month: ``(stop - start) / (365.25 / 12)``, so a whole month is
        ~1 and the baseline terms give a hazard per month
        (``csresearch.models.Engine.panel`` computes it that way).  The unit
        moves only the intercept (exposures times c: ``Intercept`` minus
        log c); the covariates' coefficients, SEs and the log-likelihood do
        not depend on it.  The offset enters the linear
        predictor of both engines, the null model, the score and
        information, the cluster sandwich and the log-likelihood; None (the
        default) gives exactly the fit without it.  An event row's ``stop``
        is the event time, so its exposure is the time to the event: the
        log-likelihood then holds ~sum(log exposure) over the event rows and
        is comparable only between fits with the same exposure (no LR test
        of a fit with exposure against one without).

    Fit
        ``method`` = "discrete_cloglog".  As ``fit_cox``: ``summary`` is
        indexed by covariate (baseline terms are not rows) with ``coef, se,
        hr, ci_low, ci_high, z, p``.  Standard errors are from the observed
        information (statsmodels' Newton default; R's ``glm`` reports the
        expected information, which differs slightly for this non-canonical
        link) or the cluster sandwich (``vcov``).  ``loglik``, ``n`` (rows),
        ``events``.  ``info``: ``loglik_null`` (the baseline-only model with
        the same baseline, so 2 (loglik - loglik_null) is the LR statistic
        for all covariates), ``n_clusters``, ``robust``, ``engine``,
        ``converged``, ``iterations``, ``alpha``, ``strata``, ``cluster``,
        ``time``, ``baseline_df`` (used), ``baseline_knots`` (in units of
        ``time``), ``baseline_terms`` and ``baseline_coef`` (Intercept,
        spline, strata; covariates centred at their means), ``n_params``,
        ``cluster_correction``, ``vcov_naive``, ``exposure`` (the column,
        or None).
    """
    func = "fit_discrete"
    covariates = _as_list(covariates)
    strata_cols = _as_list(strata)
    _check_engine(engine, func)
    baseline_df = _baseline_df(baseline_df, func)
    z = _z(alpha)
    y, t, X, n_events = _discrete_data(df, event, covariates, time,
                                       strata_cols + _as_list(cluster) + _as_list(exposure), func)
    offset = _discrete_offset(df, exposure, func)
    n = len(y)
    s_codes, n_strata, labels = _discrete_strata(df, strata_cols, y, func)
    clus_codes, n_clusters = _discrete_clusters(df, cluster, func)

    x = np.log1p(t)
    del t  # a copy when the time column is not float64
    knots, spline_df = _rcs_knots(x[y], baseline_df, func)
    lookup = _baseline_lookup(x, knots, spline_df, s_codes, n_strata)
    if lookup is not None:  # a row's key stands for its time and stratum: the passes never read them again
        x, s_codes = None, None
    design = _DiscreteDesign(x, knots, spline_df, s_codes, n_strata, X, offset, lookup, n=n)
    design0 = _DiscreteDesign(x, knots, spline_df, s_codes, n_strata, None, offset, lookup, n=n)
    nb, k = design.nb, design.k
    base_names = _baseline_names(time, spline_df, labels)
    sd = _discrete_rank(design, base_names, covariates, time, func)

    b0 = _discrete_start(nb, n, n_events, None if offset is None else offset.mean())
    corr = _cluster_correction(n_clusters, n, k)
    engine_name, est = _discrete_engine(engine, design, design0, y, b0, tol, max_iter, clus_codes, n_clusters, corr,
                                        func)
    fit = _discrete_fit(engine_name, est, nb=nb, k=k, covariates=covariates, z=z, n=n, n_events=n_events,
                        n_clusters=n_clusters, cluster=cluster, alpha=alpha, strata_cols=strata_cols, time=time,
                        spline_df=spline_df, knots=knots, base_names=base_names, corr=corr, exposure=exposure)
    _warn_if_infinite(func, fit.info["converged"], max_iter, covariates, fit.params.to_numpy(), sd,
                      fit.info["vcov_naive"].to_numpy(), "separation")
    return fit
