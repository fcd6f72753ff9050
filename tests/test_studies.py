"""Parameterised studies: params validation, the `csresearch study` command, reports, failures and degenerate data."""
from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from csresearch import params as P
from csresearch import studies
from csresearch.cli import main
from csresearch.world import WorldConfig, generate

ROOT = Path(__file__).resolve().parents[1]
RESULT_KEYS = {"study", "segment", "as_of", "n_accounts", "n_churned", "attainment_effect", "usage_vs_outcome",
               "metrics", "maturity", "warnings"}


# ---------------------------------------------------------------------------------------------- params
def _yaml(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bundled_params_files_are_valid():
    files = sorted((ROOT / "params").glob("*.yaml"))
    assert {f.stem for f in files} >= {"smb", "mid_market", "enterprise", "all"}
    for f in files:
        p = P.read(f)
        assert p["study"] == f.stem
        assert p["data_dir"] == str(ROOT / "data" / "sample")  # relative to the params folder


@pytest.mark.parametrize("text, message", [
    ("landmark: [90]\n", "unknown parameter 'landmark' (did you mean landmark_days?)"),
    ("lag_days: ten\n", "parameter lag_days: must be a whole number, not 'ten'"),
    ("lag_days: 1.5\n", "parameter lag_days: must be a whole number, not 1.5"),
    ("attainment_threshold: 1.5\n", "parameter attainment_threshold: must be in (0, 1], not 1.5"),
    ("landmark_days: 90\n", "parameter landmark_days: must be a non-empty list of ints, not 90"),
    ("as_of: 2024-02-30\n", "parameter as_of: must be a date YYYY-MM-DD"),
    ("segment: [a, b]\n", "parameter segment: must be a non-empty text"),
    ("spline_knots: [0.5, 0.25]\n", "parameter spline_knots: must be increasing and strictly inside (0, 1)"),
    ("min_cell: 0\n", "parameter min_cell: must be at least 1"),
    ("study: ../escape\n", "parameter study: use letters, digits"),
    ("- just\n- a list\n", "must be a mapping of parameter: value lines, not a list"),
    ("lag_days: [\n", "not valid YAML at line"),
    ("seed: !!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
])
def test_bad_params_are_exact_errors(tmp_path, text, message):
    path = _yaml(tmp_path, text)
    with pytest.raises(P.ParamsError) as err:
        P.read(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_overrides_are_typed_yaml_values():
    assert P.parse_override("lag_days=30") == ("lag_days", 30)
    assert P.parse_override("covariates=[log_arr, seats]") == ("covariates", ["log_arr", "seats"])
    assert P.parse_override("segment=null") == ("segment", None)
    assert P.parse_override("as_of=2024-01-31") == ("as_of", "2024-01-31")
    with pytest.raises(P.ParamsError, match="expected KEY=VALUE"):
        P.parse_override("lag_days")


def test_study_command_rejects_bad_params_before_running(tmp_path, capsys):
    bad = _yaml(tmp_path, "data_dir: no/such/folder\n")
    assert main(["study", str(bad), "--out", str(tmp_path / "out")]) == 2
    missing = (tmp_path / "no" / "such" / "folder").resolve()  # relative to the params file's folder
    assert f"parameter data_dir: no such folder '{missing}'" in capsys.readouterr().err
    assert main(["study", "--set", "lag_days=soon", "--out", str(tmp_path / "out")]) == 2
    assert "--set: parameter lag_days: must be a whole number" in capsys.readouterr().err
    assert main(["study", "--segments", "nowhere", "--data", "data/sample", "--out", str(tmp_path / "out")]) == 2
    assert "--segments: nowhere not in sample" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_study_command_rejects_invalid_data(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "accounts.csv").write_text("account_id,segment,start_date,end_date\na1,smb,2024-01-01,2023-01-01\n")
    assert main(["study", "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    assert "end_date" in capsys.readouterr().err


def test_plan_segments_all_makes_one_study_per_segment_plus_all():
    specs = studies.plan(data="data/sample", segments="all")
    assert [s.name for s in specs] == ["sample_enterprise", "sample_mid_market", "sample_smb", "sample_all"]
    assert [s.params["segment"] for s in specs] == ["enterprise", "mid_market", "smb", None]
    specs = studies.plan([ROOT / "params" / "smb.yaml"], sets=["lag_days=30"])
    assert specs[0].params["lag_days"] == 30 and specs[0].params["segment"] == "smb"


# ---------------------------------------------------------------------------------------------- running
@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    generate(WorldConfig(n_accounts=900, seed=77), folder, fmt="parquet")
    return folder


@pytest.fixture(scope="module")
def run_all(small_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    code = main(["study", "--data", str(small_world), "--segments", "all", "--out", str(out), "--workers", "2",
                 "--set", "health_score_metric=health_score"])
    return code, out


@pytest.mark.slow
def test_study_run_writes_every_output(run_all):
    code, out = run_all
    assert code == 0
    names = ["world_enterprise", "world_mid_market", "world_smb", "world_all"]
    prefix = next(out.glob("*_all")).name[: -len("_all")]
    names = [n.replace("world", prefix) for n in names]
    for name in names:
        folder = out / name
        assert {p.name for p in folder.iterdir()} >= {"notebook.ipynb", "report.html", "results.json"}
        res = json.loads((folder / "results.json").read_text())
        assert RESULT_KEYS <= set(res)
        for k in ("time_varying", "landmark", "naive"):
            assert {"hr", "ci_low", "ci_high", "p"} <= set(res["attainment_effect"][k])
        assert {"landmark_days", "n_at_risk"} <= set(res["attainment_effect"]["landmark"])
        assert set(res["usage_vs_outcome"]["c_index"]) == {"usage", "attainment", "both"}
        assert "lr_test_p" in res["usage_vs_outcome"]
    allres = json.loads((out / names[-1] / "results.json").read_text())
    assert allres["segment"] is None and allres["n_accounts"] == 900
    assert allres["attainment_effect"]["time_varying"]["hr"] < 1
    index = (out / "index.html").read_text()
    assert all(f'href="{n}/report.html"' in index for n in names)
    assert "data:image/png;base64," in index
    assert not list(out.glob(".tmp-*")) and not list(out.glob(".old-*"))


@pytest.mark.slow
def test_reports_are_for_readers_offline_and_private(run_all, small_world):
    _, out = run_all
    ids = set(pd.read_parquet(small_world / "accounts.parquet")["account_id"])
    goal_ids = set(pd.read_parquet(small_world / "goals.parquet")["goal_id"])
    for page in [out / "index.html", *out.glob("*/report.html")]:
        text = page.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']\s*(https?:)?//""", text, re.I), page
        assert "<script src" not in text and "@import" not in text
        found = set(re.findall(r"acc-\d+", text)) | set(re.findall(r"g-\d+", text))
        assert not (found & (ids | goal_ids)), f"{page}: account or goal ids in the report"
    report = (next(out.glob("*_all")) / "report.html").read_text()
    assert 'class="cs-toc"' in report and "Executive summary" in report and "Methods and caveats" in report
    assert "report.run(" not in report and "import " not in report  # no code
    assert "<strong>Outcomes predict retention.</strong>" in report and "times the rate" in report and "95% CI" in report
    assert "In [" not in report  # no prompts


@pytest.mark.slow
def test_a_failing_study_keeps_the_previous_report_and_does_not_stop_the_others(run_all, small_world, tmp_path):
    _, out = run_all
    work = tmp_path / "reports"
    shutil.copytree(out, work)
    smb = next(work.glob("*_smb"))
    before = (smb / "report.html").read_bytes()
    nb = nbformat.read(str(studies.NOTEBOOK), as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell("if segment == 'smb':\n    raise RuntimeError('planted failure')"))
    broken = tmp_path / "broken.ipynb"
    nbformat.write(nb, str(broken))
    specs = [s for s in studies.plan(data=str(small_world), segments="smb,enterprise")]
    specs = [studies.StudySpec(smb.name if s.params["segment"] == "smb" else s.name, {**s.params, "study": s.name}, s.source)
             for s in specs]
    outcomes = studies.run(specs, work, workers=2, notebook=broken)
    by = {o.name: o for o in outcomes}
    assert not by[smb.name].ok and "planted failure" in by[smb.name].error
    assert sum(o.ok for o in outcomes) == 1
    assert (smb / "report.html").read_bytes() == before  # the earlier good report is untouched
    index = (work / "index.html").read_text()
    assert "FAILED" in index and "planted failure" in index
    assert (work / ".failed" / f"{smb.name}.ipynb").exists()
    assert main(["study", "--data", str(small_world), "--segments", "smb", "--out", str(tmp_path / "x"),
                 "--set", "covariates=[log_arr]"]) == 0


def test_a_cell_that_runs_past_the_timeout_fails_its_study_and_says_how_to_allow_longer(small_world, tmp_path):
    nb = nbformat.read(str(studies.NOTEBOOK), as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell("import time\ntime.sleep(60)"))
    slow = tmp_path / "slow.ipynb"
    nbformat.write(nb, str(slow))
    spec = studies.plan(data=str(small_world))[0]
    t0 = time.perf_counter()
    (o,) = studies.run([spec], tmp_path / "reports", workers=1, notebook=slow, cell_timeout=3)
    assert not o.ok and "CellTimeoutError" in o.error and "--cell-timeout 6 (0: no limit)" in o.error
    assert time.perf_counter() - t0 < 50  # stopped at the timeout, not after the cell's minute


def test_the_cell_timeout_option_reaches_the_runner(small_world, tmp_path, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(studies, "run", lambda specs, out, **kw: seen.append(kw["cell_timeout"]) or [])
    for extra, want in (([], studies.CELL_TIMEOUT), (["--cell-timeout", "14400"], 14400), (["--cell-timeout", "0"], None)):
        assert main(["study", "--data", str(small_world), "--out", str(tmp_path / f"r{len(seen)}"), *extra]) == 0
        assert seen[-1] == want
    for bad in ("-5", "1h"):
        with pytest.raises(SystemExit) as exc:
            main(["study", "--data", str(small_world), "--out", str(tmp_path / "bad"), "--cell-timeout", bad])
        assert exc.value.code == 2
    assert "--cell-timeout" in capsys.readouterr().err


def _degenerate(root: Path) -> dict[str, Path]:
    """Four folders a study must survive: tiny, no churn, no goals, everyone attained."""
    base = root / "base"
    generate(WorldConfig(n_accounts=300, seed=5), base, fmt="csv")
    folders = {}
    tiny = root / "tiny"
    shutil.copytree(base, tiny)
    acc = pd.read_csv(tiny / "accounts.csv").head(20)
    acc.to_csv(tiny / "accounts.csv", index=False)
    _restrict(tiny, set(acc["account_id"]))
    folders["tiny"] = tiny
    nochurn = root / "nochurn"
    shutil.copytree(base, nochurn)
    acc = pd.read_csv(nochurn / "accounts.csv").assign(end_date="")
    acc.to_csv(nochurn / "accounts.csv", index=False)
    folders["nochurn"] = nochurn
    nogoals = root / "nogoals"
    shutil.copytree(base, nogoals)
    (nogoals / "goals.csv").unlink()
    (nogoals / "goal_progress.csv").unlink()
    folders["nogoals"] = nogoals
    attained = root / "attained"
    shutil.copytree(base, attained)
    goals = pd.read_csv(attained / "goals.csv")
    prog = pd.read_csv(attained / "goal_progress.csv").merge(goals[["goal_id", "target"]], on="goal_id")
    prog.assign(value=prog["target"])[["goal_id", "date", "value"]].to_csv(attained / "goal_progress.csv", index=False)
    folders["attained"] = attained
    return folders


def _restrict(folder: Path, ids: set) -> None:
    goals = pd.read_csv(folder / "goals.csv")
    goals = goals[goals["account_id"].isin(ids)]
    goals.to_csv(folder / "goals.csv", index=False)
    prog = pd.read_csv(folder / "goal_progress.csv")
    prog[prog["goal_id"].isin(set(goals["goal_id"]))].to_csv(folder / "goal_progress.csv", index=False)
    use = pd.read_csv(folder / "usage.csv")
    use[use["account_id"].isin(ids)].to_csv(folder / "usage.csv", index=False)


@pytest.mark.slow
def test_degenerate_studies_still_report_what_could_not_be_estimated(tmp_path):
    folders = _degenerate(tmp_path / "data")
    specs = []
    for name, folder in folders.items():
        specs.append(studies.StudySpec(name, P.validate({"data_dir": str(folder), "study": name}, name), name))
    outcomes = studies.run(specs, tmp_path / "out", workers=2)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    res = {n: json.loads((tmp_path / "out" / n / "results.json").read_text()) for n in folders}
    assert any("fewer than 30" in w for w in res["tiny"]["warnings"])
    assert any("No account churned" in w for w in res["nochurn"]["warnings"])
    assert any("no goals table" in w for w in res["nogoals"]["warnings"])
    assert res["nogoals"]["maturity"]["inferred"]["level"] == 2
    assert any("nothing to compare" in w or "could not be estimated" in w for w in res["attained"]["warnings"])
    for r in res.values():
        assert RESULT_KEYS <= set(r)
        assert (tmp_path / "out" / r["study"] / "report.html").exists()
    assert res["tiny"]["attainment_effect"]["time_varying"]["hr"] is None


@pytest.mark.slow
def test_reports_render_in_headless_chromium(run_all, tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import render_reports
    finally:
        sys.path.pop(0)
    if render_reports.chromium() is None:
        pytest.skip("chromium is not installed (make test installs it where it can)")
    from PIL import Image

    _, out = run_all
    assert render_reports.main([str(out), "--out", str(tmp_path)]) == 0
    for png in tmp_path.glob("*.png"):
        img = np.asarray(Image.open(png).convert("L"), dtype=float)
        assert img.shape[1] == 1280
        assert img.std() > 10, f"{png.name} looks blank"


def test_kernels_get_their_own_ipc_sockets():
    """Parallel kernels never share or race for a socket: each manager names its own IPC path up front."""
    a, b = studies.IPCKernelManager(), studies.IPCKernelManager()
    assert a.transport == b.transport == "ipc"
    assert a.ip != b.ip and Path(a.ip).is_absolute() and len(a.ip) < 90


def test_data_without_params_names_the_study_after_the_folder():
    specs = studies.plan(data="data/sample")
    assert [s.name for s in specs] == ["sample"] and specs[0].params["segment"] is None


def test_studies_smaller_than_min_cell_show_nothing(tmp_path):
    from csresearch import report

    generate(WorldConfig(n_accounts=300, seed=8), tmp_path, fmt="parquet")
    p = P.validate({"data_dir": str(tmp_path), "study": "tiny", "segment": "enterprise", "min_cell": 1000}, "test")
    r = report.run(p)
    assert r.results["n_accounts"] is None and r.results["n_churned"] is None
    assert "fewer than 1000 accounts" in report.executive_summary(r)
    assert r.results["attainment_effect"]["time_varying"]["hr"] is None


def test_large_books_sample_the_secondary_analyses_and_switch_to_the_discrete_model():
    from csresearch import report
    from csresearch.data import load

    ds = load("data/sample")
    sub = ds.sample_accounts(1500, seed=5)
    assert len(sub.accounts) == 1500 and sub.accounts["account_id"].is_unique
    assert sub.accounts["account_id"].tolist() == ds.sample_accounts(1500, seed=5).accounts["account_id"].tolist()
    assert set(sub.goals["account_id"]) <= set(sub.accounts["account_id"])
    assert set(sub.goal_progress["goal_id"]) <= set(sub.goals["goal_id"])
    assert set(sub.usage["account_id"]) == set(sub.accounts["account_id"]) & set(ds.usage["account_id"])
    assert ds.sample_accounts(10**6, seed=5) is ds

    p = P.validate({"data_dir": "data/sample", "study": "big", "segment": None, "secondary_max_accounts": 1500,
                    "cox_max_rows": 10_000, "bootstrap": 20}, "test")
    r = report.run(p, ds)
    res = r.results
    assert res["secondary_sample"] == {"accounts": 1500, "of_accounts": 4000, "seed": p["seed"]}
    assert res["n_accounts"] == 4000  # the headline uses every account
    tv = res["attainment_effect"]["time_varying"]
    assert tv["model"] == "discrete" and "cloglog" in tv["method"] and tv["n_rows"] > 10_000
    assert 0.1 < tv["hr"] < 0.4  # planted 0.20
    assert res["usage_vs_outcome"]["model"] == "discrete"
    text = report.methods_text(r)
    assert "complementary log-log" in text and "random sample of 1,500" in text
    assert len(res["metrics"]) > 5 and res["maturity"]["ladder"]
    # the full panel went once the headline had read it; every later analysis ran on the shared frame or the sample
    assert r.ctx._panel_released and not res["errors"], res["errors"]
    assert list(res["not_estimated"]) == ["health_score"], res["not_estimated"]  # the sample names no health score
    # and the goal measurements went once the analyses that read them had run (the sample keeps its own)
    assert r.ctx.goals_released and r.ctx.sample.goal_progress is not None
    with pytest.raises(RuntimeError, match="USES_GOALS"):
        len(r.ctx.ds.goal_progress)


def _assert_same(a, b, where: str) -> None:
    """Two results.json values alike: every text, flag and count equal, every number to 1e-9 relative (two runs of
    the same fits differ in the last digits: the threads' sums)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), where
    else:
        assert a == b, where


def test_a_large_book_lets_its_goal_measurements_go_and_its_answer_stays():
    # on a large book the full book's goal measurements go after the last analysis that reads them (USES_GOALS);
    # every result is the one of the same study that keeps them, the executive page's ARR by attainment included
    from csresearch import report
    from csresearch.context import StudyContext
    from csresearch.data import load

    ds = load("data/sample")
    p = P.validate({"data_dir": "data/sample", "study": "big", "segment": None, "secondary_max_accounts": 1500,
                    "cox_max_rows": 10_000, "bootstrap": 20}, "test")
    kept = StudyContext.release_goals
    try:
        StudyContext.release_goals = lambda self: None
        before = report.run(p, ds).results
    finally:
        StudyContext.release_goals = kept
    r = report.run(p, ds)
    assert r.ctx.goals_released and not r.results["errors"], r.results["errors"]
    assert r.results["executive"]["money"]["by_group"]
    for k in before:
        if k not in ("timings", "python_warnings"):
            _assert_same(r.results[k], before[k], k)
    # a segment's accounts and goals without its measurements, which raise when read (never an empty table)
    seg = ds.for_segment(ds.segments[0], measurements=False)
    assert len(seg.goals) == len(ds.for_segment(ds.segments[0]).goals) > 0
    with pytest.raises(RuntimeError, match="measurements=False"):
        seg.goal_progress["goal_id"]
    # a study without a sample keeps them
    small = StudyContext.build(P.validate({"data_dir": "data/sample", "study": "s"}, "test"), ds)
    small.release_goals()
    assert not small.goals_released and len(small.ds.goal_progress) == len(ds.goal_progress)


@pytest.mark.slow
def test_a_study_of_raw_events_runs_in_the_notebook_kernel(tmp_path):
    # DuckDB inside a Jupyter kernel refuses progress-bar settings; the events path must still load there
    data = tmp_path / "events_world"
    assert main(["generate", "--out", str(data), "--accounts", "600", "--seed", "3", "--format", "parquet",
                 "--events-per-account-month", "4"]) == 0
    (data / "usage.parquet").unlink()
    out = tmp_path / "reports"
    assert main(["study", "--data", str(data), "--out", str(out), "--workers", "1",
                 "--set", "usage_baseline=session"]) == 0
    res = json.loads((out / "events_world" / "results.json").read_text())
    assert res["usage_vs_outcome"]["c_index"]["usage"] is not None
    assert sorted(res["usage_vs_outcome"]["usage_metrics"]) == ["login", "report_created", "session"]
    assert res["attainment_effect"]["time_varying"]["hr"] < 1


def test_the_study_notebook_lists_every_parameter():
    assert studies.NOTEBOOK == ROOT / "csresearch" / "notebooks" / "segment_study.ipynb"
    nb = nbformat.read(studies.NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line and not line.startswith("#")}
    assert {p.name for p in P.PARAMS} - {"output_dir"} <= names


def test_the_cox_limit_has_one_default():
    from csresearch.models import COX_MAX_ROWS

    assert P.defaults()["cox_max_rows"] == COX_MAX_ROWS


def test_a_large_book_lets_its_panel_go_before_the_usage_features_are_added(monkeypatch):
    # the panel (2 GB at 1M accounts) goes as soon as the shared frame's rows are copied from it, so that it never
    # meets the work of the usage features; the frame is the one a book without a sample builds
    from csresearch.attainment_models import AttainmentFrame
    from csresearch.context import StudyContext

    base = {"data_dir": "data/sample", "study": "big", "cox_max_rows": 10_000, "bootstrap": 20}
    ctx = StudyContext.build(P.validate({**base, "secondary_max_accounts": 1500}, "test"))
    usage = ctx.headline_usage
    assert usage and ctx._panel is not None
    seen = []
    add = AttainmentFrame.with_usage_features
    monkeypatch.setattr(AttainmentFrame, "with_usage_features",
                        lambda self: seen.append((ctx._panel is None, ctx._panel_released)) or add(self))
    ctx.release_panel()
    assert seen == [(True, True)] and ctx._frame is not None
    with pytest.raises(RuntimeError, match="USES_PANEL"):
        _ = ctx.panel
    whole = StudyContext.build(P.validate(base, "test")).model_frame(usage)
    shared = ctx.model_frame(usage)
    assert shared.features == whole.features and len(shared.features) == 2 * len(usage)
    pd.testing.assert_frame_equal(shared.data, whole.data)
