"""What usage and account data a churn model may use, without goals: usage metrics and account attributes.

* **usage**: dated exports, ``log1p`` of last month's usage on the account-month panel, as known at the month's
  start (:func:`csresearch.models.usage_features`); label exports, ``log1p`` of each account's mean monthly usage,
  from the months before the label horizon when the export has them, else over the horizon;
* **attributes**: the accounts columns beyond the contract's keys and dates, numeric ones as they are (``log1p``
  when non-negative and skewed, ARR say) and categorical ones one level against the most common. Columns that are
  labels or outcomes (a churn flag, a status, what the data layer lists as such) are never features.

Every feature is standardised (per SD) for numeric columns; indicator columns stay 0/1.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .data import Dataset

#: accounts columns that are never features: the contract's keys and dates
KEYS = {"account_id", "segment", "start_date", "end_date"}
#: names that say a column is a label or an outcome, not something known before churn
OUTCOME_NAME = re.compile(r"churn|status|cancel|renew|retain|outcome|label|lost|closed|end_?date|terminat", re.I)
#: attributes of the data layer that list label or outcome columns (read defensively: any of them, when present)
OUTCOME_ATTRS = ("label_columns", "outcome_columns", "exclude_columns", "excluded_columns", "not_features")
#: a categorical attribute with more levels than this is an identifier or free text, not a feature
MAX_LEVELS = 12


@dataclass
class Feature:
    """One model column: its ``column`` in the frame, the ``name`` it came from, the ``level`` (categorical),
    ``kind`` (usage or attribute), the transform and the SD it was scaled by."""

    column: str
    name: str
    kind: str
    level: str | None = None
    transform: str = ""
    sd: float | None = None


@dataclass
class Features:
    frame: pd.DataFrame
    features: list[Feature]
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [f.column for f in self.features]


def outcome_columns(ds: "Dataset") -> set[str]:
    """Accounts columns the data layer marks as labels or outcomes (whatever attribute it uses)."""
    out: set[str] = set()
    for attr in OUTCOME_ATTRS:
        value = getattr(ds, attr, None)
        if isinstance(value, str):
            out.add(value)
        elif isinstance(value, dict):
            out.update(map(str, value))
        elif value is not None:
            try:
                out.update(map(str, value))
            except TypeError:
                pass
    return out


def attributes(ds: "Dataset", min_cell: int) -> Features:
    """The account attributes, one row per account (indexed by account_id), and why any column was left out."""
    acc = ds.accounts.set_index("account_id")
    marked = outcome_columns(ds)
    usage_names = set(ds.usage["metric"].unique()) if ds.usage is not None else set()
    frame = pd.DataFrame(index=acc.index)
    feats: list[Feature] = []
    excluded: dict[str, str] = {}
    for name in acc.columns:
        if name in KEYS:
            continue
        col = acc[name]
        if name in marked or OUTCOME_NAME.search(str(name)):
            excluded[name] = "a label or outcome, not known before churn"
            continue
        if name in usage_names:
            excluded[name] = "also a usage metric: counted once, as usage"
            continue
        if pd.api.types.is_datetime64_any_dtype(col):
            excluded[name] = "a date"
            continue
        if col.isna().any():
            excluded[name] = f"{int(col.isna().sum()):,} accounts have no value"
            continue
        if pd.api.types.is_bool_dtype(col):
            col = col.astype(float)
        if pd.api.types.is_numeric_dtype(col):
            x = col.astype(float)
            transform = ""
            if x.min() >= 0 and x.skew() > 2:
                x, transform = np.log1p(x), "log1p"
            sd = float(x.std())
            if not sd > 0:
                excluded[name] = "the same for every account"
                continue
            column = f"attr_{name}"
            frame[column] = (x - x.mean()) / sd
            feats.append(Feature(column, str(name), "attribute", None, transform, sd))
            continue
        text = col.astype(str)
        counts = text.value_counts()
        if len(counts) < 2:
            excluded[name] = "the same for every account"
            continue
        if len(counts) > MAX_LEVELS:
            excluded[name] = f"{len(counts)} distinct values: an identifier or free text"
            continue
        reference = counts.index[0]
        for level, n in counts.iloc[1:].items():
            if n < min_cell:
                excluded[f"{name}={level}"] = f"fewer than {min_cell} accounts"
                continue
            column = f"attr_{name}={level}"
            frame[column] = (text == level).astype(float)
            feats.append(Feature(column, str(name), "attribute", f"{level} vs {reference}"))
    return Features(frame, feats, excluded)


def standardise(frame: pd.DataFrame, column: str) -> float | None:
    """Scale ``column`` of ``frame`` in place to mean 0 and SD 1; its SD (None when it does not vary)."""
    x = frame[column].to_numpy(float)
    sd = float(np.nanstd(x, ddof=1)) if np.isfinite(x).sum() > 1 else 0.0
    if not sd > 0:
        return None
    frame[column] = (x - np.nanmean(x)) / sd
    return sd


def label_usage(ds: "Dataset", metrics: Iterable[str], label_from: pd.Timestamp) -> tuple[pd.DataFrame, str]:
    """Each account's ``log1p`` mean monthly usage per metric (columns ``log_<metric>``, indexed by account_id) and
    where it was read: before the label horizon when the export has usage then, else over the horizon."""
    usage = ds.usage[ds.usage["metric"].isin(list(metrics))]
    before = usage[usage["date"] < label_from]
    if before["account_id"].nunique() >= 0.5 * len(ds.accounts):
        usage, where = before, "before the label horizon"
    else:
        usage, where = usage[usage["date"] <= ds.as_of], "over the label horizon"
    wide = usage.groupby(["account_id", "metric"])["value"].mean().unstack("metric")
    wide = np.log1p(wide.clip(lower=0))
    wide.columns = [f"log_{m}" for m in wide.columns]
    return wide, where
