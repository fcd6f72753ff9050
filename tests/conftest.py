"""Shared fixtures."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

# -- data contract: a small valid folder written from hand-made frames (no generator) ----------
# Every value is text so that the CSV is exactly what is written here: row i of a frame is
# line i + 2 of its file. 5 accounts in 3 segments, 4 goals, progress, usage.
_CONTRACT_ROWS = {
    "accounts": (["account_id", "segment", "start_date", "end_date", "arr"], [
        ["a-1", "smb", "2023-01-15", "", "1200"],
        ["a-2", "smb", "2023-02-01", "2024-03-31", "800.5"],
        ["a-3", "mid_market", "2023-03-10", "", "5000"],
        ["a-4", "enterprise", "2022-11-01", "", "50000"],
        ["a-5", "mid_market", "2023-06-01", "2024-01-31", ""],
    ]),
    "goals": (["goal_id", "account_id", "metric", "baseline", "target", "set_date", "due_date", "weight"], [
        ["g-1", "a-1", "tickets_closed", "10", "20", "2023-02-01", "2023-12-31", ""],
        ["g-2", "a-3", "churn_rate", "0.1", "0.05", "2023-04-01", "", "2"],
        ["g-3", "a-4", "revenue", "100", "150", "2023-01-01", "2024-06-30", "1"],
        ["g-4", "a-4", "nps", "-10", "20", "2023-02-15", "", "0.5"],
    ]),
    "goal_progress": (["goal_id", "date", "value"], [
        ["g-1", "2023-06-01", "15"],
        ["g-1", "2023-12-01", "21"],
        ["g-2", "2023-09-01", "0.08"],
        ["g-3", "2024-01-01", "120"],
        ["g-4", "2023-06-01", "-5"],
    ]),
    "usage": (["account_id", "date", "metric", "value"], [
        ["a-1", "2023-01-01", "logins", "5"],
        ["a-1", "2023-02-01", "logins", "7"],
        ["a-1", "2023-02-01", "reports", "0"],
        ["a-2", "2023-02-01", "logins", "1"],
        ["a-3", "2023-03-01", "logins", "12"],
        ["a-4", "2024-05-01", "logins", "30"],
        ["a-5", "2023-06-01", "logins", "2.5"],
    ]),
}
CONTRACT_YAML = "as_of: 2024-06-30\ndescription: hand-made test data\n"


@pytest.fixture
def contract_frames() -> dict[str, pd.DataFrame]:
    """Fresh all-text frames of a small valid data folder (mutate freely)."""
    return {t: pd.DataFrame(rows, columns=cols, dtype=object) for t, (cols, rows) in _CONTRACT_ROWS.items()}


@pytest.fixture
def write_contract_folder(tmp_path):
    """``write(frames, name="data", dataset_yaml=CONTRACT_YAML) -> folder`` writing NAME.csv files."""
    def write(frames: dict[str, pd.DataFrame], name: str = "data",
              dataset_yaml: str | None = CONTRACT_YAML) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for table, frame in frames.items():
            frame.to_csv(folder / f"{table}.csv", index=False, lineterminator="\n")
        if dataset_yaml is not None:
            (folder / "dataset.yaml").write_text(dataset_yaml, encoding="utf-8")
        return folder
    return write


def folder_state(folder: Path) -> dict:
    """Everything reading may not change: names, sizes, mtimes and sha256 of every entry."""
    import hashlib

    state = {".": folder.stat().st_mtime_ns}
    for p in sorted(folder.rglob("*")):
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        state[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns, digest)
    return state


@pytest.fixture
def snapshot():
    """``snapshot(folder)`` -> comparable state of a folder (see folder_state)."""
    return folder_state


@pytest.fixture(autouse=True)
def _working_directory_is_kept():
    """No test may leave the session in another working directory: later tests read paths relative to the
    repository (a papermill run with ``cwd`` in a thread once did, and failed fifteen tests far from it)."""
    import os

    before = os.getcwd()
    yield
    after = os.getcwd()
    if after != before:
        os.chdir(before)
        pytest.fail(f"the test changed the working directory to {after} and did not change it back")


# -- engines: one Spark session for the whole test run (starting one costs seconds) --------------------------
@pytest.fixture(scope="session")
def spark_con():
    """An Ibis backend on the process's local Spark session; the test is skipped where Spark cannot run."""
    from csresearch.engine import connect, spark_available

    why = spark_available()
    if why:
        pytest.skip(why)
    return connect("spark", spark_master="local[2]")


@pytest.fixture(params=["duckdb", "spark"])
def any_con(request):
    """An Ibis backend on each engine in turn (DuckDB, then the shared Spark session)."""
    from csresearch.engine import connect

    if request.param == "spark":
        return request.getfixturevalue("spark_con")
    return connect("duckdb")
