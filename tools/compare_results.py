"""Compare the results.json files of two report folders, number by number (a behaviour-preserving change moves none).

    python tools/compare_results.py BEFORE_DIR AFTER_DIR [--rtol 1e-9] [--ignore timings,run]

Prints every number that differs (beyond ``rtol``), every key present on one side only, and a summary line;
exits 1 when a shared number moved.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def walk(a, b, path: str, out: dict, rtol: float) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            p = f"{path}.{k}" if path else str(k)
            if k not in b:
                out["only_before"].append(p)
            elif k not in a:
                out["only_after"].append(p)
            else:
                walk(a[k], b[k], p, out, rtol)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out["moved"].append(f"{path}: length {len(a)} -> {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}[{i}]", out, rtol)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        out["numbers"] += 1
        if not (a == b or (math.isfinite(a) and math.isfinite(b) and abs(a - b) <= rtol * max(abs(a), abs(b)))):
            out["moved"].append(f"{path}: {a!r} -> {b!r}")
    elif a != b:
        out["text"].append(f"{path}: {str(a)[:80]!r} -> {str(b)[:80]!r}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rtol", type=float, default=1e-9)
    ap.add_argument("--ignore", default="timings,run", help="top-level keys to skip (comma-separated)")
    args = ap.parse_args(argv)
    ignore = set(filter(None, args.ignore.split(",")))
    moved_any = False
    for before in sorted(Path(args.before).glob("*/results.json")):
        after = Path(args.after) / before.parent.name / "results.json"
        if not after.exists():
            print(f"{before.parent.name}: missing in {args.after}")
            moved_any = True
            continue
        a, b = (json.loads(p.read_text()) for p in (before, after))
        a = {k: v for k, v in a.items() if k not in ignore}
        b = {k: v for k, v in b.items() if k not in ignore}
        out = {"only_before": [], "only_after": [], "moved": [], "text": [], "numbers": 0}
        walk(a, b, "", out, args.rtol)
        print(f"== {before.parent.name}: {out['numbers']} shared numbers, {len(out['moved'])} moved, "
              f"{len(out['text'])} texts differ, {len(out['only_after'])} keys added, {len(out['only_before'])} removed")
        for kind in ("moved", "only_before", "only_after", "text"):
            for line in out[kind]:
                print(f"  {kind}: {line}")
        moved_any |= bool(out["moved"])
    return 1 if moved_any else 0


if __name__ == "__main__":
    sys.exit(main())
