"""Connections to the engines the heavy data work runs on (see :mod:`csresearch.engine`)."""
from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
from typing import Any

#: the engines a study may run its data work on
ENGINES = ("duckdb", "spark")

#: DuckDB's memory budget for the panel and the models (``CSRESEARCH_DUCKDB_MEMORY`` overrides it); beyond it
#: DuckDB spills to a temporary folder
DUCKDB_MEMORY_LIMIT = "2GB"

#: rows per Parquet file of a frame sent to a local Spark session (:func:`frame_table`)
FRAME_FILE_ROWS = 1 << 20

_LOCK = threading.Lock()
_SPARK: dict[str, Any] = {}
_SHARED: dict[tuple[str, str | None], Any] = {}


class EngineError(RuntimeError):
    """The chosen engine cannot run here; the message says what is missing and how to get it."""


_ROOT: dict[int, str] = {}


def scratch_folder(prefix: str) -> str:
    """A fresh private folder for one job's temporary files (DuckDB's spills, data passed to a local Spark session),
    inside the process's one scratch root, a ``csresearch-engine-`` folder of the temporary directory removed with
    everything in it when the process exits. Callers remove their own folder when done, so a process killed before
    its exit leaves one root behind, not a folder per database or file hand-over."""
    import atexit
    import tempfile

    with _LOCK:
        root = _ROOT.get(os.getpid())  # by process: a forked child never writes into the root its parent removes
        if root is None:
            root = _ROOT[os.getpid()] = tempfile.mkdtemp(prefix="csresearch-engine-")
            atexit.register(shutil.rmtree, root, True)
    return tempfile.mkdtemp(prefix=prefix, dir=root)


def spark_is_local(session) -> bool:
    """Whether a Spark session runs in local mode (``local[*]``), where executors and driver share this machine's
    files. A session that will not show its conf (a Spark Connect server may refuse) counts as remote, so data
    goes to it through the driver rather than through files it might not see."""
    try:
        return str(session.conf.get("spark.master", "")).startswith("local")
    except Exception:  # noqa: BLE001 - a Connect server may refuse to show its conf: treat it as remote
        return False


_SCOPES: list[list[str]] = []


@contextmanager
def staging_scope():
    """The staging folders (:func:`staging_folder`) made inside the ``with`` block are removed at its end (a panel's
    inputs, once the panel is collected)."""
    made: list[str] = []
    _SCOPES.append(made)
    try:
        yield made
    finally:
        _SCOPES.remove(made)
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)


def write_parquet(arrow, folder: str, part: int = 0) -> None:
    """An Arrow table as the Parquet file ``part-<part>.parquet`` of ``folder``, as Spark reads it: timestamps in
    microseconds (Spark reads no nanosecond timestamps)."""
    import pyarrow.parquet as pq

    pq.write_table(arrow, os.path.join(folder, f"part-{part:05d}.parquet"), coerce_timestamps="us",
                   allow_truncated_timestamps=True)


def staging_folder() -> str:
    """A fresh private folder for data passed between this process and a local Spark session as Parquet files
    (a :func:`scratch_folder`; callers remove their own folder when done).

    On a local session a large result goes through files rather than through the driver: collecting the panel of
    200,000 accounts (3.9M rows) into Python with ``toArrow`` or ``toPandas`` failed on the 2 GB driver
    ("TaskResultLost (result lost from block manager)"), and so would a model frame sent the other way."""
    folder = scratch_folder("spark-")
    if _SCOPES:
        _SCOPES[-1].append(folder)
    return folder


def spark_available() -> str | None:
    """None when a local Spark session can start here, else why not (PySpark or Java missing)."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return 'PySpark is not installed: pip install "csresearch[spark]"'
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "Java is missing: a local Spark session needs Java 17 or later (Debian: apt-get install openjdk-17-jre-headless)"
    return None


def spark_session(master: str | None = None):
    """The process's Spark session for ``master``, started on first use and then reused; None: the session already
    running in this process, else a new ``local[*]`` one.

    ``sc://host:port`` connects to a Spark Connect server; anything else is a master URL for a classic session
    (``local[2]``, ``spark://host:7077``, ``yarn``). Sessions run in UTC, so a month is the UTC calendar month as on
    DuckDB. A local session keeps Spark's 200 shuffle partitions and lets adaptive query execution coalesce the small
    ones: with a few large partitions instead, the panel of 5M accounts failed on 2 cores (BENCHMARKS.md)."""
    with _LOCK:
        if master is None and _SPARK:
            return next(iter(_SPARK.values()))  # no master asked for: the session this process runs already
        master = master or "local[*]"
        if master in _SPARK:
            return _SPARK[master]
        if _SPARK:
            raise EngineError(f"a Spark session for {next(iter(_SPARK))!r} is already running in this process; "
                              f"one process drives one Spark application, so {master!r} cannot start beside it")
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise EngineError('engine "spark" needs PySpark: pip install "csresearch[spark]"') from exc
        if master.startswith("sc://"):
            builder = SparkSession.builder.remote(master)
        else:
            why = spark_available() if master.startswith("local") else None
            if why:
                raise EngineError(f'engine "spark" ({master}): {why}')
            builder = SparkSession.builder.master(master).appName("csresearch")
            if master.startswith("local"):
                cores = os.cpu_count() or 2
                builder = (builder.config("spark.sql.shuffle.partitions", "200")
                           .config("spark.sql.adaptive.enabled", "true")
                           .config("spark.sql.adaptive.coalescePartitions.enabled", "true")
                           .config("spark.default.parallelism", str(max(2, 2 * cores)))
                           .config("spark.ui.enabled", "false")
                           # the planner takes the account-month rows unnested from month ranges for a small table
                           # and broadcasts them: at 500,000 accounts that overflows the driver ("Not enough memory
                           # to build and broadcast the table"); joins are shuffled instead
                           .config("spark.sql.autoBroadcastJoinThreshold", "-1")
                           .config("spark.driver.memory", os.environ.get("CSRESEARCH_SPARK_DRIVER_MEMORY", "2g")))
        builder = (builder.config("spark.sql.session.timeZone", "UTC")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.execution.arrow.pyspark.enabled", "true"))
        session = builder.getOrCreate()
        try:
            session.sparkContext.setLogLevel("ERROR")
        except Exception:  # Spark Connect sessions have no SparkContext
            pass
        _SPARK[master] = session
        return session


def connect(engine: str = "duckdb", *, spark_master: str | None = None, threads: int | None = None,
            spill: str | None = None):
    """An Ibis backend for ``engine`` (``"duckdb"`` or ``"spark"``): a new in-memory DuckDB (in UTC) spilling to
    ``spill`` (default: a new :func:`scratch_folder`, removed at the process's exit), or the process's Spark session
    (:func:`spark_session`)."""
    import ibis

    if engine == "duckdb":
        con = ibis.duckdb.connect(threads=threads) if threads else ibis.duckdb.connect()
        con.raw_sql("SET TimeZone = 'UTC'")
        # DuckDB takes 80% of the machine by default; a bounded budget, spilling joins and sorts to a private
        # temporary folder beyond it, keeps a study's peak memory predictable (the panel of 1M accounts needs more)
        con.raw_sql(f"SET memory_limit = '{os.environ.get('CSRESEARCH_DUCKDB_MEMORY', DUCKDB_MEMORY_LIMIT)}'")
        con.raw_sql(f"SET temp_directory = '{spill or scratch_folder('duckdb-')}'")
        con.raw_sql("SET preserve_insertion_order = false")
        return con
    if engine == "spark":
        return ibis.pyspark.connect(spark_session(spark_master))
    raise EngineError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")


def shared(engine: str = "duckdb", spark_master: str | None = None):
    """The process's one backend for ``engine`` (see :func:`connect`), made on first use: a study's panel and models,
    and every panel built without a connection given, run on it."""
    key = (engine, spark_master if engine == "spark" else None)
    with _LOCK:
        con = _SHARED.get(key)
    if con is None:
        con = connect(engine, spark_master=spark_master)
        with _LOCK:
            con = _SHARED.setdefault(key, con)
    return con


@contextmanager
def session(engine: str = "duckdb", spark_master: str | None = None):
    """A backend for one large job (a study's panel), in a ``with`` block.

    DuckDB: a private in-memory database, closed at the end of the block. DuckDB's allocator keeps the memory a
    large query used until its database is closed (2 GB after the panel of 200,000 accounts, for the rest of the
    study), so the job that needs it most gets a database of its own, and its spill folder is removed with it.
    Spark: the process's shared session (:func:`shared`), left running."""
    if engine != "duckdb":
        yield shared(engine, spark_master)
        return
    spill = scratch_folder("duckdb-")
    con = connect("duckdb", spill=spill)
    try:
        yield con
    finally:
        con.disconnect()
        shutil.rmtree(spill, ignore_errors=True)


@contextmanager
def frame_table(con, frame):
    """A pandas ``frame`` as a table of ``con``, for queries that scan it many times (a model's Newton steps), while
    the ``with`` block runs.

    DuckDB scans the frame in place (a memtable). Spark gets it as a DataFrame made from Arrow record batches and
    cached, so its queries run on executors rather than on an interpreted local relation on the driver (what a
    memtable becomes on Spark: seconds per query); at the end of the block its temporary view is dropped and its
    cache let go, so a study's dozen fits do not pile up their frames in the executors' memory."""
    import ibis

    if con.name != "pyspark":
        yield ibis.memtable(frame)
        return
    import pyarrow as pa

    session = con._session
    folder = None
    if spark_is_local(session):
        # through Parquet files, a million rows at a time: the driver (2 GB) never holds the frame
        folder = staging_folder()
        for i, lo in enumerate(range(0, max(len(frame), 1), FRAME_FILE_ROWS)):
            part = pa.Table.from_pandas(frame.iloc[lo:lo + FRAME_FILE_ROWS], preserve_index=False)
            write_parquet(part, folder, i)
            del part
        df = session.read.parquet(folder).cache()
    else:
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
        df = session.createDataFrame(arrow).cache()
        del arrow
    name = f"csresearch_frame_{id(df):x}"
    df.createOrReplaceTempView(name)
    try:
        yield con.table(name)
    finally:
        session.catalog.dropTempView(name)
        df.unpersist()
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
