"""Build the course in notebooks/lessons/: executed lessons, student copies, an HTML rendering, run times.

    python notebooks/lessons/build_course.py all        student copies + HTML course (what `make lessons` runs)
    python notebooks/lessons/build_course.py student    lessons without outputs and without solution cells, and a
                                                        README for learners (what `make lab` builds on demand)
    python notebooks/lessons/build_course.py html       self-contained HTML of every lesson and a contents page
    python notebooks/lessons/build_course.py index [--check]
                                                        rewrite the lesson table in README.md from course.yaml
                                                        (--check: only say whether it is current)
    python notebooks/lessons/build_course.py run LESSON [-p NAME VALUE ...] [--out DIR]
                                                        run one lesson with papermill on other data (a class's own
                                                        seed or segment) and write the executed notebook and its
                                                        HTML to DIR (default build/class; what `make lesson` runs)
    python notebooks/lessons/build_course.py execute [LESSON ...]
                                                        re-run lessons in place with their default parameters
                                                        (for authors: the committed notebooks carry outputs that
                                                        nbval compares with a fresh run)
    python notebooks/lessons/build_course.py time [-p NAME VALUE ...] [--keep DIR] [LESSON ...]
                                                        run lessons with papermill (optionally other parameters)
                                                        and print the seconds each took; --keep DIR keeps the
                                                        executed notebooks

A LESSON is a folder name (``03_churn_vs_attainment``) or its number (``3``). Output goes to ``build/lessons/``
(``--out`` to change it): ``student/NN_name/lesson.ipynb`` + ``student/README.md`` and ``html/index.html`` +
``html/NN_name.html``. Only the lessons folder is read; nothing there is written except by ``execute`` and ``index``.

The time to teach each lesson, its prerequisites and its idea come from ``course.yaml`` (one entry per lesson
folder). An entry whose folder does not exist yet is skipped; a lesson folder without an entry is an error.

Student copies a learner has changed (worked in, saved) are never overwritten: a rebuild keeps them and says so
(``--force`` overwrites them). ``student/.course.json`` records what the build wrote, to tell the two apart.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import html
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "build" / "lessons"
CLASS_OUT = ROOT / "build" / "class"
COURSE = HERE / "course.yaml"
MANIFEST = ".course.json"
KEYS = ("minutes", "prerequisites", "idea")
#: Sections of the course index that are for educators and authors only: the student README leaves them out.
STAFF_SECTIONS = re.compile(r"^##\s+For (educators|authors)\b", re.I)
TABLE_START = "<!-- lessons: the table below is written by `build_course.py index` from course.yaml -->"
TABLE_END = "<!-- /lessons -->"
KERNEL = "python3"
SOLUTION_TAG = "solution"
#: Markup that would load something from the network (the course must open offline). Plain links to documentation
#: (``<a href="https://...">``) load nothing and are allowed.
EXTERNAL = re.compile(r"""src\s*=\s*["']\s*(https?:)?//|<link[^>]*href\s*=\s*["']\s*(https?:)?//"""
                      r"""|url\(\s*["']?\s*(https?:)?//|@import\s+["']\s*(https?:)?//""", re.I)
LESSON_LINK = re.compile(r"""href=(["'])\.\./(\d\d_[A-Za-z0-9_]+)/lesson\.ipynb\1""")
CONTENTS_LINK = re.compile(r"""href=(["'])\.\./README\.md\1""")


def lessons(selected: list[str] | None = None) -> list[Path]:
    """The lesson notebooks (``NN_name/lesson.ipynb``) in course order, optionally only the ``selected`` ones."""
    found = sorted(p for p in HERE.glob("[0-9][0-9]_*/lesson.ipynb"))
    if not selected:
        return found
    out = []
    for s in selected:
        hits = [p for p in found if p.parent.name == s or p.parent.name.split("_")[0] == f"{int(s):02d}"] \
            if s.isdigit() else [p for p in found if p.parent.name == s]
        if not hits:
            raise SystemExit(f"no lesson {s!r}; lessons: {', '.join(p.parent.name for p in found)}")
        out += hits
    return out


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def title(nb: nbformat.NotebookNode) -> str:
    if nb.metadata.get("title"):
        return str(nb.metadata["title"])
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return "Lesson"


def learning_goals(nb: nbformat.NotebookNode) -> list[str]:
    """The bullet points under the lesson's "Learning goals" heading (markdown, without the bullet)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and re.search(r"^##\s+Learning goals", cell.source, re.M):
            part = cell.source.split("Learning goals", 1)[1]
            return [m.group(1).strip() for m in re.finditer(r"^\s*[-*]\s+(.+)$", part, re.M)]
    return []


# -- the course plan (course.yaml) ---------------------------------------------------------------------------
def course_plan(paths: list[Path], source: Path = COURSE) -> dict[str, dict]:
    """The course.yaml entry (minutes, prerequisites, idea) of each lesson in ``paths``, by folder name.

    Entries for folders that do not exist (yet) are skipped; a lesson without a complete entry stops the build
    with a message that names the folder."""
    try:
        entries = (yaml.safe_load(source.read_text(encoding="utf-8")) or {}).get("lessons") or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"{source}: cannot read the course plan: {exc}") from None
    plan = {}
    for path in paths:
        name = path.parent.name
        entry = entries.get(name)
        if entry is None:
            raise SystemExit(f"{source.name}: no entry for the lesson folder {name!r}; add one with "
                             f"{', '.join(KEYS)} (see the top of {source.name})")
        problems = [k for k in KEYS if k not in (entry or {})]
        if not problems:
            if not (isinstance(entry["minutes"], int) and entry["minutes"] > 0):
                problems.append("minutes (a whole number above 0)")
            prereq = entry["prerequisites"]
            if not isinstance(prereq, list) or not all(isinstance(x, (int, str)) and x != "" for x in prereq):
                problems.append("prerequisites (a list of lesson numbers and skills)")
            if not (isinstance(entry["idea"], str) and entry["idea"].strip() and "|" not in entry["idea"]):
                problems.append("idea (one line of text, no '|')")
        if problems:
            raise SystemExit(f"{source.name}: the entry for {name!r} lacks or has a wrong {', '.join(problems)}")
        plan[name] = entry
    return plan


def _number(path: Path) -> int:
    return int(path.parent.name[:2])


def prerequisites_md(prereq: list, paths: list[Path], link: str = "{name}/lesson.ipynb") -> str:
    """Prerequisites as markdown: lesson numbers become links to those lessons (when they exist), skills stay text."""
    by_number = {_number(p): p.parent.name for p in paths}
    parts = []
    for x in prereq:
        if isinstance(x, int):
            name = by_number.get(x)
            parts.append(f"[lesson {x}]({link.format(name=name)})" if name else f"lesson {x}")
        else:
            parts.append(str(x))
    return "; ".join(parts) if parts else "none"


def index_table(paths: list[Path], plan: dict[str, dict] | None = None) -> str:
    """The course index as a markdown table: lesson, minutes, prerequisites, idea (links relative to the folder)."""
    plan = course_plan(paths) if plan is None else plan
    rows = ["| | lesson | minutes | prerequisites | the idea |", "| --- | --- | --- | --- | --- |"]
    for path in paths:
        entry = plan[path.parent.name]
        t = re.sub(r"^Lesson \d+ · ", "", title(read(path)))
        rows.append(f"| {_number(path)} | [{t}]({path.parent.name}/lesson.ipynb) | {entry['minutes']} | "
                    f"{prerequisites_md(entry['prerequisites'], paths)} | {entry['idea']} |")
    total = sum(plan[p.parent.name]["minutes"] for p in paths)
    return "\n".join(rows) + f"\n\n{len(paths)} lessons, about {total // 60} h {total % 60:02d} min of teaching in all."


def with_table(readme: str, table: str) -> str:
    """``readme`` with the text between the table markers replaced by ``table``."""
    start, end = readme.find(TABLE_START), readme.find(TABLE_END)
    if start < 0 or end < start:
        raise SystemExit(f"README.md: the markers {TABLE_START!r} ... {TABLE_END!r} around the lesson table are missing")
    return readme[:start + len(TABLE_START)] + "\n" + table + "\n" + readme[end:]


def student_readme(readme: str, table: str) -> str:
    """The course index for learners: the current lesson table, without the sections for educators and authors
    (which say where the solutions are) and without the markers."""
    text = with_table(readme, table)
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            skipping = bool(STAFF_SECTIONS.match(line))
        if not skipping and line.strip() not in (TABLE_START, TABLE_END):
            kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


# -- execute (authors) ---------------------------------------------------------------------------------------
def execute(path: Path, timeout: int = 600) -> float:
    """Run a lesson in place with its default parameters and kernel ``python3``; return the seconds it took.

    Metadata that changes from run to run (cell timings) is not recorded, so a re-run only changes the
    notebook where an output changed."""
    from nbclient import NotebookClient

    nb = read(path)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL}
    started = time.perf_counter()
    NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - started
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.validate(nb)
    nbformat.write(nb, str(path))
    return seconds


# -- student copies -------------------------------------------------------------------------------------------
def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The lesson without solution cells and without any output: what a learner starts from."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if SOLUTION_TAG not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("papermill", None)
    return nb


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _worked_in(dest: Path, recorded: str | None) -> bool:
    """Whether a learner has changed the student copy at ``dest`` since the build wrote it."""
    if not dest.exists():
        return False
    if recorded is not None:
        return _sha(dest.read_bytes()) != recorded
    try:  # written before the manifest existed: a copy that was run and saved is the learner's
        return any(c.get("execution_count") or c.get("outputs") for c in read(dest).cells if c.cell_type == "code")
    except Exception:  # not a notebook we can read: keep it
        return True


def build_student(paths: list[Path], out: Path, force: bool = False) -> list[Path]:
    """Student copies and the learners' README in ``out/student``; copies a learner changed are kept unless
    ``force``. Returns the lesson copies that are current (written or unchanged)."""
    dest_root = out / "student"
    dest_root.mkdir(parents=True, exist_ok=True)
    plan = course_plan(paths)
    manifest_path = dest_root / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    written = []
    for path in paths:
        name = path.parent.name
        dest = dest_root / name / path.name
        data = nbformat.writes(student_copy(read(path))).encode("utf-8")
        if dest.exists() and dest.read_bytes() == data:
            manifest[name] = _sha(data)
            written.append(dest)
            continue
        if not force and _worked_in(dest, manifest.get(name)):
            print(f"kept {dest} (a learner changed it); delete it, or build with --force, for the new version",
                  file=sys.stderr)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        manifest[name] = _sha(data)
        written.append(dest)
    readme = student_readme((HERE / "README.md").read_text(encoding="utf-8"), index_table(paths, plan))
    (dest_root / "README.md").write_text(readme, encoding="utf-8")  # the contents the last lesson links back to
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return written


# -- HTML -----------------------------------------------------------------------------------------------------
def _exporter():
    from nbconvert import HTMLExporter

    templates = [str(ROOT / "csresearch" / "templates"), str(HERE / "templates")]
    # basedirs: where the template chain lesson -> report -> lab is looked up; paths: so that the lesson template
    # can name its parent explicitly ('report/index.html.j2') without finding itself
    return HTMLExporter(template_name="lesson", extra_template_basedirs=templates, extra_template_paths=templates,
                        exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True)


def _offline(body: str, name: str) -> str:
    leaks = EXTERNAL.findall(body)
    if leaks:
        raise RuntimeError(f"{name}: the HTML would load {len(leaks)} resource(s) from the network")
    return body


def build_html(paths: list[Path], out: Path) -> list[Path]:
    course_plan(paths)  # a lesson without its course.yaml entry stops the build before anything is written
    dest_root = out / "html"
    if dest_root.exists():
        shutil.rmtree(dest_root)
    dest_root.mkdir(parents=True)
    exporter = _exporter()
    entries = []
    for path in paths:
        nb = read(path)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.parent.name}})
        body = LESSON_LINK.sub(lambda m: f"href={m.group(1)}{m.group(2)}.html{m.group(1)}", body)
        body = CONTENTS_LINK.sub(lambda m: f"href={m.group(1)}index.html{m.group(1)}", body)
        dest = dest_root / f"{path.parent.name}.html"
        dest.write_text(_offline(body, dest.name), encoding="utf-8")
        entries.append((path, nb, dest))
    index = dest_root / "index.html"
    index.write_text(_offline(_contents(entries, course_plan(paths)), "index.html"), encoding="utf-8")
    return [index] + [d for _, _, d in entries]


def _inline_md(text: str) -> str:
    """The little markdown a learning goal uses (**bold**, *italic*, `code`), as escaped HTML."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"\*(.+?)\*", r"<em>\1</em>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()


def _prerequisites_html(prereq: list, pages: dict[int, str]) -> str:
    parts = []
    for x in prereq:
        if isinstance(x, int) and x in pages:
            parts.append(f'<a href="{html.escape(pages[x])}">lesson {x}</a>')
        else:
            parts.append(f"lesson {x}" if isinstance(x, int) else _inline_md(str(x)))
    return "; ".join(parts) if parts else "none"


def _contents(entries, plan: dict[str, dict]) -> str:
    items = []
    pages = {_number(path): dest.name for path, _, dest in entries}
    for path, nb, dest in entries:
        entry = plan[path.parent.name]
        goals = "".join(f"<li>{_inline_md(g)}</li>" for g in learning_goals(nb))
        items.append(f'<li><a class="lesson" href="{html.escape(dest.name)}">{html.escape(title(nb))}</a>'
                     f'<span class="files"> · notebook for learners: '
                     f'<code>student/{html.escape(path.parent.name)}/lesson.ipynb</code></span>'
                     f'<p class="plan"><span class="idea">{_inline_md(entry["idea"])}</span><br>'
                     f'<span class="minutes">about {entry["minutes"]} minutes to teach</span> · '
                     f'<span class="prerequisites">prerequisites: '
                     f'{_prerequisites_html(entry["prerequisites"], pages)}</span></p>'
                     f'<ul class="goals">{goals}</ul></li>')
    n = len(entries)
    count = NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)
    total = sum(plan[path.parent.name]["minutes"] for path, _, _ in entries)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>csresearch course: measuring customer success</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;max-width:900px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.5}}
h1{{font-size:1.7em;margin-bottom:.2em}} ol.lessons>li{{margin:1.1em 0}} a.lesson{{font-weight:600;font-size:1.1em}}
.files{{color:#666;font-size:.85em}} ul.goals{{margin:.3em 0 0;color:#333;font-size:.95em}}
code{{background:#f4f6f8;padding:0 .2em;border-radius:3px}} .note{{color:#555;font-size:.92em}}
p.plan{{margin:.2em 0;font-size:.95em}} .minutes,.prerequisites{{color:#555;font-size:.92em}}
</style></head><body>
<h1>Measuring customer success: a course in {count} lessons</h1>
<p>Does reaching the customer's own goals keep customers better than product usage does, and how would you show it?
Each lesson takes one idea, works it through on a synthetic customer base whose true effects are known, and ends with
exercises that check themselves. The pages below show every lesson as executed with its default parameters,
solutions included (marked in green). Teaching the whole course takes about {total // 60} h {total % 60:02d} min.</p>
<ol class="lessons">
{''.join(items)}
</ol>
<p class="note">Learners start from the notebooks in <code>build/lessons/student/</code> (no outputs, no solutions):
<code>make lab</code> opens them in JupyterLab, building them first when they are missing or older than the lessons;
<code>make lab-solutions</code> opens the lessons with their solutions, for educators. Give each class or student its
own data by changing the <code>seed</code> and <code>segment</code> parameters:
<code>make lesson N=3 SEED=7 SEGMENT=smb</code> writes the executed lesson and its HTML to <code>build/class/</code>
(<code>OUT=DIR</code> to change it); in a plain shell, from the repository:
<code>.venv/bin/papermill notebooks/lessons/03_churn_vs_attainment/lesson.ipynb mine.ipynb -p seed 7 -p segment smb</code>.</p>
</body></html>
"""


# -- timings --------------------------------------------------------------------------------------------------
def time_lessons(paths: list[Path], parameters: dict, keep: Path | None = None) -> list[tuple[str, float]]:
    """Run each lesson with papermill (into ``keep``, else a temporary folder); return (lesson, seconds)."""
    import papermill as pm

    results = []
    with tempfile.TemporaryDirectory(prefix="csresearch-course-") as tmp:
        folder = Path(keep) if keep is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            started = time.perf_counter()
            pm.execute_notebook(str(path), str(folder / f"{path.parent.name}.ipynb"), parameters=parameters,
                                kernel_name=KERNEL, cwd=str(path.parent), progress_bar=False)
            results.append((path.parent.name, time.perf_counter() - started))
    return results


# -- a lesson on a class's own data -------------------------------------------------------------------------
def lesson_parameters(nb: nbformat.NotebookNode) -> dict[str, str]:
    """The names the lesson's ``parameters`` cell assigns, with the source of their default values."""
    import ast

    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return {t.id: ast.get_source_segment(cell.source, node.value)
                    for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
    return {}


def run_lesson(path: Path, parameters: dict, out: Path, html_too: bool = True) -> list[Path]:
    """Run one lesson with papermill and ``parameters`` into ``out``; return the notebook (and its HTML page).

    Unknown parameter names and unknown segments are refused before anything runs; the files are named after the
    lesson and its parameters (``03_churn_vs_attainment-seed7-smb.ipynb``), so classes do not overwrite each other."""
    import papermill as pm
    from csresearch.world import SEGMENTS

    known = lesson_parameters(read(path))
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise SystemExit(f"{path.parent.name} takes the parameters {', '.join(known)}; not {', '.join(unknown)}")
    if "segment" in parameters and parameters["segment"] in ("all", "None"):
        parameters = {**parameters, "segment": None}  # every segment
    if parameters.get("segment") is not None and parameters["segment"] not in SEGMENTS:
        raise SystemExit(f"segment {parameters['segment']!r}: use one of {', '.join(SEGMENTS)}, or all")
    short = {"seed": "seed{}", "segment": "{}", "n_accounts": "n{}"}
    tag = "".join("-" + short.get(k, k + "{}").format("all" if v is None else v) for k, v in parameters.items())
    out.mkdir(parents=True, exist_ok=True)
    dest = out / f"{path.parent.name}{tag}.ipynb"
    pm.execute_notebook(str(path), str(dest), parameters=parameters, kernel_name=KERNEL, cwd=str(path.parent),
                        progress_bar=False)
    written = [dest]
    if html_too:
        nb = read(dest)
        body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": dest.stem}})
        page = dest.with_suffix(".html")
        page.write_text(_offline(body, page.name), encoding="utf-8")
        written.append(page)
    return written


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None if text in ("None", "null") else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the csresearch course (see the module docstring).")
    parser.add_argument("command", choices=["all", "student", "html", "index", "run", "execute", "time"])
    parser.add_argument("lessons", nargs="*", help="lesson folders or numbers (default: every lesson)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default: {OUT.relative_to(ROOT)}; with `run`: {CLASS_OUT.relative_to(ROOT)})")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                        help="with `run` and `time`: a parameter for papermill (VALUE is read as JSON, else text)")
    parser.add_argument("--force", action="store_true",
                        help="with `all` and `student`: overwrite student copies a learner has changed")
    parser.add_argument("--check", action="store_true", help="with `index`: only check that README.md is current")
    parser.add_argument("--no-html", action="store_true", help="with `run`: write only the executed notebook")
    parser.add_argument("--keep", type=Path, default=None,
                        help="with `time`: keep the executed notebooks in this folder (e.g. one set per class)")
    args = parser.parse_args(argv)
    if args.command == "run" and len(args.lessons) != 1:
        parser.error("`run` takes one lesson, e.g. `run 3 -p seed 7 -p segment smb`")
    if args.command == "index" and args.lessons:
        parser.error("`index` covers every lesson")
    paths = lessons(args.lessons)
    if not paths:
        print("no lessons found", file=sys.stderr)
        return 1
    out = args.out if args.out is not None else (CLASS_OUT if args.command == "run" else OUT)
    if args.command in ("all", "student"):
        written = build_student(paths, out, force=args.force)
        print(f"student copies: {len(written)} of {len(paths)} lessons current in {out / 'student'}")
    if args.command in ("all", "html"):
        written = build_html(paths, out)
        print(f"HTML course: {written[0]} ({len(written) - 1} lessons)")
    if args.command == "index":
        readme = HERE / "README.md"
        text = readme.read_text(encoding="utf-8")
        new = with_table(text, index_table(paths))
        if args.check:
            if new != text:
                print(f"{readme} is out of date with course.yaml: run build_course.py index", file=sys.stderr)
                return 1
            print(f"{readme}: current")
        elif new != text:
            readme.write_text(new, encoding="utf-8")
            print(f"{readme}: lesson table rewritten from course.yaml")
        else:
            print(f"{readme}: current")
    if args.command == "run":
        params = {name: _parse_value(value) for name, value in args.parameter}
        written = run_lesson(paths[0], params, out, html_too=not args.no_html)
        for path in written:
            print(f"wrote {path}")
    if args.command == "execute":
        for path in paths:
            print(f"{path.parent.name}: executed in {execute(path):.1f} s", flush=True)
    if args.command == "time":
        params = {name: _parse_value(value) for name, value in args.parameter}
        for name, seconds in time_lessons(paths, params, args.keep):
            print(f"{name}: {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
