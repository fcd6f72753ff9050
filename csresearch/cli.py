"""The ``csresearch`` command: one subcommand per job.

Exit codes: 0 success, 2 invalid input (data, parameters or arguments), 1 anything else.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from . import __version__


def _cmd_generate(args: argparse.Namespace) -> int:
    from .world import BLOCK_ACCOUNTS, WorldConfig, generate_world

    for name, value in (("--attainment-hr", args.attainment_hr), ("--engagement-hr", args.engagement_hr)):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive hazard ratio, not {value}")
    config = WorldConfig(n_accounts=args.accounts, seed=args.seed, as_of=args.as_of,
                         observed_from=args.observed_from, health_score=not args.no_health_score,
                         log_hr_attainment=math.log(args.attainment_hr), log_hr_engagement=math.log(args.engagement_hr))
    out = Path(args.out)
    n_events = args.events_per_account_month
    # streamed a block of accounts at a time: memory is bounded by one block whatever --accounts
    result = generate_world(config, out, fmt=args.format, overwrite=args.force, events_per_account_month=n_events,
                            block_accounts=BLOCK_ACCOUNTS if args.block_accounts is None else args.block_accounts)
    truth, ev = result.truth, result.events
    r = truth["realised"]
    print(f"wrote {out}/ ({args.format}): {r['n_accounts']} accounts, {r['n_churned']} churned, "
          f"{r['n_goals']} goals, {r['n_goal_progress']} progress rows, {r['n_usage']} usage rows; "
          f"truth in {out / 'truth.json'}"
          + (f" ({truth['blocks']['n_blocks']} blocks of accounts)" if "blocks" in truth else ""))
    if n_events is not None:
        print(f"wrote {out / 'events'}/: {ev['events']:,} events in {ev['parts']} Parquet parts "
              f"({ev['scale']:.6g} events per unit of active_users/logins/reports_created; usage.{args.format} "
              "kept and used by validate: remove it to analyse the aggregated events)")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .data import validate

    report = validate(args.path, as_of=args.as_of)
    print(report.render())
    return 0 if report.ok else 2


def _cmd_classify(args: argparse.Namespace) -> int:
    import shutil

    from .metrics import CatalogError, classify_definition, load_catalog
    from .metrics.render import render_json, render_table

    try:
        catalog = load_catalog(args.catalog)
    except CatalogError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        n = len(exc.problems)
        print(f"csresearch classify: {n} problem{'s' if n != 1 else ''} in the metric catalog; nothing classified",
              file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"csresearch classify: error: {exc}", file=sys.stderr)
        return 2
    classified = classify_definition(catalog)
    wanted = _functions_wanted(args.function)
    known = list(dict.fromkeys(f for f in classified["function"] if isinstance(f, str) and f))
    if args.function is not None and not wanted:
        print(f"csresearch classify: error: --function needs a function name; the functions in the catalog are: "
              f"{', '.join(known) or '(none)'}", file=sys.stderr)
        return 2
    if wanted:
        unknown = [f for f in wanted if f not in known]
        if unknown:
            print(f"csresearch classify: error: unknown function{'s' if len(unknown) != 1 else ''} "
                  f"{', '.join(repr(f) for f in unknown)}; the functions in the catalog are: {', '.join(known) or '(none)'}",
                  file=sys.stderr)
            return 2
        classified = classified[classified["function"].isin(wanted)]
    if args.json:
        print(render_json(classified))
    else:
        print(f"catalog: {catalog.attrs.get('source', args.catalog)}")
        if wanted:
            print(f"function{'s' if len(wanted) != 1 else ''}: {', '.join(wanted)}")
        print()
        print(render_table(classified, width=shutil.get_terminal_size((120, 24)).columns))
    return 0


def _functions_wanted(given: list[str] | None) -> list[str]:
    """``--function sales --function hr,finance`` -> ``['sales', 'hr', 'finance']`` (each once, in the order given)."""
    names = [part.strip() for value in given or [] for part in value.split(",")]
    return list(dict.fromkeys(n for n in names if n))


def _cmd_study(args: argparse.Namespace) -> int:
    from . import studies
    from .data import DataValidationError
    from .params import ParamsError

    try:
        sets = list(args.set or [])
        if args.engine is not None:
            sets.append(f"engine={args.engine}")
        if args.spark_master is not None:
            sets.append(f"spark_master={args.spark_master}")
        specs = studies.plan(args.params, data=args.data, segments=args.segments, sets=sets)
        studies.check_data(specs)
    except ParamsError as exc:
        print(f"csresearch study: invalid parameters:\n{exc}", file=sys.stderr)
        return 2
    except DataValidationError as exc:
        print(f"csresearch study: invalid data:\n{exc}", file=sys.stderr)
        return 2
    try:
        out = studies.prepare_out(args.out)
    except studies.OutputFolderError as exc:
        print(f"csresearch study: {exc}", file=sys.stderr)
        return 2
    cell_timeout = studies.CELL_TIMEOUT if args.cell_timeout is None else args.cell_timeout or None
    outcomes = studies.run(specs, out, workers=args.workers, cell_timeout=cell_timeout)
    return 0 if all(o.ok for o in outcomes) else 1


def _whole_number(minimum: int, whole: str, below: str):
    """An argparse type: a whole number of at least ``minimum``; ``whole`` and ``below`` finish the two errors
    ("must be a whole number of <whole>, not 'two'"; "must be <below>, not -2")."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number of {whole}, not {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be {below}, not {n}")
        return n
    return parse


#: ``--workers``: studies run at once, at least 1
_workers = _whole_number(1, "1 or more", "1 or more (studies run at once)")
#: ``--cell-timeout``: seconds, 0 for no limit
_cell_timeout = _whole_number(0, "seconds (0: no limit)", "0 (no limit) or more seconds")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csresearch",
        description="Customer-success measurement workbook: does customer outcome attainment "
                    "predict retention better than product usage?")
    parser.add_argument("--version", action="version", version=f"csresearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    g = sub.add_parser("generate", help="write a synthetic world with a known truth",
                       description="Write every data-contract table, dataset.yaml and truth.json "
                                   "for a synthetic world. Same arguments, byte-identical files.")
    g.add_argument("--out", required=True, help="output folder (created; must be empty unless --force)")
    g.add_argument("--accounts", type=int, default=3000, help="number of accounts (default 3000)")
    g.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    g.add_argument("--format", choices=["csv", "parquet"], default="csv", help="table format (default csv)")
    g.add_argument("--as-of", dest="as_of", default=None, help="extraction date, YYYY-MM-DD")
    g.add_argument("--observed-from", dest="observed_from", default=None,
                   help="write a snapshot export: accounts that churned before this date are left out "
                        "and the date is recorded in dataset.yaml (left truncation)")
    g.add_argument("--no-health-score", action="store_true", help="leave the vendor health score out of usage")
    g.add_argument("--attainment-hr", dest="attainment_hr", type=float, default=0.20, metavar="HR",
                   help="planted hazard ratio of churn, goals fully reached versus no progress (default 0.2; 1 plants "
                        "no attainment effect at all: a null world)")
    g.add_argument("--engagement-hr", dest="engagement_hr", type=float, default=1.0, metavar="HR",
                   help="planted hazard ratio of churn per SD of last month's latent engagement, which also drives usage "
                        "and the speed of progress (default 1: none; below 1 engagement confounds attainment, and only "
                        "adjusting for usage can take it out)")
    g.add_argument("--events-per-account-month", dest="events_per_account_month", type=float, default=None,
                   metavar="N",
                   help="also write raw events (events/part-*.parquet) averaging N per account-month: session, "
                        "login and report_created, whose monthly counts follow active_users, logins and "
                        "reports_created (default: no events). usage is still written and wins in validate")
    g.add_argument("--block-accounts", dest="block_accounts", type=int, default=None, metavar="K",
                   help="simulate and write the world K accounts at a time, so memory stays bounded by one block "
                        "(default 100000; a world of at most K accounts is one block, the same world as ever; "
                        "a larger one draws each block from its own seeded stream, so K is part of its arguments)")
    g.add_argument("--force", action="store_true", help="replace the contract files of an existing folder")
    g.set_defaults(func=_cmd_generate)

    v = sub.add_parser("validate", help="check a data folder against the data contract",
                       description="Read every table of a data folder, print every problem found and a "
                                   "summary. Exit 0 when valid, 2 when not. Never writes to the folder.")
    v.add_argument("path", help="data folder")
    v.add_argument("--as-of", dest="as_of", default=None, help="override the extraction date, YYYY-MM-DD")
    v.set_defaults(func=_cmd_validate)

    s = sub.add_parser("study", help="run parameterised studies and write HTML reports",
                       description="Run the study notebook once per params file (or per segment) with papermill, in "
                                   "parallel, and write OUT/<study>/{notebook.ipynb, report.html, results.json} and "
                                   "OUT/index.html. Exit 0 when every study ran, 1 if any failed, 2 on invalid input.")
    s.add_argument("params", nargs="*", help="params YAML files (see params/); none: the defaults")
    s.add_argument("--data", default=None, help="data folder for every study (overrides data_dir)")
    s.add_argument("--out", default="reports", help="output folder (default: reports)")
    s.add_argument("--segments", default=None, metavar="all|a,b",
                   help="one study per segment (all: every segment found plus an all-segments study)")
    s.add_argument("--workers", type=_workers, default=None, help="studies run at once, 1 or more (default: number of cores)")
    s.add_argument("--cell-timeout", dest="cell_timeout", type=_cell_timeout, default=None,
                   metavar="SECONDS", help="seconds one cell of a study may run before the study is failed, so that a "
                                           "hung kernel cannot block the run (default: an hour; 0: no limit; a "
                                           "book of millions of accounts on a small machine may need several hours)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a parameter for every study (repeatable)")
    s.add_argument("--engine", choices=["duckdb", "spark"], default=None,
                   help="where the panel is built and the large-panel models are fitted (default: the params' engine, "
                        "duckdb); spark needs the csresearch[spark] extra")
    s.add_argument("--spark-master", dest="spark_master", default=None, metavar="URL",
                   help="with --engine spark: local[*] (default), a master URL (spark://host:7077, yarn) or a Spark "
                        "Connect URL (sc://host:15002)")
    s.set_defaults(func=_cmd_study)

    c = sub.add_parser("classify", help="classify metrics as Papa Bear, Mama Bear, Goldilocks or needing a proxy",
                       description="Read a metric catalog (metrics.yaml) and classify every metric by its "
                                   "definition: papa (too broad), mama (too narrow: product activity, output or a "
                                   "vendor metric), goldilocks (a countable customer outcome) or needs_proxy (a "
                                   "customer objective that cannot be counted). Exit 2 with every problem listed "
                                   "when the catalog is missing or malformed. Each metric's business function is "
                                   "shown; --function keeps the metrics of some functions only. Only reads the catalog.")
    c.add_argument("catalog", nargs="?", default=None, metavar="CATALOG",
                   help="a metrics.yaml file, or a data folder containing one (default: the bundled catalog)")
    c.add_argument("--json", action="store_true",
                   help="print a JSON list (metric, definition fields, verdict, rule, rationale) instead of a table")
    c.add_argument("--function", action="append", metavar="NAME[,NAME...]",
                   help="only the metrics of these business functions (repeatable or comma-separated, e.g. "
                        "--function sales,hr); an unknown function exits 2 and lists the catalog's functions")
    c.set_defaults(func=_cmd_classify)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `csresearch classify | head`: the reader left; not an error of ours
        sys.stderr = open(os.devnull, "w")
        return 0
    except (FileNotFoundError, FileExistsError, NotADirectoryError, ValueError) as exc:
        print(f"csresearch {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
