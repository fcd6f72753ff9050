"""Time `csresearch generate` at several sizes and formats (median of repeated runs).

    .venv/bin/python benchmarks/bench_generate.py [--sizes 10000 100000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"{'accounts':>10} {'format':>8} {'median s':>9} {'runs':>22} {'MB':>7}")
    for n in args.sizes:
        for fmt in ("parquet", "csv"):
            times, size = [], 0
            for _ in range(args.repeat):
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "csresearch", "generate", "--out", tmp, "--accounts", str(n),
                                    "--seed", "1", "--format", fmt], check=True, capture_output=True)
                    times.append(time.perf_counter() - t0)
                    size = sum(p.stat().st_size for p in Path(tmp).iterdir())
            runs = ", ".join(f"{t:.1f}" for t in times)
            print(f"{n:>10} {fmt:>8} {statistics.median(times):>9.1f} {runs:>22} {size / 1e6:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
