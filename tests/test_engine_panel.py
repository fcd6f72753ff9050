"""The Ibis panel (csresearch.engine.panel, which attainment.episodes runs) equals the first round's numpy panel
(tests/panel_oracle.py, an independent formulation) on DuckDB and on Spark."""
from __future__ import annotations

import os
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from panel_oracle import numpy_episodes as episodes
from csresearch.data import Dataset, load
from csresearch.data.events import aggregate
from csresearch.engine import connect
from csresearch.engine.panel import collect, inputs, monthly_usage, panel, read_events, table
from csresearch.world import EVENT_TYPES, WorldConfig, simulate, write, write_events

T = pd.Timestamp


def assert_same_panel(got: pd.DataFrame, want: pd.DataFrame, accounts: pd.DataFrame) -> None:
    """``got`` (collect of a panel) is ``want`` (episodes): attainment to 1e-12 relative, everything else exact;
    ``account_code`` is each row's account's position in ``accounts``."""
    codes = pd.Index(accounts["account_id"]).get_indexer(got["account_id"])
    np.testing.assert_array_equal(got["account_code"].to_numpy(), codes)
    assert got["account_code"].dtype == np.int64
    got = got.drop(columns="account_code")
    assert list(got.columns) == list(want.columns)
    exact = [c for c in want.columns if c != "attainment"]
    pd.testing.assert_frame_equal(got[exact], want[exact], check_exact=True)
    if "attainment" in want:
        pd.testing.assert_series_equal(got["attainment"], want["attainment"], check_exact=False, rtol=1e-12,
                                       atol=0)


def dataset(accounts, as_of, observed_from=None, goals=None, progress=None, usage=None) -> Dataset:
    """A Dataset from typed frames, without a folder or validation (so edge cases the checks refuse can be built)."""
    return Dataset(path=Path("."), accounts=accounts, goals=goals, goal_progress=progress, usage=usage,
                   as_of=T(as_of), observed_from=None if observed_from is None else T(observed_from),
                   description=None, files={})


# -- the bundled sample ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample():
    return load("data/sample")


@pytest.mark.slow
def test_panel_equals_episodes_on_the_sample(any_con, sample):
    want = episodes(sample)
    got = collect(any_con, panel(**inputs(sample)))
    assert len(want) > 80_000 and want["event"].sum() > 500
    assert want["attainment"].notna().mean() > 0.9 and want["usage_logins"].notna().mean() > 0.9
    assert_same_panel(got, want, sample.accounts)
    assert got.index.equals(pd.RangeIndex(len(want)))


# -- a generated snapshot export with hand-made corner cases --------------------------------------------------------

AS_OF, OBSERVED_FROM = "2024-06-30", "2024-02-01"


def _corners() -> dict[str, pd.DataFrame]:
    """Hand-made accounts for the corners of the panel rules (as_of 2024-06-30, observed from 2024-02-01)."""
    acc = pd.DataFrame({
        "account_id": ["late", "same_day", "no_goals", "ties", "after_as_of", "before_obs", "monthstart", "future"],
        "segment": ["smb", "smb", "mid_market", "enterprise", "smb", "smb", "mid_market", "smb"],
        "start_date": [T("2023-11-03"), T("2024-03-10"), T("2024-02-15"), T("2024-01-20"), T("2024-04-02"),
                       T("2023-06-01"), T("2024-02-01"), T("2024-07-05")],
        "end_date": [T("2024-05-17"), T("2024-03-10"), pd.NaT, T("2024-06-30"), T("2024-08-01"),
                     T("2024-01-15"), T("2024-05-01"), pd.NaT],
    })
    goals = pd.DataFrame({
        "goal_id": ["L1", "L2", "S1", "T1", "T2", "T3", "M1", "A1"],
        "account_id": ["late", "late", "same_day", "ties", "ties", "ties", "monthstart", "after_as_of"],
        "baseline": [10.0, 50.0, 0.0, 0.0, 100.0, 5.0, 1.0, 0.0],
        "target": [20.0, 30.0, 1.0, 10.0, 50.0, 6.0, 2.0, 4.0],
        "set_date": [T("2023-12-01"), T("2024-03-15"), T("2024-03-10"), T("2024-02-01"), T("2024-03-01"),
                     T("2024-06-01"), T("2024-03-02"), T("2024-04-02")],
        "weight": [1.0, 2.5, 1.0, 1.0, 3.0, 0.5, 1.0, 1.0],
    })
    progress = pd.DataFrame({
        "goal_id": ["L1", "L1", "L2", "T1", "T1", "T1", "T2", "T2", "T2", "M1", "M1", "T1"],
        "date": [T("2024-01-01"), T("2024-03-01"), T("2024-04-01"),
                 # ties: two measurements of T1 on 2024-03-01 (the later row counts), another listed out of order
                 T("2024-03-01"), T("2024-03-01"), T("2024-05-01"),
                 # a measurement before T2 was set counts once it is set
                 T("2024-02-10"), T("2024-04-01"), T("2024-04-01"),
                 T("2024-02-01"), T("2024-04-01"), T("2024-02-20")],
        "value": [15.0, 25.0, 40.0, 9.0, 4.0, 10.0, 60.0, 80.0, 20.0, 1.5, 1.9, 2.0],
    })
    usage = pd.DataFrame({
        "account_id": ["late", "late", "late", "late", "late", "ties", "ties", "ties", "ties", "no_goals",
                       "no_goals", "monthstart", "monthstart"],
        "date": [T("2023-11-01"), T("2023-12-01"), T("2023-12-01"), T("2024-02-01"), T("2024-03-20"),
                 T("2024-01-20"), T("2024-02-10"), T("2024-02-25"), T("2024-04-10"), T("2024-02-15"),
                 T("2024-04-01"), T("2024-02-01"), T("2024-03-01")],
        "metric": ["logins", "logins", "logins", "reports_created", "logins", "logins", "logins", "reports_created",
                   "logins", "logins", "reports_created", "logins", "logins"],
        # late: a duplicated period (summed); ties: periods inside months (the latest before the month counts,
        # 45 days at most: 2024-04-10 is too old for June); no_goals: a 45-day gap
        "value": [3.0, 4.0, 1.5, 7.0, 2.0, 1.0, 2.0, 5.0, 6.0, 8.0, 9.0, 0.0, 1.0],
    })
    return {"accounts": acc, "goals": goals, "goal_progress": progress, "usage": usage}


@pytest.fixture(scope="module")
def snapshot():
    """A generated snapshot export (accounts that started before observed_from enter late) with the corner accounts
    of :func:`_corners` in the middle of its tables."""
    tables, _ = simulate(WorldConfig(n_accounts=120, seed=5, first_start="2022-06-01", as_of=AS_OF,
                                     observed_from=OBSERVED_FROM))
    edge = _corners()
    cols = {"accounts": ["account_id", "segment", "start_date", "end_date"],
            "goals": ["goal_id", "account_id", "baseline", "target", "set_date", "weight"],
            "goal_progress": ["goal_id", "date", "value"], "usage": ["account_id", "date", "metric", "value"]}
    mixed = {}
    for name, c in cols.items():
        world = tables[name][c]
        half = len(world) // 2
        mixed[name] = pd.concat([world.iloc[:half], edge[name][c], world.iloc[half:]], ignore_index=True)
    ds = dataset(mixed["accounts"], AS_OF, OBSERVED_FROM, mixed["goals"], mixed["goal_progress"], mixed["usage"])
    assert (ds.accounts["start_date"] < ds.observed_from).mean() > 0.3
    return ds


def test_panel_equals_episodes_on_a_snapshot_and_at_the_corners(any_con, snapshot):
    ds = snapshot
    want = episodes(ds)
    got = collect(any_con, panel(**inputs(ds)))
    assert_same_panel(got, want, ds.accounts)
    left = ds.accounts.set_index("account_id")["start_date"] < ds.observed_from
    first = want.groupby("account_id")["start"].first()
    assert (first[left[first.index]] > 0).all()  # left-truncated accounts enter late
    rows = want.set_index(["account_id", "month"])
    assert rows.loc[("same_day", T("2024-03-01")), "stop"] == 0.5  # churned on its start day: a half-day row
    assert not {"before_obs", "future"} & set(want["account_id"])  # churned before observed_from / starts later
    assert want.loc[want["account_id"] == "no_goals", "attainment"].isna().all()
    # March 1: the later of T1's two measurements that day (4 of 10, after 9), and T2's from before it was set
    # (60 of 100 -> 50)
    assert rows.loc[("ties", T("2024-03-01")), "attainment"] == pytest.approx((0.4 + 3 * 0.8) / 4)
    assert rows.loc[("late", T("2024-01-01")), "usage_logins"] == 5.5  # a duplicated period is summed


def test_panel_lagged_with_other_thresholds_and_metrics(snapshot):
    ds, con = snapshot, connect("duckdb")
    for lag, threshold in ((1, 1.0), (12, 0.6), (45, 0.3)):
        want = episodes(ds, lag_days=lag, threshold=threshold, usage_metrics=["logins", "active_users"])
        got = collect(con, panel(**inputs(ds, usage_metrics=["logins", "active_users"]), lag_days=lag,
                                 threshold=threshold))
        assert want["goals_attained"].sum() > 0
        assert_same_panel(got, want, ds.accounts)


def test_panel_without_progress_counts_set_goals_as_unmeasured(snapshot):
    ds = dataset(snapshot.accounts, AS_OF, OBSERVED_FROM, snapshot.goals, None, None)
    want = episodes(ds)
    got = collect(connect("duckdb"), panel(**inputs(ds)))
    assert want.loc[want["goals_set"] > 0, "attainment"].eq(0).all() and (want["goals_set"] > 0).any()
    assert_same_panel(got, want, ds.accounts)


def test_a_metric_without_data_is_all_missing(snapshot):
    # (episodes cannot be asked this: its usage step fails on a metric without rows)
    con = connect("duckdb")
    both = collect(con, panel(**inputs(snapshot, usage_metrics=["no_such_metric", "logins"])))
    one = collect(con, panel(**inputs(snapshot, usage_metrics=["logins"])))
    assert list(both.columns[-3:]) == ["usage_no_such_metric", "usage_logins", "account_code"]
    assert both["usage_no_such_metric"].isna().all()
    pd.testing.assert_frame_equal(both.drop(columns="usage_no_such_metric"), one)
    # usage_metrics=None: the metrics are found by a query, sorted, as inputs() finds them in pandas
    found = collect(con, panel(**{**inputs(snapshot), "usage_metrics": None}))
    pd.testing.assert_frame_equal(found, collect(con, panel(**inputs(snapshot))))
    assert ([c for c in found if c.startswith("usage_")]
            == [f"usage_{m}" for m in sorted(snapshot.usage["metric"].unique())])


def test_codes_and_ties_without_positions(snapshot):
    # tables without _row (read from files, say): account_code is the rank of account_id, and of two measurements
    # on one day the larger value counts
    ds = snapshot
    kw = inputs(ds)
    kw.update(accounts=ibis.memtable(ds.accounts), goals=ibis.memtable(ds.goals),
              progress=ibis.memtable(ds.goal_progress))
    got = collect(connect("duckdb"), panel(**kw))
    ranked = ds.accounts.sort_values("account_id").reset_index(drop=True)
    by_value = ds.goal_progress.sort_values(["goal_id", "date", "value"], kind="stable")
    want = episodes(dataset(ranked, AS_OF, OBSERVED_FROM, ds.goals, by_value, ds.usage))
    assert_same_panel(got, want, ranked)


def test_goal_ids_go_to_the_engine_as_codes_and_give_the_panel_text_ids_give(any_con, snapshot):
    # inputs() sends the goals and their measurements with integer codes for the goal ids (the same on both
    # tables) and dates for the measurement days; a measurement of a goal the goals table lacks gets -1 and is not
    # read, as its text id was not. The panel is the one the text ids give, on both engines.
    ds = snapshot
    stray = pd.DataFrame({"goal_id": ["no_such_goal", "no_such_goal"], "date": [T("2024-03-01"), T("2024-04-01")],
                          "value": [1e6, -1e6]})
    progress = pd.concat([ds.goal_progress.iloc[:40], stray, ds.goal_progress.iloc[40:]], ignore_index=True)
    with_stray = dataset(ds.accounts, AS_OF, OBSERVED_FROM, ds.goals, progress, ds.usage)
    kw = inputs(with_stray)
    assert kw["goals"].schema()["goal_id"].is_integer() and kw["progress"].schema()["goal_id"].is_integer()
    assert kw["progress"].schema()["date"].is_date() and kw["progress"].schema()["_row"] == ibis.dtype("int32")
    codes = any_con.execute(kw["progress"].select("goal_id", "_row").order_by("_row"))["goal_id"].to_numpy()
    assert (codes[40:42] == -1).all() and (codes[:40] >= 0).all() and (codes[42:] >= 0).all()
    got = collect(any_con, panel(**kw))
    text = dict(kw, goals=table(ds.goals[["goal_id", "account_id", "baseline", "target", "set_date", "weight"]]),
                progress=table(progress[["goal_id", "date", "value"]]))
    assert text["goals"].schema()["goal_id"].is_string()
    pd.testing.assert_frame_equal(got, collect(any_con, panel(**text)), check_exact=False, rtol=1e-12, atol=0)
    assert_same_panel(got, episodes(ds), ds.accounts)  # the stray measurements changed nothing


def test_a_staged_panel_lets_go_of_its_inputs_and_is_dropped_after():
    # on DuckDB the panel is computed into a table first and the inputs' registrations dropped, so that their
    # Arrow copies can go before the result is gathered; collecting the staged table gives the same frame
    from csresearch.engine.panel import stage, unstage

    ds = load("data/sample")
    con = connect("duckdb")
    want = collect(con, panel(**inputs(ds)))
    expr = panel(**inputs(ds))
    memtables = [t.name for t in expr.op().find(ibis.expr.operations.InMemoryTable)]
    assert len(memtables) == 4  # accounts, goals, measurements, usage
    staged = stage(con, expr)
    for name in memtables:
        with pytest.raises(Exception, match="(?i)does not exist|not found"):
            con.con.execute(f'SELECT count(*) FROM "{name}"')
    got = collect(con, staged)
    pd.testing.assert_frame_equal(got, want)
    def tables():  # (Ibis's list_tables fails on DuckDB 2.0)
        return {r[0] for r in con.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}

    name = staged.op().name
    con.con.execute("CREATE TABLE other AS SELECT 1 AS x")
    assert {name, "other"} <= tables()
    unstage(con, staged)
    unstage(con, staged)  # dropping twice is harmless
    unstage(con, con.table("other"))  # a table stage did not make is not dropped
    assert tables() == {"other"}


def test_table_keeps_the_row_positions():
    frame = pd.DataFrame({"x": [3, 1, 2]}, index=[10, 5, 7])
    got = connect("duckdb").execute(table(frame).order_by("_row"))
    assert got["x"].tolist() == [3, 1, 2] and got["_row"].tolist() == [0, 1, 2]


def test_panel_needs_one_usage_source(snapshot):
    ds = snapshot
    with pytest.raises(ValueError, match="not both"):
        panel(**inputs(ds), events=inputs(ds)["usage"])


# -- raw events -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def events_folder(tmp_path_factory):
    """A generated folder whose usage load aggregates from events/ (usage.parquet removed)."""
    folder = tmp_path_factory.mktemp("events_world")
    tables, truth = simulate(WorldConfig(n_accounts=120, seed=8))
    write(tables, truth, folder, fmt="parquet")
    write_events(tables, folder, 6, seed=8, as_of=truth["as_of"], events_per_part=4000)
    (folder / "usage.parquet").unlink()
    return folder


def test_panel_from_events_equals_episodes_of_the_loaded_folder(any_con, events_folder):
    ds = load(events_folder)
    want = episodes(ds, lag_days=20)
    kwargs = inputs(ds)
    del kwargs["usage"], kwargs["usage_metrics"]  # the dense grid load built: the panel counts the raw events itself
    got = collect(any_con, panel(**kwargs, events=read_events(any_con, events_folder), lag_days=20))
    assert [c for c in want if c.startswith("usage_")] == sorted(f"usage_{e}" for e in EVENT_TYPES.values())
    first = want.groupby("account_id").cumcount() == 0
    assert want.loc[first, "usage_login"].isna().all() and (want.loc[~first, "usage_login"] == 0).any()
    assert_same_panel(got, want, ds.accounts)


def test_monthly_usage_equals_the_sparse_aggregate(any_con, events_folder, tmp_path):
    got = collect(any_con, monthly_usage(read_events(any_con, events_folder)))
    want = aggregate(events_folder)
    assert len(want) > 1000
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    # the same events as one CSV file (timestamps as text)
    raw = pd.read_parquet(events_folder / "events")
    raw.assign(ts=raw["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(tmp_path / "events.csv", index=False)
    got_csv = collect(any_con, monthly_usage(read_events(any_con, tmp_path / "events.csv")))
    pd.testing.assert_frame_equal(got_csv, want, check_exact=True)


# -- the two engines on one input -----------------------------------------------------------------------------------

def test_duckdb_and_spark_agree_on_rows_and_column_sums(spark_con, snapshot):
    expr = panel(**inputs(snapshot), lag_days=10)
    num = [c for c, t in expr.schema().items() if t.is_numeric()]
    summary = expr.aggregate(rows=expr.count(), **{f"sum_{c}": expr[c].sum() for c in num})
    duck = connect("duckdb").execute(summary).iloc[0]
    spark = spark_con.execute(summary).iloc[0]
    assert duck["rows"] == spark["rows"] > 500
    for c in num:
        if expr[c].type().is_integer():
            assert int(duck[f"sum_{c}"]) == int(spark[f"sum_{c}"]), c
        else:
            assert float(spark[f"sum_{c}"]) == pytest.approx(float(duck[f"sum_{c}"]), rel=1e-12), c


def test_the_public_episodes_is_the_engine_panel(sample):
    from csresearch.attainment import episodes as public

    got = public(sample, lag_days=30)
    want = episodes(sample, lag_days=30)
    assert list(got.columns) == [*want.columns, "account_code"]
    pd.testing.assert_frame_equal(got.drop(columns="account_code"), want, check_exact=False, rtol=1e-12)


def test_the_public_episodes_of_an_events_folder_reads_the_events(events_folder):
    from csresearch.attainment import episodes as public

    ds = load(events_folder)
    assert "events" in ds.files and ds.usage is not None  # load aggregated the events into the dense usage grid
    got = public(ds, lag_days=20)
    want = episodes(ds, lag_days=20)  # the oracle reads that usage grid
    assert got.filter(like="usage_").notna().mean().min() > 0.5
    pd.testing.assert_frame_equal(got.drop(columns="account_code"), want, check_exact=False, rtol=1e-12)


def test_an_empty_panel_keeps_every_columns_type(sample):
    from csresearch.attainment import episodes as public

    full = public(sample, lag_days=30)
    empty = public(sample, lag_days=30, as_of="2000-01-01")  # before any account started: no interval at all
    assert len(empty) == 0 and list(empty.columns) == list(full.columns)
    assert dict(empty.dtypes) == dict(full.dtypes)
    assert empty["account_id"].dtype == object and empty["account_code"].dtype == np.int64


def test_a_local_spark_session_takes_and_gives_tables_as_files(spark_con, sample):
    """A local Spark session reads the panel's inputs from Parquet files (a memtable goes to Spark row by row in
    Python: minutes and 14 GB for 1M accounts) and hands the panel back as Parquet files its tasks write (collecting
    it through the 2 GB driver failed at 200,000 accounts), read back in the result's order; the staging folders
    are removed when the scope ends, the result's as soon as it is read."""
    from csresearch.engine import backend
    from csresearch.engine import panel as engine_panel

    with backend.staging_scope() as made:
        expr = panel(**inputs(sample, con=spark_con))
        # accounts, goals, progress and usage: files, not memtables
        assert len(made) == 4 and all(os.listdir(f) for f in made)
        got = collect(spark_con, expr)
        assert len(made) == 5 and not os.path.exists(made[-1])  # the result came through files, gone once read
    assert not any(os.path.exists(f) for f in made)
    want = collect(connect("duckdb"), panel(**inputs(sample)))
    pd.testing.assert_frame_equal(got, want)
    # a stream that came back out of order is sorted, not trusted
    code, month = got["account_code"].to_numpy(), got["month"].to_numpy()
    assert engine_panel._in_order(code, month)
    assert not engine_panel._in_order(code[::-1], month[::-1])
    assert not engine_panel._in_order(np.array([1, 1]), month[:2][::-1])


def test_a_frame_goes_to_a_local_spark_session_through_files(spark_con, monkeypatch):
    from csresearch.engine import backend

    monkeypatch.setattr(backend, "FRAME_FILE_ROWS", 7)  # several files
    frame = pd.DataFrame({"a": np.arange(30, dtype=float), "b": np.arange(30) % 4})
    with backend.frame_table(spark_con, frame) as t:
        got = spark_con.execute(t.aggregate(n=t.count(), a=t.a.sum(), b=t.b.sum())).iloc[0]
        root = backend._ROOT[os.getpid()]
        folder = [f for f in os.listdir(root) if f.startswith("spark-")]
        assert len(folder) == 1 and len(os.listdir(os.path.join(root, folder[0]))) == 5
    assert (got["n"], got["a"], got["b"]) == (30, frame["a"].sum(), frame["b"].sum())
    assert not [f for f in os.listdir(root) if f.startswith("spark-")]


def test_duckdb_spills_into_one_scratch_root_and_a_session_removes_its_folder():
    from csresearch.engine import backend

    con = connect("duckdb")
    root = backend._ROOT[os.getpid()]
    spill = con.raw_sql("SELECT current_setting('temp_directory')").fetchone()[0]
    assert os.path.dirname(spill) == root and os.path.basename(spill).startswith("duckdb-")
    con.disconnect()
    with backend.session("duckdb") as job:
        folder = job.raw_sql("SELECT current_setting('temp_directory')").fetchone()[0]
        assert os.path.dirname(folder) == root and os.path.isdir(folder) and folder != spill
    assert not os.path.exists(folder)  # removed with the job's database
    assert backend._ROOT[os.getpid()] == root  # one root for the process
