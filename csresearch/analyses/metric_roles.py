"""Which metrics matter, by data: every customer KPI and usage metric as Papa Bear, Mama Bear or Goldilocks."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .. import plots
from .. import tables
from ..metrics import classify_by_data
from ..result import Figure, Result, Shown
from ._gates import models_reason

if TYPE_CHECKING:
    from ..context import StudyContext

NAME = "metrics"
TITLE = "Which metrics matter, by data"
USES_SAMPLE = True
INTRO = ("Each customer KPI and each usage metric is tested twice: does it predict churn beyond core usage "
         "(relevance), and does product usage move it (attributability)? Goldilocks metrics do both; Papa Bear metrics "
         "predict renewal but the product does not move them; Mama Bear metrics move with usage but do not predict "
         "renewal. A metric is placed only on evidence: when an interval is too wide to tell whether the metric "
         "predicts renewal or whether usage moves it, it is inconclusive. Error bars are {level} CIs; significance "
         "is corrected for the number of metrics tested (Benjamini-Hochberg).")
RECORD_COLUMNS = ("metric", "kind", "verdict", "relevance_hr", "relevance_ci_low", "relevance_ci_high", "relevance_q",
                  "attrib_effect", "attrib_ci_low", "attrib_ci_high", "attrib_q", "n_accounts", "rationale")
LABELS = {"goldilocks": "Goldilocks (predict renewal and move with usage)",
          "papa": "Papa Bear (predict renewal, not moved by the product)",
          "mama": "Mama Bear (move with usage, do not predict renewal)",
          "inconclusive": "inconclusive (the intervals are too wide to place them)"}


def requires(ctx: "StudyContext") -> str | None:
    return models_reason(ctx)


def empty(ctx: "StudyContext", reason: str) -> dict:
    return {"metrics": []}


def run(ctx: "StudyContext") -> Result:
    ds = ctx.secondary
    res = Result(NAME, TITLE, record={"metrics": []})
    if ds.usage is None or not ds.has_goals:
        res.warnings.append("Metrics were not classified by data: that needs both goals and usage.")
        res.not_estimated = "that needs both goals and usage"
        return res
    frame, _ = classify_by_data(ds, baseline=ctx["usage_baseline"], alpha=ctx.alpha)
    frame, small = ctx.drop_small(frame, "n_accounts")  # fewer than min_cell accounts: not shown at all
    if small:
        res.warnings.append(f"{small} metric(s) measured on fewer than {ctx.min_cell} accounts are not shown.")
    res.tables["metrics"] = frame
    res.record["metrics"] = frame[[c for c in RECORD_COLUMNS if c in frame.columns]].to_dict("records")
    if (frame["verdict"] != "insufficient_data").any():  # nothing to place: no chart
        res.figures.append(Figure("metrics", lambda: plots.metric_quadrants(frame, names=ctx.names),
                                  alt=_alt(ctx, frame)))
    res.shown.append(_shown(frame, ctx.names))
    by: dict[str, list[str]] = {}
    for m in res.record["metrics"]:
        if m.get("verdict") in LABELS:
            by.setdefault(m["verdict"], []).append(ctx.names(m["metric"]))
    if by:
        parts = [f"{LABELS[v]}: {', '.join(sorted(by[v]))}" for v in LABELS if v in by]
        res.highlights.append("**Which metrics matter, by data.** " + "; ".join(parts) + ".")
    return res


def _alt(ctx: "StudyContext", frame) -> str:
    """The quadrant figure in words: how many metrics of each kind, and which each verdict holds."""
    drawn = frame[frame["verdict"] != "insufficient_data"]
    kinds = {"kpi": "customer KPIs", "usage": "usage metrics"}
    counts = ", ".join(f"{int((drawn['kind'] == k).sum())} {w}" for k, w in kinds.items() if (drawn["kind"] == k).any())
    verdicts = "; ".join(f"{v.replace('_', ' ')}: {', '.join(ctx.names.of(drawn.loc[drawn['verdict'] == v, 'metric']))}"
                         for v in dict.fromkeys(drawn["verdict"]))
    return (f"Quadrant chart of {counts}, each placed by its churn hazard ratio (how strongly it predicts churn "
            f"beyond usage, log scale) against how much usage moves it, with {ctx.level_text} intervals. "
            f"Verdicts: {verdicts or 'none'}.")


#: a metric's kind and verdict, for readers
KINDS = {"kpi": "Customer KPI", "usage": "Usage metric"}
VERDICTS = {"goldilocks": "Goldilocks", "papa": "Papa Bear", "mama": "Mama Bear", "noise": "Noise",
            "leading_indicator": "Leading indicator", "inconclusive": "Inconclusive",
            "insufficient_data": "Too little data"}


def _shown(frame, names=None) -> Shown:
    """The verdicts for readers: one row per metric (named by ``names``, normally ``ctx.names``)."""
    names = names or tables.default_names
    rows = frame.to_dict("records")
    out = pd.DataFrame({
        "Kind": [_word(KINDS, r.get("kind"), names) for r in rows],
        "Verdict": [_word(VERDICTS, r.get("verdict"), names) for r in rows],
        "Hazard ratio for churn": [tables.number(r.get("relevance_hr"), 2) for r in rows],
        "q (predicts churn)": [tables.q_value(r.get("relevance_q")) for r in rows],
        "q (moved by usage)": [tables.q_value(r.get("attrib_q")) for r in rows],
        "Accounts": [tables.count(r.get("n_accounts")) for r in rows],
    }, index=[names(r["metric"]) for r in rows])
    out.columns.name = "Metric"
    return Shown(tables.readable(out, names))


def _word(words: dict, value, names) -> str:
    return tables.MISSING if tables.is_missing(value) else words.get(value, names(value))
