"""`make lab` starts JupyterLab from the locked environment, and the notebooks' kernel imports csresearch."""
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_make_lab_serves_the_api_headless(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token} --ServerApp.port_retries=0"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    proc = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=ROOT, env=env,
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
        assert "lessons" in listing  # served at notebooks/
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
