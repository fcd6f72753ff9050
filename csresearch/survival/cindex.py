"""Harrell's concordance index (``concordance``), as R's ``concordance``, counted in O(n log n), and its cluster
bootstrap for several risk scores at once (``bootstrap_concordance``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._checks import _as_list, _check_missing, _codes, _dense_rank, _event_array, _numeric, _require_columns, _times


def _prefix_less_count(vals: np.ndarray, m: np.ndarray, q: np.ndarray) -> np.ndarray:
    """For each query i: #{j < m[i] : vals[j] < q[i]} (vals, q: ints >= 0).

    Wavelet-matrix rank queries: for each bit of the values (high to low) the
    points are stably partitioned by that bit and a prefix count of zero bits
    maps every query's interval to the next level.  O((n + queries) * bits),
    only cumsum / boolean partitions / gathers -- no Python loop over rows.
    """
    res = np.zeros(len(m), dtype=np.int64)
    if len(vals) == 0 or len(m) == 0:
        return res
    a = vals.astype(np.int64)
    q = q.astype(np.int64)
    lo = np.zeros(len(m), dtype=np.int64)
    hi = m.astype(np.int64)
    for level in reversed(range(max(int(a.max()), int(q.max())).bit_length())):
        zero = ((a >> level) & 1) == 0
        rank0 = np.concatenate([[0], np.cumsum(zero)])
        n_zero = rank0[-1]
        z_lo, z_hi = rank0[lo], rank0[hi]
        qbit = ((q >> level) & 1) == 1
        # values with a 0 here (and the query's higher bits) are < q
        res += np.where(qbit, z_hi - z_lo, 0)
        lo = np.where(qbit, n_zero + lo - z_lo, z_lo)
        hi = np.where(qbit, n_zero + hi - z_hi, z_hi)
        a = np.concatenate([a[zero], a[~zero]])
    return res


def _descending(t: np.ndarray) -> np.ndarray:
    """An order of ``t`` from the largest value down, equal values in any order. Times with few distinct values
    (the months of a panel: a few hundred in millions of rows) are ranked by hashing and put in order by a radix
    sort, in linear time; others by a comparison sort. (A strided sample of 4,096 values tells the two apart.)"""
    probe = t[:: max(1, len(t) // 4096)]
    if len(t) > 65_536 and len(np.unique(probe)) * 4 < len(probe):
        uniq, rank = _dense_rank(t)
        if len(uniq) <= 65_536:  # 16-bit keys: numpy's stable sort of them is a radix sort
            return np.argsort((len(uniq) - 1 - rank).astype(np.uint16), kind="stable")
    return np.argsort(-t)


def _count_at_or_after(point_t: np.ndarray, point_v: np.ndarray, qt: np.ndarray,
                       qv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """#{j : point_t[j] >= qt[i] and point_v[j] < qv[i]} for each query i, and #{j : point_t[j] >= qt[i]}."""
    order = _descending(point_t)  # the points with t >= qt are a prefix whatever the order among equal times
    t_desc = point_t[order]
    # number of points with t >= qt: searchsorted on the ascending copy
    t_asc = t_desc[::-1]
    m = len(point_t) - np.searchsorted(t_asc, qt, side="left")
    return _prefix_less_count(point_v[order], m, qv), m


def concordance(
    df: pd.DataFrame,
    duration: str,
    event: str,
    score: str | Sequence[float] | np.ndarray | pd.Series,
    entry: str | None = None,
    strata: str | Sequence[str] | None = None,
) -> dict[str, float]:
    """Harrell's concordance index, higher score = higher risk, as R's ``concordance``.

    Parameters
    ----------
    df : DataFrame
    duration, event : str
        Time and 0/1 event columns.
    score : str or array-like
        Risk score column (or a vector of length ``len(df)``).  **Higher score
        means higher risk / shorter survival**: a Cox linear predictor or a
        predicted churn probability can be passed as is.
    entry : str, optional
        Start of ``(entry, duration]`` episodes: comparisons are made within
        risk sets (a row is comparable with a death at t iff entry < t <=
        duration), as R's ``concordance(Surv(entry, duration, event) ~ x)``.
    strata : str or list of str, optional
        Compare rows only within strata, as R's ``concordance(... ~ x + strata(s))``:
        the pair counts are summed over strata before C is formed.

    Returns
    -------
    dict
        ``c_index``; ``concordant``, ``discordant``, ``tied_score`` (R's
        tied.x), ``tied_time`` (tied.y: both died at the same time, scores
        differ), ``tied_both`` (tied.xy); ``n_pairs`` = concordant +
        discordant + tied_score (the comparable pairs).

    Method
    ------
    For every death at time t, each row at risk at t that does not die at t
    forms a comparable pair (a row censored at t counts as surviving longer);
    the pair is concordant if the death has the higher score.  C =
    (concordant + tied_score / 2) / n_pairs.  Pairs of deaths at the same time
    are excluded.  This is R's ``concordance(Surv(time, status) ~ score,
    reverse=TRUE)`` with the default ``timewt="n"`` (the weight is 1 for every
    pair, so it is plain Harrell's C).  Counting uses sorting and an offline
    wavelet matrix (O(n log n), vectorised numpy; 10^6 rows take 1-2 s).

    lifelines' ``concordance_index(T, -score, E)`` uses the same comparable
    pairs and tie rules for right-censored data (tested to be identical,
    including censored-at-a-death-time and tied deaths); note it expects
    higher = longer survival, hence the minus sign.  It supports no entry
    times, and it returns an undefined C (ZeroDivisionError) when no pair is
    comparable, where we return NaN.
    """
    if strata is not None:
        return _concordance_by_strata(df, duration, event, score, entry, strata)
    func = "concordance"
    cols = [duration, event] + _as_list(entry) + ([score] if isinstance(score, str) else [])
    _require_columns(df, cols, func)
    _check_missing(df, cols, func)
    t, e = _times(df, duration, entry, func)
    d = _event_array(df, event, func)
    if isinstance(score, str):
        s = _numeric(df, score, func, "score")
    else:
        s = np.asarray(score, dtype=float).ravel()
        if len(s) != len(df):
            raise ValueError(f"{func}: score has length {len(s)}, DataFrame has {len(df)} rows")
        bad = int((~np.isfinite(s)).sum())
        if bad:
            raise ValueError(f"{func}: score has {bad} missing or non-finite value(s)")
    return _pair_counts(t, e, d, s)


def _concordance_by_strata(df, duration, event, score, entry, strata) -> dict[str, float]:
    """``concordance(strata=...)``: the pair counts of every stratum summed, then C."""
    func = "concordance"
    _require_columns(df, _as_list(strata), func)
    _check_missing(df, _as_list(strata), func)
    values = df[score].to_numpy() if isinstance(score, str) else np.asarray(score, dtype=float)
    if len(values) != len(df):
        raise ValueError(f"{func}: score has {len(values)} values for {len(df)} rows")
    codes, n_strata = _codes(df, _as_list(strata))
    keys = ("concordant", "discordant", "tied_score", "tied_time", "tied_both", "n_pairs")
    total = dict.fromkeys(keys, 0)
    used = df[[duration, event, *_as_list(entry)]]  # per stratum, copy only the columns used
    for k in range(n_strata):
        idx = np.flatnonzero(codes == k)
        part = concordance(used.iloc[idx], duration, event, values[idx], entry=entry)
        for key in keys:
            total[key] += part[key]
    pairs = total["n_pairs"]
    c_index = (total["concordant"] + total["tied_score"] / 2) / pairs if pairs else float("nan")
    return {"c_index": float(c_index), **total}


def _pair_counts(t: np.ndarray, e: np.ndarray | None, d: np.ndarray, s: np.ndarray) -> dict[str, float]:
    """C and the pair counts of ``concordance`` for stop times ``t``, entries ``e``, events ``d``, scores ``s``."""
    _, sr = np.unique(s, return_inverse=True)  # dense score ranks (mostly distinct: sorting beats hashing)
    sr = sr.astype(np.int64)
    di = np.flatnonzero(d)
    td, sd = t[di], sr[di]
    nd = len(di)
    qt, qv = np.concatenate([td, td]), np.concatenate([sd, sd + 1])
    # the counts below compare scores only with these thresholds, so a score counts by how many thresholds it is
    # at or above (sr < qv exactly when vc < qc): values up to twice the deaths, not the rows, and fewer bit
    # levels to walk in _prefix_less_count
    at_or_below = np.zeros(int(sr.max()) + 2, dtype=np.int64)
    at_or_below[qv] = 1
    np.cumsum(at_or_below, out=at_or_below)  # at_or_below[v]: the thresholds <= v (scores are ranks 0..max)
    vc, qc = at_or_below[sr], at_or_below[qv]
    # at-risk rows with score < s_i (first half) and <= s_i (second half)
    # among rows with stop >= t_i ...
    cnt, at_risk = _count_at_or_after(t, vc, qt, qc)
    size = at_risk[:nd]  # rows with stop >= t_i (qt is td twice)
    if e is not None:
        # ... minus rows that have not entered yet (entry >= t_i)
        cnt_e, entered_late = _count_at_or_after(e, vc, qt, qc)
        cnt -= cnt_e
        size = size - entered_late[:nd]
    less, leq = cnt[:nd], cnt[nd:]
    # deaths tied in time with death i (including i itself), by score
    _, tr = _dense_rank(td)
    U = np.int64(sr.max() + 2)
    keys = np.sort(tr.astype(np.int64) * U + sd)
    base = tr.astype(np.int64) * U
    d_lo = np.searchsorted(keys, base, "left")
    d_less = np.searchsorted(keys, base + sd, "left") - d_lo
    d_leq = np.searchsorted(keys, base + sd + 1, "left") - d_lo
    d_size = np.searchsorted(keys, base + U, "left") - d_lo

    conc = int((less - d_less).sum())
    tied_x = int(((leq - less) - (d_leq - d_less)).sum())
    disc = int(((size - leq) - (d_size - d_leq)).sum())
    tied_xy = int((d_leq - d_less - 1).sum()) // 2
    tied_y = int((d_size - d_leq + d_less).sum()) // 2
    n_pairs = conc + disc + tied_x
    c = (conc + 0.5 * tied_x) / n_pairs if n_pairs > 0 else math.nan
    return {
        "c_index": float(c),
        "n_pairs": n_pairs,
        "concordant": conc,
        "discordant": disc,
        "tied_score": tied_x,
        "tied_time": tied_y,
        "tied_both": tied_xy,
    }


#: the largest comparable-pair table :func:`bootstrap_concordance` builds: cells (churn rows x clusters of their
#: stratum) times (scores + 1), float32 (4 bytes each); above it the bootstrap runs on a subsample of clusters
BOOT_MAX_CELLS = 40_000_000
#: resamples drawn per matrix product (bounds the memory of the weight matrix)
_BOOT_BATCH = 200


def bootstrap_concordance(
    df: pd.DataFrame,
    duration: str,
    event: str,
    scores: pd.DataFrame | dict,
    cluster: str,
    entry: str | None = None,
    strata: str | Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    max_cells: int = BOOT_MAX_CELLS,
) -> tuple[pd.Series, pd.DataFrame]:
    """Harrell's C of several risk scores on the same rows, and their joint cluster bootstrap.

    Parameters
    ----------
    df, duration, event, entry, strata
        As :func:`concordance` (``(entry, duration]`` rows, pairs within strata).
    scores : DataFrame or dict
        One risk score per column (or per key), aligned with the rows of ``df``; higher = higher risk.
    cluster : str
        The resampled unit (an account): every row of a cluster is drawn together.  The rows of one cluster
        must not overlap in time (at most one row of a cluster is at risk at any time), as in a monthly panel.
    n_boot, seed : int
        Resamples (0: none) and the seed of their generator.
    max_cells : int
        Largest pair table to build (see Method); above it the resamples are drawn from a seeded subsample of
        clusters and rescaled (``draws.attrs["subsample"]`` says how many clusters).

    Returns
    -------
    (Series, DataFrame)
        ``point``: C of each score (exactly :func:`concordance` of it), indexed by score name; ``draws``:
        ``n_boot`` rows, one column per score, C on each resample of clusters (paired across scores, so a
        difference of two columns is the bootstrap of a difference in C).  ``draws.attrs`` holds ``n_boot``,
        ``seed``, ``n_clusters`` and ``subsample`` (None, or the clusters the resamples were drawn from).

    Method
    ------
    A comparable pair is (a churn row at time t, a row of another cluster at risk at t in the same stratum and
    not churning at t), as :func:`concordance`.  Its credit (1 when the churn row has the higher score, 1/2 for a
    tie) is summed once into a churn-row x cluster table per stratum.  A resample of clusters (drawn with
    replacement, all of the study's clusters) only re-weights that table: a churn row by its cluster's
    multiplicity, a partner by its own, so C on the resample is exactly ``sum(w_e * (credit @ w)) / sum(w_e *
    (pairs @ w))`` -- two matrix products per batch of resamples instead of a recount (the idea of the maturity
    ladder's bootstrap, vectorised).  The scores are held fixed: the bootstrap measures how precisely these
    scores rank these clusters, not the variation from fitting the model that produced them.  When the table
    would exceed ``max_cells``, it is built on ``m`` clusters drawn without replacement and every resample's
    deviation from that subsample's C is scaled by ``sqrt(m / n)`` (the m-out-of-n bootstrap of a root-n
    statistic) and added to the full-data C.
    """
    func = "bootstrap_concordance"
    names = list(scores.columns) if isinstance(scores, pd.DataFrame) else list(scores)
    if not names:
        raise ValueError(f"{func}: no scores given")
    S = np.column_stack([np.asarray(scores[k], dtype=float).ravel() for k in names])
    if len(S) != len(df):
        raise ValueError(f"{func}: scores have {len(S)} rows, DataFrame has {len(df)}")
    bad = int((~np.isfinite(S)).sum())
    if bad:
        raise ValueError(f"{func}: scores have {bad} missing or non-finite value(s)")
    cols = [duration, event, cluster] + _as_list(entry) + _as_list(strata)
    _require_columns(df, cols, func)
    _check_missing(df, cols, func)
    t, e = _times(df, duration, entry, func)
    d = _event_array(df, event, func).astype(bool)
    g, clusters = pd.factorize(df[cluster])
    stratum = _codes(df, _as_list(strata))[0] if strata is not None else np.zeros(len(df), dtype=np.int64)
    rows = _Rows(t, e, d, g.astype(np.int64), stratum, S, func)
    rng = np.random.default_rng(seed)
    n_clusters = len(clusters)
    cells = rows.cells() * (len(names) + 1)
    subsample = None
    if cells <= max_cells:  # the table at unit weights is C on the data itself
        point = pd.Series(rows.c_at_one(), index=names, dtype=float)
    else:
        point = pd.Series([concordance(df, duration, event, S[:, k], entry=entry, strata=strata)["c_index"]
                           for k in range(len(names))], index=names, dtype=float)
    if n_boot and cells > max_cells:
        m = max(2, int(n_clusters * math.sqrt(max_cells / cells)))
        keep = np.zeros(n_clusters, dtype=bool)
        keep[rng.choice(n_clusters, m, replace=False)] = True
        rows = rows.subset(keep[g])
        subsample = int(rows.n_clusters)
    draws = rows.draws(int(n_boot), rng) if n_boot else np.empty((0, len(names)))
    if subsample is not None:
        draws = point.to_numpy() + math.sqrt(subsample / n_clusters) * (draws - rows.c_at_one())
    out = pd.DataFrame(draws, columns=names)
    out.attrs.update({"n_boot": int(n_boot), "seed": int(seed), "n_clusters": int(n_clusters),
                      "subsample": subsample})
    return point, out


class _Rows:
    """The rows of :func:`bootstrap_concordance` and their pair tables, one per stratum: a float32 matrix of
    (scores + 1) stacked blocks of churn rows x the stratum's clusters -- the credit of every score, then the
    pair count (every entry is 0, 1/2 or 1, so float32 sums of them are exact)."""

    #: cells computed at a time while building a table (bounds the temporaries)
    CHUNK = 2_000_000

    def __init__(self, t, e, d, g, stratum, S, func):
        self.t, self.e, self.d, self.stratum, self.S = t, e, d, stratum, S
        uniq, self.g = np.unique(g, return_inverse=True)
        self.g = self.g.astype(np.int64)
        self.n_clusters = len(uniq)
        self.func = func
        self.order = np.lexsort((t, self.g))
        gs = self.g[self.order]
        same = gs[1:] == gs[:-1]
        if e is not None and (e[self.order][1:][same] < t[self.order][:-1][same]).any():
            raise ValueError(f"{func}: rows of one cluster overlap in time; each cluster may have one row at risk at "
                             "any time")
        self.times = np.unique(t)
        self.width = len(self.times) + 1
        self.key = gs * self.width + np.searchsorted(self.times, t[self.order])
        events = np.flatnonzero(d)
        self.blocks = [(events[stratum[events] == k], np.unique(self.g[stratum == k]))
                       for k in np.unique(stratum[events])]
        self._tables = None

    def subset(self, keep: np.ndarray) -> "_Rows":
        e = None if self.e is None else self.e[keep]
        return _Rows(self.t[keep], e, self.d[keep], self.g[keep], self.stratum[keep], self.S[keep], self.func)

    def cells(self) -> int:
        return int(sum(len(ev) * len(cl) for ev, cl in self.blocks))

    def tables(self) -> list:
        """Per stratum: (the churn rows' clusters, the partner clusters, the stacked table)."""
        if self._tables is None:
            self._tables = [(self.g[ev], cl, self._table(ev, cl)) for ev, cl in self.blocks]
        return self._tables

    def _table(self, ev: np.ndarray, cl: np.ndarray) -> np.ndarray:
        n_s = self.S.shape[1]
        out = np.zeros((n_s + 1, len(ev), len(cl)), dtype=np.float32)
        step = max(1, self.CHUNK // max(1, len(cl)))
        for lo in range(0, len(ev), step):
            rows = ev[lo:lo + step]
            t_ev = self.t[rows][:, None]
            q = cl[None, :] * self.width + np.searchsorted(self.times, self.t[rows])[:, None]
            pos = np.minimum(np.searchsorted(self.key, q), len(self.key) - 1)
            partner = self.order[pos]  # each cluster's first row with stop >= t
            pt = self.t[partner]
            pairs = (self.g[partner] == cl[None, :]) & (pt >= t_ev)
            pairs &= self.stratum[partner] == self.stratum[rows][:, None]
            if self.e is not None:
                pairs &= self.e[partner] < t_ev
            pairs &= ~(self.d[partner] & (pt == t_ev))  # churn rows tied in time (and the churn row itself)
            for j in range(n_s):
                diff = self.S[rows, j][:, None] - self.S[partner, j]
                out[j, lo:lo + step] = np.where(pairs, (diff > 0) + 0.5 * (diff == 0), 0.0)
            out[n_s, lo:lo + step] = pairs
        return out.reshape((n_s + 1) * len(ev), len(cl))

    def c_index(self, weights: np.ndarray) -> np.ndarray:
        """C of every score under cluster weights (clusters x resamples): resamples x scores."""
        n_s = self.S.shape[1]
        sums = np.zeros((n_s + 1, weights.shape[1]))
        for ev_g, cl, table in self.tables():
            prod = (table @ weights[cl].astype(np.float32)).reshape(n_s + 1, len(ev_g), weights.shape[1])
            sums += np.einsum("kab,ab->kb", prod, weights[ev_g], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sums[:n_s] / sums[n_s]).T

    def c_at_one(self) -> np.ndarray:
        return self.c_index(np.ones((self.n_clusters, 1)))[0]

    def draws(self, n_boot: int, rng: np.random.Generator) -> np.ndarray:
        out = []
        for start in range(0, n_boot, _BOOT_BATCH):
            b = min(_BOOT_BATCH, n_boot - start)
            idx = rng.integers(0, self.n_clusters, (b, self.n_clusters))
            w = np.bincount((np.arange(b)[:, None] * self.n_clusters + idx).ravel(),
                            minlength=b * self.n_clusters).reshape(b, self.n_clusters)
            out.append(self.c_index(w.T.astype(np.float64)))
        return np.vstack(out)
