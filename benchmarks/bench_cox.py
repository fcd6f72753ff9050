"""Benchmark: fit_cox on a monthly-episode start/stop table vs lifelines.

Builds a counting-process table for N accounts (one row per account-month,
~24 rows each; time in days, so tied event times are common), with three
covariates (time-varying ``usage`` and ``outcome_attained``, constant
``log_seats``), and times

* ``csresearch.survival.fit_cox(..., entry="start", cluster="account")``
  (Efron ties, robust SEs clustered by account; engine "auto"), and
* lifelines ``CoxTimeVaryingFitter`` on the same table (Efron ties; it has no
  robust variance, so it computes less),
* optionally the statsmodels reference engine (``engine="statsmodels"``),

reporting the median of ``--repeats`` runs each, the ratio, and the max
absolute coefficient (and naive SE) difference.

    .venv/bin/python benchmarks/bench_cox.py --accounts 20000
    .venv/bin/python benchmarks/bench_cox.py            # 100000 accounts
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd

from csresearch.survival import fit_cox

COVARIATES = ["usage", "outcome_attained", "log_seats"]


def build_table(n_accounts: int, seed: int = 2024, months: int = 26) -> pd.DataFrame:
    """Monthly (start, stop] episodes in days for ``n_accounts`` accounts."""
    rng = np.random.default_rng(seed)
    # staggered sign-up: each account is observed for months-6 .. months+6 months
    obs = rng.integers(months - 6, months + 7, n_accounts)
    acct = np.repeat(np.arange(n_accounts), obs)
    month = np.arange(len(acct)) - np.repeat(np.cumsum(obs) - obs, obs)
    log_seats = rng.normal(0.0, 1.0, n_accounts)
    usage = rng.normal(0.0, 1.0, len(acct)) + 0.5 * log_seats[acct]
    outcome = (rng.random(len(acct)) < 0.3 + 0.2 * (month > 6)).astype(float)
    eta = -4.8 + 0.4 * usage - 0.6 * outcome + 0.2 * log_seats[acct]
    churn = rng.random(len(acct)) < 1.0 - np.exp(-np.exp(eta))
    df = pd.DataFrame(
        {
            "account": acct,
            "start": 30.0 * month,
            "usage": usage,
            "outcome_attained": outcome,
            "log_seats": log_seats[acct],
            "churn": churn,
        }
    )
    # keep each account's rows up to and including its first churn month
    before = df.groupby("account")["churn"].cumsum() - df["churn"]
    df = df[before.to_numpy() == 0].reset_index(drop=True)
    day = rng.integers(1, 31, len(df))
    df["stop"] = np.where(df["churn"], df["start"] + day, df["start"] + 30.0)
    df["event"] = df.pop("churn").astype(int)
    return df[["account", "start", "stop", "event"] + COVARIATES]


def median_time(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=100_000, help="number of accounts (default 100000)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per implementation; the median is reported")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--statsmodels", action="store_true", help="also time engine='statsmodels' (reference)")
    ap.add_argument("--no-lifelines", action="store_true", help="skip lifelines")
    args = ap.parse_args()

    t0 = time.perf_counter()
    df = build_table(args.accounts, seed=args.seed)
    n_ev = int(df["event"].sum())
    print(
        f"table: {args.accounts} accounts, {len(df)} rows ({len(df) / args.accounts:.1f}/account), "
        f"{n_ev} events, {df.loc[df['event'] == 1, 'stop'].nunique()} distinct event times "
        f"(built in {time.perf_counter() - t0:.1f}s)"
    )

    def ours():
        return fit_cox(df, "stop", "event", COVARIATES, entry="start", cluster="account")

    t_ours, res = median_time(ours, args.repeats)
    print(f"csresearch fit_cox (engine={res.info['engine']}, Efron, robust/cluster): {t_ours:8.2f} s (median of {args.repeats})")
    print(res.summary.round(6).to_string())

    if args.statsmodels:
        t_sm, res_sm = median_time(
            lambda: fit_cox(df, "stop", "event", COVARIATES, entry="start", cluster="account", engine="statsmodels"),
            args.repeats,
        )
        d_sm = float(np.max(np.abs(res_sm.params.to_numpy() - res.params.to_numpy())))
        print(f"csresearch fit_cox (engine=statsmodels reference):          {t_sm:8.2f} s; max |coef diff| {d_sm:.2e}")

    if args.no_lifelines:
        return
    from lifelines import CoxTimeVaryingFitter

    cols = ["account", "start", "stop", "event"] + COVARIATES

    def theirs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return CoxTimeVaryingFitter().fit(
                df[cols], event_col="event", start_col="start", stop_col="stop", id_col="account"
            )

    t_ll, ctv = median_time(theirs, args.repeats)
    d_coef = float(np.max(np.abs(ctv.params_.loc[COVARIATES].to_numpy() - res.params.to_numpy())))
    naive_se = np.sqrt(np.diag(np.asarray(res.info["vcov_naive"])))
    d_se = float(np.max(np.abs(ctv.standard_errors_.loc[COVARIATES].to_numpy() - naive_se)))
    print(f"lifelines CoxTimeVaryingFitter (Efron, naive SE only):      {t_ll:8.2f} s (median of {args.repeats})")
    print(f"ratio lifelines / csresearch: {t_ll / t_ours:.1f}x")
    print(f"max |coef difference|: {d_coef:.2e}; max |naive SE difference|: {d_se:.2e}")


if __name__ == "__main__":
    main()
