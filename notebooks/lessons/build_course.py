"""Build the course in notebooks/lessons/: executed lessons, student copies, an HTML rendering, run times.

    python notebooks/lessons/build_course.py all        student copies + HTML course (what `make lessons` runs)
    python notebooks/lessons/build_course.py student    lessons without outputs and without solution cells
    python notebooks/lessons/build_course.py html       self-contained HTML of every lesson and a contents page
    python notebooks/lessons/build_course.py execute [LESSON ...]
                                                        re-run lessons in place with their default parameters
                                                        (for authors: the committed notebooks carry outputs that
                                                        nbval compares with a fresh run)
    python notebooks/lessons/build_course.py time [-p NAME VALUE ...] [--keep DIR] [LESSON ...]
                                                        run lessons with papermill (optionally other parameters)
                                                        and print the seconds each took; --keep DIR keeps the
                                                        executed notebooks

A LESSON is a folder name (``03_churn_vs_attainment``) or its number (``3``). Output goes to ``build/lessons/``
(``--out`` to change it): ``student/NN_name/lesson.ipynb`` and ``html/index.html`` + ``html/NN_name.html``.
Only the lessons folder is read; nothing there is written except by ``execute``.
"""
from __future__ import annotations

import argparse
import copy
import html
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "build" / "lessons"
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


def build_student(paths: list[Path], out: Path) -> list[Path]:
    dest_root = out / "student"
    if dest_root.exists():
        shutil.rmtree(dest_root)
    written = []
    for path in paths:
        dest = dest_root / path.parent.name / path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student_copy(read(path)), str(dest))
        written.append(dest)
    shutil.copy2(HERE / "README.md", dest_root / "README.md")  # the contents the last lesson links back to
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
    index.write_text(_offline(_contents(entries), "index.html"), encoding="utf-8")
    return [index] + [d for _, _, d in entries]


def _inline_md(text: str) -> str:
    """The little markdown a learning goal uses (**bold**, *italic*, `code`), as escaped HTML."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"\*(.+?)\*", r"<em>\1</em>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _contents(entries) -> str:
    items = []
    for path, nb, dest in entries:
        goals = "".join(f"<li>{_inline_md(g)}</li>" for g in learning_goals(nb))
        items.append(f'<li><a class="lesson" href="{html.escape(dest.name)}">{html.escape(title(nb))}</a>'
                     f'<span class="files"> · notebook for learners: '
                     f'<code>student/{html.escape(path.parent.name)}/lesson.ipynb</code></span>'
                     f'<ul class="goals">{goals}</ul></li>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>csresearch course: measuring customer success</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;max-width:900px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.5}}
h1{{font-size:1.7em;margin-bottom:.2em}} ol.lessons>li{{margin:1.1em 0}} a.lesson{{font-weight:600;font-size:1.1em}}
.files{{color:#666;font-size:.85em}} ul.goals{{margin:.3em 0 0;color:#333;font-size:.95em}}
code{{background:#f4f6f8;padding:0 .2em;border-radius:3px}} .note{{color:#555;font-size:.92em}}
</style></head><body>
<h1>Measuring customer success: a course in eight lessons</h1>
<p>Does reaching the customer's own goals keep customers better than product usage does, and how would you show it?
Each lesson takes one idea, works it through on a synthetic customer base whose true effects are known, and ends with
exercises that check themselves. The pages below show every lesson as executed with its default parameters,
solutions included (marked in green).</p>
<ol class="lessons">
{''.join(items)}
</ol>
<p class="note">Learners start from the notebooks in <code>build/lessons/student/</code> (no outputs, no solutions);
run them with JupyterLab (<code>make lab</code>). Give each class or student its own data by changing the
<code>seed</code> and <code>segment</code> parameters, e.g.
<code>papermill lesson.ipynb mine.ipynb -p seed 7 -p segment smb</code>.</p>
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


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None if text in ("None", "null") else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the csresearch course (see the module docstring).")
    parser.add_argument("command", choices=["all", "student", "html", "execute", "time"])
    parser.add_argument("lessons", nargs="*", help="lesson folders or numbers (default: every lesson)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default: {OUT.relative_to(ROOT)})")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                        help="with `time`: a parameter for papermill (VALUE is read as JSON, else text)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="with `time`: keep the executed notebooks in this folder (e.g. one set per class)")
    args = parser.parse_args(argv)
    paths = lessons(args.lessons)
    if not paths:
        print("no lessons found", file=sys.stderr)
        return 1
    if args.command in ("all", "student"):
        written = build_student(paths, args.out)
        print(f"student copies: {len(written)} lessons in {args.out / 'student'}")
    if args.command in ("all", "html"):
        written = build_html(paths, args.out)
        print(f"HTML course: {written[0]} ({len(written) - 1} lessons)")
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
