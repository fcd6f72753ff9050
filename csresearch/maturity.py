"""Where a customer-success team's measurement stands on the five-level maturity model.

1. Features and use cases are pitched; the customer finds value alone.
2. Product usage is tracked as the sign of value.
3. Usage is tied to the customer's goals, recorded at onboarding, with playbooks per goal.
4. The customer's ecosystem is understood and earlier health indicators than usage are tracked.
5. Customer goals and the value received, including partial value, are the focus.

Two ways to place a team: **assessed** from a short questionnaire (which practices it has) and **inferred** from
what its data holds. Both give a level, the reason and the next step.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .data import Dataset

#: questionnaire keys, in the order of the ladder, with the level each one unlocks
PRACTICES: dict[str, tuple[int, str]] = {
    "features_pitched": (1, "features and use cases are pitched to customers"),
    "usage_tracked": (2, "product usage is tracked as the sign of value"),
    "goals_recorded": (3, "each customer's goals are recorded at onboarding"),
    "playbooks_per_goal": (3, "playbooks are run toward the customer's goals"),
    "ecosystem_mapped": (4, "the people, tools and services the customer needs are mapped"),
    "early_health_indicators": (4, "health indicators earlier than usage are tracked"),
    "partial_value_recorded": (5, "progress toward each goal is recorded as partial value over time"),
}
NEXT_STEP = {
    1: "Track product usage per account, so value has at least a first signal (level 2).",
    2: "Ask every new customer what success means for them, record 3-4 goals in their own KPIs, and run playbooks toward them (level 3).",
    3: "Map the people, tools and services each customer needs to reach its goals, and track health indicators that move before usage does (level 4).",
    4: "Record progress toward each goal regularly as partial value, and review it with the customer before renewal (level 5).",
    5: "Keep the goals current at each review, and test every year that attainment still predicts renewal better than usage.",
}


class MaturityError(ValueError):
    """A questionnaire that cannot be read; the message names the key."""


def assess(answers: dict[str, Any]) -> dict:
    """Level 1-5 from the questionnaire: the highest level whose practices (and all below) are in place.

    ``answers`` maps practice keys (see :data:`PRACTICES`) to true/false; missing keys count as false.
    Returns ``{level, reason, next_step, missing}``.
    """
    unknown = sorted(set(answers) - set(PRACTICES))
    if unknown:
        raise MaturityError(f"maturity questionnaire: unknown practice(s) {', '.join(unknown)}; known: {', '.join(PRACTICES)}")
    bad = sorted(k for k, v in answers.items() if not isinstance(v, bool))
    if bad:
        raise MaturityError(f"maturity questionnaire: answer true or false for {', '.join(bad)}")
    level = 1
    for target in (2, 3, 4, 5):
        needed = [k for k, (lvl, _) in PRACTICES.items() if lvl == target]
        if all(answers.get(k, False) for k in needed):
            level = target
        else:
            break
    have = [PRACTICES[k][1] for k, (lvl, _) in PRACTICES.items() if lvl <= level and lvl > 1 and answers.get(k)]
    missing = [k for k, (lvl, _) in PRACTICES.items() if lvl == level + 1 and not answers.get(k, False)]
    reason = (f"Level {level}: " + ("; ".join(have) + "." if have else "no measurement practice beyond pitching features.")
              + (f" Missing for level {level + 1}: " + "; ".join(PRACTICES[k][1] for k in missing) + "." if missing else ""))
    return {"level": level, "reason": reason, "next_step": NEXT_STEP[level], "missing": missing}


def infer(ds: "Dataset", health_score_metric: str | None = None) -> dict:
    """Level 1-5 from what the data holds.

    No goals: at most 2 (2 with usage, 1 without). Goals but no progress measurements: 3. Progress measured but not
    graded over time (about one measurement per goal, or only all-or-nothing values), or a health-score metric in
    the usage table: 4. Progress graded over time (repeated measurements with partial values): 5.
    Returns ``{level, reason, next_step, evidence}``.
    """
    has_usage = ds.usage is not None and len(ds.usage) > 0
    evidence = {"usage": has_usage, "goals": ds.has_goals, "progress_rows": 0, "measurements_per_goal": 0.0,
                "partial_share": 0.0, "health_score": False}
    if health_score_metric and has_usage:
        evidence["health_score"] = bool((ds.usage["metric"] == health_score_metric).any())
    if not ds.has_goals:
        level = 2 if has_usage else 1
        reason = ("The data holds product usage but no customer goals: value is measured by usage alone." if has_usage
                  else "The data holds neither usage nor customer goals.")
        return {"level": level, "reason": reason, "next_step": NEXT_STEP[level], "evidence": evidence}
    prog = ds.goal_progress
    if prog is None or len(prog) == 0:
        return {"level": 3, "reason": "Customer goals are recorded, but no progress toward them is measured.",
                "next_step": NEXT_STEP[3], "evidence": evidence}
    goals = ds.goals.set_index("goal_id")
    joined = prog.join(goals[["baseline", "target"]], on="goal_id")
    att = np.clip((joined["value"] - joined["baseline"]) / (joined["target"] - joined["baseline"]), 0, 1)
    per_goal = prog.groupby("goal_id").size()
    evidence.update({"progress_rows": int(len(prog)), "measurements_per_goal": float(per_goal.median()),
                     "partial_share": float(((att > 0) & (att < 1)).mean())})
    graded = evidence["measurements_per_goal"] >= 2 and evidence["partial_share"] >= 0.10
    if graded:
        return {"level": 5, "reason": f"Progress toward goals is measured repeatedly (median {evidence['measurements_per_goal']:.0f} "
                f"measurements per goal) and recorded as partial value ({evidence['partial_share']:.0%} of measurements are "
                "between no progress and the target).", "next_step": NEXT_STEP[5], "evidence": evidence}
    reason = ("Progress toward goals is measured, but not graded over time "
              f"(median {evidence['measurements_per_goal']:.0f} measurement(s) per goal, "
              f"{evidence['partial_share']:.0%} partial values)")
    if evidence["health_score"]:
        reason += f"; a health score ({health_score_metric}) is tracked"
    return {"level": 4, "reason": reason + ".", "next_step": NEXT_STEP[4], "evidence": evidence}


def summary(ds: "Dataset", answers: dict[str, Any] | None = None, health_score_metric: str | None = None) -> dict:
    """``{assessed, inferred}``: assessed is None when no questionnaire was given."""
    return {"assessed": assess(answers) if answers else None, "inferred": infer(ds, health_score_metric)}


# ---------------------------------------------------------------------------------------------------------
# the ladder: what each level of measurement adds in foresight of churn
# ---------------------------------------------------------------------------------------------------------
#: largest churn-events x accounts table the ladder's bootstrap builds (per level, float64: 8 bytes a cell)
MAX_BOOTSTRAP_CELLS = 20_000_000

LEVELS = {
    2: "usage: last month's product usage",
    3: "+ goals: how many goals were recorded and the share fully reached",
    4: "+ early indicators: progress moved in the last 3 months (and the health score, if one is tracked)",
    5: "+ partial value: attainment as a grade from 0 to 1",
}


def ladder_features(ds: "Dataset", panel=None, *, usage_metrics=None, health_score_metric: str | None = None,
                    threshold: float = 1.0, lag_days: int = 0):
    """The account-month panel with the features each level of the ladder may use, and the feature list per level.

    Every feature is known at the start of its month. Returns ``(panel restricted to rows where all features
    exist, {level: [columns]})``.
    """
    import numpy as np

    from .models import AnalysisError, goal_progress, model_frame, usage_features
    from .attainment import account_attainment, episodes

    if ds.usage is None or not ds.has_goals:
        raise AnalysisError("the ladder needs both a usage table and a goals table")
    ep = panel if panel is not None else episodes(ds, threshold=threshold, lag_days=lag_days)
    ep = model_frame(ep, ["period_start", "attainment", "goals_set", "goals_attained",
                          *(c for c in ep.columns if c.startswith("usage_"))])
    metrics = usage_metrics
    if metrics is None:
        metrics = sorted(set(ds.usage["metric"]) - {health_score_metric})
    usage_cols = usage_features(ep, metrics)
    ep["goals_recorded"] = ep["goals_set"].astype(float)
    ep["share_reached"] = np.where(ep["goals_set"] > 0, ep["goals_attained"] / ep["goals_set"].clip(lower=1), 0.0)
    before = account_attainment(ds.goals, goal_progress(ds), ep[["account_id", "period_start"]], date="period_start",
                                lag_days=lag_days + 91)
    earlier = np.nan_to_num(before["attainment"].to_numpy(), nan=0.0)  # no goal three months earlier: from zero
    ep["progress_moved"] = (ep["attainment"].to_numpy() > earlier + 1e-9).astype(float)
    level4 = ["progress_moved"]
    if health_score_metric and f"usage_{health_score_metric}" in ep.columns:
        ep["health_score"] = ep[f"usage_{health_score_metric}"]
        level4.append("health_score")
    features = {2: usage_cols, 3: usage_cols + ["goals_recorded", "share_reached"]}
    features[4] = features[3] + level4
    features[5] = features[4] + ["attainment"]
    needed = sorted({c for cols in features.values() for c in cols})
    ep = ep[ep[needed].notna().all(axis=1)].reset_index(drop=True)
    return ep, features


def ladder(ds: "Dataset", panel=None, *, usage_metrics=None, health_score_metric: str | None = None,
           threshold: float = 1.0, bootstrap: int = 100, seed: int = 2026, alpha: float = 0.05, lag_days: int = 0,
           cox_max_rows: int | None = None):
    """C-index of a churn model using only what each maturity level knows, with bootstrap CIs and the gain per step.

    For each level a time-varying Cox model (monthly ``(start, stop]`` rows, stratified by segment when several)
    is fitted on that level's features (the discrete-time model above ``cox_max_rows`` rows, see
    :meth:`csresearch.models.Engine.panel`); its linear predictor is scored with Harrell's C within segments. The CIs
    resample *accounts* (all months of an account together) ``bootstrap`` times with the fitted coefficients held
    fixed: they express how precisely the ranking is measured on this book of accounts (refitting per resample
    changes little with a handful of coefficients and tens of thousands of rows, at many times the cost).

    Returns a tidy frame ``level, knows, features, c_index, ci_low, ci_high, gain, gain_ci_low, gain_ci_high``.
    """
    import numpy as np
    import pandas as pd

    from .models import COX_MAX_ROWS, AnalysisError, Engine, strata_of
    from .survival import concordance

    ep, features = ladder_features(ds, panel, usage_metrics=usage_metrics, health_score_metric=health_score_metric,
                                   threshold=threshold, lag_days=lag_days)
    if ep["event"].sum() < 10:
        raise AnalysisError(f"the ladder needs at least 10 churn events with usage recorded, not {int(ep['event'].sum())}")
    strata = strata_of(ep)
    engine = Engine(alpha=alpha, cox_max_rows=COX_MAX_ROWS if cox_max_rows is None else cox_max_rows)
    scores = {}
    for level, cols in features.items():
        cols = [c for c in cols if ep[c].nunique() > 1]
        fit = engine.panel(ep, cols, strata)
        scores[level] = ep[cols].to_numpy() @ fit.summary.loc[cols, "coef"].to_numpy()

    note = None
    cells = int(ep["event"].sum()) * int(ep["account_id"].nunique())
    if bootstrap and cells > MAX_BOOTSTRAP_CELLS:
        # the exact bootstrap is a churn-rows x accounts table per level: past this size, point estimates only
        note = (f"The maturity ladder's C-indices have no confidence intervals: their bootstrap would need a "
                f"{int(ep['event'].sum()):,} x {int(ep['account_id'].nunique()):,} table of churn months by accounts "
                f"(more than {MAX_BOOTSTRAP_CELLS:,} cells); study one segment, or fewer accounts, to get them.")
        bootstrap = 0
    if bootstrap:
        point, draws = _bootstrap_c(ep, [scores[lv] for lv in features], strata, int(bootstrap), seed)
    else:
        point = np.array([concordance(ep, "stop", "event", scores[lv], entry="start", strata=strata)["c_index"]
                          for lv in features])
        draws = np.empty((0, len(features)))
    lo, hi = (np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0) if len(draws) else
              (np.full(len(features), np.nan), np.full(len(features), np.nan)))
    gains = np.diff(draws, axis=1) if len(draws) else np.full((0, len(features) - 1), np.nan)
    g_lo, g_hi = (np.quantile(gains, [alpha / 2, 1 - alpha / 2], axis=0) if len(gains) else
                  (np.full(len(features) - 1, np.nan), np.full(len(features) - 1, np.nan)))
    levels = list(features)
    out = pd.DataFrame({"level": levels, "knows": [LEVELS[lv] for lv in levels],
                        "features": [", ".join(features[lv]) for lv in levels],
                        "c_index": point, "ci_low": lo, "ci_high": hi,
                        "gain": np.r_[np.nan, np.diff(point)], "gain_ci_low": np.r_[np.nan, g_lo],
                        "gain_ci_high": np.r_[np.nan, g_hi]})
    out.attrs.update({"bootstrap": int(bootstrap), "n_rows": int(len(ep)), "n_events": int(ep["event"].sum()),
                      "stratified_by": strata, "note": note})
    return out


def _bootstrap_c(ep, scores, strata, n_boot: int, seed: int):
    """Harrell's C of each score on ``(start, stop]`` rows, and its account-bootstrap distribution.

    Every comparable pair is (a churn row at time t, a row of another account at risk at t in the same stratum and
    not churning at t), as :func:`csresearch.survival.concordance`. The pair counts are summed once into
    churn-row x account matrices; resampling accounts then only re-weights them (a churn row by its account's
    multiplicity, a partner by its own), which is exactly C on the resampled data, at the cost of two
    matrix-vector products per resample instead of a full recount.
    """
    import numpy as np
    import pandas as pd

    start = ep["start"].to_numpy(float)
    stop = ep["stop"].to_numpy(float)
    event = ep["event"].to_numpy() == 1
    acc, accounts = pd.factorize(ep["account_id"])
    n_acc = len(accounts)
    stratum = pd.factorize(ep[strata])[0] if strata else np.zeros(len(ep), dtype=np.int64)
    S = np.column_stack(scores)
    ev = np.flatnonzero(event)
    if ev.size * n_acc > MAX_BOOTSTRAP_CELLS:
        from .models import AnalysisError

        raise AnalysisError(f"the ladder's bootstrap would need a {ev.size:,} x {n_acc:,} pair table; study a segment, "
                            "or set bootstrap: 0 for the C-indices without CIs")
    num = np.zeros((len(scores), ev.size, n_acc))
    den = np.zeros((ev.size, n_acc))
    for k, i in enumerate(ev):
        t = stop[i]
        risk = (start < t) & (stop >= t) & (stratum == stratum[i]) & ~(event & (stop == t))
        j = np.flatnonzero(risk)
        den[k] = np.bincount(acc[j], minlength=n_acc)
        diff = S[i][:, None] - S[j].T  # levels x partners
        credit = (diff > 0) + 0.5 * (diff == 0)
        for lv in range(len(scores)):
            num[lv, k] = np.bincount(acc[j], weights=credit[lv], minlength=n_acc)
    ev_acc = acc[ev]

    def c_for(w):
        we = w[ev_acc]
        d = we @ den @ w
        return np.array([(we @ num[lv] @ w) / d for lv in range(len(scores))])

    point = c_for(np.ones(n_acc))
    rng = np.random.default_rng(seed)
    draws = np.array([c_for(np.bincount(rng.integers(0, n_acc, n_acc), minlength=n_acc).astype(float))
                      for _ in range(n_boot)]) if n_boot else np.empty((0, len(scores)))
    return point, draws
