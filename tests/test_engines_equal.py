"""DuckDB and Spark give one answer: the same panel, the same hazard ratios (the issue's equality requirement).

A study's engine (params ``engine``) builds the panel from the one Ibis definition and, on Spark, fits the
discrete-time model by Spark aggregates. With ``cox_max_rows=0`` every panel model is the discrete-time one, so the
headline effect runs through the engine fit on Spark and through the numpy fit on DuckDB: two implementations that
must agree to 1e-6 in hazard ratio and interval limits. Below ``cox_max_rows`` both fit Cox in process: unchanged.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from csresearch import params as P
from csresearch.attainment_models import time_varying_effect
from csresearch.context import StudyContext
from csresearch.data import load

pytestmark = pytest.mark.slow
TOL = 1e-6


def _context(folder, engine, ds, **extra):
    values = {"data_dir": str(folder), "engine": engine, **extra}
    if engine == "spark":
        values["spark_master"] = "local[2]"  # the test session's (tests/conftest.py spark_con)
    return StudyContext.build(P.validate(values, "test"), ds=ds)


def _assert_equal_panels(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert len(a) == len(b) and list(a.columns) == list(b.columns)
    numeric = [c for c in a.columns if pd.api.types.is_numeric_dtype(a[c])]
    sums_a, sums_b = a[numeric].sum(), b[numeric].sum()
    np.testing.assert_allclose(sums_a.to_numpy(float), sums_b.to_numpy(float), rtol=1e-12)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


def _effects(ctx, usage: bool) -> dict:
    usage_metrics = [m for m in ctx.usage_metrics or [] if f"usage_{m}" in ctx.panel.columns] if usage else None
    _, e = time_varying_effect(ctx.ds, panel=ctx.panel, engine=ctx.engine, usage_metrics=usage_metrics,
                               covariates=ctx["covariates"])
    return e


def _compare(folder, ds, spark_con, *, usage: bool):
    duck = _context(folder, "duckdb", ds, cox_max_rows=0)
    spark = _context(folder, "spark", ds, cox_max_rows=0)
    _assert_equal_panels(duck.panel, spark.panel)
    a, b = _effects(duck, usage), _effects(spark, usage)
    assert a["model"] == b["model"] == "discrete"
    for key in ("hr", "ci_low", "ci_high"):
        assert abs(a[key] - b[key]) <= TOL, (key, a[key], b[key])
    assert a["n_rows"] == b["n_rows"] and a["n_events"] == b["n_events"]
    return a, b


def test_sample_panels_and_discrete_effects_agree(spark_con):
    ds = load("data/sample")
    a, b = _compare("data/sample", ds, spark_con, usage=True)
    assert a["usage_adjusted_for"] and 0.1 < a["hr"] < 0.4


def test_a_20k_world_agrees(spark_con, tmp_path):
    from csresearch.world import WorldConfig, generate

    folder = tmp_path / "world20k"
    generate(WorldConfig(n_accounts=20_000, seed=11), folder, fmt="parquet")
    ds = load(folder)
    a, _ = _compare(folder, ds, spark_con, usage=False)
    assert a["n_accounts"] > 15_000 and a["ci_high"] < 1


def test_below_the_cox_limit_both_engines_fit_the_same_cox(spark_con):
    ds = load("data/sample")
    duck, spark = _context("data/sample", "duckdb", ds), _context("data/sample", "spark", ds)
    a, b = _effects(duck, False), _effects(spark, False)
    assert a["model"] == b["model"] == "cox"
    for key in ("hr", "ci_low", "ci_high", "se"):
        assert a[key] == pytest.approx(b[key], rel=1e-12)


def test_the_command_line_chooses_the_engine():
    from csresearch import studies

    specs = studies.plan([], data="data/sample", segments=None, sets=["engine=spark", "spark_master=local[2]"])
    assert {s.params["engine"] for s in specs} == {"spark"}
    assert {s.params["spark_master"] for s in specs} == {"local[2]"}
    with pytest.raises(P.ParamsError, match="engine"):
        studies.plan([], data="data/sample", segments=None, sets=["engine=postgres"])


def test_the_local_session_shuffles_its_joins_and_coalesces_its_partitions(spark_con):
    # broadcasting the account-month rows overflowed a 2 GB driver at 500,000 accounts (BENCHMARKS.md)
    assert spark_con._session.conf.get("spark.sql.autoBroadcastJoinThreshold") == "-1"
    # four fixed partitions failed the panel of 5M accounts on 2 cores; 200 coalesced by AQE completed it
    assert spark_con._session.conf.get("spark.sql.shuffle.partitions") == "200"
    assert spark_con._session.conf.get("spark.sql.adaptive.enabled") == "true"
