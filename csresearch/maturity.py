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
