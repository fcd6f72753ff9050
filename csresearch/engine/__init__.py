"""Where the heavy data work runs: DuckDB (embedded, the default) or Apache Spark, from one definition.

The account-month panel, monthly usage from raw events and the large-panel discrete-time model are written once as
`Ibis <https://ibis-project.org>`_ expressions; Ibis compiles the same expression to DuckDB's SQL or to Spark SQL.
:func:`connect` gives the backend of a study's ``engine`` parameter:

* ``"duckdb"``: an in-memory DuckDB in this process (nothing to install or start);
* ``"spark"``: a Spark session, local (``local[*]``, every core of this machine) unless ``spark_master`` names a
  cluster master (``spark://host:7077``, ``yarn``, ``k8s://...``) or a Spark Connect server (``sc://host:15002``).
  PySpark is the optional extra ``pip install "csresearch[spark]"``; a local session needs Java 17 or later.

One Spark session serves the whole process (:func:`spark_session`): starting one costs seconds.
"""
from __future__ import annotations

from .backend import ENGINES, EngineError, connect, shared, spark_available, spark_session

__all__ = ["ENGINES", "EngineError", "connect", "shared", "spark_available", "spark_session"]
