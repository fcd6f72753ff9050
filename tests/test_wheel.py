"""The wheel is self-contained: built, installed from the lock file into a fresh venv, it runs a study from anywhere.

The wheel is built from a copy of the package's sources (the checkout stays clean of build/ and egg-info). When this
interpreter's setuptools can build wheels by itself (setuptools >= 70.1, or the ``wheel`` package) the build uses it
without isolation; otherwise pip builds in an isolated environment, fetching ``setuptools`` and ``wheel`` from the
package index like ``-r requirements.lock`` does.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = {"csresearch/notebooks/segment_study.ipynb", "csresearch/metrics/metrics.yaml",
                "csresearch/templates/report/index.html.j2"}


def _run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _setuptools_builds_wheels() -> bool:
    try:
        version = tuple(int(x) for x in importlib.metadata.version("setuptools").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    try:
        importlib.metadata.version("wheel")
        return True
    except importlib.metadata.PackageNotFoundError:
        return version >= (70, 1)


def build_wheel(dest: Path, work: Path) -> Path:
    """Build the package's wheel into ``dest`` from a copy of its sources in ``work``."""
    src = work / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "csresearch", src / "csresearch", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    isolation = ["--no-build-isolation"] if _setuptools_builds_wheels() else []
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation, "-w", dest, src])
    wheel, = dest.glob("csresearch-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_installs_from_the_lock_file_and_runs_a_study_from_anywhere(tmp_path):
    seconds = {}
    t = time.perf_counter()
    wheel = build_wheel(tmp_path / "dist", tmp_path / "build")
    seconds["build wheel"] = time.perf_counter() - t
    names = set(zipfile.ZipFile(wheel).namelist())
    assert PACKAGE_DATA <= names, PACKAGE_DATA - names
    assert not [n for n in names if n.startswith(("data/", "notebooks/", "tests/", "params/"))]

    # a fresh venv that sees nothing of this checkout or of the test's environment
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    try:
        t = time.perf_counter()
        _run([sys.executable, "-m", "venv", venv], env=env)
        py, exe = venv / "bin" / "python", venv / "bin" / "csresearch"
        _run([py, "-m", "pip", "install", "--quiet", "-r", ROOT / "requirements.lock"], env=env)
        seconds["venv from requirements.lock"] = time.perf_counter() - t
        _run([py, "-m", "pip", "install", "--quiet", "--no-deps", wheel], env=env)

        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        where = _run([py, "-c", "import csresearch; print(csresearch.__file__)"], cwd=elsewhere, env=env).stdout.strip()
        assert Path(where).is_relative_to(venv), where
        classified = json.loads(_run([exe, "classify", "--json"], cwd=elsewhere, env=env).stdout)
        assert len(classified) >= 45  # the bundled catalog, read from the installed package

        t = time.perf_counter()
        _run([exe, "study", "--data", ROOT / "data" / "sample", "--segments", "smb", "--out", "out"],
             cwd=elsewhere, env=env)
        seconds["study"] = time.perf_counter() - t
        out = elsewhere / "out"
        assert (out / "sample_smb" / "results.json").is_file() and (out / "sample_smb" / "report.html").is_file()
        assert (out / "index.html").is_file()
        results = json.loads((out / "sample_smb" / "results.json").read_text())
        assert results["segment"] == "smb" and results["attainment_effect"]["time_varying"]["hr"] < 1
        print("wheel test timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
    finally:  # about 1 GB: not kept among pytest's last temporary folders
        shutil.rmtree(venv, ignore_errors=True)
