"""The data contract as data: tables, columns, kinds, dataset.yaml keys (the rules in words: docs/data-contract.md)."""
from __future__ import annotations

from dataclasses import dataclass

TEXT, DATE, NUMBER = "text", "date", "number"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str
    #: the column must be in the file
    required: bool = True
    #: every row must have a value
    nonempty: bool = True


#: Contract tables in the fixed order used for reading, reporting and fingerprints.
TABLES: dict[str, tuple[ColumnSpec, ...]] = {
    "accounts": (
        ColumnSpec("account_id", TEXT),
        ColumnSpec("segment", TEXT),
        ColumnSpec("start_date", DATE),
        # The contract lists end_date without "optional": the column must be there (empty while
        # active). A file without it cannot say which accounts churned.
        ColumnSpec("end_date", DATE, required=True, nonempty=False),
        ColumnSpec("arr", NUMBER, required=False, nonempty=False),
    ),
    "goals": (
        ColumnSpec("goal_id", TEXT),
        ColumnSpec("account_id", TEXT),
        ColumnSpec("metric", TEXT),
        ColumnSpec("baseline", NUMBER),
        ColumnSpec("target", NUMBER),
        ColumnSpec("set_date", DATE),
        ColumnSpec("due_date", DATE, required=False, nonempty=False),
        ColumnSpec("weight", NUMBER, required=False, nonempty=False),
    ),
    "goal_progress": (
        ColumnSpec("goal_id", TEXT),
        ColumnSpec("date", DATE),
        ColumnSpec("value", NUMBER),
    ),
    "usage": (
        ColumnSpec("account_id", TEXT),
        ColumnSpec("date", DATE),
        ColumnSpec("metric", TEXT),
        ColumnSpec("value", NUMBER),
    ),
}

REQUIRED_TABLES = ("accounts",)

#: Tables of the contract that this module does not read (aggregated elsewhere).
UNREAD_TABLES = ("events",)

#: Columns that identify a row in messages (joined: "g-1 on 2024-03-01").
ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id",),
    "goals": ("goal_id",),
    "goal_progress": ("goal_id", "date"),
    "usage": ("account_id", "metric", "date"),
}

#: Dates that record an observation. as_of defaults to the latest of these. due_date is left
#: out on purpose: it is a plan (often in the future), not something that was observed.
OBSERVATION_DATES: dict[str, tuple[str, ...]] = {
    "accounts": ("start_date", "end_date"),
    "goals": ("set_date",),
    "goal_progress": ("date",),
    "usage": ("date",),
}

DATASET_YAML = "dataset.yaml"
DATASET_KEYS = ("as_of", "observed_from", "description", "label_horizon_days", "raw_dir", "files", "columns")
FORMATS = ("parquet", "csv")  # Parquet wins when both exist
#: a table described by a DuckDB SELECT over raw files: ``accounts.sql`` (wins over accounts.csv/.parquet)
VIEW_SUFFIX = ".sql"

#: The contract in words, in the repository; messages point at its sections (``doc("known-at")``).
CONTRACT_DOC = "docs/data-contract.md"
DOC_SECTIONS = ("tables", "accounts", "goals", "goal_progress", "usage", "events", "folder-settings",
                "reading-files", "known-at", "snapshots", "label-exports", "mapping", "sql-views",
                "the-columns-map", "raw-files", "validation", "examples")


def doc(section: str) -> str:
    """The contract document and one of its sections (:data:`DOC_SECTIONS`), as messages name them."""
    assert section in DOC_SECTIONS, section
    return f"{CONTRACT_DOC}#{section}"


def column_spec(table: str, name: str) -> ColumnSpec | None:
    for spec in TABLES[table]:
        if spec.name == name:
            return spec
    return None
