"""The health-score audit: does the vendor's health score (Gainsight, ChurnZero, ... scorecards) earn its place?

Three questions, on the account-month panel (the score as last recorded before each month starts):

1. Does it predict churn on its own? Time-varying Cox hazard ratio per standard deviation of the score, with CI,
   and its C-index (higher score is read as *healthier*, so the risk score is minus the health score).
2. Does it add anything beyond raw usage? Likelihood-ratio test of usage + score against usage alone.
3. Is it calibrated? Monthly churn rate per score band (quintiles), with Wilson CIs: a useful score has churn
   falling band by band.

Verdict, in plain words: **informative** (predicts churn and adds to usage), **redundant** (predicts churn, but
usage already tells the same), or **decoration** (does not predict churn, or higher scores go with *more* churn).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from .models import DEFAULT_ENGINE, AnalysisError, Engine, model_frame, strata_of, usage_features
from .privacy import suppress
from .attainment import episodes
from .survival import concordance, lr_test

if TYPE_CHECKING:
    from .data import Dataset

VERDICTS = ("informative", "redundant", "decoration")


def audit(ds: "Dataset", metric: str, *, panel: pd.DataFrame | None = None, usage_metrics: Iterable[str] | None = None,
          alpha: float = 0.05, bands: int = 5, min_cell: int = 10,
          engine: Engine = DEFAULT_ENGINE) -> tuple[pd.DataFrame, dict]:
    """Audit the usage metric ``metric`` as a health score. Returns the calibration table and the verdict dict.

    The dict: ``{metric, verdict, sentence, hr_per_sd, ci_low, ci_high, p, c_index, lr_test_p, lr_statistic,
    usage_metrics, n_rows, n_events}`` and the coverage of :func:`score_coverage` (``n_used, n_dropped, ...``). The calibration frame: ``band, score_from, score_to, account_months,
    accounts, churned, monthly_churn, ci_low, ci_high`` (bands with fewer than ``min_cell`` accounts suppressed).
    """
    if ds.usage is None:
        raise AnalysisError("the health-score audit needs a usage table")
    present = set(ds.usage["metric"])
    if metric not in present:
        raise AnalysisError(f"health_score_metric {metric!r} is not a metric of the usage table "
                            f"({', '.join(sorted(present))})")
    ep = panel if panel is not None else episodes(ds)
    col = f"usage_{metric}"
    others = sorted(set(usage_metrics) if usage_metrics is not None else present - {metric})
    others = [m for m in others if m != metric]
    raw = [col, *(f"usage_{m}" for m in others if f"usage_{m}" in ep.columns)]
    coverage = score_coverage(ep, col, raw[1:], snapshot=ds.observed_from is not None)
    ep = model_frame(ep, raw, rows=ep[raw].notna().all(axis=1))
    usage_cols = usage_features(ep, others) if others else []
    if coverage["events_with_score"] < 5:
        raise AnalysisError(coverage["known_at"] or f"only {coverage['events_with_score']} churn events have a health "
                            "score known before them; at least 5 are needed")
    if ep["event"].sum() < 5:
        raise AnalysisError(f"only {int(ep['event'].sum())} churn events have the health score and every other usage "
                            f"metric ({', '.join(others)}) known before them; at least 5 are needed "
                            f"({coverage['n_dropped_missing_usage']:,} accounts lack another usage metric)")
    sd = ep[col].std()
    if not sd > 0:
        raise AnalysisError(f"health score {metric!r} does not vary")
    ep["score_sd"] = (ep[col] - ep[col].mean()) / sd
    strata = strata_of(ep)
    alone = engine.panel(ep, ["score_sd"], strata)
    c = concordance(ep, "stop", "event", -ep["score_sd"].to_numpy(), entry="start", strata=strata)["c_index"]
    row = alone.summary.loc["score_sd"]
    # a health score is read as "higher = healthier": one whose higher values go with *more* churn is not a
    # working health score, whatever its p-value (it is reported, with the direction, as decoration)
    backwards = row["p"] < alpha and row["hr"] > 1
    predictive = row["p"] < alpha and not backwards
    lr = None
    if usage_cols:
        base = engine.panel(ep, usage_cols, strata)
        full = engine.panel(ep, [*usage_cols, "score_sd"], strata)
        lr = lr_test(full, base)
    adds = lr is None or lr["p"] < alpha
    verdict = "decoration" if not predictive else ("informative" if adds else "redundant")
    compared = "" if usage_cols else " (there is no other usage metric to compare it with)"
    sentence = {
        "informative": f"The health score {metric} is informative: it predicts churn (HR {row['hr']:.2f} per SD)"
                       + (" and adds to what raw usage says." if usage_cols else compared + "."),
        "redundant": f"The health score {metric} is redundant: it predicts churn (HR {row['hr']:.2f} per SD), but raw usage "
                     "already carries the same signal.",
        "decoration": (f"The health score {metric} is decoration: higher scores go with *more* churn (HR "
                       f"{row['hr']:.2f} per SD, {1 - alpha:.0%} CI {row['ci_low']:.2f} to {row['ci_high']:.2f}), so "
                       "a green score is misleading." if backwards else
                       f"The health score {metric} is decoration: it does not predict churn (HR {row['hr']:.2f} per SD, "
                       f"{1 - alpha:.0%} CI {row['ci_low']:.2f} to {row['ci_high']:.2f}); a green score says nothing "
                       "about renewal."),
    }[verdict]
    table = calibration(ep, col, bands=bands, alpha=alpha, min_cell=min_cell)
    return table, {"metric": metric, "verdict": verdict, "sentence": sentence, "hr_per_sd": float(row["hr"]),
                   "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"]), "p": float(row["p"]),
                   "c_index": float(c), "lr_test_p": None if lr is None else float(lr["p"]),
                   "lr_statistic": None if lr is None else float(lr["statistic"]), "usage_metrics": others,
                   "n_rows": int(len(ep)), "n_events": int(ep["event"].sum()), **coverage,
                   "calibration": table.to_dict("records")}


def score_coverage(panel: pd.DataFrame, score: str, others: list[str], *, snapshot: bool = False) -> dict:
    """Who the audit can use: ``n_used`` accounts with a score and every other usage metric known in some month,
    ``n_dropped`` the rest, split into ``n_dropped_no_score`` (no score known before any month) and
    ``n_dropped_missing_usage`` (a score, but another usage metric missing), and the churn events with a score
    known before them; ``known_at`` says plainly when the known-at rule leaves churn events without a score."""
    has = panel[score].notna().to_numpy()
    full = has & (panel[others].notna().all(axis=1).to_numpy() if others else True)
    ids = panel["account_id"].to_numpy()
    n_all = int(pd.unique(ids).size)
    n_scored, n_used = int(pd.unique(ids[has]).size), int(pd.unique(ids[full]).size)
    events = int(panel["event"].sum())
    scored_events = int(panel["event"].to_numpy()[has].sum())
    sentence = None
    if events and scored_events < events:
        why = ("scores dated in the snapshot month count from the next month" if snapshot else
               "a score counts only from the month after it is dated")
        sentence = (f"{scored_events:,} of {events:,} churn events have a health score known before them: {why}")
    return {"n_used": n_used, "n_dropped": n_all - n_used, "n_dropped_no_score": n_all - n_scored,
            "n_dropped_missing_usage": n_scored - n_used, "events": events, "events_with_score": scored_events,
            "known_at": sentence}


def calibration(panel: pd.DataFrame, score: str, *, bands: int = 5, alpha: float = 0.05, min_cell: int = 10) -> pd.DataFrame:
    """Monthly churn rate per score band (quantile bands of the account-months), with Wilson CIs.

    Bands with fewer than ``min_cell`` distinct accounts have their counts and rates suppressed (NaN).
    """
    cut = pd.qcut(panel[score].rank(method="first"), q=bands, labels=False)
    grp = panel.assign(band=cut.to_numpy() + 1).groupby("band")
    table = grp.agg(score_from=(score, "min"), score_to=(score, "max"), account_months=("event", "size"),
                    accounts=("account_id", "nunique"), churned=("event", "sum")).reset_index()
    low, high = proportion_confint(table["churned"], table["account_months"], alpha=alpha, method="wilson")
    table["monthly_churn"] = table["churned"] / table["account_months"]
    table["ci_low"], table["ci_high"] = np.asarray(low), np.asarray(high)
    return suppress(table, "accounts", ["account_months", "churned", "monthly_churn", "ci_low", "ci_high"], min_cell)
