"""Do the maturity ladder's intervals cover? The cross-validated ladder over many synthetic worlds.

    .venv/bin/python benchmarks/bench_ladder.py [--seeds 30] [--accounts 4000] [--first-seed 3000] [--null]
        [--bootstrap 200]

For each seed: generate a world (``--null``: no attainment effect, usage acting on churn instead:
``log_hr_attainment=0, log_hr_engagement=-0.3``) and run :func:`csresearch.maturity.ladder` with the study's
defaults (seed 2026). The worlds are independent draws of the same process, so the spread of a gain over them is
its true sampling spread and their mean is what the cross-validated gain estimates. Prints one line per seed, then
per step: the mean gain, its spread over worlds against the intervals' (half-width / 1.96), how often the interval
covers the mean gain (target about 95%) and how often it lies above or below 0; and the mean in-sample and
cross-validated C per level (their difference is the in-sample optimism).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

from csresearch import maturity
from csresearch.data import load
from csresearch.world import WorldConfig, generate


def run(seeds: int, accounts: int, first_seed: int, null: bool, bootstrap: int) -> dict:
    world = {"log_hr_attainment": 0.0, "log_hr_engagement": -0.3} if null else {}
    frames = []
    t0 = time.perf_counter()
    for seed in range(first_seed, first_seed + seeds):
        with tempfile.TemporaryDirectory() as tmp:
            generate(WorldConfig(n_accounts=accounts, seed=seed, **world), tmp, fmt="parquet")
            lad = maturity.ladder(load(tmp), health_score_metric="health_score", bootstrap=bootstrap)
        frames.append(lad)
        print(f"seed {seed}: C " + " ".join(f"{c:.3f}" for c in lad["c_index"]) + "; in-sample "
              + " ".join(f"{c:.3f}" for c in lad["c_index_in_sample"]), flush=True)

    def stack(col):
        return np.array([f[col].to_numpy(float) for f in frames])

    gain, lo, hi = stack("gain")[:, 1:], stack("gain_ci_low")[:, 1:], stack("gain_ci_high")[:, 1:]
    over, o_lo, o_hi = stack("gain_over_usage")[:, -1], stack("gain_over_usage_ci_low")[:, -1], \
        stack("gain_over_usage_ci_high")[:, -1]
    mean = gain.mean(axis=0)
    return {
        "worlds": seeds, "accounts": accounts, "null": null, "levels": frames[0]["level"].tolist(),
        "gain_mean": mean, "gain_sd": gain.std(axis=0, ddof=1), "interval_sd": ((hi - lo) / 2 / 1.96).mean(axis=0),
        "coverage": ((lo <= mean) & (mean <= hi)).mean(axis=0), "above_0": (lo > 0).mean(axis=0),
        "below_0": (hi < 0).mean(axis=0),
        "over_usage": (over.mean(), ((o_lo <= over.mean()) & (over.mean() <= o_hi)).mean(), (o_lo > 0).mean()),
        "c_mean": stack("c_index").mean(axis=0), "c_in_sample": stack("c_index_in_sample").mean(axis=0),
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--accounts", type=int, default=4000)
    ap.add_argument("--first-seed", type=int, default=3000)
    ap.add_argument("--null", action="store_true", help="worlds without an attainment effect")
    ap.add_argument("--bootstrap", type=int, default=200)
    a = ap.parse_args(argv)
    s = run(a.seeds, a.accounts, a.first_seed, a.null, a.bootstrap)
    kind = "without an attainment effect" if s["null"] else "with the planted attainment effect"
    print(f"\n{s['worlds']} worlds of {s['accounts']} accounts {kind} ({s['elapsed_s']} s):")
    for i, (a_, b_) in enumerate(zip(s["levels"], s["levels"][1:])):
        print(f"  level {a_} -> {b_}: mean gain {s['gain_mean'][i]:+.4f}; SD over worlds {s['gain_sd'][i]:.4f}, "
              f"interval SE {s['interval_sd'][i]:.4f}; covers the mean {s['coverage'][i]:.0%}; "
              f"above 0 {s['above_0'][i]:.0%}, below 0 {s['below_0'][i]:.0%}")
    mean, cover, above = s["over_usage"]
    print(f"  level {s['levels'][-1]} over {s['levels'][0]}: mean gain {mean:+.4f}; covers the mean {cover:.0%}; "
          f"above 0 {above:.0%}")
    print("  mean C per level, cross-validated: " + " ".join(f"{c:.4f}" for c in s["c_mean"])
          + "; in-sample: " + " ".join(f"{c:.4f}" for c in s["c_in_sample"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
