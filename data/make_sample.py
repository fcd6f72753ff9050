"""Regenerate the bundled sample, ``data/sample/``, from its fixed arguments.

    python data/make_sample.py            # or: make sample

tests/test_world.py proves the committed files equal a fresh generation with these arguments.
"""
from __future__ import annotations

import sys
from pathlib import Path

from csresearch.world import WorldConfig, generate

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SAMPLE_CONFIG = WorldConfig(n_accounts=4000, seed=2026)
SAMPLE_FORMAT = "parquet"  # about 1 MB; the same world as CSV would be about 17 MB


def main() -> int:
    truth = generate(SAMPLE_CONFIG, SAMPLE_DIR, fmt=SAMPLE_FORMAT, overwrite=True)
    r = truth["realised"]
    print(f"wrote {SAMPLE_DIR}: {r['n_accounts']} accounts, {r['n_churned']} churned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
