"""The discrete-time proportional-hazards model fitted where the data is: DuckDB or Spark, through Ibis.

:func:`fit_discrete` is :func:`csresearch.survival.fit_discrete` (the complementary log-log binomial GLM on a
person-period panel, spline baseline in ``log1p(time)``, stratum intercepts, centred covariates, optional
log-exposure offset, cluster-robust sandwich) for a panel of tens of millions of rows that sits in an engine: the
rows are never collected.  What travels to this process is a handful of numbers per query:

* one aggregate for the input checks, the row and event counts, the covariates' means and the clusters;
* the stratum levels with their row and event counts (one group-by);
* ``time`` of the event rows (at most one per account), for the spline knots (``survival.discrete._rcs_knots``);
* the Gram matrix of the design (k(k+1)/2 sums), for the rank check and the covariates' standard deviations;
* per Newton iterate one aggregate: the log-likelihood, the gradient (k sums) and the observed information
  (k(k+1)/2 sums of ``w * x_j * x_l``); the k x k solve, step halving and convergence rule are the numpy
  engine's own (``survival.discrete._discrete_estimates``);
* with ``cluster``, one query for the meat: the clusters' score sums (a group-by) and the k(k+1)/2 sums of
  their products; the small-sample factor is the numpy engine's.

The result is the :class:`~csresearch.survival.Fit` that ``survival.fit_discrete`` returns on the collected rows
(the same terms, summary, covariances, log-likelihood and ``info``, ``engine`` naming the backend), equal to it to
~1e-12 relative (tested to 1e-8 on both engines).  The one deliberate difference is the rank check: from the Gram matrix
rather than a QR of the rows, it can resolve a column's part orthogonal to the earlier ones only down to ~1e-7
of its norm (the Gram's rounding is the square of that), so it flags a design as collinear below
:data:`GRAM_RANK_TOL` (1e-5) rather than the QR's 1e-8.  Concordance is not computed here.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..survival._checks import _as_list, _z
from ..survival._newton import _warn_if_infinite
from ..survival.discrete import (_baseline_df, _baseline_names, _cluster_correction, _discrete_estimates,
                                 _discrete_fit, _discrete_rank_check, _discrete_start, _rcs_knots)
from ..survival.fit import Fit

FUNC = "fit_discrete"
#: a design column whose part orthogonal to the columns before it is below this fraction of its norm is collinear.
#: The Gram matrix's rounding (~1e-13 relative on 2M-row sums, more on longer ones) puts the noise floor of that
#: fraction at ~4e-7 (measured: an exactly collinear column gives 0, one with a true fraction of 1e-7 gives 4e-7);
#: the baseline's spline terms of a real design are at ~0.04 and above
GRAM_RANK_TOL = 1e-5
#: below this hazard m = exp(eta), expm1(m) and log(1 - exp(-m)) are taken from their series (SQL has neither
#: expm1 nor log1p): exact to ~1e-18 there, and exp(m) - 1 loses no more than ~1e-14 relative above
_SERIES_BELOW = 0.01
_TINY = 1e-300
_NEG_INF = float("-inf")


# -- expressions ---------------------------------------------------------------------------------------------------
def _f64(value):
    """An Ibis float64 expression of a column expression or a Python number."""
    import ibis

    if isinstance(value, (int, float, np.integer, np.floating)):
        return ibis.literal(float(value), type="float64")
    return value.cast("float64")


def rcs_basis_exprs(x, knots: np.ndarray) -> list:
    """The restricted cubic spline basis of the Ibis column ``x`` with ``knots``, as column expressions.

    The same basis as :func:`csresearch.survival.discrete._rcs_basis` (which fills a numpy array and is tested
    against this): column 0 is ``x``; for knot j = 1..K-2 Harrell's truncated-power term
    ``(x - k_j)_+^3 - (x - k_{K-1})_+^3 (k_K - k_j)/(k_K - k_{K-1}) + (x - k_K)_+^3 (k_{K-1} - k_j)/(k_K - k_{K-1})``
    divided by ``(k_K - k_1)^2``, with the operations in the same order.  Fewer than 3 knots: ``x`` alone.
    """
    import ibis

    cols = [x]
    K = len(knots)
    if K < 3:
        return cols
    kK, kK1 = float(knots[-1]), float(knots[-2])
    d = kK - kK1
    scale = (kK - float(knots[0])) ** 2

    def cube_plus(k):
        t = ibis.greatest(x - k, 0.0)
        return t * t * t

    tK, tK1 = cube_plus(kK), cube_plus(kK1)
    for j in range(K - 2):
        kj = float(knots[j])
        c = cube_plus(kj) - tK1 * ((kK - kj) / d) + tK * ((kK1 - kj) / d)
        cols.append(c * (1.0 / scale))
    return cols


def _cloglog_exprs(m, y) -> tuple:
    """Per-row log-likelihood, score u = dl/deta and weight w = -d2l/deta2 of the hazard ``m`` = exp(eta) and the
    event flag ``y`` (boolean), as :func:`csresearch.survival.discrete._cloglog_terms` computes them: on event
    rows log(1 - exp(-m)), q = m / expm1(m) (1 at m = 0) and q (m + q - 1); elsewhere -m, -m and m.

    Every branch is safe to evaluate on every row (Spark's ANSI mode raises on a division by zero; a logarithm of
    zero is -inf on DuckDB but NULL on Spark), so m = 0 on an event row gives -inf explicitly, as numpy does."""
    import ibis

    small = m < _SERIES_BELOW
    # expm1(m) / m and log((1 - exp(-m)) / m) to O(m^7) and O(m^8)
    expm1_over_m = 1.0 + m * (1.0 / 2 + m * (1.0 / 6 + m * (1.0 / 24 + m * (1.0 / 120 + m * (1.0 / 720
                                                                                            + m / 5040.0)))))
    m2 = m * m
    log_ratio = m * -0.5 + m2 * (1.0 / 24 + m2 * (-1.0 / 2880 + m2 / 181440.0))
    q = ibis.ifelse(small, 1.0 / expm1_over_m, m / ibis.greatest(m.exp() - 1.0, _TINY))
    ll_event = ibis.cases(
        (m == 0.0, ibis.literal(_NEG_INF, type="float64")),
        (small, ibis.greatest(m, 5e-324).ln() + log_ratio),
        else_=ibis.greatest(1.0 - (-m).exp(), _TINY).ln(),
    )
    ll = ibis.ifelse(y, ll_event, -m)
    u = ibis.ifelse(y, q, -m)
    w = ibis.ifelse(y, q * (m + q - 1.0), m)
    return ll, u, w


def _weighted(values, weight=None):
    """``weight * values``; ``None`` stands for the constant 1 (the intercept, or no weight)."""
    if weight is None:
        return values
    return weight if values is None else weight * values


def _cross_sums(cols: Sequence, weight, prefix: str) -> dict:
    """Aggregates ``{prefix}{j}_{l}`` = sum(weight * cols[j] * cols[l]) for j <= l (``None``: the constant 1).
    Unweighted, the product of two constants is the row count, which the caller has: that sum is left out."""
    out = {}
    for j, cj in enumerate(cols):
        wj = _weighted(cj, weight)
        for l in range(j, len(cols)):
            term = _weighted(cols[l], wj)
            if term is not None:
                out[f"{prefix}{j}_{l}"] = term.sum()
    return out


def _symmetric(row: dict, k: int, prefix: str) -> np.ndarray:
    """The k x k symmetric matrix of the ``_cross_sums`` results in ``row``."""
    out = np.empty((k, k))
    for j in range(k):
        for l in range(j, k):
            out[j, l] = out[l, j] = float(row[f"{prefix}{j}_{l}"])
    return out


def _one_row(run: Callable, expr) -> dict:
    """The single row of an aggregate as ``{name: value}``."""
    return run(expr).iloc[0].to_dict()


# -- checks --------------------------------------------------------------------------------------------------------
def _check_schema(table, event: str, time: str, covariates: list[str], other: list[str],
                  exposure: str | None) -> None:
    """Columns exist; event, time, covariates and exposure are numeric or boolean (the pandas fit's TypeErrors)."""
    import ibis.expr.types as ir

    if not isinstance(table, ir.Table):
        raise TypeError(f"{FUNC}: table must be an Ibis table, got {type(table).__name__}")
    if len(covariates) == 0:
        raise ValueError(f"{FUNC}: at least one covariate is required")
    dup = [c for c in dict.fromkeys(covariates) if covariates.count(c) > 1]
    if dup:
        raise ValueError(f"{FUNC}: duplicated covariate(s): {dup}")
    cols = [event, time, *covariates, *other]
    missing = [c for c in dict.fromkeys(cols) if c not in table.columns]
    if missing:
        raise KeyError(f"{FUNC}: column(s) not in table: {missing}")
    schema = table.schema()
    roles = [(event, "event"), (time, "time"), *((c, "covariate") for c in covariates)]
    roles += [(exposure, "exposure")] if exposure is not None else []
    for col, role in roles:
        dtype = schema[col]
        if not (dtype.is_numeric() or dtype.is_boolean()):
            raise TypeError(f"{FUNC}: {role} column {col!r} has non-numeric dtype {dtype}; "
                            "encode it (e.g. as 0/1 indicator columns) before calling")


def _describe(table, event: str, time: str, covariates: list[str], other: list[str], exposure: str | None,
              cluster: str | None, run: Callable) -> dict:
    """One aggregate: rows, missing and non-finite counts, the event and time checks, the covariates' range and
    mean, the exposure's non-positive count and mean log, the number of clusters."""
    import ibis

    schema = table.schema()

    def floating(c):
        return schema[c].is_floating()

    aggs: dict[str, Any] = {"n": table.count()}
    for i, c in enumerate(dict.fromkeys([event, time, *covariates, *other])):
        miss = table[c].isnull()
        if floating(c):
            miss = miss | table[c].isnan()
        aggs[f"miss{i}"] = miss.cast("int64").sum()
    for i, c in enumerate([event, time, *covariates, *_as_list(exposure)]):
        if floating(c):
            aggs[f"inf{i}"] = table[c].isinf().cast("int64").sum()
    ev = _f64(table[event])
    aggs["not01"] = (~ev.isin([0.0, 1.0])).cast("int64").sum()
    aggs["events"] = ev.sum()
    aggs["negtime"] = (_f64(table[time]) < 0).cast("int64").sum()
    for j, c in enumerate(covariates):
        x = _f64(table[c])
        aggs[f"min{j}"], aggs[f"max{j}"], aggs[f"mean{j}"] = x.min(), x.max(), x.mean()
    if exposure is not None:
        e = _f64(table[exposure])
        aggs["nonpos"] = (e <= 0).cast("int64").sum()
        aggs["meanlog"] = ibis.greatest(e, _TINY).ln().mean()
    if cluster is not None:
        aggs["clusters"] = table[cluster].nunique()
    return _one_row(run, table.aggregate(**aggs))


def _check_described(s: dict, event: str, time: str, covariates: list[str], other: list[str],
                     exposure: str | None) -> None:
    """Raise what ``survival.fit_discrete`` raises on the same rows (same order of checks, same error types)."""
    n = int(s["n"])
    if n == 0:
        raise ValueError(f"{FUNC}: table has no rows")
    for i, c in enumerate(dict.fromkeys([event, time, *covariates, *other])):
        k = int(s[f"miss{i}"] or 0)
        if k:
            raise ValueError(
                f"{FUNC}: column {c!r} has {k} missing value(s) (NaN/None) out of {n} rows; "
                "rows are never dropped silently -- drop or impute them explicitly first")

    def infinite(i, c, role):
        bad = int(s.get(f"inf{i}") or 0)
        if bad:
            raise ValueError(f"{FUNC}: {role} column {c!r} has {bad} non-finite value(s) (inf)")

    infinite(0, event, "event")
    if int(s["not01"]):
        raise ValueError(f"{FUNC}: event column {event!r} must be 0/1 (or bool); {int(s['not01'])} row(s) have "
                         "other values")
    infinite(1, time, "time")
    if int(s["negtime"]):
        raise ValueError(f"{FUNC}: time column {time!r} has {int(s['negtime'])} negative value(s)")
    for j, c in enumerate(covariates):
        infinite(2 + j, c, "covariate")
    const = [c for j, c in enumerate(covariates) if float(s[f"min{j}"]) == float(s[f"max{j}"])]
    if const:
        raise ValueError(f"{FUNC}: covariate(s) with zero variance (constant column): {const}")
    n_events = int(round(float(s["events"])))
    if n_events == 0:
        raise ValueError(f"{FUNC}: no events (column {event!r} is all 0); the model is not identified")
    if n_events == n:
        raise ValueError(f"{FUNC}: every row is an event (column {event!r} is all 1); the model is not identified")
    if exposure is not None:
        infinite(2 + len(covariates), exposure, "exposure")
        bad = int(s["nonpos"])
        if bad:
            raise ValueError(
                f"{FUNC}: exposure column {exposure!r} has {bad} non-positive value(s) (zero or negative) out of "
                f"{n} rows; an exposure is the length of the row's interval at risk and must be > 0")


def _check_clusters(s: dict, cluster: str | None) -> int | None:
    """The number of clusters (None without ``cluster``); robust SEs need two at least."""
    if cluster is None:
        return None
    if int(s["clusters"]) < 2:
        raise ValueError(f"{FUNC}: cluster column {cluster!r} has a single value; robust SEs need >= 2 clusters")
    return int(s["clusters"])


def _strata_levels(table, strata_cols: list[str], event: str, run: Callable) -> pd.DataFrame:
    """The strata (combinations of ``strata_cols``) in sorted order, as the pandas fit codes them, with their
    ``label``; every stratum needs events and non-events (else its intercept is infinite)."""
    ev = _f64(table[event])
    levels = run(table.group_by(strata_cols).aggregate(_rows=table.count(), _events=ev.sum()))
    levels = levels.sort_values(strata_cols, kind="stable").reset_index(drop=True)
    levels["label"] = [", ".join(str(v) for v in row) for row in levels[strata_cols].itertuples(index=False)]
    bad = [lab for lab, e, r in zip(levels["label"], levels["_events"], levels["_rows"]) if e == 0 or e == r]
    if bad:
        raise ValueError(
            f"{FUNC}: stratum/strata {bad} of {strata_cols} have no events (or only events); their "
            "intercept is infinite -- drop those rows or merge strata")
    return levels


def _stratum_indicator(table, strata_cols: list[str], values: Sequence):
    """1.0 on the rows of the stratum ``values`` (one value per column of ``strata_cols``), else 0.0."""
    import ibis

    conds = [table[c] == (v.item() if isinstance(v, np.generic) else v) for c, v in zip(strata_cols, values)]
    return ibis.ifelse(ibis.and_(*conds), 1.0, 0.0)


def _gram_root(G: np.ndarray) -> np.ndarray:
    """A matrix A with A'A = G (the symmetric square root; negative rounding eigenvalues clipped at 0): its QR
    has the design's R factor, so ``_check_rank(A)`` applies the QR criterion to the Gram matrix."""
    d = np.sqrt(np.diag(G))
    d[d == 0] = 1.0
    C = G / np.outer(d, d)
    lam, V = np.linalg.eigh(C)
    return (V * np.sqrt(np.clip(lam, 0.0, None))) @ V.T * d


# -- the fit -------------------------------------------------------------------------------------------------------
def fit_discrete(
    table,
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
    exposure: str | None = None,
    con=None,
) -> Fit:
    """Discrete-time proportional hazards on a person-period panel in an engine (an Ibis table).

    The model, parameters and result are those of :func:`csresearch.survival.fit_discrete` (see there), fitted
    by aggregate queries on the engine instead of on collected rows: ``table`` is an Ibis table on DuckDB or Spark
    (a database table, a view, or ``ibis.memtable``), ``con`` the backend to run it on (needed for a memtable;
    else the table's own backend).  Nothing of the panel is collected but ``time`` of its event rows (for the
    spline knots); memory on this side is O(events + k^2).  There is no ``engine`` parameter: the engine is where
    the table is, named in ``info["engine"]``.

    Returns the same :class:`~csresearch.survival.Fit` as ``survival.fit_discrete(table.execute(), ...)``:
    coefficients, standard errors, covariances and log-likelihoods agree to ~1e-12 relative (measured).  Raises what it
    raises (KeyError, TypeError, ValueError with the same messages), except that a rank-deficient design is
    judged from the Gram matrix with tolerance :data:`GRAM_RANK_TOL` (see the module docstring).
    """
    import ibis

    covariates = _as_list(covariates)
    strata_cols = _as_list(strata)
    baseline_df = _baseline_df(baseline_df, FUNC)
    z = _z(alpha)
    other = strata_cols + _as_list(cluster) + _as_list(exposure)
    _check_schema(table, event, time, covariates, other, exposure)
    con = con if con is not None else ibis.get_backend(table)
    run = con.execute

    s = _describe(table, event, time, covariates, other, exposure, cluster, run)
    _check_described(s, event, time, covariates, other, exposure)
    n, n_events = int(s["n"]), int(round(float(s["events"])))
    levels = _strata_levels(table, strata_cols, event, run) if strata_cols else None
    n_clusters = _check_clusters(s, cluster)
    labels = [] if levels is None else list(levels["label"])

    # the spline knots from the event rows' log1p(time), exactly as the pandas fit places them
    ev_flag = _f64(table[event]) == 1.0
    t_ev = run(table.filter(ev_flag).select(_t=_f64(table[time])))["_t"].to_numpy(dtype=float)
    knots, spline_df = _rcs_knots(np.log1p(t_ev), baseline_df, FUNC)

    # the design: intercept (None), spline of log1p(time), stratum dummies, centred covariates; y, offset, cluster
    x = (_f64(table[time]) + 1.0).ln()
    terms = rcs_basis_exprs(x, knots) if spline_df else []
    if levels is not None:
        terms += [_stratum_indicator(table, strata_cols, row)
                  for row in levels[strata_cols].iloc[1:].itertuples(index=False)]
    nb = 1 + len(terms)
    terms += [_f64(table[c]) - float(s[f"mean{j}"]) for j, c in enumerate(covariates)]
    k = len(terms) + 1
    cols: dict[str, Any] = {f"_d{j}": e for j, e in enumerate(terms, start=1)}
    cols["_y"] = ev_flag
    if exposure is not None:
        cols["_off"] = _f64(table[exposure]).ln()
    if cluster is not None:
        cols["_c"] = table[cluster]
    dtab = table.select(**cols)
    design = [None] + [dtab[f"_d{j}"] for j in range(1, k)]
    base_names = _baseline_names(time, spline_df, labels)

    G = _symmetric({"g0_0": n, **_one_row(run, dtab.aggregate(**_cross_sums(design, None, "g")))}, k, "g")
    _discrete_rank_check(_gram_root(G), base_names, covariates, time, FUNC, tol=GRAM_RANK_TOL)
    sd = np.sqrt(np.diag(G)[nb:] / n)  # the covariates are centred

    def hazard_rows(beta: np.ndarray):
        """``dtab`` with the per-row log-likelihood, score and weight at ``beta`` (the first len(beta) terms)."""
        eta = _f64(float(beta[0]))
        for j in range(1, len(beta)):
            eta = eta + design[j] * float(beta[j])
        if exposure is not None:
            eta = eta + dtab["_off"]
        t = dtab.mutate(_m=eta.exp())
        ll, u, w = _cloglog_exprs(t["_m"], t["_y"])
        t = t.mutate(_ll=ll, _u=u, _w=w)
        return t, [None] + [t[f"_d{j}"] for j in range(1, len(beta))]

    def evaluate(beta: np.ndarray) -> dict:
        """Log-likelihood, gradient and observed information at ``beta``: one aggregate query."""
        t, d = hazard_rows(beta)
        kb = len(beta)
        aggs = {"ll": t["_ll"].sum()}
        aggs.update({f"u{j}": _weighted(d[j], t["_u"]).sum() for j in range(kb)})
        aggs.update(_cross_sums(d, t["_w"], "h"))
        row = _one_row(run, t.aggregate(**aggs))
        return {"loglik": float(row["ll"]), "grad": np.array([float(row[f"u{j}"]) for j in range(kb)]),
                "info": _symmetric(row, kb, "h")}

    def meat(beta: np.ndarray) -> np.ndarray:
        """Sum over clusters of the outer products of their score sums: one query (group-by, then k(k+1)/2 sums)."""
        t, d = hazard_rows(beta)
        scores = t.group_by("_c").aggregate(**{f"s{j}": _weighted(d[j], t["_u"]).sum() for j in range(k)})
        return _symmetric(_one_row(run, scores.aggregate(**_cross_sums(
            [scores[f"s{j}"] for j in range(k)], None, "m"))), k, "m")

    b0 = _discrete_start(nb, n, n_events, None if exposure is None else float(s["meanlog"]))
    corr = _cluster_correction(n_clusters, n, k)
    est = _discrete_estimates(evaluate, evaluate, meat, b0, k - nb, tol, max_iter, corr, FUNC)
    fit = _discrete_fit(f"ibis {con.name} Newton (cloglog)", est, nb=nb, k=k, covariates=covariates, z=z, n=n,
                        n_events=n_events, n_clusters=n_clusters, cluster=cluster, alpha=alpha,
                        strata_cols=strata_cols, time=time, spline_df=spline_df, knots=knots, base_names=base_names,
                        corr=corr, exposure=exposure)
    _warn_if_infinite(FUNC, fit.info["converged"], max_iter, covariates, fit.params.to_numpy(), sd,
                      fit.info["vcov_naive"].to_numpy(), "separation")
    return fit
