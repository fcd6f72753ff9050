"""JSON-safe values for results files: numpy scalars become Python ones, NaN / inf / NA become null."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars turned into Python ones and NaN / inf / NA into ``None`` (recursively)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    return value if isinstance(value, str) else str(value)


def records(frame: pd.DataFrame) -> list[dict]:
    """A frame as a JSON-serialisable list of row dicts."""
    return [jsonable(r) for r in frame.astype(object).to_dict(orient="records")]
