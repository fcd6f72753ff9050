"""Run parameterised studies: params -> papermill (in parallel) -> HTML report -> results.json -> index.html.

Each study runs the study notebook in its own process with papermill, then converts the executed notebook to a
self-contained HTML report (no code, no prompts, nothing loaded from the network) and moves the finished folder
into place in one rename, so an interrupted or failed run never leaves a half-written report where a good one
was. A failing study does not stop the others; ``index.html`` says which failed and why.

Kernel start races (papermill issue 511: two kernels starting at once pick the same free TCP port) are avoided
by design: kernels talk over IPC sockets named after their own connection file, so no port is ever chosen.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from jupyter_client.manager import AsyncKernelManager
from traitlets import CaselessStrEnum, default

from . import __version__, params as P

#: the study notebook and the report template ship inside the package (package data), so an installed wheel runs studies
NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "segment_study.ipynb"
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: seconds one notebook cell may run before the study is failed (a hung kernel must not block the run);
#: ``csresearch study --cell-timeout`` changes it (a book of millions of accounts on a small machine needs longer)
CELL_TIMEOUT = 3600


class IPCKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels use IPC sockets: nothing to race for when many kernels start at once.

    jupyter_client derives the socket path from the connection file, but only if that file is already named when
    the ``ip`` trait is first read; otherwise every kernel gets the relative path ``kernel-ipc`` in its working
    directory and parallel kernels end up on each other's sockets ("Invalid Signature"). Each kernel here gets
    its own unique socket path up front (short, under the temp folder: Unix socket paths are limited to ~100 bytes).
    """

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _unique_ipc_path(self) -> str:
        return os.path.join(tempfile.gettempdir(), f"csr-{uuid.uuid4().hex}-ipc")


@dataclass
class StudySpec:
    name: str
    params: dict[str, Any]
    source: str


@dataclass
class Outcome:
    name: str
    ok: bool
    seconds: float
    error: str | None = None
    results: dict | None = None
    timings: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------------------------------------
def plan(files: Sequence[str | Path] = (), *, data: str | None = None, segments: str | None = None,
         sets: Sequence[str] = ()) -> list[StudySpec]:
    """Turn params files, ``--data``, ``--segments`` and ``--set`` overrides into validated study specs.

    ``segments="all"`` makes one study per segment found in the data plus an all-segments study; ``"a,b"`` makes
    those. With ``segments`` the first params file (or the defaults) is the template. Paths in a params file are
    relative to its folder, ``data`` and ``--set`` paths to the working directory. Raises ParamsError.
    """
    overrides = dict(P.parse_override(s) for s in sets)
    if overrides:
        P.validate(overrides, "--set")  # blamed on --set, not on the params file they are merged into
    if data is not None:
        overrides["data_dir"] = data
    templates: list[tuple[dict, str]] = []
    for f in files:
        values = own_data_only(P.read_values(f), overrides)
        values.setdefault("study", Path(f).stem)
        templates.append((values, str(f)))
    if not templates:
        values = dict(overrides)
        values.setdefault("study", Path(values.get("data_dir", P.defaults()["data_dir"])).name or "study")
        templates = [(values, "--set/--data" if overrides else "defaults")]
    specs: list[StudySpec] = []
    if segments:
        values, source = templates[0]
        base = P.validate(values, source)
        data_dir = P.check_data_dir(base, source)
        found = _segments_of(data_dir)
        wanted = found if segments == "all" else [s.strip() for s in segments.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in found]
        if unknown:
            raise P.ParamsError(f"--segments: {', '.join(unknown)} not in {data_dir.name} (segments: {', '.join(found)})")
        prefix = values.get("study") if files else data_dir.name
        for seg in wanted:
            specs.append(StudySpec(f"{prefix}_{seg}", P.validate({**values, "segment": seg, "study": f"{prefix}_{seg}"}, source), source))
        if segments == "all":
            specs.append(StudySpec(f"{prefix}_all", P.validate({**values, "segment": None, "study": f"{prefix}_all"}, source), source))
    else:
        for values, source in templates:
            p = P.validate(values, source)
            specs.append(StudySpec(p["study"], p, source))
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise P.ParamsError(f"two studies would write the same folder: {', '.join(dupes)} (give each a distinct 'study')")
    for s in specs:
        s.params["data_dir"] = str(P.check_data_dir(s.params, s.source))
        if s.params["segment"] is not None and s.params["segment"] not in _segments_of(Path(s.params["data_dir"])):
            raise P.ParamsError(f"{s.source}: parameter segment: {s.params['segment']!r} is not a segment of "
                                f"{s.params['data_dir']} ({', '.join(_segments_of(Path(s.params['data_dir'])))})")
    return specs


#: what a params file says about its own data (the team's questionnaire), not about another data set
DATA_BOUND = ("maturity",)


def own_data_only(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A params file's values with ``overrides`` merged in; when the overrides point the study at other data
    (``--data``, ``--set data_dir=``), the file's :data:`DATA_BOUND` keys (its maturity questionnaire) are dropped
    unless the overrides give them too: a team's answers describe the team whose data the file names."""
    merged = {**values, **overrides}
    if "data_dir" in overrides and "data_dir" in values and _same_folder(values["data_dir"], overrides["data_dir"]):
        return merged
    if "data_dir" in overrides:
        for key in DATA_BOUND:
            if key not in overrides:
                merged.pop(key, None)
    return merged


def _same_folder(a: Any, b: Any) -> bool:
    try:
        return Path(str(a)).expanduser().resolve() == Path(str(b)).expanduser().resolve()
    except OSError:
        return False


_SEGMENT_CACHE: dict[Path, list[str]] = {}


def _segments_of(data_dir: Path) -> list[str]:
    from .data import load

    if data_dir not in _SEGMENT_CACHE:
        _SEGMENT_CACHE[data_dir] = load(data_dir).segments
    return _SEGMENT_CACHE[data_dir]


def check_data(specs: Sequence[StudySpec]) -> None:
    """Validate every distinct data folder once before any notebook starts; raise DataValidationError."""
    from .data import DataValidationError, validate

    for d in sorted({s.params["data_dir"] for s in specs}):
        # validate, not load: this process only checks; the studies' kernels load the data themselves
        report = validate(d, as_of=next(s.params["as_of"] for s in specs if s.params["data_dir"] == d))
        if not report.ok:
            raise DataValidationError(report)


# ---------------------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------------------
class OutputFolderError(ValueError):
    """The output folder cannot be created or written; the message names it and says why, in one line."""


def prepare_out(out: str | Path) -> Path:
    """Create the output folder (and its parents) and check that it can be written; raise OutputFolderError."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise OutputFolderError(f"cannot write the output folder {out}: {_why(out, exc)}") from None
    return out


def _why(out: Path, exc: OSError) -> str:
    """Plain words for why ``out`` cannot be made or written (no errno codes)."""
    import errno

    existing = next((p for p in [out, *out.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to write in {existing or out}"
    if exc.errno == errno.EROFS:
        return f"{existing or out} is on a read-only file system"
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    where = f" in {existing}" if existing is not None and existing != out else ""
    if exc.errno == errno.ENOENT:  # the parents exist (mkdir made them), yet the file system refuses: /proc, /sys
        return f"no folder can be created{where}"
    return f"no folder can be created{where} ({(exc.strerror or type(exc).__name__).lower()})"


def run(specs: Sequence[StudySpec], out: str | Path, *, workers: int | None = None, notebook: Path = NOTEBOOK,
        progress=sys.stderr, cell_timeout: int | None = CELL_TIMEOUT) -> list[Outcome]:
    """Run every study (in parallel), then write ``out/index.html``. Returns one Outcome per study.

    ``cell_timeout``: the seconds one cell of a study's notebook may run before that study is failed (None: no
    limit)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _sweep(out)
    workers = max(1, min(workers or os.cpu_count() or 1, len(specs)))
    started = time.perf_counter()
    print(f"running {len(specs)} stud{'y' if len(specs) == 1 else 'ies'} with {workers} worker(s) into {out}/",
          file=progress, flush=True)
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_run_one_process, s, out, notebook, cell_timeout): s for s in specs}
        for i, fut in enumerate(as_completed(futures), 1):
            o = fut.result()
            outcomes.append(o)
            state = _state(o)
            print(f"[{i}/{len(specs)}] {o.name}: {state} ({o.seconds:.1f} s)", file=progress, flush=True)
    order = {s.name: i for i, s in enumerate(specs)}
    outcomes.sort(key=lambda o: order[o.name])
    write_index(outcomes, specs, out, seconds=time.perf_counter() - started)
    print(f"done in {time.perf_counter() - started:.1f} s: {sum(o.ok for o in outcomes)} ok, "
          f"{sum(not o.ok for o in outcomes)} failed; open {out / 'index.html'}", file=progress, flush=True)
    return outcomes


def _state(o: Outcome) -> str:
    """The terminal word for a finished study: "ok", "ok, 7 of 16 parts not estimable", or the failure."""
    if not o.ok:
        return f"FAILED: {o.error}"
    r = o.results or {}
    missing = len(r.get("not_estimated") or {})
    head = next((f for f in r.get("findings", []) if f["id"] == "attainment_effect"), None)
    extra = [f"{missing} of {r.get('parts', missing)} parts not estimable"] if missing else []
    if head is not None and head["verdict"] == "not_estimable" and r.get("study_scope", {}).get("goals", True):
        extra.append("headline not estimable")
    if r.get("errors"):
        extra.append(f"{len(r['errors'])} unexpected error(s), see results.json")
    return ", ".join(["ok", *extra])


def _run_one_process(spec: StudySpec, out: Path, notebook: Path, cell_timeout: int | None) -> Outcome:
    """Run one study in a child process (its own interpreter, its own kernel), collecting its outcome."""
    t0 = time.perf_counter()
    payload = json.dumps({"name": spec.name, "params": spec.params, "out": str(out), "notebook": str(notebook),
                          "cell_timeout": cell_timeout})
    proc = subprocess.run([sys.executable, "-m", "csresearch.studies", payload], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return Outcome(spec.name, False, seconds, error="the study process ended unexpectedly: " + " | ".join(tail))
    return Outcome(spec.name, info["ok"], seconds, info.get("error"), info.get("results"), info.get("timings", {}))


def execute_study(name: str, params: dict, out: Path, notebook: Path = NOTEBOOK,
                  cell_timeout: int | None = CELL_TIMEOUT) -> dict:
    """Execute one study into a temporary folder, render its HTML, then move it into ``out/name`` atomically
    (``cell_timeout``: seconds a notebook cell may run, None for no limit)."""
    import papermill as pm

    out = Path(out)
    final = out / name
    tmp = out / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    timings: dict[str, float] = {}
    try:
        t = time.perf_counter()
        run_params = {**params, "output_dir": str(tmp.resolve()), "study": name}
        try:  # the kernel works in the study's own folder: nothing depends on where the notebook or the project lies
            pm.execute_notebook(str(notebook), str(tmp / "notebook.ipynb"), parameters=run_params,
                                cwd=str(tmp.resolve()), kernel_name="python3", progress_bar=False,
                                kernel_manager_class=IPCKernelManager, start_timeout=120,
                                execution_timeout=cell_timeout)
        except pm.PapermillExecutionError as exc:
            _keep_failed(tmp, out, name)
            return {"ok": False, "error": f"{exc.ename}: {exc.evalue}".strip()[:600], "timings": timings}
        timings["notebook"] = time.perf_counter() - t
        t = time.perf_counter()
        render_html(tmp / "notebook.ipynb", tmp / "report.html")
        timings["html"] = time.perf_counter() - t
        results = json.loads((tmp / "results.json").read_text(encoding="utf-8"))
        results.setdefault("timings", {}).update({k: round(v, 2) for k, v in timings.items()})
        (tmp / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        _swap_in(tmp, final)
        return {"ok": True, "results": results, "timings": timings}
    except Exception as exc:  # noqa: BLE001 - any failure of one study is reported, never raised
        _keep_failed(tmp, out, name)
        error = f"{type(exc).__name__}: {exc}"[:600]
        if type(exc).__name__ == "CellTimeoutError":  # nbclient's: the study was still working, not failing
            error += f" A large book may need longer: csresearch study --cell-timeout {2 * (cell_timeout or 0)} (0: no limit)."
        return {"ok": False, "error": error, "timings": timings}
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, final: Path) -> None:
    """Replace ``final`` by the complete ``tmp`` folder with two renames; if the second fails the old one is put back.

    Between the renames (microseconds) ``final`` is briefly absent, never half-written; a crash exactly there leaves
    the previous report as ``.old-<name>-<pid>``, which the next run puts back (see :func:`_sweep`).
    """
    old = final.with_name(f".old-{final.name}-{os.getpid()}")
    if final.exists():
        final.rename(old)
    try:
        tmp.rename(final)
    except OSError:
        if old.exists() and not final.exists():
            old.rename(final)
        raise
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(out: Path) -> None:
    """Clean up after runs that were killed: drop their temporary folders, restore a report left mid-swap."""
    for path in out.glob(".tmp-*-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
    for path in out.glob(".old-*-*"):
        name, pid = path.name[len(".old-"):].rsplit("-", 1)
        if pid.isdigit() and not _alive(int(pid)):
            if not (out / name).exists():
                path.rename(out / name)
            else:
                shutil.rmtree(path, ignore_errors=True)


def _keep_failed(tmp: Path, out: Path, name: str) -> None:
    """Keep the executed notebook of a failed study as the audit record, beside (not in place of) the good one."""
    nb = tmp / "notebook.ipynb"
    if nb.exists():
        dest = out / ".failed"
        dest.mkdir(exist_ok=True)
        shutil.copy2(nb, dest / f"{name}.ipynb")


# ---------------------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------------------
_EXTERNAL = re.compile(r"""(src|href)\s*=\s*["']\s*(https?:)?//""", re.I)


def render_html(notebook: Path, dest: Path) -> None:
    """Executed notebook -> self-contained HTML for readers: no code, no prompts, no network, a table of contents."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells = [c for c in nb.cells if "parameters" not in c.metadata.get("tags", [])
                and "injected-parameters" not in c.metadata.get("tags", [])]
    for c in nb.cells:  # a reader never sees Python's stderr (warnings, tracebacks, file paths)
        if c.get("outputs"):
            c.outputs = [o for o in c.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    title = report_title(notebook.parent / "results.json")
    nb.metadata["title"] = title
    exporter = HTMLExporter(template_name="report", extra_template_basedirs=[str(TEMPLATES)], exclude_input=True,
                            exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = _with_toc(body)
    leaks = _EXTERNAL.findall(body)
    if leaks:
        raise RuntimeError(f"report would load {len(leaks)} resource(s) from the network")
    tmp = dest.with_suffix(".html.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(dest)


def report_title(results_json: Path) -> str:
    """"smb: customer outcomes and retention (sample, as of 2026-06-30)": the report's <title>, from results.json."""
    try:
        r = json.loads(Path(results_json).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "csresearch study report"
    data = Path(str((r.get("run") or {}).get("data_dir") or "")).name
    where = ", ".join(x for x in (data, f"as of {r['as_of']}" if r.get("as_of") else "") if x)
    return f"{r.get('study') or 'study'}: customer outcomes and retention" + (f" ({where})" if where else "")


_H2 = re.compile(r'<h2 id="([^"]+)">(.*?)(<a class="anchor-link"[^>]*>.*?</a>)?</h2>', re.S)


def _with_toc(body: str) -> str:
    items = [(m.group(1), re.sub(r"<[^>]+>", "", m.group(2)).strip()) for m in _H2.finditer(body)]
    if not items:
        return body
    toc = ('<nav class="cs-toc" aria-label="Contents"><strong>Contents</strong><ol>'
           + "".join(f'<li><a href="#{html.escape(i, quote=True)}">{html.escape(t)}</a></li>' for i, t in items)
           + "</ol></nav>")
    # after the executive page (the answer comes first), else before the first section
    end = body.find("</section>", body.find('class="cs-exec"')) if 'class="cs-exec"' in body else -1
    if end >= 0:
        end += len("</section>")
        return body[:end] + toc + body[end:]
    first = _H2.search(body)
    return body[: first.start()] + toc + body[first.start():]


# ---------------------------------------------------------------------------------------------------------
# the cross-study index
# ---------------------------------------------------------------------------------------------------------
def _forest_png(outcomes: Sequence[Outcome]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from .plots import forest

    rows = []
    for o in outcomes:
        head = next((f for f in (o.results or {}).get("findings", []) if f["id"] == "attainment_effect"), {})
        if o.ok and head.get("verdict") not in (None, "not_estimable"):  # below the data floors: no point to draw
            seg = (o.results.get("executive") or {}).get("scope") or o.results.get("segment") or "All segments"
            rows.append({"label": f"{seg} ({o.results['n_accounts'] or 0:,} accounts)", "hr": head["estimate"],
                         "ci_low": head["ci_low"], "ci_high": head["ci_high"]})
    if not rows:
        return None
    ax = forest(pd.DataFrame(rows), title="Churn hazard ratio, goals fully reached vs no progress, by segment")
    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(ax.figure)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _pooled_by_segment(outcomes: Sequence[Outcome]) -> dict[str, dict]:
    """Each segment's partially pooled estimate, from an all-segments study of the same run (if there is one)."""
    for o in outcomes:
        seg = ((o.results or {}).get("segment_effects") or {}).get("segments") if o.ok else None
        if seg:
            return {s["segment"]: {"hr": s["pooled_hr"], "ci_low": s["pooled_ci_low"], "ci_high": s["pooled_ci_high"]}
                    for s in seg}
    return {}


def _fmt_effect(e: dict | None) -> str:
    if not e or e.get("hr") is None or e.get("ci_low") is None or e.get("ci_high") is None:
        return "not estimated"
    return f"{e['hr']:.2f} ({e['ci_low']:.2f}–{e['ci_high']:.2f})"


INDEX_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em} h2{margin-top:1.8em} table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid #ddd;padding:.4em .5em;text-align:left;vertical-align:top}
th{background:#f4f6f8} td.n{text-align:right;white-space:nowrap} td.status{white-space:nowrap} tr.failed td{background:#fdecea;color:#8a1c12}
img{max-width:100%;height:auto} .note{color:#555;font-size:.9em}
.cs-scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
.cs-scroll table{min-width:720px}
@media (max-width:600px){body{margin:1em auto} h1{font-size:1.3em}}
@media print{body{max-width:none;margin:0} .cs-scroll{overflow:visible} a{color:inherit;text-decoration:none}
 .cs-index-detail{break-before:page}}
"""
#: the executive page's stylesheet, shared with the study reports' template
EXEC_CSS = TEMPLATES / "report" / "exec.css"


def _verdict_words(summary: dict | None) -> str:
    """The index's verdict column: the executive page's answer in two or three words."""
    if not summary or not summary.get("answers"):
        return "not estimated"
    return summary["answers"][0].get("answer") or "not estimated"


def _points_text(summary: dict | None) -> str:
    a = (summary or {}).get("answers") or [{}]
    e = a[0].get("effect")
    if not e or a[0]["verdict"] == "not_estimable":
        return "–"
    return f"{e['points']:+.0f} ({e['points_low']:+.0f} to {e['points_high']:+.0f})"


def _caveats(r: dict) -> str:
    """The study's caveats in a line: the parts not estimated and why the headline is missing, if it is."""
    out = []
    head = next((f for f in r.get("findings", []) if f["id"] == "attainment_effect"), None)
    if head and head["verdict"] == "not_estimable" and head.get("reason"):
        out.append(f"headline not estimable: {head['reason']}")
    missing = r.get("not_estimated") or {}
    if missing:
        out.append(f"{len(missing)} of {r.get('parts', len(missing))} parts not estimable")
    if r.get("warnings"):
        out.append(f"{len(r['warnings'])} caveat{'s' if len(r['warnings']) != 1 else ''} in the report")
    return "; ".join(out) or "none"


def write_index(outcomes: Sequence[Outcome], specs: Sequence[StudySpec], out: Path, seconds: float = 0.0) -> Path:
    """Write ``out/index.html``: each study's answer (the executive page, from its findings), the forest plot by
    segment, the key numbers, failures and run details."""
    from .context import git_commit
    from .executive import render as render_answer

    esc = html.escape
    rows, cards = [], []
    levels = sorted({1 - float((o.results or {}).get("parameters", {}).get("alpha", 0.05)) for o in outcomes if o.ok})
    level = " / ".join(f"{lv * 100:g}%" for lv in levels) or "95%"
    pooled = _pooled_by_segment(outcomes)
    pooled_answers = {a["segment"]: a for o in outcomes if o.ok and o.results and o.results.get("segment") is None
                      for a in ((o.results.get("executive") or {}).get("answers") or [])[1:]}
    for o in sorted(outcomes, key=lambda o: (o.results or {}).get("segment") is not None):  # all segments first
        if o.ok and o.results:
            r = o.results
            summary = r.get("executive")
            if summary:
                cards.append(render_answer(summary, heading=None, link=f"{o.name}/report.html",
                                           pooled=pooled_answers.get(r.get("segment"))))
            eff = r["attainment_effect"]
            found = {f["id"]: f for f in r.get("findings", [])}
            head = found.get("attainment_effect") or {}
            headline = (_fmt_effect({"hr": head.get("estimate"), "ci_low": head.get("ci_low"),
                                     "ci_high": head.get("ci_high")}) if head.get("verdict") != "not_estimable"
                        else "not estimable")
            seg_pooled = (pooled.get(r.get("segment")) if r.get("segment") is not None
                          else (r.get("segment_effects") or {}))
            c = (r.get("discrimination") or {}).get("c_index") or {}
            cidx = (f"{c['usage']:.2f} / {c['attainment']:.2f} / {c['both']:.2f}" if c.get("usage") is not None
                    else "not estimated")
            n_acc = f"{r['n_accounts']:,}" if r["n_accounts"] is not None else "suppressed"
            n_churn = f"{r['n_churned']:,}" if r["n_churned"] is not None else "suppressed"
            scope = (summary or {}).get("scope") or r.get("segment") or "All segments"
            verdict_attrs = (f' data-finding="attainment_effect" data-verdict="{esc(head.get("verdict", ""))}"'
                             if head else "")
            rows.append(f"<tr><td><a href=\"{esc(o.name)}/report.html\">{esc(o.name)}</a></td>"
                        f"<td>{esc(scope)}</td><td class=n>{n_acc}</td>"
                        f"<td class=n>{n_churn}</td><td{verdict_attrs}>{esc(_verdict_words(summary))}</td>"
                        f"<td class=n>{esc(_points_text(summary))}</td><td class=n>{headline}</td>"
                        f"<td class=n>{_fmt_effect(seg_pooled)}</td><td class=n>{_fmt_effect(eff['naive'])}</td>"
                        f"<td class=n>{cidx}</td><td>{esc(_caveats(r))}</td><td class=status>ok, {o.seconds:.0f} s</td></tr>")
        else:
            rows.append(f"<tr class=failed><td>{esc(o.name)}</td><td colspan=10>{esc(o.error or 'failed')}</td>"
                        f"<td>FAILED</td></tr>")
    png = _forest_png(outcomes)
    figure = (f'<img alt="{esc(_forest_alt(outcomes))}" src="data:image/png;base64,{png}">'
              if png else "<p>No study produced an estimate.</p>")
    data_dirs = sorted({Path(s.params["data_dir"]).name for s in specs})
    prints = sorted({(o.results or {}).get("run", {}).get("data_fingerprint", "")[:16] for o in outcomes if o.ok} - {""})
    failed = [o for o in outcomes if not o.ok]
    title = f"Customer outcomes and retention: {', '.join(data_dirs)} ({len(outcomes)} stud{'y' if len(outcomes) == 1 else 'ies'})"
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{INDEX_CSS}{EXEC_CSS.read_text(encoding="utf-8")}</style></head><body>
<h1>Customer outcomes and retention: {len(outcomes)} stud{'y' if len(outcomes) == 1 else 'ies'}</h1>
<p>Each study asks: do accounts that reach their own goals stay longer, and do goals foresee churn better than product
usage? Each card below gives one study's answer in plain words, how sure it is and what it is worth; the report behind
each card holds the evidence.</p>
{'<p class=note><strong>' + str(len(failed)) + ' stud' + ('y' if len(failed) == 1 else 'ies') + ' failed</strong>: see the red rows; an earlier good report, if any, was left in place.</p>' if failed else ''}
<h2>The answers</h2>
<div class="cs-cards">{''.join(cards) or '<p>No study finished.</p>'}</div>
<div class="cs-index-detail">
<h2>Attainment effect by segment</h2>
{figure}
<h2>Key numbers</h2>
<div class="cs-scroll"><table><thead><tr><th>study</th><th>segment</th><th>accounts</th><th>churned</th><th>verdict</th>
<th>churn points over the window, goals reached vs no progress</th><th>hazard ratio, headline</th>
<th>hazard ratio, partially pooled</th><th>hazard ratio, naive (biased)</th><th>C-index usage / outcomes / both (cross-validated)</th>
<th>caveats</th><th>status</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table></div>
<p class=note>The hazard ratio compares accounts that fully reached their goals with accounts that made no progress (below
1 = fewer churn), using attainment as known at the start of each month; {level} confidence intervals in brackets. The
headline is adjusted for tenure, ARR and product usage, and shown only when the study's data floors are met; the verdict
says what that evidence supports. The partially pooled column is each segment's estimate pulled toward the all-segments
random-effects estimate, the more the fewer churn events it rests on (from the all-segments study; on its own row, the
pooled estimate). The naive column uses final attainment as if known from the start; it is shown only to expose
immortal-time bias. Churn points are the model's difference in 12-month churn (or over the window observed) per 100
accounts.</p>
<h2>Run details</h2>
<div class="cs-scroll"><table><tbody>
<tr><th>finished</th><td>{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</td></tr>
<tr><th>wall time</th><td>{seconds:.1f} s</td></tr>
<tr><th>data</th><td>{esc(', '.join(data_dirs))}</td></tr>
<tr><th>data fingerprint (sha256, first 16)</th><td>{esc(', '.join(prints))}</td></tr>
<tr><th>csresearch</th><td>{esc(__version__)}, commit {esc(git_commit() or 'unknown')}</td></tr>
</tbody></table></div>
</div>
</body></html>
"""
    if _EXTERNAL.search(doc):
        raise RuntimeError("index.html would load a resource from the network")
    dest = out / "index.html"
    tmp = dest.with_suffix(".html.tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(dest)
    return dest


def _forest_alt(outcomes: Sequence[Outcome]) -> str:
    parts = []
    for o in outcomes:
        head = next((f for f in (o.results or {}).get("findings", []) if f["id"] == "attainment_effect"), {})
        if o.ok and head.get("verdict") not in (None, "not_estimable"):
            parts.append(f"{o.results.get('segment') or 'all segments'} {head['estimate']:.2f} "
                         f"({head['ci_low']:.2f} to {head['ci_high']:.2f})")
    return ("Forest plot of the churn hazard ratio, goals fully reached against no progress, by segment: "
            + "; ".join(parts)) if parts else "Forest plot of the attainment effect by segment"


def _child(payload: str) -> int:
    """Entry of a study's child process: run it and print one JSON line with the outcome."""
    job = json.loads(payload)
    try:
        info = execute_study(job["name"], job["params"], Path(job["out"]), Path(job["notebook"]),
                             job["cell_timeout"])
    except Exception as exc:  # noqa: BLE001
        info = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
    sys.stdout.write("\n" + json.dumps(info, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
