"""The course in notebooks/lessons/: the structure every lesson promises, the build, and other parameters.

nbval (``pytest --nbval notebooks/lessons``) re-runs every lesson and compares its outputs; these tests check what
nbval does not: each lesson has learning goals, a parameters cell, exercises with a solution and a check, a summary,
stored outputs from kernel python3, short cells, and a complete entry in course.yaml (minutes, prerequisites, idea);
the course index is current with course.yaml; the student copies (and their README, which leaves out the educators'
section) and the HTML course are built correctly, and a rebuild keeps what a learner changed; a student copy runs
from its own folder; and a lesson runs with another seed and segment.
"""
from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS_DIR = ROOT / "notebooks" / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*/lesson.ipynb"))
MAX_CELL_LINES = 15
VOLATILE = re.compile(r"/tmp/|/var/folders/|\bat 0x[0-9a-f]{6,}|csresearch-lesson-")


def _build_course():
    spec = importlib.util.spec_from_file_location("build_course", LESSONS_DIR / "build_course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def _tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def _headings(nb) -> list[str]:
    return [m.group(1).strip() for c in nb.cells if c.cell_type == "markdown"
            for m in re.finditer(r"^#{1,3}\s+(.+)$", c.source, re.M)]


def _text(output) -> str:
    if output.output_type == "stream":
        return output.text
    data = output.get("data", {})
    return "".join(v for k, v in data.items() if k.startswith("text/") and isinstance(v, str))


def test_there_are_at_least_eight_lessons_numbered_in_order():
    assert len(LESSONS) >= 8
    numbers = [int(p.parent.name[:2]) for p in LESSONS]
    assert numbers == list(range(1, len(LESSONS) + 1))


@pytest.fixture(params=LESSONS, ids=lambda p: p.parent.name)
def lesson(request):
    return request.param, _read(request.param)


def test_lesson_is_a_python3_notebook_with_a_numbered_title(lesson):
    path, nb = lesson
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert re.match(rf"# Lesson {int(path.parent.name[:2])} · \S", first.source)
    assert nb.metadata.get("title", "").startswith(f"Lesson {int(path.parent.name[:2])} · ")


def test_lesson_has_goals_exercises_and_a_summary(lesson):
    _, nb = lesson
    heads = _headings(nb)
    assert "Learning goals" in heads
    assert any(h.startswith("Exercise") for h in heads)
    assert heads[-1] == "Summary" or "Summary" in heads
    goals = _build_course().learning_goals(nb)
    assert len(goals) >= 2


def test_lesson_has_one_parameters_cell_with_seed_and_segment(lesson):
    _, nb = lesson
    cells = [c for c in nb.cells if "parameters" in _tags(c)]
    assert len(cells) == 1 and cells[0].cell_type == "code"
    names = {t.id for node in ast.parse(cells[0].source).body if isinstance(node, ast.Assign) for t in node.targets}
    assert {"seed", "segment"} <= names


def test_lesson_is_stored_executed_in_order_without_errors_or_volatile_text(lesson):
    _, nb = lesson
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "execute the lesson top to bottom"
    outputs = [o for c in code for o in c.outputs]
    assert outputs, "lessons are committed with their outputs"
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"], "no warnings in lessons"
    leaks = [t for o in outputs for t in [_text(o)] if VOLATILE.search(t)]
    assert not leaks, f"volatile text in stored outputs: {leaks[0][:200]}"
    # figures are compared by text only (nbval skips image/png); a stray Axes repr would be compared too
    assert not [o for o in outputs if re.match(r"<(Axes|matplotlib)", o.get("data", {}).get("text/plain", ""))]


def test_code_cells_are_short(lesson):
    _, nb = lesson
    long = [c.source.splitlines()[0] for c in nb.cells
            if c.cell_type == "code" and len(c.source.splitlines()) > MAX_CELL_LINES]
    assert not long, f"cells longer than {MAX_CELL_LINES} lines belong in the package: {long}"


def _has_placeholder(source: str) -> bool:
    return any(isinstance(n, ast.Constant) and n.value is Ellipsis for n in ast.walk(ast.parse(source)))


def test_every_solution_follows_an_exercise_placeholder_and_precedes_a_passing_check(lesson):
    _, nb = lesson
    cells = nb.cells
    solutions = [i for i, c in enumerate(cells) if "solution" in _tags(c)]
    assert solutions, "every lesson has at least one exercise with a solution"
    for i in solutions:
        before, after = cells[i - 1], cells[i + 1]
        assert before.cell_type == "code" and _has_placeholder(before.source), f"cell {i}: no `...` placeholder before"
        assert not _has_placeholder(cells[i].source), f"cell {i}: the solution still holds `...`"
        assert after.cell_type == "code" and re.search(r"\bcheck_\w+\(", after.source), f"cell {i}: no check after"
        shown = "".join(_text(o) for o in after.outputs)
        assert shown.startswith("✔ Correct"), f"cell {i + 1}: the stored check does not pass: {shown[:200]}"


def test_student_copy_has_no_solutions_and_no_outputs(lesson):
    _, nb = lesson
    student = _build_course().student_copy(nb)
    assert not [c for c in student.cells if "solution" in _tags(c)]
    code = [c for c in student.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert any(_has_placeholder(c.source) for c in code)
    n_solutions = sum("solution" in _tags(c) for c in nb.cells)
    assert len(student.cells) == len(nb.cells) - n_solutions
    assert nb.cells[0].source == student.cells[0].source  # the lesson itself is untouched


def test_course_yaml_has_a_complete_entry_for_every_lesson_folder():
    course = _build_course()
    plan = course.course_plan(LESSONS)  # stops, naming the folder, if an entry is missing or incomplete
    assert set(plan) == {p.parent.name for p in LESSONS}
    for path in LESSONS:
        entry, number = plan[path.parent.name], int(path.parent.name[:2])
        assert 10 <= entry["minutes"] <= 180, f"{path.parent.name}: minutes to teach, not to run"
        earlier = [x for x in entry["prerequisites"] if isinstance(x, int)]
        assert all(1 <= x < number for x in earlier), f"{path.parent.name}: prerequisites are earlier lessons"
        assert entry["idea"].strip()
    assert "09_business_functions" in course.yaml.safe_load(course.COURSE.read_text())["lessons"]


def test_course_plan_skips_missing_folders_and_names_a_lesson_without_an_entry(tmp_path):
    course = _build_course()
    plan = tmp_path / "course.yaml"
    plan.write_text(f"lessons:\n  {LESSONS[0].parent.name}: {{minutes: 30, prerequisites: [], idea: one idea}}\n"
                    "  99_not_written_yet: {minutes: 40, prerequisites: [2], idea: later}\n")
    assert list(course.course_plan(LESSONS[:1], plan)) == [LESSONS[0].parent.name]
    with pytest.raises(SystemExit, match=LESSONS[1].parent.name):
        course.course_plan(LESSONS[:2], plan)
    plan.write_text(f"lessons:\n  {LESSONS[0].parent.name}: {{minutes: 30, idea: one idea}}\n")
    with pytest.raises(SystemExit, match=f"{LESSONS[0].parent.name}.*prerequisites"):
        course.course_plan(LESSONS[:1], plan)


def test_course_index_lists_every_lesson_with_its_minutes_and_prerequisites():
    course = _build_course()
    readme = (LESSONS_DIR / "README.md").read_text(encoding="utf-8")
    assert course.with_table(readme, course.index_table(LESSONS)) == readme, \
        "README.md is out of date with course.yaml: run `.venv/bin/python notebooks/lessons/build_course.py index`"
    plan = course.course_plan(LESSONS)
    for path in LESSONS:
        row = next(line for line in readme.splitlines() if f"({path.parent.name}/lesson.ipynb) |" in line)
        assert f"| {plan[path.parent.name]['minutes']} |" in row and plan[path.parent.name]["idea"] in row
    assert "## For educators" in readme  # the index keeps the educators' section; the student README drops it


def test_build_writes_student_copies_and_an_offline_html_course(tmp_path):
    course = _build_course()
    students = course.build_student(LESSONS, tmp_path)
    assert [p.parent.name for p in students] == [p.parent.name for p in LESSONS]
    readme = (tmp_path / "student" / "README.md").read_text(encoding="utf-8")
    assert "## For learners" in readme and "make lab" in readme
    assert not re.search(r"educator|author|solution|exercises\.py|<!--", readme, re.I), \
        "the learners' README says nothing of the educators' notes or where the solutions are"
    plan = course.course_plan(LESSONS)
    for path in LESSONS:
        assert f"({path.parent.name}/lesson.ipynb)" in readme and plan[path.parent.name]["idea"] in readme
    pages = course.build_html(LESSONS, tmp_path)
    index = (tmp_path / "html" / "index.html").read_text(encoding="utf-8")
    for path in LESSONS:
        assert f'href="{path.parent.name}.html"' in index
        assert f"about {plan[path.parent.name]['minutes']} minutes to teach" in index
    assert index.count('class="prerequisites"') == len(LESSONS)
    assert "make lab-solutions" in index and ".venv/bin/papermill" in index
    for page in pages:
        body = page.read_text(encoding="utf-8")
        assert not course.EXTERNAL.search(body), f"{page.name} loads something from the network"
    lesson_page = (tmp_path / "html" / f"{LESSONS[0].parent.name}.html").read_text(encoding="utf-8")
    assert "lesson_world" in lesson_page  # code is shown
    assert "celltag_solution" in lesson_page and "Course contents" in lesson_page
    assert 'lesson.ipynb"' not in lesson_page  # links between lessons point at the HTML pages
    assert "data:image/png;base64," in lesson_page


def test_student_rebuild_keeps_a_copy_the_learner_worked_in(tmp_path, capsys):
    course = _build_course()
    first, second = course.build_student(LESSONS[:2], tmp_path)
    nb = _read(first)
    nb.cells[0].source += "\n\nmy notes"
    nbformat.write(nb, str(first))
    mine = first.read_bytes()
    assert course.build_student(LESSONS[:2], tmp_path) == [second]  # the learner's copy is not current: kept
    assert first.read_bytes() == mine and "kept" in capsys.readouterr().err
    second.unlink()  # a deleted copy comes back
    assert course.build_student(LESSONS[:2], tmp_path, force=True) == [first, second]
    assert first.read_bytes() != mine and second.exists()


def test_run_refuses_unknown_parameters_and_segments_before_running(tmp_path):
    course = _build_course()
    assert set(course.lesson_parameters(_read(LESSONS[0]))) == {"seed", "segment", "n_accounts"}
    with pytest.raises(SystemExit, match="takes the parameters seed, segment, n_accounts"):
        course.run_lesson(LESSONS[0], {"sede": 7}, tmp_path)
    with pytest.raises(SystemExit, match="smb, mid_market, enterprise"):
        course.run_lesson(LESSONS[0], {"segment": "retail"}, tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_student_copy_runs_from_its_folder_and_its_checks_answer_politely(tmp_path):
    """What a learner gets from `make lab`: every cell runs, placeholders included; the checks say "not yet"."""
    from nbclient import NotebookClient

    [copy] = _build_course().build_student(LESSONS[:1], tmp_path)
    nb = _read(copy)
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(copy.parent)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    checks = [c for c in code if re.search(r"\bcheck_\w+\(", c.source)]
    shown = ["".join(_text(o) for o in c.outputs) for c in checks]
    assert checks and all(t.strip() and not t.startswith("✔ Correct") for t in shown), shown


@pytest.mark.slow
@pytest.mark.parametrize("name, parameters", [
    ("03_churn_vs_attainment", {"seed": 7, "segment": "mid_market"}),
    ("06_goodhart", {"seed": 11, "segment": "smb"}),  # a segment without the login campaign: nothing diverges
])
def test_lesson_runs_under_papermill_with_another_seed_and_segment(tmp_path, name, parameters):
    import papermill as pm

    source = LESSONS_DIR / name / "lesson.ipynb"
    out = tmp_path / "run.ipynb"
    pm.execute_notebook(str(source), str(out), parameters=parameters, kernel_name="python3", cwd=str(source.parent),
                        progress_bar=False)
    nb = _read(out)
    injected = [c for c in nb.cells if "injected-parameters" in _tags(c)]
    assert injected and f"seed = {parameters['seed']}" in injected[0].source
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    checks = [c for i, c in enumerate(nb.cells) if i and "solution" in _tags(nb.cells[i - 1])]
    assert all("".join(_text(o) for o in c.outputs).strip() for c in checks), "every check says something"
