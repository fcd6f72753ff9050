"""Render study reports to PNG in headless Chromium, to look at them as a reader would.

    .venv/bin/python tools/render_reports.py REPORTS_DIR [--out DIR] [--study NAME]

Renders REPORTS_DIR/index.html and one study's report.html (the first, or --study) to full-page PNGs and prints
their paths. Chromium runs with the network switched off, so anything a report tried to fetch would be missing.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def render(html: Path, png: Path, width: int = 1280, height: int = 12000) -> Path:
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--screenshot={png}", html.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot of {html}")
    return png


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="where the PNGs go (default: REPORTS/screenshots)")
    ap.add_argument("--study", default=None)
    args = ap.parse_args(argv)
    out = args.out or args.reports / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    studies = sorted(p.parent.name for p in args.reports.glob("*/report.html"))
    if not studies:
        print(f"no study reports under {args.reports}", file=sys.stderr)
        return 2
    study = args.study or studies[0]
    for html, name in ((args.reports / "index.html", "index.png"), (args.reports / study / "report.html", f"{study}.png")):
        print(render(html, out / name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
