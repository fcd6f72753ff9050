"""Convert the UCI "Iranian Churn" data set into a data-contract folder.

Source: UCI Machine Learning Repository, data set 563 "Iranian Churn" (Iranian telecom operator,
3,150 customers), https://archive.ics.uci.edu/dataset/563/iranian+churn+dataset, licence
CC BY 4.0 (reuse with attribution). The source file is read, never modified.

What the source is: one row per customer, no id, no dates. Usage columns are aggregated over the
first 9 months of a 12-month window; ``Churn`` is the customer's state at the end of month 12
(months 10-12 are a planning gap); ``Subscription  Length`` is the tenure in months. Column names
have doubled spaces in places, kept as published.

Assumptions (the source cannot say; each one is a choice made here):

1. ``as_of`` (default 2024-12-31) is the end of month 12, the date the churn label was observed.
   The 12-month window is the 12 calendar months ending with as_of's month: for the default
   2024-01-01..2024-12-31; usage aggregated over 2024-01-01..2024-09-30; planning gap
   2024-10-01..2024-12-31.
2. ``account_id`` = ``ir-`` + 1-based row number, 4 digits (``ir-0001`` is the first data line).
   Row order is kept. The 300 rows that duplicate another row exactly stay separate accounts
   (they may be distinct customers with identical aggregates); validation warns about them.
3. ``segment`` = ``Tariff Plan``: 1 -> ``pay_as_you_go``, 2 -> ``contractual``. It is the one
   commercial attribute that splits customers the way a vendor's segments do (2,905 vs 245;
   churn 16.8% vs 2.4%). Age group would be a demographic, not a commercial, split.
4. ``start_date`` = as_of minus ``Subscription  Length`` whole months (tenure counted up to as_of).
   With the default as_of, tenure 38 gives 2021-10-31.
5. ``end_date`` (churners only, ``Churn`` = 1) = as_of minus ``churn_offset_days`` (default 45):
   the churn is taken to have happened in the planning gap, placed at its midpoint since the day
   is unknown. Non-churners are active (empty end_date). The exact day carries no information:
   prefer analyses of churn by as_of (a fixed horizon) over ones that use the time of churn.
6. ``observed_from`` = the first day of the window (2024-01-01 by default): the export is a
   cohort of customers present at the start of the window; customers who left earlier are not in
   it, and those who started earlier are only known to have survived until then (left truncation).
7. ``arr`` is left empty. ``Customer Value`` is a score computed by the operator from usage in the
   same window, of unknown definition and currency: not annual recurring revenue. It is kept as
   the extra column ``customer_value``.
8. Every source column is kept in accounts.csv as an extra column with a snake_case name
   (``Subscription  Length`` -> ``subscription_length``, ...), including ``churn`` and
   ``status``. Both are outcomes or near-outcomes: never use them as covariates.
9. usage.csv (long format) has one row per account and metric for the 9-month aggregates:
   ``call_failure``, ``seconds_of_use``, ``frequency_of_use``, ``frequency_of_sms``,
   ``distinct_called_numbers``, ``charge_amount`` (an ordinal 0-10 level, not an amount). Their
   ``date`` is the start of the aggregation period: the window's first day, or the first day of
   the account's start month for accounts that started later (the contract does not allow usage
   before the account's start month). The values are totals known only at the end of month 9:
   an analysis must not use them to predict anything before 2024-10-01.
10. ``Complains``, ``Age Group``, ``Age`` and ``Status`` stay account attributes, not usage.

Checks the conversion keeps (see tests/test_real_data.py): 3,150 accounts, 495 churned; churn
83.0% among customers who complained, 10.1% among the others.

Usage::

    python data/convert_iranian_churn.py /work/shared/real-data/iranian_churn.csv data/iranian_churn
    python data/convert_iranian_churn.py SRC OUT --as-of 2024-12-31 --churn-offset-days 45 --force
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

SOURCE_COLUMNS = [
    "Call  Failure", "Complains", "Subscription  Length", "Charge  Amount", "Seconds of Use",
    "Frequency of use", "Frequency of SMS", "Distinct Called Numbers", "Age Group", "Tariff Plan",
    "Status", "Age", "Customer Value", "Churn",
]
SEGMENTS = {1: "pay_as_you_go", 2: "contractual"}
USAGE_METRICS = ["call_failure", "seconds_of_use", "frequency_of_use", "frequency_of_sms",
                 "distinct_called_numbers", "charge_amount"]
OUTPUT_FILES = ("accounts.csv", "usage.csv", "dataset.yaml")


def snake_case(name: str) -> str:
    """``Subscription  Length`` -> ``subscription_length``."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def convert(src: str | Path, out_dir: str | Path, as_of: str = "2024-12-31",
            churn_offset_days: int = 45, overwrite: bool = False) -> Path:
    """Write accounts.csv, usage.csv and dataset.yaml for the Iranian churn CSV ``src`` into
    ``out_dir`` (created if needed) and return ``out_dir``. See the module docstring for every
    assumption. Raises FileExistsError if an output file exists and ``overwrite`` is false,
    ValueError if ``src`` does not have the expected columns."""
    src, out = Path(src), Path(out_dir)
    as_of_ts = pd.Timestamp(as_of)
    if as_of_ts != as_of_ts.normalize() or len(str(as_of)) != 10:
        raise ValueError(f"as_of must be a date YYYY-MM-DD, got {as_of!r}")
    if churn_offset_days < 0:
        raise ValueError("churn_offset_days must be >= 0")
    source = pd.read_csv(src)  # read only
    missing = [c for c in SOURCE_COLUMNS if c not in source.columns]
    if missing:
        raise ValueError(f"{src}: not the Iranian churn file: missing columns {missing}")
    unknown_plans = set(source["Tariff Plan"].unique()) - set(SEGMENTS)
    if unknown_plans:
        raise ValueError(f"{src}: unexpected Tariff Plan values {sorted(unknown_plans)}")

    window_start = (as_of_ts - pd.DateOffset(months=11)).replace(day=1)
    usage_end = window_start + pd.DateOffset(months=9) - pd.Timedelta(days=1)
    src_resolved = src.resolve()
    if any((out / f).resolve() == src_resolved for f in OUTPUT_FILES):
        raise ValueError("the output would overwrite the source file")
    out.mkdir(parents=True, exist_ok=True)
    existing = [f for f in OUTPUT_FILES if (out / f).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out}: {', '.join(existing)} already exist (use overwrite/--force)")

    extra = source.rename(columns={c: snake_case(c) for c in source.columns})
    tenure = source["Subscription  Length"].astype(int)
    start = pd.Series([as_of_ts - pd.DateOffset(months=int(m)) for m in tenure], dtype="datetime64[ns]")
    churned = source["Churn"].astype(int) == 1
    end_date = as_of_ts - pd.Timedelta(days=churn_offset_days)
    if (churned & (start > end_date)).any():
        raise ValueError("churn_offset_days puts some end dates before their start dates")

    ids = [f"ir-{i:04d}" for i in range(1, len(source) + 1)]
    accounts = pd.DataFrame({
        "account_id": ids,
        "segment": source["Tariff Plan"].map(SEGMENTS),
        "start_date": start.dt.strftime("%Y-%m-%d"),
        "end_date": [end_date.strftime("%Y-%m-%d") if c else "" for c in churned],
        "arr": "",
    })
    accounts = pd.concat([accounts, extra], axis=1)

    start_month = start.dt.to_period("M").dt.start_time
    period_start = start_month.where(start_month > window_start, window_start).dt.strftime("%Y-%m-%d")
    usage = (pd.DataFrame({"account_id": ids, "date": period_start})
             .join(extra[USAGE_METRICS])
             .melt(id_vars=["account_id", "date"], value_vars=USAGE_METRICS, var_name="metric",
                   value_name="value"))
    usage["order"] = usage["metric"].map({m: i for i, m in enumerate(USAGE_METRICS)})
    usage = (usage.assign(row=usage["account_id"].str[3:].astype(int))
             .sort_values(["row", "order"], kind="stable")[["account_id", "date", "metric", "value"]])

    accounts.to_csv(out / "accounts.csv", index=False, lineterminator="\n")
    usage.to_csv(out / "usage.csv", index=False, lineterminator="\n")
    (out / "dataset.yaml").write_text(_dataset_yaml(as_of_ts, window_start, usage_end, end_date,
                                                    churn_offset_days), encoding="utf-8")
    return out


def _dataset_yaml(as_of: pd.Timestamp, window_start: pd.Timestamp, usage_end: pd.Timestamp,
                  end_date: pd.Timestamp, offset: int) -> str:
    d = lambda t: t.strftime("%Y-%m-%d")  # noqa: E731
    description = f"""\
Iranian Churn (UCI Machine Learning Repository, data set 563,
https://archive.ics.uci.edu/dataset/563/iranian+churn+dataset), licence CC BY 4.0:
real customers of an Iranian telecom operator, converted by data/convert_iranian_churn.py.
Assumptions: the 12-month window is {d(window_start)}..{d(as_of)} and as_of is its end, when
churn was labelled; usage metrics are totals over {d(window_start)}..{d(usage_end)}, dated at the
start of that period (or of the account's start month if later), known only at its end;
start_date = as_of minus Subscription Length months; churners ended on {d(end_date)} (as_of minus
{offset} days, the middle of the 3-month planning gap; the true day is unknown); segment =
Tariff Plan (1 pay_as_you_go, 2 contractual); arr empty (Customer Value is not revenue);
observed_from = window start (customers who left before it are not in the export);
account_id = ir- + row number; 300 rows duplicate other rows exactly and are kept;
all source columns kept with snake_case names (churn and status are outcomes, not covariates).
"""
    body = "".join(f"  {line}\n" for line in description.splitlines())
    return (f"as_of: {d(as_of)}\nobserved_from: {d(window_start)}\n"
            f"description: |\n{body}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="iranian_churn.csv (read only)")
    parser.add_argument("out", help="output folder (created)")
    parser.add_argument("--as-of", dest="as_of", default="2024-12-31",
                        help="end of the 12-month window, YYYY-MM-DD (default 2024-12-31)")
    parser.add_argument("--churn-offset-days", type=int, default=45,
                        help="churners' end_date = as_of minus this many days (default 45)")
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    args = parser.parse_args(argv)
    try:
        out = convert(args.src, args.out, as_of=args.as_of, churn_offset_days=args.churn_offset_days,
                      overwrite=args.force)
    except (OSError, ValueError) as exc:
        print(f"convert_iranian_churn: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}/: {', '.join(OUTPUT_FILES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
