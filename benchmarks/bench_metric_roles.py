"""Does classification by data recover the planted metric roles? Recovery rates over many synthetic worlds.

    .venv/bin/python benchmarks/bench_metric_roles.py [--seeds 20] [--accounts 4000] [--first-seed 2026] [--jobs 4]
        [--no-adjust] [--set log_hr_attainment=-1.6]

For each seed: generate a world (truth.json says which KPI is Goldilocks or Papa Bear and which usage metric is
Mama Bear or noise), run :func:`classify_by_data` with its defaults, :func:`goodhart_divergence` and
:func:`vendor_customer_gap`. Prints one line per seed and then, per planted role, the share of (metric, seed)
pairs whose verdict matches it, plus the two halves of the Goldilocks verdict (relevance and attributability
detected) so that a miss can be traced to the axis that failed, and the Goodhart flag rates. A class is given only
on evidence, so each role's misses split into ``inconclusive`` (the data could not tell: an abstention) and a
wrong class (an error); the last line gives the share of wrong classes over every planted (metric, seed) pair.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from csresearch.data import load
from csresearch.metrics import classify_by_data, goodhart_divergence, vendor_customer_gap
from csresearch.world import WorldConfig, generate

EXPECTED_USAGE = {"reports_created": "mama", "health_score": "noise"}


def _flag(value) -> bool:
    return value is not pd.NA and bool(value)


def one_seed(args: tuple[int, int, dict, dict]) -> dict:
    seed, accounts, options, world = args
    with tempfile.TemporaryDirectory() as tmp:
        truth = generate(WorldConfig(n_accounts=accounts, seed=seed, **world), Path(tmp), fmt="parquet")
        ds = load(tmp)
        table, _ = classify_by_data(ds, **options)
        good, _ = goodhart_divergence(ds)
        _, gap = vendor_customer_gap(ds)
    roles = {k: v["role"] for k, v in truth["metrics"]["kpis"].items()}
    t = table.set_index("metric")
    g_seg, g_metric = truth["goodhart"]["segment"], truth["goodhart"]["vendor_metric"]
    planted = good[(good["segment"] == g_seg) & (good["metric"] == g_metric)]["diverging"].any()
    false_flags = good[good["diverging"] & ~((good["segment"] == g_seg) & (good["metric"] == g_metric))]
    return {
        "seed": seed,
        "kpi": {k: {"role": roles[k], "verdict": t.loc[k, "verdict"], "relevant": _flag(t.loc[k, "relevant"]),
                    "attributable": _flag(t.loc[k, "attributable"]), "hr": float(t.loc[k, "relevance_hr"]),
                    "q": float(t.loc[k, "relevance_q"])}
                for k in roles if k in t.index},
        "usage": {m: t.loc[m, "verdict"] for m in t.index if t.loc[m, "kind"] == "usage"},
        "goodhart_planted": bool(planted),
        "goodhart_false": [f"{r.segment}/{r.metric}" for r in false_flags.itertuples()],
        "gap": gap["gap"]["green_not_attained_minus_green_attained"],
        "events": int(table["n_events"].max()),
    }


def run(seeds: int, accounts: int, first_seed: int, jobs: int, options: dict, world: dict | None = None) -> dict:
    t0 = time.perf_counter()
    tasks = [(s, accounts, options, world or {}) for s in range(first_seed, first_seed + seeds)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one_seed, tasks))
    for r in results:
        gold = [v for v in r["kpi"].values() if v["role"] == "goldilocks"]
        ok = sum(v["verdict"] == "goldilocks" for v in gold)
        misses = ", ".join(f"{k}->{v['verdict']}" for k, v in r["kpi"].items()
                           if v["verdict"] != v["role"])
        print(f"seed {r['seed']}: goldilocks {ok}/{len(gold)}; papa {r['kpi']['company_revenue']['verdict']}; "
              + "; ".join(f"{m} {v}" for m, v in r["usage"].items())
              + f"; goodhart {'flagged' if r['goodhart_planted'] else 'MISSED'}"
              + (f" (false: {', '.join(r['goodhart_false'])})" if r["goodhart_false"] else "")
              + f"; gap {100 * r['gap']:+.1f} pts" + (f"\n    misses: {misses}" if misses else ""), flush=True)

    gold = [v for r in results for v in r["kpi"].values() if v["role"] == "goldilocks"]
    papa = [v for r in results for v in r["kpi"].values() if v["role"] == "papa"]
    per_seed_gold = [np.mean([v["verdict"] == "goldilocks" for v in r["kpi"].values() if v["role"] == "goldilocks"])
                     for r in results]
    n = len(results)
    summary = {
        "seeds": n, "accounts": accounts,
        "goldilocks_kpi_rate": float(np.mean([v["verdict"] == "goldilocks" for v in gold])),
        "goldilocks_relevant_rate": float(np.mean([v["relevant"] for v in gold])),
        "goldilocks_attributable_rate": float(np.mean([v["attributable"] for v in gold])),
        "goldilocks_seeds_all": float(np.mean([x == 1 for x in per_seed_gold])),
        "goldilocks_seeds_majority": float(np.mean([x > 0.5 for x in per_seed_gold])),
        "goldilocks_per_seed_min": float(np.min(per_seed_gold)),
        "goldilocks_per_seed_median": float(np.median(per_seed_gold)),
        "goldilocks_misses_as": dict(Counter(v["verdict"] for v in gold if v["verdict"] != "goldilocks")),
        "papa_rate": float(np.mean([v["verdict"] == "papa" for v in papa])),
        "papa_misses_as": dict(Counter(v["verdict"] for v in papa if v["verdict"] != "papa")),
        "goldilocks_inconclusive_rate": float(np.mean([v["verdict"] == "inconclusive" for v in gold])),
        "papa_inconclusive_rate": float(np.mean([v["verdict"] == "inconclusive" for v in papa])),
    }
    for m, role in EXPECTED_USAGE.items():
        summary[f"{m}_{role}_rate"] = float(np.mean([r["usage"].get(m) == role for r in results]))
        summary[f"{m}_inconclusive_rate"] = float(np.mean([r["usage"].get(m) == "inconclusive" for r in results]))
    planted = [(v["role"], v["verdict"]) for r in results for v in r["kpi"].values()]
    planted += [(role, r["usage"].get(m)) for r in results for m, role in EXPECTED_USAGE.items()]
    summary["wrong_class_rate"] = float(np.mean([v not in (role, "inconclusive", "insufficient_data")
                                                 for role, v in planted]))
    summary["logins_verdicts"] = dict(Counter(r["usage"].get("logins") for r in results))
    summary["active_users_verdicts"] = dict(Counter(r["usage"].get("active_users") for r in results))
    summary["goodhart_planted_flag_rate"] = float(np.mean([r["goodhart_planted"] for r in results]))
    summary["goodhart_seeds_with_false_flag"] = float(np.mean([bool(r["goodhart_false"]) for r in results]))
    summary["gap_mean_pts"] = float(100 * np.mean([r["gap"] for r in results]))
    summary["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--accounts", type=int, default=4000)
    ap.add_argument("--first-seed", type=int, default=2026)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--no-adjust", action="store_true", help="relevance without the usage baseline in the model")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a WorldConfig field, e.g. --set log_hr_attainment=-1.6 (repeatable)")
    a = ap.parse_args(argv)
    options = {"adjust_for_baseline": not a.no_adjust}
    world = {}
    for item in a.set:
        key, _, value = item.partition("=")
        try:
            world[key] = float(value)
        except ValueError:
            world[key] = value
    s = run(a.seeds, a.accounts, a.first_seed, a.jobs, options, world)
    extra = f", world overrides {world}" if world else ""
    print(f"\n{s['seeds']} worlds of {s['accounts']} accounts{extra} ({s['elapsed_s']} s), per planted role:")
    print(f"  goldilocks KPIs -> goldilocks: {s['goldilocks_kpi_rate']:.1%} of (KPI, seed) pairs "
          f"(relevance detected {s['goldilocks_relevant_rate']:.1%}, attributability {s['goldilocks_attributable_rate']:.1%}); "
          f"per seed median {s['goldilocks_per_seed_median']:.0%}, min {s['goldilocks_per_seed_min']:.0%}; "
          f"all of them in {s['goldilocks_seeds_all']:.0%} of seeds, a majority in {s['goldilocks_seeds_majority']:.0%}; "
          f"misses: {s['goldilocks_misses_as']}")
    print(f"  company_revenue -> papa: {s['papa_rate']:.0%} (misses: {s['papa_misses_as']})")
    for m, role in EXPECTED_USAGE.items():
        print(f"  {m} -> {role}: {s[f'{m}_{role}_rate']:.0%} (inconclusive {s[f'{m}_inconclusive_rate']:.0%})")
    print(f"  logins: {s['logins_verdicts']}; active_users: {s['active_users_verdicts']}")
    print(f"  Goodhart: planted segment flagged in {s['goodhart_planted_flag_rate']:.0%} of seeds; "
          f"seeds with a false flag elsewhere {s['goodhart_seeds_with_false_flag']:.0%}")
    print(f"  gap (churn, green usage without vs with outcomes): {s['gap_mean_pts']:+.1f} points on average")
    print(f"  inconclusive: goldilocks KPIs {s['goldilocks_inconclusive_rate']:.1%}, company_revenue "
          f"{s['papa_inconclusive_rate']:.0%}; a wrong class (neither the planted role nor inconclusive) for "
          f"{s['wrong_class_rate']:.1%} of planted (metric, seed) pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
