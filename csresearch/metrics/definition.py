"""Classifying a metric by its definition: Papa Bear, Mama Bear, Goldilocks, or needs a proxy.

A customer buys a product to reach a business objective of its own. A success metric that vendor
and customer can share has to sit at the right distance from the product, like the porridge in
the story of Goldilocks and the three bears:

* **Papa Bear** (``papa``, too broad): the customer's company-wide results (revenue, costs,
  "improve public safety"). Every purchase should serve one, but so does everything else the
  company does; the product cannot credibly claim to move it, and a change cannot be attributed.
* **Mama Bear** (``mama``, too narrow): what the product produces or what people do in it (logins,
  reports created, red-light tickets issued, diagrams drawn), and every number that describes
  the vendor's own success (health score, NPS, renewal rate, churn). Easy to count, close to the
  product, but not the reason the customer buys; pushing it can even work against the customer's
  objective (the red-light cameras in the workbook's Goodhart lesson).
* **Goldilocks** (``goldilocks``, just right): an outcome the customer's team is after, that can
  be counted before and after adoption, and that the product can move (qualified leads per month,
  days to fill a position, prosecutions using the product's evidence).
* **Needs a proxy** (``needs_proxy``): a real customer objective that cannot be counted as stated
  (employee engagement, brand awareness). It is the right target but not yet a metric: agree on a
  countable outcome that stands for it, which is then the Goldilocks metric.

The rules, applied in this order to a definition (``owner``, ``level``, ``countable``); the first
that matches decides (its key is the ``rule`` column):

1. ``vendor_owned``: owner is the vendor -> ``mama``. A vendor metric measures the vendor's
   product or the vendor's own success, never the customer's objective, so it is never Goldilocks,
   whatever its level (a vendor's renewal rate is a business result *for the vendor*).
2. ``business_result``: level is business_result -> ``papa`` (countable or not).
3. ``activity_or_output``: a customer-owned activity or output -> ``mama``.
4. ``countable_outcome``: a customer-owned, countable outcome -> ``goldilocks``.
5. ``uncountable_outcome``: a customer-owned outcome that cannot be counted -> ``needs_proxy``.

The definition is only half of the judgement: whether a Goldilocks candidate actually moves with
the product and predicts retention is a question for the data, asked elsewhere in the workbook.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .catalog import CATALOG_SCHEMA, FIELDS, LEVELS, OWNERS, RULES, _is_bool, _show

#: Verdicts in the order of the story (and of reports): too broad, too narrow, just right, not yet countable.
VERDICTS = ("papa", "mama", "goldilocks", "needs_proxy")
VERDICT_LABELS = {
    "papa": "Papa Bear (too broad)",
    "mama": "Mama Bear (too narrow)",
    "goldilocks": "Goldilocks (just right)",
    "needs_proxy": "Needs a proxy (an objective, not yet countable)",
}
#: Rule keys in the order they are applied.
RULE_ORDER = ("vendor_owned", "business_result", "activity_or_output", "countable_outcome", "uncountable_outcome")


class MetricDefinitionError(ValueError):
    """A metric definition given to :func:`classify_metric` with invalid values."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


#: Last words of a metric name that only state its unit (``sales_cycle_days``, ``win_rate_pct``).
_UNIT_SUFFIXES = ("days", "hours", "minutes", "weeks", "months", "usd", "pct")


def _label(name: str, unit: str) -> str:
    """``qualified_leads`` + ``leads per month`` -> ``qualified leads, in leads per month``.

    A last word of the name that only repeats the unit is dropped: ``time_to_fill_days`` in
    ``days`` -> ``time to fill, in days``; ``win_rate_pct`` in ``percent`` -> ``win rate, in percent``.
    """
    words = name.replace("_", " ").split()
    unit_words = unit.lower().split()
    if len(words) > 1 and unit_words:
        last, first_unit = words[-1].lower(), unit_words[0]
        if (last in _UNIT_SUFFIXES and last == first_unit) or (last == "pct" and first_unit in ("percent", "%")):
            words = words[:-1]
    text = " ".join(words)
    return f"{text}, in {unit}" if unit else text


def decide(owner: str, level: str, countable: bool, name: str, unit: str = "") -> tuple[str, str, str]:
    """``(verdict, rule, rationale)`` for one valid definition (no checking; see :func:`classify_metric`)."""
    label = _label(name, unit)
    level_words = level.replace("_", " ")
    if owner == "vendor":
        if level in ("activity", "output"):
            why = "it measures the vendor's product (what it does or what people do in it)"
        else:
            why = "it measures the vendor's own success"
        return ("mama", "vendor_owned",
                f"Mama Bear: a vendor-owned {level_words} ({label}); {why}, not the customer's objective, "
                "so it can never be Goldilocks.")
    if level == "business_result":
        return ("papa", "business_result",
                f"Papa Bear: a business result of the customer's whole company ({label}); too broad, "
                "the product cannot credibly claim to move it or have a change attributed to it.")
    if level in ("activity", "output"):
        what = "work done with the product" if level == "activity" else "what the product directly produces"
        return ("mama", "activity_or_output",
                f"Mama Bear: a customer-owned {level_words} ({label}); too narrow, it counts {what}, "
                "not the reason the customer buys.")
    if countable:
        return ("goldilocks", "countable_outcome",
                f"Goldilocks: a customer-owned outcome ({label}) that can be counted and that the product can move.")
    return ("needs_proxy", "uncountable_outcome",
            f"Needs a proxy: a real customer objective ({label}) that cannot be counted as stated; "
            "agree on a countable outcome that stands for it.")


def classify_definition(catalog: pd.DataFrame) -> pd.DataFrame:
    """The catalog with three more columns: ``verdict`` (:data:`VERDICTS`), ``rule`` (the key of the
    deciding rule, :data:`RULE_ORDER`) and ``rationale`` (one sentence naming that rule for this metric).

    ``catalog`` is a frame from :func:`~csresearch.metrics.catalog.load_catalog` (it is checked
    against :data:`~csresearch.metrics.catalog.CATALOG_SCHEMA`). The input is not modified; row
    order is kept.
    """
    for optional in ("function", "label"):  # optional in a catalog, so optional in a hand-made frame too
        if optional not in catalog.columns:
            catalog = catalog.assign(**{optional: None})
    frame = CATALOG_SCHEMA.validate(catalog[list(FIELDS)].copy())
    decided = [decide(r.owner, r.level, bool(r.countable), r.name, r.unit) for r in frame.itertuples(index=False)]
    out = catalog.copy()
    out["verdict"] = [d[0] for d in decided]
    out["rule"] = [d[1] for d in decided]
    out["rationale"] = [d[2] for d in decided]
    return out


def classify_metric(name: str, owner: str, level: str, countable: bool, description: str = "",
                    unit: str = "", function: str | None = None) -> dict[str, Any]:
    """Classify one metric by its definition, e.g. a learner's own candidate.

    Same rules as :func:`classify_definition`. Returns a dict with the definition fields plus
    ``verdict``, ``rule`` and ``rationale``. Raises :class:`MetricDefinitionError` (a ``ValueError``)
    listing every invalid value, e.g. ``metric 'x': owner: 'client' is not one of customer, vendor``.

    >>> classify_metric("qualified_leads", "customer", "outcome", True, unit="leads per month")["verdict"]
    'goldilocks'
    """
    given = {"name": name, "description": description, "owner": owner, "level": level,
             "countable": countable, "unit": unit, "function": function}
    label = f"metric {_show(name)}" if isinstance(name, str) and name.strip() else "metric"
    problems = []
    for key in ("name_text", "name_empty", "name_spaces", "owner_choice", "level_choice",
                "description_text", "unit_text", "function_text"):
        rule = RULES[key]
        value = given[rule.field]
        if rule.field in ("description", "unit") and value is None:
            continue
        if not rule.ok(value):
            problems.append(f"{label}: {rule.field}: {rule.message(value)}")
    if not _is_bool(countable):
        problems.append(f"{label}: countable: must be True or False, got {countable!r}")
    if problems:
        raise MetricDefinitionError(problems)
    description = description or ""
    unit = (unit or "").strip()
    function = function.strip() or None if isinstance(function, str) else None
    verdict, rule, rationale = decide(owner, level, bool(countable), name, unit)
    return {"name": name, "description": description, "owner": owner, "level": level,
            "countable": bool(countable), "unit": unit, "function": function,
            "verdict": verdict, "rule": rule, "rationale": rationale}


__all__ = ["VERDICTS", "VERDICT_LABELS", "RULE_ORDER", "MetricDefinitionError", "classify_definition",
           "classify_metric", "decide", "LEVELS", "OWNERS"]
