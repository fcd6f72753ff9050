"""KPIs by business function: what a customer team in each function is after, and its three bears.

A customer buys a product for one of its teams: sales, marketing, HR, finance... Each team has an objective
of its own, and the same three questions decide its success metric (see :mod:`.definition`):

* its **Goldilocks** KPI is a countable outcome that team is after and that the product can move;
* its **Papa Bear** is the company-wide business result the team's work serves in the end (revenue, costs,
  margin, the mission), too broad for one product to claim;
* its **Mama Bear** is work done in the tool or what the tool produces, or any number that describes the
  vendor's own success.

:data:`FUNCTION_OBJECTIVES` says in one sentence what each function of the bundled catalog is after
(:data:`FUNCTION_TEAMS` names the team). :func:`by_function` builds one row per function of a catalog with a
Goldilocks, a Papa Bear and a Mama Bear taken from the catalog, and the reason for each.

Where the catalog files no metric of a kind under a function, :func:`by_function` says so plainly:

* Papa Bears are company-wide by nature, so the catalog files most of them under ``finance`` (revenue, costs,
  margin). For a function without one of its own, the row names the company-wide result that function's work
  serves (:data:`SERVES`), and ``papa_from`` says which function the catalog files it under.
* A function without a Mama Bear of its own borrows one of the vendor's usage numbers (:data:`BORROWED_MAMA`):
  every vendor number is Mama Bear for every team.
* Functions whose metrics are all owned by the vendor (``product``, ``customer_success``) are not customer teams
  at all: they hold the vendor's numbers about its product and its customers. They have no Goldilocks KPI and
  the row says so; a customer's Goldilocks lives in the function of the team that bought the product.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .definition import classify_definition

#: The customer's objective in each function of the bundled catalog, in one sentence (what success means to that
#: team). The two vendor-side functions describe whose numbers they hold instead.
FUNCTION_OBJECTIVES: dict[str, str] = {
    "sales": "Win more of the right deals, sooner, with the reps they already have.",
    "marketing": "Hand the sales team more leads worth working, at a lower cost per lead.",
    "hr": "Fill roles faster without lowering quality, and get new hires productive sooner.",
    "project_management": "Deliver projects on time and on budget.",
    "operations": "Get orders, claims and requests through the process in fewer days.",
    "supply_chain": "Deliver orders on time and in full with less cash tied up in stock.",
    "public_safety": "Solve more cases and make the streets safer with the evidence they gather.",
    "finance": "Get paid sooner and run the finance processes at a lower cost.",
    "customer_service": "Resolve their own customers' problems at the first contact, without long waits.",
    "product": "Not a customer team: the vendor's numbers about its own product (who uses it, how much).",
    "customer_success": "Not a customer team: the vendor's numbers about its own customers (health, NPS, renewals).",
}

#: Who the customer is in each function (used in sentences: "the recruiting team").
FUNCTION_TEAMS: dict[str, str] = {
    "sales": "the sales team",
    "marketing": "the marketing team",
    "hr": "the HR and recruiting team",
    "project_management": "the project office (PMO)",
    "operations": "the operations team",
    "supply_chain": "the supply-chain and procurement team",
    "public_safety": "the police department",
    "finance": "the finance team",
    "customer_service": "the customer-service team",
    "product": "the vendor's product team",
    "customer_success": "the vendor's customer-success team",
}

#: For a function with no Papa Bear of its own in the catalog: the company-wide result its work serves in the end.
SERVES: dict[str, str] = {
    "marketing": "company_revenue",
    "hr": "operating_costs",
    "project_management": "operating_costs",
    "operations": "operating_costs",
    "supply_chain": "profit_margin_pct",
    "customer_service": "company_revenue",
}

#: For a function with no Mama Bear of its own: a vendor usage number its team would be shown instead.
BORROWED_MAMA: dict[str, str] = {
    "finance": "reports_created",
    "operations": "diagrams_drawn",
}

#: Where a function has several candidates of a kind, the one that tells its story best (else: the first in the
#: catalog). ``public_safety``: the gunshot-detection story, whose Goldilocks is prosecutions with evidence.
PREFERRED: dict[tuple[str, str], str] = {
    ("public_safety", "mama"): "gunshot_alerts_sent",
    ("product", "mama"): "logins",
}

#: Columns of :func:`by_function`, in order.
COLUMNS = ("function", "team", "objective", "customer_team", "goldilocks", "goldilocks_why", "papa", "papa_from",
           "papa_why", "mama", "mama_from", "mama_why", "borrowed")

_WHY = {
    "goldilocks": "An outcome the team itself is after, countable before and after adoption, that the product can move.",
    "papa": "A result of the whole company, moved by every team and by the market: too broad for one product to claim.",
    "vendor_owned": "The vendor's own number: it describes the vendor's product or success, never the team's objective.",
    "activity": "Work done in the tool: easy to count, but not the result the team is after.",
    "output": "What the tool produces: easy to count, but not the result the team is after.",
}


def _words(function: str) -> str:
    return function.replace("_", " ")


def _reason(row: Any, function: str, borrowed: str = "") -> str:
    """Why ``row`` (a classified catalog row) is the function's bear: the rule in words, then the catalog's own words."""
    if row.verdict == "mama":
        key = "vendor_owned" if row.owner == "vendor" else row.level
    else:
        key = row.verdict
    head = f"{borrowed} " if borrowed else ""
    return f"{head}{_WHY[key]} {row.description}"


def _pick(rows: pd.DataFrame, function: str, verdict: str) -> Any | None:
    """The function's metric with ``verdict``: the preferred one if it is one, else the first in catalog order."""
    hits = rows[rows["verdict"] == verdict]
    if hits.empty:
        return None
    preferred = PREFERRED.get((function, verdict))
    if preferred is not None and preferred in set(hits["name"]):
        return next(hits[hits["name"] == preferred].itertuples(index=False))
    return next(hits.itertuples(index=False))


def _borrow(classified: pd.DataFrame, name: str | None, verdict: str) -> Any | None:
    if name is None:
        return None
    hits = classified[(classified["name"] == name) & (classified["verdict"] == verdict)]
    return next(hits.itertuples(index=False)) if not hits.empty else None


def functions_of(catalog: pd.DataFrame) -> list[str]:
    """The business functions of a catalog, in the order they first appear (metrics without one are left out)."""
    return list(dict.fromkeys(f for f in catalog["function"] if isinstance(f, str) and f))


def by_function(catalog: pd.DataFrame) -> pd.DataFrame:
    """One row per business function of ``catalog`` (a frame from :func:`~csresearch.metrics.load_catalog`, classified
    or not), in catalog order, with the columns :data:`COLUMNS`:

    * ``objective``: what the function's team is after (:data:`FUNCTION_OBJECTIVES`), ``team`` who that is, and
      ``customer_team``: False when every metric of the function is the vendor's own;
    * ``goldilocks``, ``papa``, ``mama``: a metric name from the catalog with that verdict, or ``None`` when the
      catalog has none to offer (the ``*_why`` column then says so and why);
    * ``papa_from``, ``mama_from``: the function the catalog files that metric under (another function's when it
      is borrowed, see :data:`SERVES` and :data:`BORROWED_MAMA`);
    * ``*_why``: the reason, in one or two sentences;
    * ``borrowed``: which of ``papa`` and ``mama`` come from another function (``"papa, mama"``, ``"papa"``, ``""``).

    A function missing from :data:`FUNCTION_OBJECTIVES` (a catalog of your own) gets an objective that says so.
    """
    classified = catalog if "verdict" in catalog.columns else classify_definition(catalog)
    out = []
    for function in functions_of(classified):
        rows = classified[classified["function"] == function]
        words = _words(function)
        customer_team = bool((rows["owner"] == "customer").any())
        objective = FUNCTION_OBJECTIVES.get(function, f"(no objective written for {words} yet: add it to "
                                                      "csresearch.metrics.functions.FUNCTION_OBJECTIVES)")
        rec: dict[str, Any] = {"function": function, "team": FUNCTION_TEAMS.get(function, f"the {words} team"),
                               "objective": objective, "customer_team": customer_team}

        gold = _pick(rows, function, "goldilocks")
        if gold is not None:
            rec.update(goldilocks=gold.name, goldilocks_why=_reason(gold, function))
        elif not customer_team:
            rec.update(goldilocks=None, goldilocks_why=(
                f"None: every {words} metric in the catalog is the vendor's own, so none can be Goldilocks. A "
                "customer's Goldilocks KPI lives in the function of the team that bought the product."))
        else:
            proxies = rows[rows["verdict"] == "needs_proxy"]["name"].tolist()
            extra = f" {', '.join(proxies)} is an objective that first needs a countable proxy." if proxies else ""
            rec.update(goldilocks=None, goldilocks_why=f"None in the catalog for {words}: add a countable outcome "
                                                       f"the team is after.{extra}")

        papa = _pick(rows, function, "papa")
        if papa is not None:
            rec.update(papa=papa.name, papa_from=function, papa_why=_reason(papa, function))
        else:
            served = _borrow(classified, SERVES.get(function), "papa")
            if served is not None:
                rec.update(papa=served.name, papa_from=served.function, papa_why=_reason(
                    served, function, f"The catalog files no company-wide result under {words}; this is the one "
                                      f"its work serves (filed under {_words(str(served.function))})."))
            elif not customer_team:
                vendor_results = rows[rows["level"] == "business_result"]["name"].tolist()
                why = (f"None: {' and '.join(vendor_results)} are business results, but the vendor's, so they are "
                       "Mama Bear for every customer." if vendor_results else
                       "None: the vendor's product numbers are activity and output, never a customer's company result.")
                rec.update(papa=None, papa_from=None, papa_why=why)
            else:
                rec.update(papa=None, papa_from=None,
                           papa_why=f"None in the catalog for {words}: its Papa Bear would be the company-wide "
                                    "result (revenue, costs, margin) its work serves.")

        mama = _pick(rows, function, "mama")
        if mama is not None:
            rec.update(mama=mama.name, mama_from=function, mama_why=_reason(mama, function))
        else:
            lent = _borrow(classified, BORROWED_MAMA.get(function), "mama")
            if lent is not None:
                rec.update(mama=lent.name, mama_from=lent.function, mama_why=_reason(
                    lent, function, f"The catalog has no {words} activity or output; a vendor usage number stands "
                                    f"in (filed under {_words(str(lent.function))}), and every vendor number is "
                                    "Mama Bear for any team."))
            else:
                rec.update(mama=None, mama_from=None,
                           mama_why=f"None in the catalog for {words}: any count of work done in the tool, or any "
                                    "vendor usage number, would be its Mama Bear.")
        rec["borrowed"] = ", ".join(b for b in ("papa", "mama") if rec[f"{b}_from"] not in (None, function))
        out.append(rec)
    return pd.DataFrame(out, columns=list(COLUMNS))


def goals_by_function(goals: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """The goals customers set (a ``goals`` table of the data contract), counted by the function and verdict of their
    metric in ``catalog``: columns ``function``, ``metric``, ``verdict``, ``goals`` (goals set on that metric) and
    ``accounts`` (accounts with at least one of them); one row per metric,
    sorted by function and then by number of goals (most first). A goal whose metric is not in the catalog gets
    function and verdict ``not in catalog``."""
    classified = catalog if "verdict" in catalog.columns else classify_definition(catalog)
    counted = goals.groupby("metric").agg(goals=("goal_id", "size"), accounts=("account_id", "nunique")).reset_index()
    info = classified[["name", "function", "verdict"]].rename(columns={"name": "metric"})
    table = counted.merge(info, on="metric", how="left")
    table["function"] = table["function"].where(table["function"].notna(), "not in catalog")
    table["verdict"] = table["verdict"].where(table["verdict"].notna(), "not in catalog")
    table = table.sort_values(["function", "goals", "metric"], ascending=[True, False, True], kind="stable")
    return table[["function", "metric", "verdict", "goals", "accounts"]].reset_index(drop=True)


__all__ = ["FUNCTION_OBJECTIVES", "FUNCTION_TEAMS", "SERVES", "BORROWED_MAMA", "PREFERRED", "COLUMNS",
           "functions_of", "by_function", "goals_by_function"]
