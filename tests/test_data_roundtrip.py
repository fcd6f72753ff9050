"""Property: any valid frames, written to CSV or to Parquet by pandas, load back unchanged."""
from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csresearch.data import load

# ids and names: any unicode text that is not blank, including separators, quotes and line breaks
_chars = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from([",", '"', "\n", " ", "é", "ß", "名"])
text = st.text(_chars, min_size=1, max_size=8).filter(lambda s: s.strip() != "")
day = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2030, 12, 31))
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
non_negative = st.floats(min_value=0, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0, exclude_min=True, allow_nan=False, allow_infinity=False)


def ts(d: dt.date | None):
    return pd.NaT if d is None else pd.Timestamp(d)


@st.composite
def datasets(draw) -> dict[str, pd.DataFrame]:
    ids = draw(st.lists(text, min_size=1, max_size=6, unique=True))
    segments = draw(st.lists(text, min_size=1, max_size=3, unique=True))
    accounts, goals, usage = [], [], []
    for account_id in ids:
        start = draw(day)
        end = draw(st.none() | st.integers(0, 2000).map(lambda n: start + dt.timedelta(days=n)))
        arr = draw(st.none() | non_negative)
        accounts.append({"account_id": account_id, "segment": draw(st.sampled_from(segments)),
                         "start_date": ts(start), "end_date": ts(end),
                         "arr": np.nan if arr is None else arr})
        month = pd.Timestamp(start).to_period("M").start_time
        for k in draw(st.lists(st.integers(0, 24), max_size=3, unique=True)):
            usage.append({"account_id": account_id, "date": month + pd.DateOffset(months=k),
                          "metric": draw(text), "value": draw(non_negative)})
        for _ in range(draw(st.integers(0, 2))):
            baseline = draw(finite)
            target = draw(finite.filter(lambda t, b=baseline: t != b))
            set_date = start + dt.timedelta(days=draw(st.integers(0, 400)))
            due = draw(st.none() | st.integers(0, 400).map(lambda n, s=set_date: s + dt.timedelta(days=n)))
            weight = draw(st.none() | positive)
            goals.append({"goal_id": None, "account_id": account_id, "metric": draw(text),
                          "baseline": baseline, "target": target, "set_date": ts(set_date),
                          "due_date": ts(due), "weight": np.nan if weight is None else weight})
    goal_ids = draw(st.lists(text, min_size=len(goals), max_size=len(goals), unique=True))
    for goal, goal_id in zip(goals, goal_ids):
        goal["goal_id"] = goal_id
    frames = {"accounts": pd.DataFrame(accounts)}
    frames["accounts"]["account_id"] = frames["accounts"]["account_id"].astype(object)
    if goals:
        frames["goals"] = pd.DataFrame(goals)
        progress = [{"goal_id": g["goal_id"], "date": g["set_date"] + pd.Timedelta(days=d), "value": draw(finite)}
                    for g in goals for d in draw(st.lists(st.integers(0, 300), max_size=2))]
        frames["goal_progress"] = pd.DataFrame(progress, columns=["goal_id", "date", "value"])
    if usage:
        frames["usage"] = pd.DataFrame(usage).drop_duplicates(["account_id", "metric", "date"], ignore_index=True)
    for frame in frames.values():
        for c in frame.columns:
            if c.endswith("date"):
                frame[c] = frame[c].astype("datetime64[ns]")
            elif c in ("arr", "baseline", "target", "weight", "value"):
                frame[c] = frame[c].astype("float64")
            else:
                frame[c] = frame[c].astype(object)
    return frames


def expected(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.reset_index(drop=True)
    if table == "goals":
        out["weight"] = out["weight"].fillna(1.0)
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].astype(object)
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=datasets())
def test_valid_frames_round_trip_through_csv_and_parquet(frames):
    latest = max(frame[c].max() for frame in frames.values() for c in frame.columns
                 if c.endswith("date") and c != "due_date" and frame[c].notna().any())
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("csv", "parquet"):
            folder = Path(tmp) / fmt
            folder.mkdir()
            for table, frame in frames.items():
                if fmt == "csv":
                    frame.to_csv(folder / f"{table}.csv", index=False)
                else:
                    frame.to_parquet(folder / f"{table}.parquet", index=False)
            ds = load(folder)  # raises DataValidationError listing the problems if not valid
            assert ds.as_of == latest
            for table, frame in frames.items():
                pdt.assert_frame_equal(getattr(ds, table), expected(table, frame), check_exact=True)
