"""One study: build its context, run every analysis of the registry, collect the Results, write the words.

The study notebook is a thin shell around this module: :func:`run` builds a :class:`StudyResults`,
:func:`show_summary` and :func:`show_sections` display it, :func:`write_results` saves ``results.json``.

The runner has one error boundary: an analysis that cannot run on the data (no churn, no goals, too few accounts,
a model that fails) becomes "not estimated: reason" — its results.json keys hold the empty shape and the reason,
its section says why — and the study still completes. Nothing here knows any one analysis.

Privacy: no account id or per-account row reaches the report; small groups are suppressed by
:mod:`csresearch.privacy` (the analyses apply it through the context) and a study smaller than ``min_cell``
shows nothing.
"""
from __future__ import annotations

import json
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import numpy as np
import pandas as pd

from . import executive, tables
from ._json import jsonable
from ._memory import release_memory
from .analyses import REGISTRY
from .context import StudyContext
from .data import Dataset
from .findings import Finding, level_text, p_text
from .models import AnalysisError
from .result import Figure, Result

#: findings the executive summary states even when they could not be estimated (the study's two questions)
CORE_FINDINGS = ("attainment_effect", "outcomes_vs_usage")


@dataclass
class StudyResults:
    """Everything one study computed: ``results`` (the JSON record) and one :class:`Result` per analysis."""

    ctx: StudyContext
    results: dict[str, Any]
    sections: list[Result] = field(default_factory=list)

    @property
    def params(self) -> dict[str, Any]:
        return self.ctx.params

    @property
    def ds(self) -> Dataset:
        return self.ctx.ds

    @property
    def label(self) -> str:
        return self.ctx.label

    @property
    def findings(self) -> list[Finding]:
        return [f for s in self.sections for f in s.findings]

    def __getitem__(self, name: str) -> Result:
        for s in self.sections:
            if s.name == name:
                return s
        raise KeyError(f"no analysis {name!r}; analyses: {', '.join(s.name for s in self.sections)}")

    def __iter__(self) -> Iterator[Result]:
        return iter(self.sections)

    def figure(self, name: str) -> Figure | None:
        return next((f for s in self.sections for f in s.figures if f.name == name), None)

    def table(self, name: str) -> pd.DataFrame | None:
        return next((s.tables[name] for s in self.sections if name in s.tables), None)


# ---------------------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------------------
def run(params: dict[str, Any], ds: Dataset | None = None) -> StudyResults:
    """Run every analysis of a study. ``params`` are validated study parameters (see :mod:`csresearch.params`)."""
    started = time.perf_counter()
    errors: list[dict] = []
    # Python's own warnings (a division by zero on a tiny world, a library's deprecation) are recorded in
    # results.json, never printed into the report a reader gets
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctx = StudyContext.build(params, ds)
        ctx_peak = peak_memory_gb()
        # analyses of the whole book first, those that read the full panel or goal measurements leading (asking for
        # the sample's panel lets the full panel go on a large book), then those on the secondary sample; the report
        # keeps the registry's order
        def flag(i: int, name: str) -> bool:
            return bool(getattr(REGISTRY[i], name, False))

        order = sorted(range(len(REGISTRY)),
                       key=lambda i: (flag(i, "USES_SAMPLE"), not (flag(i, "USES_PANEL") or flag(i, "USES_GOALS"))))
        # on a large book the full panel, then the goal measurements, go once the last analysis that reads them has run
        last_reader = max((k for k, i in enumerate(order) if flag(i, "USES_PANEL")), default=-1)
        last_goals = max((k for k, i in enumerate(order) if flag(i, "USES_GOALS")), default=-1)
        done = {}
        for k, i in enumerate(order):
            done[i] = run_analysis(ctx, REGISTRY[i], errors)
            done[i].peak_gb = peak_memory_gb()
            if k == last_reader:
                ctx.release_panel()
            if k == last_goals:
                ctx.release_goals()
        sections = [done[i] for i in range(len(REGISTRY))]
        res = ctx.record()
        for s in sections:
            res.update(s.record)
        res["findings"] = [f.to_dict() for s in sections for f in s.findings]
        res["warnings"] = [*ctx.warnings, *(w for s in sections for w in s.warnings)]
        res["not_estimated"] = {s.name: s.not_estimated for s in sections if not s.ok and s.applicable}
        res["parts"] = sum(s.applicable for s in sections)
        try:
            res["executive"] = executive.summarize(ctx, sections, jsonable(res))
        except Exception as exc:  # noqa: BLE001 - the page says it could not be built; the study still completes
            errors.append({"part": "executive", "error": f"{type(exc).__name__}: {exc}",
                           "trace": traceback.format_exc()[-3000:]})
            res["executive"] = executive.unavailable(ctx, res)
    res["python_warnings"] = _warning_counts(caught)
    res["errors"] = errors
    res["run"] = {k: v for k, v in ctx.run_info.items() if ctx.visible or k != "as_of_source"}
    res["timings"] = {"analysis": round(time.perf_counter() - started, 2),
                      "analyses": {s.name: round(s.seconds, 2) for s in sections},
                      # in the order they ran (whole book first): the peak so far, so a rise names the analysis
                      "peak_gb_after": {done[i].name: round(done[i].peak_gb, 2) for i in order},
                      "peak_gb_context": round(ctx_peak, 2)}
    return StudyResults(ctx=ctx, results=jsonable(res), sections=sections)


def peak_memory_gb() -> float:
    """The peak resident memory of this process so far, in GB (``getrusage``; 0 where it is not available)."""
    try:
        import resource
    except ImportError:  # not POSIX
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kilobytes on Linux


def _warning_counts(caught: list) -> list[dict]:
    """The Python warnings a run raised, one entry per distinct (category, message) with its count."""
    counts: dict[tuple[str, str], int] = {}
    for w in caught:
        key = (w.category.__name__, str(w.message).splitlines()[0][:200])
        counts[key] = counts.get(key, 0) + 1
    return [{"category": c, "message": m, "count": n} for (c, m), n in sorted(counts.items())]


def run_analysis(ctx: StudyContext, module: ModuleType, errors: list[dict] | None = None) -> Result:
    """One analysis inside the error boundary: its Result, or a not-estimated Result with the reason (an
    unexpected exception's traceback goes to ``errors``, the results.json record, never to the report)."""
    t0 = time.perf_counter()
    always = getattr(module, "ALWAYS", False)
    reason = None if ctx.visible or always else "suppressed: fewer than min_cell accounts"
    applies = getattr(module, "applies", None)
    if reason is None and applies is not None and not applies(ctx):
        result = _not_estimated(ctx, module, module.requires(ctx) or "does not apply to this study", warn=False)
        result.applicable = False  # not a gap of the data: the section has no place in this study
        return result
    if reason is None:
        reason = module.requires(ctx)
    if reason is None:
        try:
            result = module.run(ctx)
        except (AnalysisError, ValueError, np.linalg.LinAlgError) as exc:
            reason = str(exc)
            result = _not_estimated(ctx, module, reason, warn=True)
        except Exception as exc:  # noqa: BLE001 - one failing analysis never fails the study
            reason = f"an unexpected error ({type(exc).__name__}: {exc})"
            if errors is not None:
                errors.append({"part": module.NAME, "error": f"{type(exc).__name__}: {exc}",
                               "trace": traceback.format_exc()[-3000:]})
            result = _not_estimated(ctx, module, reason, warn=True)
        finally:
            release_memory()  # the memory an analysis's temporaries held (gigabytes on a large book)
    else:
        result = _not_estimated(ctx, module, reason, warn=False)
    result.intro = result.intro or _intro(ctx, module)
    result.seconds = time.perf_counter() - t0
    return result


def _not_estimated(ctx: StudyContext, module: ModuleType, reason: str, *, warn: bool) -> Result:
    result = Result(module.NAME, module.TITLE, record=module.empty(ctx, reason), not_estimated=reason)
    findings = getattr(module, "findings_when_empty", None)
    result.findings = findings(ctx, reason) if findings else []
    if warn:
        result.warnings.append(f"{module.TITLE} could not be estimated: {reason.rstrip('.')}.")
    return result


def _intro(ctx: StudyContext, module: ModuleType) -> str:
    return module.INTRO.format(level=ctx.level_text, min_cell=ctx.min_cell, alpha_pct=level_text(ctx.alpha),
                               power_pct=level_text(ctx.power))


# ---------------------------------------------------------------------------------------------------------
# the words
# ---------------------------------------------------------------------------------------------------------
def _study_line(r: StudyResults) -> str:
    res = r.results
    name = res["study"] if r.label in (res["study"] or "") else f"{res['study']} — {r.label}"
    if res["n_accounts"] is None:
        return f"**Study:** {name}."
    return (f"**Study:** {name}; {res['n_accounts']:,} accounts, {res['n_churned']:,} churned, "
            f"data as of {res['as_of']}.")


def executive_summary(r: StudyResults) -> str:
    """The opening of the report, from the findings (each sentence chosen by its verdict) and the highlights."""
    res = r.results
    if res["n_accounts"] is None:
        return _study_line(r) + " " + " ".join(res["warnings"])
    lines = [_study_line(r)]
    lines += [s.lead for s in r.sections if s.lead]
    for f in r.findings:
        if f.verdict != "not_estimable" or f.id in CORE_FINDINGS:
            lines.append(f"- **{f.headline}** {f.claim}")
    lines += [f"- {h}" for s in r.sections for h in s.highlights]
    if res["warnings"]:
        lines.append(f"- **Limits.** {len(res['warnings'])} part(s) of the study could not be estimated; see *Caveats*.")
    return "\n".join(lines)


def _model_sentence(r: StudyResults) -> str:
    tv = (r.results.get("attainment_effect") or {}).get("time_varying") or {}
    pooled = r.params["segment"] is None
    if tv.get("model") == "discrete":
        return (f"With {tv['n_rows']:,} account-months, more than the {r.params['cox_max_rows']:,} the Cox model is run "
                "on, the model is its discrete-time equivalent: a complementary log-log regression of churn in each "
                "account-month, with a smooth baseline churn rate over tenure"
                + (" and a baseline level per segment" if pooled else "")
                + ", each month weighted by the share of it the account was at risk (a partial first or last month "
                "counts in proportion). Its hazard ratio means the same as Cox's, and its standard errors allow for the "
                "repeated months of one account (robust, clustered by account).")
    return ("A Cox model on these monthly intervals compares accounts of the same tenure; its standard errors allow "
            "for the repeated months of one account (robust, clustered by account)"
            + (", and each segment keeps its own baseline churn rate (stratified)." if pooled else "."))


def methods_text(r: StudyResults) -> str:
    """Methods and caveats in plain words (Markdown)."""
    p = r.params
    lag = f", lagged a further {p['lag_days']} days" if p["lag_days"] else ""
    sample = r.results.get("secondary_sample")
    text = [
        "**How churn was linked to attainment.** Each account's life was cut into calendar months. For each month we took "
        f"the account's goal attainment as known on the month's first day{lag} (partial value: the share of the way from "
        "baseline to target, capped at 0 and 1, weight-averaged over the account's goals) and asked whether it churned during "
        "the month. " + _model_sentence(r),
        "**Immortal-time bias and how it was avoided.** Attainment grows with time. An analysis that labels each account by "
        "its *final* attainment credits long-lived accounts with progress they made only because they stayed, and blames "
        "early leavers for progress they had no time to make. Using only what was known at the start of each month (and, as "
        f"a check, attainment at a landmark of {p['landmark_days'][0]} days among accounts still active then) avoids this. "
        "The naive figure is shown only to make the size of the bias visible.",
        *([f"**A sample for the secondary analyses.** The headline figures use all {sample['of_accounts']:,} "
           f"accounts. The metric classification, the Goodhart view, the vendor-customer gap, the maturity ladder and the "
           f"health-score audit use a random sample of {sample['accounts']:,} of them (seed {sample['seed']}), which is "
           "ample for what they measure and keeps the study within one machine's memory."] if sample else []),
        "**Censoring.** Accounts still active at the data's as-of date are counted as retained up to that date, not as "
        "retained forever; retention by cohort is read off Kaplan-Meier curves for the same reason."
        + (" The data is a snapshot starting at "
           f"{r.results['observed_from']}: accounts that started earlier enter the analysis only from that date (left truncation)."
           if r.results.get("observed_from") else ""),
        "**Caveats.** This is an observational association, not an experiment: customers who reach their goals may differ in "
        "ways the data does not hold. Attainment is only as good as the goals recorded at onboarding and the progress "
        "reported since. Adjustment covariates such as ARR are taken as recorded in the export and assumed to describe "
        "the account from its start; if ARR shrinks before churn, adjusting for it is not clean. Whether outcomes rank "
        "churn risk better than usage is decided out of sample (cross-validation grouped by account); the in-sample "
        "C-indices shown beside it are slightly optimistic" + ("; the maturity ladder's are cross-validated too (each "
                                                                 "account scored by a model fitted on other accounts). "
                                                                 if (r.results.get("maturity") or {}).get("ladder")
                                                                 else ". ")
        + f"Confidence intervals are {r.ctx.level_text}; tests are two-sided at {level_text(r.ctx.alpha)}.",
        f"**Privacy.** No account identifier or per-account row appears in this report; any group or cell with fewer than "
        f"{p['min_cell']} accounts is suppressed.",
    ]
    if r.results["warnings"]:
        text.append("**What could not be estimated:**\n" + "\n".join(f"- {w}" for w in r.results["warnings"]))
    return "\n\n".join(text)


#: the terms the analyst sections use, in plain words (the executive page uses none of them)
GLOSSARY = (
    ("Hazard ratio", "How many times as often one group churns as another at the same moment of the subscription "
                     "(below 1: fewer churn). 0.5 means half the churn rate."),
    ("Confidence interval (CI)", "The range of effects the data is consistent with at the study's level. A claim "
                                 "is made only when the whole range lies on one side of no effect."),
    ("Verdict", "What a finding's evidence supports: supported, not supported (the interval rules out an effect "
                "worth having), the data cannot tell, or not estimable (below the data floors)."),
    ("Data floors", "The least data a figure needs before it is shown as a finding: churn events per model term, "
                    "accounts in each compared group."),
    ("C-index", "How often a model ranks, of two accounts, the one that churns first as the riskier: 0.5 is a coin "
                "toss, 1 a perfect ranking."),
    ("Cross-validation", "Each account is scored by a model fitted on other accounts, so a model gets no credit for "
                         "remembering the accounts it learned from."),
    ("Landmark", "A fixed point of the subscription (day 90, say): accounts still active then are grouped by their "
                 "attainment at that point and followed from there."),
    ("Naive analysis", "Labels each account by its final attainment, as if known from the start; long-lived accounts "
                       "get credit for progress they made only because they stayed (immortal-time bias)."),
    ("Partial pooling", "Each segment's estimate weighed with the others', the more the fewer churn events it rests "
                        "on."),
    ("q-value", "A p-value corrected for testing many metrics at once (Benjamini-Hochberg)."),
    ("Log-rank test", "A test of whether retention curves differ."),
    ("Spline", "A smooth curve fitted to the data, here churn by level of attainment, without assuming a straight "
               "line."),
)


def glossary_text() -> str:
    """The glossary of the analyst sections (Markdown)."""
    return "\n".join(f"- **{term}.** {text}" for term, text in GLOSSARY)


#: the run record's human names for parameters (the rest: their identifier made readable)
PARAM_NAMES = {
    "as_of": "As of (censoring date)", "landmark_days": "Landmarks (days of tenure)",
    "landmark_window_days": "Window after each landmark (days)", "attainment_threshold": "Attainment counted as reached",
    "lag_days": "Attainment lag (days)", "covariates": "Adjustment covariates", "usage_metrics": "Usage metrics",
    "usage_baseline": "Core usage metric", "spline_knots": "Dose-response spline knots",
    "churn_reductions": "Churn reductions to size a study for", "alpha": "Significance level (two-sided)",
    "margin_hr": "Smallest hazard ratio worth claiming", "margin_c": "Smallest C-index gain worth claiming",
    "min_events_per_parameter": "Churn events needed per model term", "min_group_accounts": "Accounts needed per group",
    "power": "Power of the sample-size table", "min_cell": "Smallest group shown (privacy)",
    "health_score_metric": "Health score audited", "currency": "Currency", "labels": "Report names (labels)",
    "maturity": "Measurement practices (maturity)", "seed": "Random seed",
    "cox_max_rows": "Largest panel fitted by Cox (account-months)",
    "secondary_max_accounts": "Accounts sampled for the secondary analyses", "bootstrap": "Bootstrap resamples",
    "output_dir": "Output folder",
}


def _param_value(v, plain: bool = False) -> str:
    """A parameter's value as a reader reads it: lists comma-separated, maps as "key: value", null as "–", whole
    numbers with thousands separators (unless ``plain``: a seed)."""
    if v is None:
        return tables.MISSING
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ", ".join(_param_value(x) for x in v) or tables.MISSING
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_param_value(x)}" for k, x in v.items()) or tables.MISSING
    if isinstance(v, int):
        return str(v) if plain else f"{v:,}"
    return str(v)


def run_details(r: StudyResults) -> pd.DataFrame:
    """The run record shown at the end of the report: data fingerprint, as_of, parameters (by their human names,
    with what each means), versions."""
    from .names import readable
    from .params import BY_NAME

    run = r.results["run"]
    rows = [("Study", r.results["study"], ""), ("Segment", r.label, ""), ("As of", r.results["as_of"], ""),
            ("Data fingerprint (SHA-256)", run["data_fingerprint"], ""),
            ("Data folder", os.path.basename(str(run["data_dir"]).rstrip("/")), ""),
            ("csresearch version", run["package_version"], ""), ("Git commit", run["git_commit"] or "unknown", ""),
            ("Python", run["python"], "")]
    for k, v in r.results["parameters"].items():
        if k not in ("study", "segment", "data_dir"):
            help_text = BY_NAME[k].help if k in BY_NAME else ""
            rows.append((PARAM_NAMES.get(k, readable(k)), _param_value(v, plain=k == "seed"),
                         help_text[:1].upper() + help_text[1:]))
    frame = pd.DataFrame([(v, h) for _, v, h in rows], columns=["Value", "What it means"],
                         index=[name for name, _, _ in rows])
    return tables.readable(frame)


def write_results(r: StudyResults, folder: str | Path) -> Path:
    """Write ``results.json`` into ``folder`` (created) and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(r.results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------------------------------
# showing it in the notebook
# ---------------------------------------------------------------------------------------------------------
def show_summary(r: StudyResults) -> None:
    """The executive page (plain words, from the findings), then the findings in detail for analysts."""
    from IPython.display import HTML, Markdown, display

    display(HTML(executive.render(r.results["executive"])))
    display(Markdown("## Findings in detail\n\n" + executive_summary(r)))


def show_section(result: Result, label: str = "this study") -> None:
    """One analysis as a report section: heading, lead, figures, text and tables, or why it is not there."""
    from IPython.display import Markdown, display

    display(Markdown(f"## {result.title}" + (f"\n\n{result.intro}" if result.intro else "")))
    if not result.ok and not (result.text or result.figures):
        display(Markdown(f"*Not available for {label}: {result.not_estimated}.*"))
        return
    for fig in result.figures:
        show_figure(fig)
    if result.text:
        display(Markdown(result.text))
    for shown in result.shown:
        if shown.caption:
            display(Markdown(shown.caption))
        display(tables.readable(shown.frame))  # the one place every table is made readable (idempotent)


def show_sections(r: StudyResults) -> None:
    """Every analysis of the registry, in report order. Sections that need goals, on data without goals, are not
    drawn one by one: one line names them (the executive summary has said why)."""
    from IPython.display import Markdown, display

    from .analyses._gates import NO_GOALS

    skipped = [s for s in r.sections if s.not_estimated == NO_GOALS and not (s.text or s.figures)]
    for result in r.sections:
        if result not in skipped and result.applicable:
            show_section(result, r.label)
    if skipped:
        display(Markdown("## Not in this report\n\nThese analyses need customers' goals, and no goals are recorded: "
                         + ", ".join(s.title for s in skipped) + "."))


def show(r: StudyResults, name: str) -> None:
    """Draw figure ``name`` of a study in a notebook, or say plainly why it is not there."""
    from IPython.display import Markdown, display

    fig = r.figure(name)
    if fig is None:
        display(Markdown(f"*Not available for this study ({r.label}); see Methods and caveats for the reason.*"))
        return
    show_figure(fig)


def show_figure(fig: Figure) -> None:
    """Draw a figure and display it as a PNG that carries its description (the report's image alt text)."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import display

    ax = fig.draw()
    figure = ax.figure if hasattr(ax, "figure") else plt.gcf()
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    display({"image/png": buf.getvalue(), "text/plain": f"<{fig.alt}>"}, raw=True,
            metadata={"image/png": {"alt": fig.alt}})


__all__ = ["StudyResults", "run", "run_analysis", "executive_summary", "methods_text", "glossary_text", "run_details",
           "write_results",
           "show_summary", "show_section", "show_sections", "show", "p_text"]
