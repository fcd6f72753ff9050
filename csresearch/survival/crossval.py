"""Folds for cross-validation that keep every row of a group (an account) together (``grouped_folds``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def grouped_folds(groups: Sequence | np.ndarray | pd.Series, k: int, seed: int,
                  balance: Sequence | np.ndarray | pd.Series | None = None) -> np.ndarray:
    """A fold number 0..k-1 for every row, the same for all rows of a group.

    Groups are shuffled with ``numpy.random.default_rng(seed)`` and dealt to the folds in turn, so the folds
    differ in size by at most one group. ``balance`` (one value per row, constant within a group, e.g. whether
    the account ever churned) deals each of its values separately, so every fold gets its share of each (a
    stratified split: the churners are spread evenly over the folds).
    """
    if k < 2:
        raise ValueError(f"grouped_folds: k must be at least 2, not {k}")
    codes, uniq = pd.factorize(pd.Series(np.asarray(groups)))
    if len(uniq) < k:
        raise ValueError(f"grouped_folds: {len(uniq)} groups cannot fill {k} folds")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    if balance is not None:
        level = np.zeros(len(uniq), dtype=np.int64)
        level[codes] = pd.factorize(pd.Series(np.asarray(balance)), sort=True)[0]
        order = order[np.argsort(level[order], kind="stable")]
    fold = np.empty(len(uniq), dtype=np.int64)
    fold[order] = np.arange(len(uniq)) % k
    return fold[codes]
