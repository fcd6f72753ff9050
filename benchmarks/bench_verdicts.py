"""Do the verdicts follow the evidence? Shares of `supported` findings over many worlds with a known truth.

    .venv/bin/python benchmarks/bench_verdicts.py [--seeds 50] [--accounts 4000] [--workers 2]

Worlds (each seed is a fresh world of ``--accounts`` accounts, `csresearch generate` with these options):

* ``null``        --attainment-hr 1: attainment has no effect; engagement moves usage and progress, not churn
* ``planted``     --attainment-hr 0.5: a moderate effect (the bundled sample plants 0.2, far easier)
* ``confounded``  --attainment-hr 1 --engagement-hr 0.8: no effect of attainment, but engagement lowers churn and
  speeds progress (confounding that usage measures only in part)

For each world the study's own analyses run as `csresearch study` runs them (``attainment_effect`` and, when
registered, ``discrimination``) and the bench prints the share of `supported` verdicts for ``attainment_effect``
(usage-adjusted headline) and ``outcomes_vs_usage`` (out-of-sample ΔC), beside the unadjusted estimate's share, the
coverage of the ΔC interval (against the ΔC of one large world of the same kind, ``--truth-accounts``), and the
optimism of the in-sample C-indices (in-sample minus cross-validated). Targets: false claims <= 5% on the null
world, detection >= 80% on the planted one.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

WORLDS = {"null": {"log_hr_attainment": 0.0},
          "planted": {"log_hr_attainment": math.log(0.5)},
          "confounded": {"log_hr_attainment": 0.0, "log_hr_engagement": math.log(0.8)}}


def one(job: tuple[str, int, int]) -> dict:
    from csresearch import analyses
    from csresearch import params as P
    from csresearch.context import StudyContext
    from csresearch.report import run_analysis
    from csresearch.world import WorldConfig, generate

    world, seed, accounts = job
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        generate(WorldConfig(n_accounts=accounts, seed=seed, **WORLDS[world]), Path(tmp), fmt="parquet")
        ctx = StudyContext.build(P.validate({"data_dir": tmp, "study": f"{world}-{seed}", "bootstrap": 0}, "bench"))
        wanted = {"attainment_effect", "discrimination"}
        results = {m.NAME: run_analysis(ctx, m) for m in analyses.REGISTRY if m.NAME in wanted}
    found = {f.id: f for r in results.values() for f in r.findings}
    eff = results["attainment_effect"].record["attainment_effect"]
    tv = eff["time_varying"]
    out = {"world": world, "seed": seed, "seconds": time.perf_counter() - t0,
           "attainment_effect": found["attainment_effect"].verdict,
           "hr_adjusted": found["attainment_effect"].estimate,
           "unadjusted_supported": bool(tv.get("ci_high") is not None and tv["ci_high"] < 1
                                        and tv["ci_low"] < ctx["margin_hr"]),
           "hr_unadjusted": tv.get("hr")}
    if "discrimination" in results and results["discrimination"].ok:
        d = results["discrimination"].record["discrimination"]
        out.update({"outcomes_vs_usage": found["outcomes_vs_usage"].verdict, "delta_c": d["delta_c"],
                    "optimism": d.get("optimism")})
    elif "outcomes_vs_usage" in found:
        out["outcomes_vs_usage"] = found["outcomes_vs_usage"].verdict
    return out


def truth_delta_c(world: str, accounts: int) -> float | None:
    """ΔC of one large world of the kind: the cross-validated figure with little sampling noise."""
    r = one((world, 99_999, accounts))
    return (r.get("delta_c") or {}).get("estimate")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--accounts", type=int, default=4000)
    ap.add_argument("--truth-accounts", type=int, default=40_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worlds", default="null,planted,confounded")
    ap.add_argument("--json", default=None, help="also write every row to this file")
    args = ap.parse_args(argv)
    worlds = args.worlds.split(",")
    jobs = [(w, 5000 + s, args.accounts) for w in worlds for s in range(args.seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(one, jobs))
        truths = dict(zip(worlds, pool.map(truth_delta_c, worlds, [args.truth_accounts] * len(worlds))))
    print(f"{len(rows)} studies in {time.perf_counter() - t0:.0f} s ({np.mean([r['seconds'] for r in rows]):.1f} s each, "
          f"{args.workers} workers)")
    print(f"{'world':<11} {'n':>3}  {'attainment_effect supported':>28}  {'unadjusted':>10}  "
          f"{'mean HR adj / unadj':>20}  {'outcomes_vs_usage supported':>28}  {'ΔC coverage':>11}  {'optimism':>9}")
    for w in worlds:
        rs = [r for r in rows if r["world"] == w]
        sup = np.mean([r["attainment_effect"] == "supported" for r in rs])
        unadj = np.mean([r["unadjusted_supported"] for r in rs])
        hr_a = np.exp(np.nanmean([math.log(r["hr_adjusted"]) for r in rs if r["hr_adjusted"]]))
        hr_u = np.exp(np.nanmean([math.log(r["hr_unadjusted"]) for r in rs if r["hr_unadjusted"]]))
        ovu = [r.get("outcomes_vs_usage") for r in rs]
        ovu_s = np.mean([v == "supported" for v in ovu]) if any(ovu) else float("nan")
        truth = truths.get(w)
        cover = [r["delta_c"]["ci_low"] <= truth <= r["delta_c"]["ci_high"] for r in rs
                 if truth is not None and r.get("delta_c") and r["delta_c"].get("ci_low") is not None]
        opt = [np.mean(list(r["optimism"].values())) for r in rs if r.get("optimism")]
        print(f"{w:<11} {len(rs):>3}  {sup:>28.0%}  {unadj:>10.0%}  {hr_a:>9.2f} / {hr_u:<8.2f}  {ovu_s:>28.0%}  "
              f"{(np.mean(cover) if cover else float('nan')):>11.0%}  {(np.mean(opt) if opt else float('nan')):>+9.4f}")
    print("ΔC truth per world (large world, cross-validated): "
          + ", ".join(f"{w} {t:+.4f}" if t is not None else f"{w} n/a" for w, t in truths.items()))
    print("targets: attainment_effect supported <= 5% on null, >= 80% on planted; "
          "outcomes_vs_usage supported <= 5% on null, >= 80% on planted")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "truth_delta_c": truths}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
