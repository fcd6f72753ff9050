"""The linear-time rankings of the survival core on large inputs: ``_dense_rank`` (hashing, then sorting only the
distinct values) is ``np.unique``'s answer, and the C-index's radix order of panel times (taken above 65,536 rows
with few distinct times) counts the same pairs as the comparison sort it replaces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from csresearch.survival import cindex, concordance, fit_cox
from csresearch.survival._checks import _dense_rank


@pytest.mark.parametrize("values", [
    np.array([3.0, -0.0, 0.0, 2.5, 3.0, -1.0, 0.0]),
    np.random.default_rng(1).integers(0, 40, 5000).astype(float) * 30.5,
    np.random.default_rng(2).integers(-5, 5, 1000),
    np.random.default_rng(3).normal(size=2000),
    np.array([2.0, np.nan, 1.0, np.nan, 2.0]),
])
def test_dense_rank_is_np_unique(values):
    uniq, rank = _dense_rank(values)
    want_u, want_r = np.unique(values, return_inverse=True)
    np.testing.assert_array_equal(uniq, want_u)
    np.testing.assert_array_equal(rank, want_r)


def test_descending_orders_many_rows_with_few_distinct_times():
    t = np.random.default_rng(4).integers(0, 3000, 200_000).astype(float)
    order = cindex._descending(t)
    assert sorted(order.tolist()) == list(range(len(t)))  # a permutation
    assert np.all(np.diff(t[order]) <= 0)
    distinct = np.random.default_rng(5).normal(size=100_000)  # the comparison sort's case
    assert np.all(np.diff(distinct[cindex._descending(distinct)]) <= 0)


def _panel(n_accounts: int, seed: int) -> pd.DataFrame:
    """Account-months in days of tenure (few distinct times in many rows), a churn on some last rows."""
    rng = np.random.default_rng(seed)
    months = rng.integers(1, 40, n_accounts)
    acc = np.repeat(np.arange(n_accounts), months)
    k = np.concatenate([np.arange(m) for m in months])
    start = k * 30.0 + np.where(k > 0, rng.integers(0, 3, len(k)), 0)
    stop = start + 30.0
    last = np.r_[acc[1:] != acc[:-1], True]
    event = (last & (rng.random(len(k)) < 0.3)).astype(int)
    score = np.round(rng.normal(size=len(k)) + 0.4 * event, 2)  # tied scores too
    return pd.DataFrame({"account": acc, "start": start, "stop": stop, "event": event, "score": score,
                         "segment": acc % 3})


def test_radix_order_counts_the_same_pairs(monkeypatch):
    df = _panel(9000, 6)
    assert len(df) > 65_536 and df["stop"].nunique() * 4 < len(df)
    taken = []
    radix = cindex._descending
    monkeypatch.setattr(cindex, "_descending", lambda t: taken.append(len(t)) or radix(t))
    fast = [concordance(df, "stop", "event", "score", entry="start"),
            concordance(df, "stop", "event", "score", entry="start", strata="segment")]
    assert max(taken) > 65_536  # the radix path was taken
    monkeypatch.setattr(cindex, "_descending", lambda t: np.argsort(-t))
    slow = [concordance(df, "stop", "event", "score", entry="start"),
            concordance(df, "stop", "event", "score", entry="start", strata="segment")]
    assert fast == slow
    assert fast[0]["n_pairs"] > 0 and 0.5 < fast[0]["c_index"] < 1


def test_cox_times_ranked_by_hashing_fit_as_sorted(monkeypatch):
    df = _panel(3000, 7)
    df["x"] = df["score"] + np.random.default_rng(8).normal(size=len(df))
    fast = fit_cox(df, "stop", "event", ["score", "x"], entry="start")
    from csresearch.survival import cox
    monkeypatch.setattr(cox, "_dense_rank", lambda v: np.unique(v, return_inverse=True))
    slow = fit_cox(df, "stop", "event", ["score", "x"], entry="start")
    pd.testing.assert_frame_equal(fast.summary, slow.summary)
    assert fast.loglik == slow.loglik
