"""One study: run every analysis for one set of parameters, collect results, write the plain-language text.

The study notebook is a thin shell around this module: it builds a :class:`StudyResults` with :func:`run`, shows
the text and figures, and saves ``results.json``. Every analysis that cannot be estimated on the data (no churn,
no goals, too few accounts, ...) leaves its result empty and a plain sentence in ``warnings`` saying why; the
study itself still completes.

Privacy: nothing here puts an account id or a per-account row into the report. Groups and cells with fewer than
``min_cell`` accounts are suppressed (and marked) before anything is shown.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import __version__
from . import analyses as A
from ._json import jsonable
from ._memory import release_memory
from .attainment import episodes
from .cohorts import retention_matrix, survival_table
from .data import Dataset, load
from .survival import fit_km

MIN_ACCOUNTS = 30
EFFECT_KEYS = ("hr", "ci_low", "ci_high", "p")


@dataclass
class StudyResults:
    """Everything one study computed: ``results`` (the JSON record) plus the frames the figures draw."""

    params: dict[str, Any]
    ds: Dataset
    results: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.params["segment"] or "all segments"


def _empty_effect(reason: str) -> dict:
    return {**{k: None for k in EFFECT_KEYS}, "not_estimated": reason}


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def run(params: dict[str, Any], ds: Dataset | None = None) -> StudyResults:
    """Run every analysis of a study. ``params`` are validated study parameters (see :mod:`csresearch.params`)."""
    p = params
    started = time.perf_counter()
    if ds is None:
        ds = load(p["data_dir"], as_of=p["as_of"])
    run_info = {"package_version": __version__, "git_commit": _git_commit(), "data_fingerprint": ds.fingerprint(),
                "data_dir": str(p["data_dir"]), "python": platform.python_version(),
                "as_of_source": getattr(ds, "as_of_source", None)}
    if p["segment"] is not None:
        ds = ds.for_segment(p["segment"])
    warnings: list[str] = []
    st = survival_table(ds)
    n_acc, n_churn = int(len(ds.accounts)), int(st["event"].sum())
    res: dict[str, Any] = {
        "study": p["study"], "segment": p["segment"], "as_of": str(ds.as_of.date()),
        "observed_from": None if ds.observed_from is None else str(ds.observed_from.date()),
        "n_accounts": n_acc, "n_churned": n_churn,
        "segments": {s: int(n) for s, n in ds.accounts["segment"].value_counts().sort_index().items()},
        "parameters": {k: v for k, v in p.items() if k not in ("output_dir",)},
    }
    out = StudyResults(params=p, ds=ds, results=res, warnings=warnings)
    m = p["min_cell"]

    def attempt(name: str, fn: Callable[[], Any]) -> Any:
        try:
            return _released(fn)
        except A.AnalysisError as exc:
            warnings.append(f"{name} could not be estimated: {exc}.")
        except (ValueError, np.linalg.LinAlgError) as exc:
            warnings.append(f"{name} could not be estimated: {exc}.")
        return None

    if n_acc < m:
        warnings.append(f"This study has fewer than {m} accounts (the privacy threshold), so nothing about it is shown.")
        res.update({"n_accounts": None, "n_churned": None, "segments": {}})
        for key in ("attainment_effect", "usage_vs_outcome"):
            res[key] = None
        res["attainment_effect"] = {k: _empty_effect("suppressed: fewer than min_cell accounts")
                                    for k in ("time_varying", "naive", "landmark")}
        res["usage_vs_outcome"] = {"c_index": {"usage": None, "attainment": None, "both": None}, "lr_test_p": None}
        res.update({"metrics": [], "maturity": _maturity(ds, p), "warnings": warnings, "timings": {}})
        res["run"] = {k: v for k, v in run_info.items() if k != "as_of_source"}
        out.results = jsonable(res)
        return out
    enough = n_acc >= MIN_ACCOUNTS
    if not enough:
        warnings.append(f"Only {n_acc} accounts: fewer than {MIN_ACCOUNTS}, too few for any model to be stable, "
                        "so no model was fitted; the counts above are all this study can say.")
    if n_churn == 0:
        warnings.append("No account churned in the data, so nothing about churn can be estimated.")
    if not ds.has_goals:
        warnings.append("The data has no goals table: outcome attainment cannot be measured, so this study reports "
                        "retention by cohort and where the team's measurement stands (maturity level 2 at most); "
                        "recording each customer's goals is what would make the rest possible.")
    fit_models = enough and n_churn > 0
    goals_ok = fit_models and ds.has_goals

    # retention by cohort (descriptive; small cells suppressed)
    matrix = attempt("Cohort retention", lambda: retention_matrix(st, months=24, min_at_risk=m))
    if matrix is not None:
        matrix.loc[matrix["accounts"] < m, "retention"] = np.nan
        out.frames["retention"] = matrix
        res["retention_12m"] = _retention_at(st, 365.25)

    panel = episodes(ds, lag_days=p["lag_days"], threshold=p["attainment_threshold"]) if goals_ok else None
    has_usage = ds.usage is not None
    usage_metrics = p["usage_metrics"]
    if usage_metrics is None and has_usage:
        usage_metrics = sorted(set(ds.usage["metric"].unique()) - {p["health_score_metric"]})
    # The secondary analyses (which metric is which bear, Goodhart, the ladder, the health score) fit many models each;
    # on a large book a random sample of accounts answers them as well, at a fraction of the time and memory. The
    # headline models then need only the panel, so the full long usage table is let go (gigabytes on a large book).
    secondary = ds
    cap = p["secondary_max_accounts"]
    if cap is not None and n_acc > cap:
        secondary = ds.sample_accounts(cap, p["seed"])  # its panel is built when needed, after the headline models
        ds = out.ds = replace(ds, usage=None)
        release_memory()
        res["secondary_sample"] = {"accounts": int(cap), "of_accounts": n_acc, "seed": int(p["seed"])}
    effect: dict[str, Any] = {}
    if goals_ok:
        tv = attempt("The time-varying attainment effect",
                     lambda: A.time_varying_effect(ds, covariates=p["covariates"], lag_days=p["lag_days"], panel=panel,
                                                   cox_max_rows=p["cox_max_rows"]))
        effect["time_varying"] = tv[1] if tv else _empty_effect(warnings[-1])
        landmarks = []
        for L in p["landmark_days"]:
            lm = attempt(f"The landmark analysis at {L} days",
                         lambda L=L: A.landmark_effect(ds, L, covariates=p["covariates"], lag_days=p["lag_days"],
                                                       threshold=p["attainment_threshold"]))
            landmarks.append(lm[1] if lm else {"landmark_days": float(L), "n_at_risk": None, **_empty_effect(warnings[-1])})
        effect["landmark"] = landmarks[0]
        effect["landmarks"] = landmarks
        nv = attempt("The naive analysis", lambda: A.naive_effect(ds, covariates=p["covariates"]))
        effect["naive"] = nv[1] if nv else _empty_effect(warnings[-1])
        km = attempt("Retention by attainment group",
                     lambda: A.attainment_km(ds, p["landmark_days"][0], lag_days=p["lag_days"],
                                             threshold=p["attainment_threshold"]))
        if km:
            out.frames["km"], res["km_by_attainment"] = _suppress_km(km[0], km[1], m)
        dr = attempt("The dose-response curve",
                     lambda: A.dose_response(ds, knots=p["spline_knots"], covariates=p["covariates"], panel=panel,
                                             cox_max_rows=p["cox_max_rows"]))
        if dr:
            out.frames["dose_response"], res["dose_response"] = dr
    else:
        reason = ("no goals table" if not ds.has_goals else "no churn" if n_churn == 0 else "too few accounts")
        effect = {k: _empty_effect(reason) for k in ("time_varying", "naive")}
        effect["landmark"] = {"landmark_days": float(p["landmark_days"][0]), "n_at_risk": None, **_empty_effect(reason)}
    res["attainment_effect"] = effect

    h2h = None
    if goals_ok and has_usage:
        h2h = attempt("The usage-versus-outcome comparison",
                      lambda: A.usage_vs_outcome(ds, usage_metrics=usage_metrics, panel=panel,
                                                 cox_max_rows=p["cox_max_rows"]))
    if h2h:
        out.frames["usage_vs_outcome"], res["usage_vs_outcome"] = h2h
    else:
        reason = ("no usage table" if not has_usage else "no goals table" if not ds.has_goals
                  else "see warnings" if goals_ok else "too few accounts or no churn")
        res["usage_vs_outcome"] = {"c_index": {"usage": None, "attainment": None, "both": None}, "lr_test_p": None,
                                   "not_estimated": reason}

    if secondary is not ds:
        # the full panel has served the headline models; the sample gets its own (the same rows of its accounts)
        panel = None
        ds = secondary
        panel = episodes(ds, lag_days=p["lag_days"], threshold=p["attainment_threshold"]) if goals_ok else None
    res["metrics"] = _metrics(out, ds, p, attempt, fit_models) if fit_models else []
    res["goodhart"], res["vendor_gap"] = _goodhart_and_gap(out, ds, p, attempt, goals_ok and ds.usage is not None, panel)
    res["maturity"] = _maturity(ds, p)
    if goals_ok and ds.usage is not None:
        from .maturity import ladder

        lad = attempt("The maturity ladder", lambda: ladder(ds, panel, usage_metrics=usage_metrics,
                                                            health_score_metric=p["health_score_metric"],
                                                            threshold=p["attainment_threshold"],
                                                            bootstrap=p["bootstrap"], seed=p["seed"], alpha=p["alpha"],
                                                            lag_days=p["lag_days"], cox_max_rows=p["cox_max_rows"]))
        if lad is not None:
            if lad.attrs.get("note"):
                warnings.append(lad.attrs["note"])
            out.frames["ladder"] = lad
            res["maturity"]["ladder"] = lad[["level", "knows", "c_index", "ci_low", "ci_high", "gain", "gain_ci_low",
                                             "gain_ci_high"]].to_dict("records")
    if p["health_score_metric"] and fit_models:
        from .health import audit

        found = attempt("The health-score audit", lambda: audit(ds, p["health_score_metric"], panel=panel,
                                                                 usage_metrics=usage_metrics, alpha=p["alpha"],
                                                                 min_cell=m, cox_max_rows=p["cox_max_rows"]))
        if found:
            out.frames["health_calibration"], res["health_score_audit"] = found
    base = res.get("retention_12m")
    if base is not None and 0 < 1 - base < 1:
        design = attempt("The sample-size table", lambda: A.sample_size(1 - base, p["churn_reductions"], alpha=p["alpha"],
                                                                       power=p["power"]))
        if design is not None:
            out.frames["sample_size"] = design
            res["study_design"] = {"base_churn_12m": 1 - base, "rows": design.to_dict("records")}
    res["warnings"] = warnings
    res["run"] = run_info
    res["timings"] = {"analysis": round(time.perf_counter() - started, 2)}
    out.results = jsonable(res)
    effects = effects_table(out)
    if len(effects):
        out.frames["effects"] = effects
    return out


def _released(fn: Callable[[], Any]) -> Any:
    """``fn()``, then the memory its temporaries held is given back (on a large book, gigabytes per analysis)."""
    try:
        return fn()
    finally:
        release_memory()


def _retention_at(st: pd.DataFrame, days: float) -> float | None:
    entry = "entry" if (st["entry"] > 0).any() else None
    km = fit_km(st, "duration", "event", entry=entry)
    km = km[km["time"] <= days]
    if st["duration"].max() < days:
        return None
    return float(km["survival"].iloc[-1]) if len(km) else 1.0


def _suppress_km(km: pd.DataFrame, info: dict, min_cell: int) -> tuple[pd.DataFrame, dict]:
    """Drop groups with fewer than ``min_cell`` accounts and cut each curve where fewer remain at risk."""
    info = json.loads(json.dumps(info))
    suppressed = [g for g, v in info["groups"].items() if v["n"] < min_cell]
    for g in suppressed:
        info["groups"][g] = {"n": None, "events": None, "suppressed": f"fewer than {min_cell} accounts"}
    km = km[~km["group"].isin(suppressed) & (km["at_risk"] >= min_cell)]
    if suppressed:
        info["logrank"] = None
        info["note"] = f"groups with fewer than {min_cell} accounts are suppressed: {', '.join(suppressed)}"
    return km.reset_index(drop=True), info


def _metrics(out: StudyResults, ds: Dataset, p: dict, attempt, fit_models: bool) -> list[dict]:
    from .metrics import classify_by_data

    if ds.usage is None or not ds.has_goals:
        out.warnings.append("Metrics were not classified by data: that needs both goals and usage.")
        return []
    found = attempt("The data-driven metric classification", lambda: classify_by_data(ds, baseline=p["usage_baseline"]))
    if not found:
        return []
    frame, summary = found if isinstance(found, tuple) else (found, None)
    small = frame["n_accounts"] < p["min_cell"]
    frame = frame[~small].reset_index(drop=True)  # fewer than min_cell accounts: not shown at all
    if small.any():
        out.warnings.append(f"{int(small.sum())} metric(s) measured on fewer than {p['min_cell']} accounts are not shown.")
    out.frames["metrics"] = frame
    cols = [c for c in ("metric", "kind", "verdict", "relevance_hr", "relevance_ci_low", "relevance_ci_high", "relevance_q",
                        "attrib_effect", "attrib_ci_low", "attrib_ci_high", "attrib_q", "n_accounts", "rationale")
            if c in frame.columns]
    return frame[cols].to_dict("records")


def _goodhart_and_gap(out: StudyResults, ds: Dataset, p: dict, attempt, possible: bool, panel) -> tuple[dict | None, dict | None]:
    from .metrics.goodhart import goodhart_divergence, goodhart_monthly, vendor_customer_gap

    if not possible:
        return None, None
    gh = attempt("The Goodhart view", lambda: goodhart_divergence(ds, baseline=p["usage_baseline"], alpha=p["alpha"],
                                                                   min_accounts=max(30, p["min_cell"]), panel=panel))
    series = attempt("The Goodhart series", lambda: goodhart_monthly(ds, min_accounts=max(30, p["min_cell"]), panel=panel))
    if gh:
        out.frames["goodhart"] = gh[0]
    if series:
        out.frames["goodhart_series"] = series[0]
    gap = attempt("The vendor-customer gap", lambda: vendor_customer_gap(ds, usage_metric=p["usage_baseline"],
                                                                          min_cell=p["min_cell"], alpha=p["alpha"]))
    if gap:
        out.frames["gap"] = gap[0]
    return (gh[1] if gh else None), (gap[1] if gap else None)


def _maturity(ds: Dataset, p: dict) -> dict:
    from . import maturity

    return maturity.summary(ds, p.get("maturity"), p.get("health_score_metric"))


# ---------------------------------------------------------------------------------------------------------
# the words
# ---------------------------------------------------------------------------------------------------------
def _ci(e: dict, digits: int = 2, level: float = 0.95) -> str:
    if e.get("ci_low") is None or e.get("ci_high") is None:
        return "confidence interval not available"
    # a large book gives intervals narrower than the usual two decimals: show enough digits to tell the ends apart
    while digits < 4 and f"{e['ci_low']:.{digits}f}" == f"{e['ci_high']:.{digits}f}":
        digits += 1
    return f"{level:.0%} CI {e['ci_low']:.{digits}f} to {e['ci_high']:.{digits}f}"


def _pct(x: float) -> str:
    return f"{x:.0%}"


def executive_summary(r: StudyResults) -> str:
    """The opening of the report: the headline numbers in plain language, with their CIs (Markdown)."""
    res = r.results
    eff = res["attainment_effect"]
    if res["n_accounts"] is None:
        return f"**Study:** {res['study']} — {r.label}. " + " ".join(res["warnings"])
    lines = [f"**Study:** {res['study']} — {r.label}; {res['n_accounts']:,} accounts, {res['n_churned']:,} churned, "
             f"data as of {res['as_of']}."]
    tv = eff["time_varying"]
    if tv.get("hr") is not None:
        lines.append(
            f"- **Outcomes predict retention.** Accounts that had fully reached their goals churned at "
            f"**{tv['hr']:.2f} times the rate** of accounts that had made no progress ({_ci(tv)}), comparing accounts "
            f"of the same tenure{' within each segment' if tv.get('stratified_by') else ''}"
            f"{' and ARR' if 'log_arr' in tv.get('covariates', []) else ''}. Partial progress counts in proportion.")
    uvo = res["usage_vs_outcome"]
    c = uvo["c_index"]
    if c.get("usage") is not None:
        gain = (c["attainment"] - c["usage"]) if uvo["lr_test_p"] < r.params["alpha"] else 0.0
        lines.append(
            f"- **Outcomes rank churn risk better than usage.** Usage alone ranks churn risk at C = {c['usage']:.2f}, "
            f"outcome attainment at C = {c['attainment']:.2f}, both together at C = {c['both']:.2f} (0.5 is a coin toss, "
            f"1 a perfect ranking)." if gain > 0 else
            f"- **Outcomes do not clearly out-rank usage here.** Usage alone: C = {c['usage']:.2f}; outcome "
            f"attainment: C = {c['attainment']:.2f}; both: C = {c['both']:.2f} (0.5 is a coin toss).")
        lines.append(f"  Adding attainment to usage improves the model {'clearly' if uvo['lr_test_p'] < 0.05 else 'not significantly'} "
                     f"(likelihood-ratio test p {_p(uvo['lr_test_p'])}).")
    lm = eff["landmark"]
    if lm.get("hr") is not None:
        lines.append(f"- **Checked a second way.** Among the {lm['n_at_risk']:,} accounts still active after "
                     f"{lm['landmark_days']:.0f} days, attainment at that point gave a hazard ratio of {lm['hr']:.2f} "
                     f"({_ci(lm)}) for the churn that followed.")
    nv = eff["naive"]
    if nv.get("hr") is not None and tv.get("hr") is not None:
        lines.append(f"- **The trap avoided.** Using each account's *final* attainment as if it had been known from the start "
                     f"would claim a hazard ratio of {nv['hr']:.2f} — {'an exaggeration' if nv['hr'] < tv['hr'] else 'a distortion'}: "
                     "accounts that left early simply had less time to make progress (immortal-time bias).")
    design = res.get("study_design")
    if design:
        row = next((x for x in design["rows"] if abs(x["reduction"] - 0.10) < 1e-9), design["rows"][0])
        lines.append(f"- **Study size.** With {_pct(design['base_churn_12m'])} of accounts churning within a year, detecting a "
                     f"{_pct(row['reduction'])} relative churn reduction (80% power, 5% two-sided) takes about "
                     f"{row['n_total_logrank']:,} accounts ({row['events_logrank']:,} churn events).")
    verdicts = [m for m in res.get("metrics", []) if m.get("verdict") in ("goldilocks", "papa", "mama")]
    if verdicts:
        by = {}
        for m in verdicts:
            by.setdefault(m["verdict"], []).append(m["metric"])
        names = {"goldilocks": "Goldilocks (predict renewal and move with usage)", "papa": "Papa Bear (predict renewal, not moved by the product)",
                 "mama": "Mama Bear (move with usage, do not predict renewal)"}
        parts = [f"{names[v]}: {', '.join(sorted(by[v]))}" for v in ("goldilocks", "papa", "mama") if v in by]
        lines.append("- **Which metrics matter, by data.** " + "; ".join(parts) + ".")
    if res["warnings"]:
        lines.append(f"- **Limits.** {len(res['warnings'])} part(s) of the study could not be estimated; see *Caveats*.")
    return "\n".join(lines)


def _p(p: float | None) -> str:
    """A p-value for a sentence that reads "p {_p(x)}": "= 0.012", "< 0.001"."""
    if p is None:
        return "not available"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _model_sentence(r: StudyResults) -> str:
    tv = (r.results.get("attainment_effect") or {}).get("time_varying") or {}
    pooled = r.params["segment"] is None
    if tv.get("model") == "discrete":
        return (f"With {tv['n_rows']:,} account-months, more than the {r.params['cox_max_rows']:,} the Cox model is run "
                "on, the model is its discrete-time equivalent: a complementary log-log regression of churn in each "
                "account-month, with a smooth baseline churn rate over tenure"
                + (" and a baseline level per segment" if pooled else "")
                + ". Its hazard ratio means the same as Cox's, and its standard errors allow for the repeated months of "
                "one account (robust, clustered by account).")
    return ("A Cox model on these monthly intervals compares accounts of the same tenure; its standard errors allow "
            "for the repeated months of one account (robust, clustered by account)"
            + (", and each segment keeps its own baseline churn rate (stratified)." if pooled else "."))


def methods_text(r: StudyResults) -> str:
    """Methods and caveats in plain words (Markdown)."""
    p = r.params
    lag = f", lagged a further {p['lag_days']} days" if p["lag_days"] else ""
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
        *([f"**A sample for the secondary analyses.** The headline figures use all {r.results['secondary_sample']['of_accounts']:,} "
           f"accounts. The metric classification, the Goodhart view, the vendor-customer gap, the maturity ladder and the "
           f"health-score audit use a random sample of {r.results['secondary_sample']['accounts']:,} of them (seed "
           f"{r.results['secondary_sample']['seed']}), which is ample for what they measure and keeps the study within "
           "one machine's memory."] if r.results.get("secondary_sample") else []),
        "**Censoring.** Accounts still active at the data's as-of date are counted as retained up to that date, not as "
        "retained forever; retention by cohort is read off Kaplan-Meier curves for the same reason."
        + (" The data is a snapshot starting at "
           f"{r.results['observed_from']}: accounts that started earlier enter the analysis only from that date (left truncation)."
           if r.results.get("observed_from") else ""),
        "**Caveats.** This is an observational association, not an experiment: customers who reach their goals may differ in "
        "ways the data does not hold. Attainment is only as good as the goals recorded at onboarding and the progress "
        "reported since. Adjustment covariates such as ARR are taken as recorded in the export and assumed to describe "
        "the account from its start; if ARR shrinks before churn, adjusting for it is not clean. C-indices are measured "
        "on the accounts the models were fitted on, so differences between them are slightly optimistic. "
        f"Confidence intervals are {1 - p['alpha']:.0%}.",
        f"**Privacy.** No account identifier or per-account row appears in this report; any group or cell with fewer than "
        f"{p['min_cell']} accounts is suppressed.",
    ]
    if r.results["warnings"]:
        text.append("**What could not be estimated:**\n" + "\n".join(f"- {w}" for w in r.results["warnings"]))
    return "\n\n".join(text)


def run_details(r: StudyResults) -> pd.DataFrame:
    """The run record shown at the end of the report: data fingerprint, as_of, parameters, versions."""
    run = r.results["run"]
    rows = [("study", r.results["study"]), ("segment", r.label), ("as of", r.results["as_of"]),
            ("data fingerprint (sha256)", run["data_fingerprint"]), ("data folder", os.path.basename(str(run["data_dir"]).rstrip("/"))),
            ("csresearch version", run["package_version"]), ("git commit", run["git_commit"] or "unknown"),
            ("python", run["python"])]
    for k, v in r.results["parameters"].items():
        if k not in ("study", "segment", "data_dir"):
            rows.append((f"parameter {k}", json.dumps(v)))
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")


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
def show(r: StudyResults, name: str) -> None:
    """Draw figure ``name`` of a study in a notebook, or say plainly why it is not there."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    from . import plots

    frame = r.frames.get(name)
    if frame is None or len(frame) == 0:
        display(Markdown(f"*Not available for this study ({r.label}); see Methods and caveats for the reason.*"))
        return
    res = r.results
    if name == "km":
        info = res["km_by_attainment"]
        plots.km_curves(frame, title=f"Retention after day {info['landmark_days']:.0f} by attainment then", xlabel=
                        f"months after day {info['landmark_days']:.0f} of the subscription")
    elif name == "retention":
        plots.retention_heatmap(frame)
    elif name == "dose_response":
        plots.dose_response(frame)
    elif name == "usage_vs_outcome":
        plots.c_index_bars(frame)
    elif name == "effects":
        plots.forest(frame, title="Hazard ratio, full versus no attainment: three analyses")
    elif name == "metrics":
        plots.metric_quadrants(frame)
    elif name == "goodhart_series":
        plots.goodhart_trends(frame, r.frames.get("goodhart"))
    elif name == "gap":
        plots.vendor_gap(frame, min_cell=r.params["min_cell"])
    elif name == "ladder":
        plots.ladder(frame)
    elif name == "health_calibration":
        plots.calibration(frame, metric=r.results["health_score_audit"]["metric"])
    else:
        raise KeyError(name)
    plt.show()


def effects_table(r: StudyResults) -> pd.DataFrame:
    """The attainment effect by analysis, one row each (time-varying, landmarks, naive), for a forest plot."""
    eff = r.results["attainment_effect"]
    rows = []
    if eff["time_varying"].get("hr") is not None:
        rows.append({"label": "time-varying (headline)", **{k: eff["time_varying"][k] for k in EFFECT_KEYS}})
    for lm in eff.get("landmarks", []):
        if lm.get("hr") is not None:
            rows.append({"label": f"landmark {lm['landmark_days']:.0f} days", **{k: lm[k] for k in EFFECT_KEYS}})
    if eff["naive"].get("hr") is not None:
        rows.append({"label": "naive (immortal-time biased)", **{k: eff["naive"][k] for k in EFFECT_KEYS}})
    return pd.DataFrame(rows)


def dose_response_text(r: StudyResults) -> str:
    """One paragraph on partial value (Markdown)."""
    d = r.results.get("dose_response")
    if not d:
        return ""
    at = d["hr_at"]
    shape = ("bends: the test of a straight line against the curve is significant"
             if d["lr_nonlinearity_p"] < r.params["alpha"] else
             "is close to a straight line on the log scale (no significant bend)")
    return (f"Relative to no progress, the churn hazard is {at['0.25']:.2f} times as high at a quarter of the way to the "
            f"goals, {at['0.5']:.2f} at halfway and {at['1']:.2f} at full attainment: partial value counts. The curve "
            f"{shape}; likelihood-ratio p {_p(d['lr_nonlinearity_p'])}.")


def sample_size_table(r: StudyResults) -> pd.DataFrame | None:
    """The study-design table with readable column names, or None (with the reason shown) when not available."""
    frame = r.frames.get("sample_size")
    if frame is None:
        from IPython.display import Markdown, display

        display(Markdown("*Not available: 12-month churn could not be estimated for this study.*"))
        return None
    t = frame.assign(reduction=(frame["reduction"] * 100).round(0).astype(int).astype(str) + "%",
                     churn_control=(frame["churn_control"] * 100).round(1).astype(str) + "%",
                     churn_treated=(frame["churn_treated"] * 100).round(1).astype(str) + "%",
                     hazard_ratio=frame["hazard_ratio"].round(3))
    t = t[["reduction", "churn_control", "churn_treated", "hazard_ratio", "n_total_proportions", "events_logrank",
           "n_total_logrank"]]
    t.columns = ["churn reduction", "12-month churn now", "churn after", "hazard ratio",
                 "accounts (two proportions)", "churn events (log-rank)", "accounts (log-rank)"]
    return t.set_index("churn reduction")


def maturity_text(r: StudyResults) -> str:
    """Where the team's measurement stands, from its data and (if given) its questionnaire (Markdown)."""
    m = r.results["maturity"]
    inf = m["inferred"]
    lines = [f"**From the data: level {inf['level']} of 5.** {inf['reason']} Next step: {inf['next_step']}"]
    if m.get("assessed"):
        a = m["assessed"]
        lines.append(f"**From the team's questionnaire: level {a['level']} of 5.** {a['reason']} Next step: {a['next_step']}")
    return "\n\n".join(lines)


def goodhart_text(r: StudyResults) -> str:
    """The Goodhart findings and the vendor-customer gap in plain words (Markdown)."""
    lines = []
    g = r.results.get("goodhart")
    if g:
        flagged = [row for row in r.frames["goodhart"].to_dict("records") if row.get("diverging")]
        if flagged:
            lines += [f"- **{row['sentence']}**" for row in flagged]
        else:
            lines.append("- No vendor metric rose while customer attainment stalled: no Goodhart divergence found.")
    gap = r.frames.get("gap")
    if gap is not None:
        cells = gap[gap["segment"] == "all"].set_index("cell")
        gn, ga = cells.loc["green usage, goals not attained"], cells.loc["green usage, goals attained"]
        if not (gn["suppressed"] or ga["suppressed"]):
            days = r.results["vendor_gap"]["horizon_days"]
            lines.append(f"- **Green is not success.** Accounts whose usage looked healthy but whose goals were not met "
                         f"churned {gn['churn_rate']:.0%} within {days:.0f} days (95% CI {gn['ci_low']:.0%} to "
                         f"{gn['ci_high']:.0%}), against {ga['churn_rate']:.0%} ({ga['ci_low']:.0%} to {ga['ci_high']:.0%}) "
                         "for healthy-looking accounts that met them.")
    return "\n".join(lines) if lines else "*Not available for this study; see Methods and caveats.*"


def maturity_ladder_text(r: StudyResults) -> str:
    """One sentence per step of the ladder: what the next level of measurement buys in foresight (Markdown)."""
    lad = r.results["maturity"].get("ladder")
    if not lad:
        return ""
    lines = []
    level = 1 - r.params["alpha"]
    for prev, cur in zip(lad, lad[1:]):
        head = (f"- Level {prev['level']} → {cur['level']} ({cur['knows']}): C-index {prev['c_index']:.3f} → "
                f"{cur['c_index']:.3f}, a gain of {cur['gain']:+.3f}")
        if cur["gain_ci_low"] is None or cur["gain_ci_high"] is None:
            lines.append(head + " (no bootstrap interval: bootstrap was set to 0).")
            continue
        sig = cur["gain_ci_low"] > 0
        lines.append(head + f" ({level:.0%} CI {cur['gain_ci_low']:+.3f} to {cur['gain_ci_high']:+.3f})"
                     + ("." if sig else ": not distinguishable from no gain."))
    lines.append("\nC-indices are measured on the same accounts the models were fitted on, and the bootstrap holds each "
                 "model's coefficients fixed, so small gains are optimistic; read them as the ranking each level "
                 "reaches on this book of accounts.")
    return "\n".join(lines)


def health_text(r: StudyResults) -> str:
    """The health-score audit's verdict in plain words (Markdown)."""
    h = r.results.get("health_score_audit")
    if not h:
        return "*No health score was audited (set `health_score_metric` to a usage metric holding one).*"
    lr = f"; beyond raw usage, likelihood-ratio p {_p(h['lr_test_p'])}" if h.get("lr_test_p") is not None else ""
    return (f"**Verdict: {h['verdict']}.** {h['sentence']} On its own it ranks churn risk at C = {h['c_index']:.2f}{lr}. "
            "The chart shows the monthly churn rate in each fifth of the score: a score worth its place falls band by band.")


def metrics_table(r: StudyResults) -> pd.DataFrame | None:
    """The data-driven metric verdicts for readers: one row per metric (suppressed metrics marked)."""
    frame = r.frames.get("metrics")
    if frame is None:
        return None
    cols = {"metric": "metric", "kind": "kind", "verdict": "verdict", "relevance_hr": "HR for churn",
            "relevance_q": "q (relevance)", "attrib_q": "q (moved by usage)", "n_accounts": "accounts"}
    t = frame[[c for c in cols if c in frame.columns]].rename(columns=cols)
    return t.round(3).set_index("metric")
