"""Time `csresearch generate` at several sizes and formats (median of repeated runs), with its peak memory.

    .venv/bin/python benchmarks/bench_generate.py [--sizes 10000 100000] [--repeat 3] [--formats parquet csv]
        [--events N] [--block-accounts K] [--work DIR]

Each run is a fresh process (``python -m csresearch generate --seed 1``); its peak resident memory is the
kernel's ``ru_maxrss`` of that process (``os.wait4``; generate starts no processes of its own). The world is
simulated and written a block of accounts at a time, so the peak should stay near one block's whatever the
size, e.g. ``--sizes 1000000 --formats parquet --events 5 --repeat 1`` (about 100M events, ~1 GB on disk;
use ``--work`` for a disk with room when /tmp is small).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of one command, which must succeed."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()}")
    return seconds, usage.ru_maxrss / 2**20  # KB -> GB


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--formats", nargs="+", choices=["parquet", "csv"], default=["parquet", "csv"])
    ap.add_argument("--events", type=float, default=None, metavar="N",
                    help="also write raw events, N per account-month (--events-per-account-month)")
    ap.add_argument("--block-accounts", type=int, default=None, metavar="K", help="accounts per block (default: generate's)")
    ap.add_argument("--work", default=None, help="folder for the generated worlds (default: a temporary folder)")
    args = ap.parse_args(argv)
    extra = ([] if args.events is None else ["--events-per-account-month", f"{args.events:g}"]) + \
            ([] if args.block_accounts is None else ["--block-accounts", str(args.block_accounts)])
    print(f"{'accounts':>10} {'format':>8} {'median s':>9} {'runs':>22} {'peak GB':>8} {'MB':>8}"
          + (f"  (events N={args.events:g})" if args.events is not None else ""))
    for n in args.sizes:
        for fmt in args.formats:
            times, peaks, size = [], [], 0.0
            for _ in range(args.repeat):
                tmp = Path(tempfile.mkdtemp(prefix="bench_generate_", dir=args.work))
                try:
                    seconds, peak = run_once([sys.executable, "-m", "csresearch", "generate", "--out", str(tmp),
                                              "--accounts", str(n), "--seed", "1", "--format", fmt, "--force", *extra])
                    times.append(seconds)
                    peaks.append(peak)
                    size = size_mb(tmp)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            runs = ", ".join(f"{t:.1f}" for t in times)
            print(f"{n:>10} {fmt:>8} {statistics.median(times):>9.1f} {runs:>22} {max(peaks):>8.2f} {size:>8.1f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
