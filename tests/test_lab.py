"""`make lab` starts JupyterLab from the locked environment on the learners' copies of the lessons, `make lab-solutions`
on the lessons themselves, `make lesson` checks its lesson number, and the notebooks' kernel imports csresearch."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _make_n(*args: str) -> str:
    """What make would run (nothing runs), one line per command."""
    done = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_lab_serves_the_student_copies_and_builds_only_those():
    lines = _make_n("lab").splitlines()
    lab = [line for line in lines if "jupyter lab" in line]
    assert len(lab) == 1 and "--ServerApp.root_dir=build/lessons/student" in lab[0]
    assert not [line for line in lines if "build_course.py" in line and " student " not in line]  # no HTML build
    assert "--ServerApp.root_dir=/elsewhere/student" in _make_n("lab", "OUT=/elsewhere")
    assert "--port=8899" in _make_n("lab", "LAB_ARGS=--port=8899")


def test_make_lab_solutions_serves_the_lessons():
    lab = [line for line in _make_n("lab-solutions").splitlines() if "jupyter lab" in line]
    assert len(lab) == 1 and "--ServerApp.root_dir=notebooks/lessons" in lab[0]
    assert "build_course.py" not in _make_n("lab-solutions")


def test_make_lessons_and_make_lesson_take_out():
    assert "build_course.py all --out build/lessons" in _make_n("lessons")
    assert "build_course.py all --out /elsewhere" in _make_n("lessons", "OUT=/elsewhere")
    run = _make_n("lesson", "N=3", "SEED=7", "SEGMENT=smb")
    assert "build_course.py run 3 --out build/class -p seed 7" in run and "-p segment smb" in run
    assert "--out /elsewhere" in _make_n("lesson", "N=3", "OUT=/elsewhere")


@pytest.mark.parametrize("n", ["12", "0", "three", ""])
def test_make_lesson_with_a_bad_number_fails_clearly(n):
    done = subprocess.run(["make", "lesson", f"N={n}", "SEED=7"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f'N must be a lesson number from 1 to 9 (got "{n}")' in done.stderr
    assert "papermill" not in done.stdout and "pip" not in done.stdout  # stopped before anything ran


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_make_lab_serves_the_api_headless(tmp_path):
    """`make lab OUT=tmp` builds the student copies there, then serves them: lessons without solution cells."""
    port, token = _free_port(), secrets.token_hex(16)
    args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token} --ServerApp.port_retries=0"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    proc = subprocess.Popen(["make", "-s", "lab", f"OUT={tmp_path / 'course'}", f"LAB_ARGS={args}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, status, last_error = time.time() + 90, None, None
        while time.time() < deadline and status is None:
            if proc.poll() is not None:
                pytest.fail(f"make lab exited early: {proc.stdout.read().decode(errors='replace')[-2000:]}")
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"})
                status = json.load(urllib.request.urlopen(req, timeout=2))
            except OSError as exc:
                last_error = exc
                time.sleep(0.5)
        assert status is not None, f"no answer from the server: {last_error}"
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/contents", headers={"Authorization": f"token {token}"})
        listing = {item["name"] for item in json.load(urllib.request.urlopen(req, timeout=5))["content"]}
        assert "README.md" in listing and "01_whose_success" in listing  # served at the student copies
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/contents/01_whose_success/lesson.ipynb",
                                     headers={"Authorization": f"token {token}"})
        cells = json.load(urllib.request.urlopen(req, timeout=5))["content"]["cells"]
        assert cells and not [c for c in cells if "solution" in c["metadata"].get("tags", [])]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/kernelspecs", headers={"Authorization": f"token {token}"})
        specs = json.load(urllib.request.urlopen(req, timeout=5))
        assert "python3" in specs["kernelspecs"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_notebook_kernel_imports_csresearch():
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT / "notebooks"))
    try:
        reply = kc.execute_interactive("import csresearch, sys; print(csresearch.__file__, sys.prefix)", timeout=60,
                                       output_hook=lambda msg: outputs.append(msg))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok"
    text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    assert str(ROOT / "csresearch") in text
    assert str(Path(sys.prefix)) in text


outputs: list = []
