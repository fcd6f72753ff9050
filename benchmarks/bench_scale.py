"""Benchmark at scale: events -> monthly usage (DuckDB vs pandas), the attainment panel, time-varying Cox.

    .venv/bin/python benchmarks/bench_scale.py                      # 100k accounts, ~10M and ~100M events
    .venv/bin/python benchmarks/bench_scale.py --sizes 5 --repeats 3 # only ~10M events

Every measurement runs in its own subprocess (a fresh interpreter, so peak memory is that one job's:
the child's VmHWM from /proc/self/status, and the parent's polling of its VmRSS); the time is the operation's own wall time, measured in
the child (imports and interpreter start excluded). Runs of the compared implementations are
interleaved (agg, scan, pandas, agg, scan, pandas, ...) so their ratios come from the same minutes of a
shared machine; figures are medians. A pandas run whose resident memory passes ``--rss-limit-gb`` is
stopped by the parent, which reports the memory and time at which it was stopped.

Writes BENCHMARKS.md at the repository root (machine, versions, tables) and prints the same tables.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


# -- children: one measurement each ------------------------------------------------------------------

def child(kind: str, path: str) -> dict:
    import numpy as np
    import pandas as pd

    t0 = time.perf_counter()
    out: dict = {}
    if kind == "duckdb_agg":
        from csresearch.data.events import aggregate
        t0 = time.perf_counter()
        out["rows"] = len(aggregate(Path(path)))
    elif kind == "duckdb_dense":
        # what `load` does: the dense account x month x event grid (zeros included), ids shared with accounts
        from csresearch.data.events import aggregate
        world = Path(path).parents[1] / "world"
        accounts = pd.read_parquet(world / "accounts.parquet")
        for c in ("start_date", "end_date"):
            accounts[c] = pd.to_datetime(accounts[c])
        as_of = pd.Timestamp(json.loads((world / "truth.json").read_text())["as_of"])
        t0 = time.perf_counter()
        out["rows"] = len(aggregate(Path(path), accounts=accounts, as_of=as_of))
    elif kind in ("duckdb_count", "duckdb_scan"):
        from csresearch.data.events import connect
        con = connect()
        t0 = time.perf_counter()
        sel = "count(*)" if kind == "duckdb_count" else "sum(length(account_id)), sum(epoch_us(ts)), sum(length(event))"
        out["rows"] = str(con.execute(f"SELECT {sel} FROM read_parquet('{path}/*.parquet')").fetchall()[0][0])
    elif kind == "pandas_agg":
        t0 = time.perf_counter()
        df = pd.read_parquet(path, columns=["account_id", "ts", "event"])
        month = df["ts"].to_numpy().astype("datetime64[M]").astype("datetime64[ns]")
        agg = (df.assign(date=month).groupby(["account_id", "date", "event"], sort=True).size()
               .rename("value").reset_index())
        out["rows"] = len(agg)
    elif kind in ("episodes", "time_varying", "cox_ours", "cox_lifelines"):
        from csresearch.attainment import episodes
        from csresearch.data import load
        t0 = time.perf_counter()
        ds = load(path)
        out["load_seconds"] = time.perf_counter() - t0
        out["load_gb"] = _hwm_gb()
        if kind == "episodes":
            t0 = time.perf_counter()
            ep = episodes(ds)
            out["rows"] = len(ep)
        elif kind == "time_varying":
            from csresearch.analyses import time_varying_effect
            ep = episodes(ds)
            t0 = time.perf_counter()
            fit, eff = time_varying_effect(ds, panel=ep)
            out.update(rows=eff["n_rows"], coef=eff["coef"], hr=eff["hr"], ci=[eff["ci_low"], eff["ci_high"]],
                       method=eff["method"])
        else:
            ep = episodes(ds)
            ep = ep[ep["goals_set"] > 0].reset_index(drop=True)
            ep["account"] = pd.factorize(ep["account_id"])[0]
            cov = ["attainment"]
            t0 = time.perf_counter()
            if kind == "cox_ours":
                from csresearch.survival import fit_cox
                res = fit_cox(ep, "stop", "event", cov, entry="start", cluster="account")
                out["coef"] = float(res.params.iloc[0])
            else:
                import warnings
                from lifelines import CoxTimeVaryingFitter
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ctv = CoxTimeVaryingFitter().fit(ep[["account", "start", "stop", "event"] + cov], event_col="event",
                                                     start_col="start", stop_col="stop", id_col="account")
                out["coef"] = float(ctv.params_.iloc[0])
            out["rows"] = len(ep)
    elif kind.startswith("engine_fit:"):
        # the panel and the discrete-time model on an engine, reading the world's Parquet files itself: pandas never
        # holds a table of the world (the driver's memory is what the engine sends back: a few k x k matrices)
        out.update(_engine_fit(kind.split(":", 1)[1], Path(path)))
        return out | {"hwm_gb": _hwm_gb()}
    elif kind.startswith("equal:"):
        out.update(_equality(Path(path), int(kind.split(":", 1)[1])))
        return out | {"hwm_gb": _hwm_gb()}
    else:
        raise SystemExit(f"unknown kind {kind}")
    out["seconds"] = time.perf_counter() - t0
    out["hwm_gb"] = _hwm_gb()
    return out


def _engine_fit(engine: str, world: Path) -> dict:
    """Build the panel on ``engine`` from the world's Parquet files, write it once to Parquet on the engine (so the
    Newton passes scan columns instead of rebuilding it), and fit the discrete-time model of churn on attainment
    (spline baseline, log-exposure offset, segment strata, SEs clustered by account) with every aggregate computed
    by the engine."""
    from csresearch.engine import connect
    from csresearch.engine.discrete import fit_discrete
    from csresearch.engine.panel import panel

    con = connect(engine)
    as_of = json.loads((world / "truth.json").read_text())["as_of"]
    t0 = time.perf_counter()
    expr = panel(con.read_parquet(str(world / "accounts.parquet")), as_of=as_of,
                 goals=con.read_parquet(str(world / "goals.parquet")),
                 progress=con.read_parquet(str(world / "goal_progress.parquet")))
    expr = expr.filter(expr.attainment.notnull())
    expr = expr.select("account_code", "segment", "event", "tenure_months", "attainment",
                       exposure=(expr.stop - expr.start) / (365.25 / 12))
    folder = Path(tempfile.mkdtemp(prefix=f"panel_{engine}_", dir=world.parent))
    con.to_parquet(expr, str(folder / "panel.parquet") if engine == "duckdb" else str(folder / "panel"))
    t_panel = time.perf_counter() - t0
    table = con.read_parquet(str(folder / "panel.parquet") if engine == "duckdb" else str(folder / "panel" / "*.parquet"))
    rows = int(con.execute(table.count()))
    t1 = time.perf_counter()
    fit = fit_discrete(table, "event", ["attainment"], "tenure_months", strata="segment", cluster="account_code",
                       exposure="exposure", con=con)
    t_fit = time.perf_counter() - t1
    shutil.rmtree(folder, ignore_errors=True)
    row = fit.summary.loc["attainment"]
    return {"rows": rows, "panel_seconds": t_panel, "fit_seconds": t_fit, "seconds": t_panel + t_fit,
            "hr": float(row["hr"]), "ci": [float(row["ci_low"]), float(row["ci_high"])],
            "iterations": fit.info.get("iterations"), "events": int(fit.events)}


def _equality(folder: Path, cox_max_rows: int) -> dict:
    """The panel of a data folder on DuckDB and on Spark (row counts, column sums), and the study's headline effect
    on each engine with ``cox_max_rows`` (0: the discrete-time model, fitted by the engine)."""
    import pandas as pd

    from csresearch.context import StudyContext
    from csresearch.analyses import attainment_effect
    from csresearch.data import load
    from csresearch import params as P

    ds = load(folder)
    out: dict = {"accounts": int(len(ds.accounts))}
    effects = {}
    for engine in ("duckdb", "spark"):
        p = P.validate({"data_dir": str(folder), "engine": engine, "cox_max_rows": cox_max_rows}, "bench")
        t0 = time.perf_counter()
        ctx = StudyContext.build(p, ds=ds)
        panel = ctx.panel
        sums = {c: float(panel[c].sum()) for c in panel.columns if pd.api.types.is_numeric_dtype(panel[c])}
        out[f"{engine}_panel_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rec = attainment_effect.run(ctx).record["attainment_effect"]
        out[f"{engine}_effect_seconds"] = time.perf_counter() - t0
        effects[engine] = {k: rec[k] for k in ("time_varying", "usage_adjusted") if rec.get(k) and rec[k].get("hr")}
        out[f"{engine}_rows"], out[f"{engine}_sums"] = int(len(panel)), sums
    out["rows_equal"] = out["duckdb_rows"] == out["spark_rows"]
    out["max_rel_sum_diff"] = max(abs(out["duckdb_sums"][c] - out["spark_sums"][c]) / max(1.0, abs(out["duckdb_sums"][c]))
                                  for c in out["duckdb_sums"])
    diffs = [abs(effects["duckdb"][m][k] - effects["spark"][m][k]) for m in effects["duckdb"]
             for k in ("hr", "ci_low", "ci_high")]
    out["effects"] = effects
    out["max_hr_ci_diff"] = max(diffs) if diffs else None
    out["method"] = next(iter(effects["duckdb"].values()), {}).get("method")
    return out


def _other_scripts_sections(path: Path) -> str:
    """The sections of an existing BENCHMARKS.md that other scripts wrote (``## ... (benchmarks/other.py)``): kept
    when this script rewrites the file."""
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    parts = text.split("\n## ")
    kept = [p for p in parts[1:] if "(benchmarks/" in p.splitlines()[0] and "bench_scale" not in p.splitlines()[0]]
    return "".join(f"## {p.rstrip()}\n\n" for p in kept)


def _study_summary(reports: Path) -> list[str]:
    """The headline of the large study's results.json, and its timings, as Markdown lines."""
    found = sorted(reports.glob("*/results.json"))
    if not found:
        return []
    res = json.loads(found[0].read_text())
    tv = (res.get("attainment_effect") or {}).get("time_varying") or {}
    uvo = (res.get("usage_vs_outcome") or {}).get("c_index") or {}
    lines = [f"Result: {res.get('n_accounts'):,} accounts, {res.get('n_churned'):,} churned."]
    if tv.get("hr") is not None:
        lines.append(f"Time-varying HR of full versus no attainment {tv['hr']:.3f} ({tv['ci_low']:.3f}-{tv['ci_high']:.3f}; "
                     f"planted 0.20) by {tv.get('method')}.")
    if uvo.get("usage") is not None:
        lines.append(f"C-index usage {uvo['usage']:.3f}, outcomes {uvo['attainment']:.3f}, both {uvo['both']:.3f}.")
    if res.get("secondary_sample"):
        lines.append(f"Secondary analyses on a sample of {res['secondary_sample']['accounts']:,} accounts.")
    lines.append(f"Timings (results.json): {res.get('timings')}. Warnings: {len(res.get('warnings') or [])}.")
    return [" ".join(lines), ""]


def _hwm_gb() -> float:
    with open("/proc/self/status") as f:  # VmHWM: this process's peak RSS since exec (ru_maxrss is not:
        for line in f:                     # it carries the forking parent's RSS over the exec)
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _tree_rss_gb(root: int) -> float:
    """Resident memory of a process and all its descendants (a study runs its notebooks in kernels)."""
    return sum(_tree_rss_split(root).values())


def _tree_rss_split(root: int) -> dict[str, float]:
    """Resident memory (GB) of a process tree, split into the JVM (``java``: a Spark session's driver JVM) and
    everything else (Python: the command, its kernels)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    name: dict[int, str] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
            fields = tail.split()
            children.setdefault(int(fields[1]), []).append(int(d))
            rss[int(d)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            name[int(d)] = head.split("(", 1)[1]
        except (OSError, IndexError, ValueError):
            continue
    out, todo = {"python": 0.0, "java": 0.0}, [root]
    while todo:
        pid = todo.pop()
        out["java" if name.get(pid) == "java" else "python"] += rss.get(pid, 0) / 2**30
        todo.extend(children.get(pid, []))
    return out


def measure_command(cmd: list[str], rss_limit_gb: float) -> dict:
    """Wall time and peak resident memory of a command and its descendants, polled every 0.2 s."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        t0, peak, killed = time.perf_counter(), 0.0, False
        parts = {"python": 0.0, "java": 0.0}
        while proc.poll() is None:
            split = _tree_rss_split(proc.pid)
            parts = {k: max(parts[k], v) for k, v in split.items()}
            peak = max(peak, sum(split.values()))
            if peak > rss_limit_gb and not killed:
                subprocess.run(["pkill", "-KILL", "-P", str(proc.pid)], check=False)
                proc.kill()
                killed = True
            time.sleep(0.2)
        log.seek(0)
        output = log.read()
    return {"seconds": time.perf_counter() - t0, "peak_gb": peak, "python_gb": parts["python"],
            "java_gb": parts["java"], "returncode": proc.returncode, "stopped": killed,
            "result": next((json.loads(line) for line in reversed(output.splitlines()) if line.startswith("{")), None),
            "tail": _failure_lines(output)}


def _failure_lines(output: str) -> list[str]:
    """What a failed command said: the first lines naming an error or exception (a JVM's stack trace ends in
    ``at ...`` frames that say nothing), else its last three lines."""
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    named = [ln for ln in lines if ("Error" in ln or "Exception" in ln) and not ln.startswith("at ")]
    return named[:3] if named else lines[-3:]


def measure(kind: str, path: Path, rss_limit_gb: float) -> dict:
    """Run one child; its result plus peak RSS in GB (or how far it got before being stopped)."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    t0, peak, killed = time.perf_counter(), 0.0, False
    status_file = f"/proc/{proc.pid}/status"
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            with open(status_file) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        peak = max(peak, int(line.split()[1]) / 2**20)
        except OSError:
            pass
        if peak > rss_limit_gb and not killed:
            proc.kill()
            killed = True
        time.sleep(0.05)
    stdout = proc.stdout.read()
    stderr = proc.stderr.read()
    if killed:
        return {"stopped": True, "peak_gb": peak, "seconds": time.perf_counter() - t0}
    if os.waitstatus_to_exitcode(status) != 0:
        return {"failed": stderr.strip().splitlines()[-1] if stderr.strip() else "failed", "peak_gb": peak,
                "seconds": time.perf_counter() - t0}
    res = json.loads(stdout.strip().splitlines()[-1])
    res["peak_gb"] = max(peak, res.get("hwm_gb", 0.0))
    return res


def median_of(results: list[dict]) -> dict:
    ok = [r for r in results if "seconds" in r and not r.get("stopped") and not r.get("failed")]
    if not ok:
        return results[-1] | {"runs": len(results)}
    return {"seconds": statistics.median(r["seconds"] for r in ok), "peak_gb": max(r["peak_gb"] for r in ok),
            "rows": ok[-1].get("rows"), "coef": ok[-1].get("coef"), "runs": len(ok),
            "all": [round(r["seconds"], 2) for r in ok],
            **({"load_seconds": statistics.median(r["load_seconds"] for r in ok)} if all("load_seconds" in r for r in ok)
               else {})}


def fmt_s(r: dict) -> str:
    if r.get("stopped"):
        return f"stopped at {r['peak_gb']:.1f} GB after {r['seconds']:.0f} s"
    if r.get("failed"):
        return f"failed: {r['failed'][:60]}"
    return f"{r['seconds']:.2f} s"


def machine() -> str:
    import duckdb, lifelines, numpy, pandas, pyarrow, statsmodels
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 2**20
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except StopIteration:
        pass
    load = os.getloadavg()
    return (f"- machine: {os.cpu_count()} cores ({cpu}), {mem:.0f} GB RAM, {platform.system()} {platform.release()}; "
            f"load average at start {load[0]:.1f} (shared machine)\n"
            f"- versions: Python {platform.python_version()}, duckdb {duckdb.__version__}, pyarrow {pyarrow.__version__}, "
            f"pandas {pandas.__version__}, numpy {numpy.__version__}, statsmodels {statsmodels.__version__}, "
            f"lifelines {lifelines.__version__}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--sizes", type=float, nargs="+", default=[5, 50],
                    help="events per account-month for each events set (default 5 and 50: ~10M and ~100M events "
                         "at 100k accounts)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big-repeats", type=int, default=1, help="repeats for sets above 30M events (default 1)")
    ap.add_argument("--rss-limit-gb", type=float, default=16.0)
    ap.add_argument("--cox-repeats", type=int, default=2)
    ap.add_argument("--skip-cox", action="store_true")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed after)")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--sections", default="agg,panel,cox,study,engine,equality",
                    help="comma-separated subset of agg (events -> usage), panel (load + episodes), cox (ours vs "
                         "lifelines), study (end-to-end on the large world, once per --engines), engine (panel and "
                         "discrete model on the engine at --engine-accounts), equality (DuckDB vs Spark on the sample "
                         "and a 20k world); default all")
    ap.add_argument("--large-accounts", type=int, default=1_000_000, help="accounts of the large world (default 1M)")
    ap.add_argument("--large-events", type=float, default=5,
                    help="events per account-month of the large world (default 5: ~100M events at 1M accounts)")
    ap.add_argument("--large-world", default=None,
                    help="use this existing folder (accounts, goals, goal_progress, events/; no usage) as the large "
                         "world instead of generating one")
    ap.add_argument("--study-rss-limit-gb", type=float, default=22.0)
    ap.add_argument("--engines", default="duckdb,spark",
                    help="engines of the study section (default duckdb,spark: the study once on each)")
    ap.add_argument("--engine-accounts", type=int, default=5_000_000,
                    help="accounts of the world of the engine section (the panel and the discrete-time model built "
                         "and fitted by the engine from Parquet; default 5M)")
    ap.add_argument("--engine-world", default=None,
                    help="use this existing folder (accounts, goals, goal_progress Parquet) for the engine section")
    ap.add_argument("--engine-fit-engines", default="spark",
                    help="engines of the engine section (default spark; duckdb,spark for both)")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0

    from csresearch.world import WorldConfig, simulate, write, write_events

    sections = set(args.sections.split(","))
    known = {"agg", "panel", "cox", "study", "engine", "equality"}
    if sections - known:
        ap.error(f"--sections: unknown {sorted(sections - known)}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_scale_"))
    lines = ["# Benchmarks", "", "Written by `benchmarks/bench_scale.py` "
             f"(`{' '.join(argv if argv is not None else sys.argv[1:])}`; sections: {', '.join(sorted(sections))}).",
             "", machine(), ""]
    print("\n".join(lines))
    targets: list[tuple[str, str, bool]] = []
    try:
        t0 = time.perf_counter()
        tables, truth = simulate(WorldConfig(n_accounts=args.accounts, seed=1))
        t_sim = time.perf_counter() - t0
        world = work / "world"
        t0 = time.perf_counter()
        write(tables, truth, world, fmt="parquet", overwrite=True)
        t_write = time.perf_counter() - t0
        gen_rows = [f"| simulate {args.accounts:,} accounts | {t_sim:.1f} s | {len(tables['usage']):,} usage rows |",
                    f"| write contract tables (Parquet) | {t_write:.1f} s | |"]
        sets = []
        for n in (args.sizes if "agg" in sections else []):
            folder = work / f"events_{n:g}"
            t0 = time.perf_counter()
            ev = write_events(tables, folder, n, seed=1, as_of=truth["as_of"])
            dt = time.perf_counter() - t0
            size = sum(p.stat().st_size for p in (folder / "events").iterdir()) / 2**20
            gen_rows.append(f"| write_events N={n:g} | {dt:.1f} s | {ev['events']:,} events, {ev['parts']} parts, "
                            f"{size:,.0f} MB ({ev['events'] / dt / 1e6:.1f} M events/s) |")
            sets.append((n, folder / "events", ev["events"], size))
            print(gen_rows[-1], flush=True)
        del tables

        lines += ["## Generation (one run each)", "", "| step | time | output |", "| --- | --- | --- |", *gen_rows, ""]

        # -- events -> monthly usage ---------------------------------------------------------------------
        if "agg" not in sections:
            sets = []
        lines += ["## Events -> monthly usage", "",
                  "DuckDB: `csresearch.data.events.aggregate` (read_parquet on the folder, date_trunc month, GROUP BY, "
                  "ORDER BY, Arrow result to pandas, one str object per distinct id). pandas: `pd.read_parquet(folder)` + numpy month floor + "
                  "`groupby([account_id, date, event]).size()`. COUNT(*): `SELECT count(*) FROM read_parquet(...)` "
                  "(DuckDB answers it from the Parquet footers, so it reads no column data); full scan: "
                  "`SELECT sum(length(account_id)), sum(epoch_us(ts)), sum(length(event))` (decodes every value of the "
                  "three columns).", "",
                  "DuckDB dense: the same with `accounts=` (what `load` does: every account x month x event type "
                  "of the accounts' lives, zeros included, streamed cell by cell from DuckDB into numpy).", "",
                  "| events | Parquet | DuckDB agg | DuckDB dense | COUNT(*) | full scan | pandas | pandas / DuckDB agg | "
                  "agg / COUNT(*) | agg / full scan | peak RSS DuckDB agg | peak RSS dense | peak RSS pandas | runs |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for n, folder, n_ev, size in sets:
            reps = args.repeats if n_ev <= 30e6 else args.big_repeats  # pandas only; DuckDB always --repeats
            runs: dict[str, list[dict]] = {k: [] for k in ("duckdb_agg", "duckdb_dense", "duckdb_count", "duckdb_scan",
                                                           "pandas_agg")}
            for r in range(args.repeats):
                for kind in runs:
                    if kind == "pandas_agg" and r >= reps:
                        continue
                    if kind == "pandas_agg" and runs[kind] and runs[kind][-1].get("stopped"):
                        continue
                    res = measure(kind, folder, args.rss_limit_gb)
                    runs[kind].append(res)
                    print(f"  {n_ev:>12,} {kind:<14} {fmt_s(res):>32}  peak {res['peak_gb']:.2f} GB", flush=True)
            m = {k: median_of(v) for k, v in runs.items()}
            agg, cnt, scan, pdr = m["duckdb_agg"], m["duckdb_count"], m["duckdb_scan"], m["pandas_agg"]
            if "seconds" in pdr and not pdr.get("stopped") and not pdr.get("failed"):
                targets.append((f"events -> usage at {n_ev / 1e6:,.1f}M events: DuckDB >= 5x faster than pandas",
                                f"{pdr['seconds'] / agg['seconds']:.1f}x", pdr["seconds"] / agg["seconds"] >= 5))
            targets.append((f"events -> usage at {n_ev / 1e6:,.1f}M events: within 3x of a bare scan (COUNT(*) / "
                            "decoding every value)", f"{agg['seconds'] / cnt['seconds']:.0f}x / "
                            f"{agg['seconds'] / scan['seconds']:.1f}x", agg["seconds"] / scan["seconds"] <= 3))
            dense = m["duckdb_dense"]
            ratio_pd = (f"{pdr['seconds'] / agg['seconds']:.1f}x" if not pdr.get("stopped") and not pdr.get("failed")
                        else f"> {pdr['seconds'] / agg['seconds']:.1f}x (did not finish)")
            lines.append(f"| {n_ev / 1e6:,.1f}M | {size:,.0f} MB | {fmt_s(agg)} | {fmt_s(dense)} ({dense.get('rows') or 0:,} rows) | "
                         f"{fmt_s(cnt)} | {fmt_s(scan)} | "
                         f"{fmt_s(pdr)} | {ratio_pd} | {agg['seconds'] / cnt['seconds']:.0f}x | "
                         f"{agg['seconds'] / scan['seconds']:.1f}x | {agg['peak_gb']:.2f} GB | {dense['peak_gb']:.2f} GB | "
                         f"{pdr['peak_gb']:.2f} GB | {agg.get('runs')}/{pdr.get('runs', 1)} |")
            print(lines[-1], flush=True)
        lines.append("")

        # -- the large world ----------------------------------------------------------------------------
        large = None
        if sections & {"panel", "study"}:
            if args.large_world:
                large = Path(args.large_world)
            else:
                large = work / "large"
                t0 = time.perf_counter()
                gen = measure_command([sys.executable, "-m", "csresearch", "generate", "--out", str(large),
                                       "--accounts", str(args.large_accounts), "--seed", "1", "--format", "parquet",
                                       "--events-per-account-month", f"{args.large_events:g}", "--force"], 1e9)
                (large / "usage.parquet").unlink()  # the events are the usage: aggregated by DuckDB at load
                gen_line = (f"| generate {args.large_accounts:,} accounts with events N={args.large_events:g} "
                            f"(usage.parquet removed) | {gen['seconds']:.0f} s | peak {gen['peak_gb']:.1f} GB; "
                            f"{' '.join(gen['tail'][-1:])[:120]} |")
                lines += ["## Large world", "", "| step | time | output |", "| --- | --- | --- |", gen_line, ""]
                print(gen_line, flush=True)

        # -- attainment panel and Cox --------------------------------------------------------------------
        lines += ["## Attainment panel and time-varying models", "",
                  f"`load()` then `attainment.episodes` on the {args.accounts:,}-account world above (usage.parquet) "
                  "and on the large world (events aggregated into usage by DuckDB inside `load`). Time columns: "
                  "`load` and the job itself; peak RSS is the whole child's (load included).", "",
                  "| job | world | load | job time | peak RSS | rows | runs | note |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        panel_jobs = []
        if "panel" in sections:
            panel_jobs += [("episodes", world, f"{args.accounts:,}", args.repeats)]
            if large is not None:
                panel_jobs += [("episodes", large, f"{args.large_accounts:,} + events", 1),
                               ("time_varying", large, f"{args.large_accounts:,} + events", 1)]
        for kind, folder, label, reps in panel_jobs:
            runs = [measure(kind, folder, args.study_rss_limit_gb) for _ in range(reps)]
            res = median_of(runs)
            ok = [r for r in runs if "load_seconds" in r]
            load_s = f"{statistics.median(r['load_seconds'] for r in ok):.1f} s" if ok else "-"
            note = f"all {res.get('all')} s" if reps > 1 else ""
            if kind == "time_varying" and ok:
                note = f"{ok[-1]['method']}; HR {ok[-1]['hr']:.3f} ({ok[-1]['ci'][0]:.3f}-{ok[-1]['ci'][1]:.3f})"
            lines.append(f"| `{'attainment.episodes' if kind == 'episodes' else 'analyses.time_varying_effect'}` | "
                         f"{label} | {load_s} | {fmt_s(res)} | {res['peak_gb']:.2f} GB | {res.get('rows') or 0:,} | "
                         f"{res.get('runs')} | {note} |")
            print(lines[-1], flush=True)
        if "cox" in sections and not args.skip_cox:
            ours = median_of([measure("cox_ours", world, 1e9) for _ in range(args.cox_repeats)])
            theirs = median_of([measure("cox_lifelines", world, 1e9) for _ in range(args.cox_repeats)])
            diff = abs(ours["coef"] - theirs["coef"]) if ours.get("coef") is not None and theirs.get("coef") is not None else float("nan")
            label, load_s = f"{args.accounts:,}", lambda r: f"{r['load_seconds']:.1f} s" if "load_seconds" in r else "-"
            lines.append(f"| `survival.fit_cox(entry=, cluster=)` on attainment | {label} | {load_s(ours)} | {fmt_s(ours)} | "
                         f"{ours['peak_gb']:.2f} GB | {ours.get('rows', 0):,} | {ours.get('runs')} | "
                         f"coef {ours.get('coef'):.6f} |")
            lines.append(f"| lifelines `CoxTimeVaryingFitter`, same episode table | {label} | {load_s(theirs)} | "
                         f"{fmt_s(theirs)} | {theirs['peak_gb']:.2f} GB | {theirs.get('rows', 0):,} | {theirs.get('runs')} | "
                         f"lifelines / ours {theirs['seconds'] / ours['seconds']:.1f}x; abs coef diff {diff:.1e} |")
            targets.append((f"time-varying Cox at {args.accounts:,} accounts: csresearch vs lifelines on the same table",
                            f"{theirs['seconds'] / ours['seconds']:.0f}x faster, coefficients equal to {diff:.0e}",
                            diff < 1e-6))
            print("\n".join(lines[-2:]), flush=True)
        lines.append("")

        # -- end to end ----------------------------------------------------------------------------------
        if "study" in sections and large is not None:
            # one pooled study (all segments, stratified) with the default parameters; the events' types are the
            # usage metrics, and `session` is the one that follows active users
            lines += ["## End to end: `csresearch study` on the large world", "",
                      "One study (all segments), one worker, once per engine. Peak RSS is the sum over the command, its "
                      "kernel and (Spark) the driver JVM, polled every 0.2 s; the Python part (command and kernel) and "
                      "the JVM are also given apart.", ""]
            rows = []
            for engine in args.engines.split(","):
                reports = work / f"reports_{engine}"
                cmd = [sys.executable, "-m", "csresearch", "study", "--data", str(large), "--out", str(reports),
                       "--workers", "1", "--set", "usage_baseline=session", "--engine", engine,
                       "--cell-timeout", "0"]  # a 1M study on Spark local on 2 cores runs past the default hour
                res = measure_command(cmd, args.study_rss_limit_gb)
                ok = res["returncode"] == 0
                if engine == "duckdb":
                    targets.append((f"`csresearch study` on {args.large_accounts:,} accounts (DuckDB): peak RSS < 4 GB",
                                    f"{res['peak_gb']:.2f} GB" + ("" if ok else " (did not complete)"),
                                    ok and res["peak_gb"] < 4))
                    targets.append((f"`csresearch study` on {args.large_accounts:,} accounts (DuckDB): wall < 240 s",
                                    f"{res['seconds']:.0f} s", ok and res["seconds"] < 240))
                status = ("stopped at the RSS limit" if res["stopped"] else "completed" if ok
                          else f"failed (exit {res['returncode']}): {' / '.join(res['tail'])[:300]}")
                lines += [f"`{' '.join(['csresearch', *cmd[3:]])}`", "", *_study_summary(reports)]
                rows.append(f"| {engine} | {args.large_accounts:,} | {res['seconds']:.0f} s | {res['peak_gb']:.2f} GB | "
                            f"{res['python_gb']:.2f} GB | {res['java_gb']:.2f} GB | {status} |")
                print(rows[-1], flush=True)
            lines += ["| engine | accounts | wall time | peak RSS (process tree) | Python (command + kernel) | JVM | "
                      "result |", "| --- | --- | --- | --- | --- | --- | --- |", *rows, ""]

        # -- the panel and the model on the engine ----------------------------------------------------------
        if "engine" in sections:
            eworld = Path(args.engine_world) if args.engine_world else work / "engine_world"
            if not args.engine_world:
                gen = measure_command([sys.executable, "-m", "csresearch", "generate", "--out", str(eworld),
                                       "--accounts", str(args.engine_accounts), "--seed", "3", "--format", "parquet",
                                       "--force"], 1e9)
                (eworld / "usage.parquet").unlink(missing_ok=True)  # the panel of this section needs no usage
                lines += [f"Generated {args.engine_accounts:,} accounts (Parquet, streamed a block at a time) in "
                          f"{gen['seconds']:.0f} s at {gen['peak_gb']:.2f} GB peak.", ""]
                targets.append((f"generator, {args.engine_accounts:,} accounts: peak < 8 GB",
                                f"{gen['peak_gb']:.2f} GB in {gen['seconds']:.0f} s", gen["peak_gb"] < 8))
            lines += ["## The panel and the discrete-time model on the engine", "",
                      f"`child engine_fit:<engine>` on {args.engine_accounts:,} accounts: the engine reads the world's "
                      "Parquet files, builds the panel (`csresearch.engine.panel.panel`), writes it once to Parquet, and "
                      "fits the discrete-time model of churn on attainment (spline baseline, log-exposure offset, "
                      "segment strata, SEs clustered by account) with `csresearch.engine.discrete.fit_discrete`. "
                      "Python never holds a table of the world: its memory is the driver's (a few k x k matrices "
                      "and the event rows' times for the knots).", "",
                      "| engine | accounts | panel rows | churn events | panel | fit | Newton iterations | HR (95% CI) | "
                      "Python peak | JVM peak |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
            for engine in args.engine_fit_engines.split(","):
                res = measure_command([sys.executable, __file__, "--child", f"engine_fit:{engine}", str(eworld)], 1e9)
                r = res["result"] or {}
                if r:
                    lines.append(f"| {engine} | {args.engine_accounts:,} | {r['rows']:,} | {r['events']:,} | "
                                 f"{r['panel_seconds']:.0f} s | {r['fit_seconds']:.0f} s | {r['iterations']} | "
                                 f"{r['hr']:.3f} ({r['ci'][0]:.3f}-{r['ci'][1]:.3f}) | {res['python_gb']:.2f} GB | "
                                 f"{res['java_gb']:.2f} GB |")
                else:
                    lines.append(f"| {engine} | {args.engine_accounts:,} | failed: {' / '.join(res['tail'])[:200]} "
                                 "| | | | | | | |")
                if engine == "spark":
                    targets.append((f"panel + discrete model on Spark, {args.engine_accounts:,} accounts: driver "
                                    "(Python) RSS < 2 GB", f"{res['python_gb']:.2f} GB in {res['seconds']:.0f} s",
                                    bool(r) and res["python_gb"] < 2))
                print(lines[-1], flush=True)
            lines.append("")

        # -- DuckDB and Spark give one answer ---------------------------------------------------------------
        if "equality" in sections:
            from csresearch.world import WorldConfig as _WC, generate as _generate

            w20 = work / "world20k"
            if not w20.exists():
                _generate(_WC(n_accounts=20_000, seed=11), w20, fmt="parquet")
            lines += ["## DuckDB and Spark: equal panels, equal hazard ratios", "",
                      "`child equal:0`: the study context on each engine with `cox_max_rows=0` (the discrete-time model "
                      "everywhere: numpy in process on DuckDB, Spark aggregates on Spark); the panel's row count and "
                      "the sum of every numeric column, then the attainment analysis (time-varying and "
                      "usage-adjusted hazard ratios). Differences are absolute.", "",
                      "| data | accounts | panel rows (DuckDB / Spark) | largest relative difference of a column sum | "
                      "largest difference of an HR or interval limit | DuckDB panel + effect | Spark panel + effect |",
                      "| --- | --- | --- | --- | --- | --- | --- |"]
            for label, folder in (("bundled sample", ROOT / "data" / "sample"), ("20k world (seed 11)", w20)):
                res = measure_command([sys.executable, __file__, "--child", "equal:0", str(folder)], 1e9)
                r = res["result"] or {}
                if not r:
                    lines.append(f"| {label} | failed: {' / '.join(res['tail'])[:200]} | | | | | |")
                    continue
                lines.append(f"| {label} | {r['accounts']:,} | {r['duckdb_rows']:,} / {r['spark_rows']:,} | "
                             f"{r['max_rel_sum_diff']:.1e} | {r['max_hr_ci_diff']:.1e} | "
                             f"{r['duckdb_panel_seconds']:.0f} + {r['duckdb_effect_seconds']:.0f} s | "
                             f"{r['spark_panel_seconds']:.0f} + {r['spark_effect_seconds']:.0f} s |")
                targets.append((f"DuckDB vs Spark on the {label}: HRs and interval limits agree to 1e-6",
                                f"{r['max_hr_ci_diff']:.1e}", r["rows_equal"] and r["max_hr_ci_diff"] is not None
                                and r["max_hr_ci_diff"] < 1e-6))
                print(lines[-1], flush=True)
            lines.append("")

        if targets:
            lines += ["## Targets", "", "| target | measured | met |", "| --- | --- | --- |",
                      *[f"| {t} | {v} | {'yes' if ok else 'no'} |" for t, v, ok in targets], ""]
            print("\n".join(lines[-len(targets) - 3:]), flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out)
    kept = _other_scripts_sections(out)
    out.write_text("\n".join(lines) + "\n" + ("\n" + kept if kept else ""), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
