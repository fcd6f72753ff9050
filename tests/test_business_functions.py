"""KPIs by business function: csresearch.metrics.functions, lesson 9's exercise checks and `csresearch classify --function`."""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from csresearch.cli import main
from csresearch.exercises import (FUNCTION_CANDIDATES, FUNCTION_EXERCISE_FUNCTION, check_function_kpis,
                                  check_vendor_functions, function_candidates)
from csresearch.metrics import classify_definition, classify_metric, load_catalog, parse_catalog
from csresearch.metrics.functions import (BORROWED_MAMA, COLUMNS, FUNCTION_OBJECTIVES, FUNCTION_TEAMS, PREFERRED,
                                          SERVES, by_function, functions_of, goals_by_function)

LESSON = Path(__file__).resolve().parents[1] / "notebooks" / "lessons" / "09_business_functions" / "lesson.ipynb"
RIGHT = {"function": "hr", "goldilocks": "days_to_quality_hire", "papa": "company_profit_per_employee",
         "mama": "recruiter_logins"}


@pytest.fixture(scope="module")
def classified():
    return classify_definition(load_catalog())


@pytest.fixture(scope="module")
def table(classified):
    return by_function(classified)


# ----------------------------------------------------------------------------------------------
# the by-function table


def test_objectives_and_teams_cover_every_function_of_the_catalog(classified):
    functions = set(functions_of(classified))
    assert len(functions) == 11
    assert functions <= set(FUNCTION_OBJECTIVES), functions - set(FUNCTION_OBJECTIVES)
    assert functions <= set(FUNCTION_TEAMS), functions - set(FUNCTION_TEAMS)
    for function in functions:
        sentence = FUNCTION_OBJECTIVES[function]
        assert sentence[0].isupper() and sentence.endswith(".") and len(sentence.split()) >= 5


def test_one_row_per_catalog_function_in_catalog_order(classified, table):
    assert list(table.columns) == list(COLUMNS)
    assert table["function"].tolist() == functions_of(classified)
    assert table["function"].is_unique
    assert table["objective"].tolist() == [FUNCTION_OBJECTIVES[f] for f in table["function"]]
    assert table["objective"].map(lambda s: isinstance(s, str) and s.strip() != "").all()


def test_the_unclassified_catalog_gives_the_same_table(table):
    pd.testing.assert_frame_equal(by_function(load_catalog()), table)


@pytest.mark.parametrize("bear", ["goldilocks", "papa", "mama"])
def test_each_bear_is_classified_that_bear_by_definition(classified, table, bear):
    verdicts = dict(zip(classified["name"], classified["verdict"]))
    functions = dict(zip(classified["name"], classified["function"]))
    for row in table.itertuples(index=False):
        name = getattr(row, bear)
        why = getattr(row, f"{bear}_why")
        assert isinstance(why, str) and len(why) > 20
        if name is None:
            assert why.startswith("None"), (row.function, bear, why)
            continue
        assert verdicts[name] == bear, (row.function, bear, name)
        if bear == "goldilocks":
            assert functions[name] == row.function  # a Goldilocks KPI is never borrowed
        else:
            assert getattr(row, f"{bear}_from") == functions[name]


def test_every_customer_function_has_all_three_bears_and_the_vendor_side_has_no_goldilocks(classified, table):
    for row in table.itertuples(index=False):
        owners = set(classified.loc[classified["function"] == row.function, "owner"])
        assert row.customer_team == ("customer" in owners)
        if row.customer_team:
            assert row.goldilocks and row.papa and row.mama, row.function
        else:
            assert row.goldilocks is None and "vendor's own" in row.goldilocks_why
            assert row.mama is not None
    assert set(table.loc[~table["customer_team"], "function"]) == {"product", "customer_success"}


def test_borrowed_bears_are_named_and_explained(table):
    for row in table.itertuples(index=False):
        borrowed = [b for b in ("papa", "mama") if getattr(row, f"{b}_from") not in (None, row.function)]
        assert row.borrowed == ", ".join(borrowed)
        for bear in borrowed:
            assert f"filed under {getattr(row, f'{bear}_from').replace('_', ' ')}" in getattr(row, f"{bear}_why")
    by = table.set_index("function")
    assert by.loc["marketing", "papa"] == "company_revenue" and by.loc["marketing", "papa_from"] == "finance"
    assert by.loc["sales", "borrowed"] == ""


def test_the_fallback_and_preferred_picks_exist_with_the_right_verdict(classified):
    verdicts = dict(zip(classified["name"], classified["verdict"]))
    functions = dict(zip(classified["name"], classified["function"]))
    for name in SERVES.values():
        assert verdicts[name] == "papa"
    for name in BORROWED_MAMA.values():
        assert verdicts[name] == "mama"
    for (function, verdict), name in PREFERRED.items():
        assert verdicts[name] == verdict and functions[name] == function


def test_a_catalog_of_your_own_gets_plain_statements_for_what_it_lacks():
    own = parse_catalog([
        {"name": "tickets_per_agent", "description": "Tickets an agent closes.", "owner": "customer",
         "level": "activity", "countable": True, "unit": "tickets", "function": "helpdesk"},
        {"name": "no_function", "description": "No function.", "owner": "customer", "level": "outcome",
         "countable": True, "unit": "days"},
    ])
    table = by_function(own)
    assert table["function"].tolist() == ["helpdesk"]
    row = table.iloc[0]
    assert "no objective written for helpdesk" in row["objective"]
    assert row["goldilocks"] is None and row["goldilocks_why"].startswith("None in the catalog for helpdesk")
    assert row["papa"] is None and row["papa_why"].startswith("None in the catalog")
    assert row["mama"] == "tickets_per_agent" and row["borrowed"] == ""


def test_goals_by_function_counts_goals_by_the_function_and_verdict_of_their_metric(classified):
    goals = pd.DataFrame({"goal_id": ["g1", "g2", "g3", "g4"], "account_id": ["a", "b", "b", "c"],
                          "metric": ["qualified_leads", "qualified_leads", "company_revenue", "made_up"]})
    out = goals_by_function(goals, classified)
    assert list(out.columns) == ["function", "metric", "verdict", "goals", "accounts"]
    rows = {r.metric: r for r in out.itertuples(index=False)}
    assert (rows["qualified_leads"].function, rows["qualified_leads"].verdict) == ("marketing", "goldilocks")
    assert (rows["qualified_leads"].goals, rows["qualified_leads"].accounts) == (2, 2)
    assert (rows["company_revenue"].function, rows["company_revenue"].verdict) == ("finance", "papa")
    assert rows["made_up"].verdict == "not in catalog"
    assert out["goals"].sum() == len(goals)


# ----------------------------------------------------------------------------------------------
# the exercise checks


def test_the_candidates_hold_one_of_each_bear_and_are_not_in_the_catalog(classified):
    assert not set(FUNCTION_CANDIDATES) & set(classified["name"])
    verdicts = [classify_metric(n, **{k: v for k, v in d.items() if k != "question"})["verdict"]
                for n, d in FUNCTION_CANDIDATES.items()]
    assert {"goldilocks", "papa", "mama", "needs_proxy"} <= set(verdicts)
    assert verdicts.count("goldilocks") == 1 and verdicts.count("papa") == 1
    assert list(function_candidates()["name"]) == list(FUNCTION_CANDIDATES)
    assert FUNCTION_EXERCISE_FUNCTION in functions_of(classified)
    for n, d in FUNCTION_CANDIDATES.items():
        assert classify_metric(n, **{k: v for k, v in d.items() if k != "question"})["verdict"] == \
            {"days_to_quality_hire": "goldilocks", "company_profit_per_employee": "papa",
             "recruiter_logins": "mama", "interviews_scheduled": "mama", "candidate_experience": "needs_proxy"}[n]


def test_the_right_answer_is_accepted():
    assert check_function_kpis(RIGHT)
    assert str(check_function_kpis(RIGHT)).startswith("✔ Correct")
    assert check_function_kpis({**RIGHT, "mama": "interviews_scheduled"})  # the other Mama Bear is right too


def _no_answer_given_away(text: str, answer: dict) -> None:
    """A wrong answer's feedback names only what the learner gave, never a right candidate not given (a list of
    every option, in parentheses, gives nothing away)."""
    text = re.sub(r"\([^()]*\)", "", text)
    given = set(answer.values())
    for right in ("days_to_quality_hire", "company_profit_per_employee", "recruiter_logins", "interviews_scheduled"):
        if right not in given:
            assert right not in text, (right, text)
    assert "'hr'" not in text and " hr " not in text.replace(",", " ")


@pytest.mark.parametrize("answer, expected", [
    ({**RIGHT, "goldilocks": "recruiter_logins", "mama": "days_to_quality_hire"},
     ["recruiter_logins is something people do in the product: whose success is that?",
      "days_to_quality_hire: who owns it"]),
    ({**RIGHT, "papa": "candidate_experience"}, ["can it be counted as stated?"]),
    ({**RIGHT, "goldilocks": "company_profit_per_employee", "papa": "days_to_quality_hire"},
     ["could a recruiting tool credibly claim a change in it?"]),
    ({**RIGHT, "goldilocks": "interviews_scheduled"}, ["is an interview booked a role filled?"]),
    ({**RIGHT, "function": "sales"}, ["function: not sales", "filling roles"]),
    ({**RIGHT, "function": "recruiting"}, ["not a function of the catalog"]),
    ({**RIGHT, "mama": "page_views"}, ["not one of the candidates"]),
    ({**RIGHT, "papa": "recruiter_logins"}, ["more than one bear"]),
    ({**RIGHT, "bears": 3}, ["unexpected key 'bears'"]),
])
def test_wrong_answers_are_rejected_with_what_to_look_at_again(answer, expected):
    feedback = check_function_kpis(answer)
    assert not feedback
    text = str(feedback)
    assert text.startswith("✘ Not yet")
    for part in expected:
        assert part in text, (part, text)
    _no_answer_given_away(text, answer)


def test_unanswered_and_partial_answers():
    blank = {"function": ..., "goldilocks": ..., "papa": ..., "mama": ...}
    assert str(check_function_kpis(...)).startswith("✎ Not answered yet")
    assert str(check_function_kpis(blank)).startswith("✎ Not answered yet")
    partial = check_function_kpis({**blank, "function": "hr", "goldilocks": "days_to_quality_hire"})
    assert not partial and "still to answer: papa, mama" in str(partial)
    assert not check_function_kpis(["hr"]) and "give a dict" in str(check_function_kpis(["hr"]))


def test_check_vendor_functions():
    assert check_vendor_functions(["product", "customer_success"])
    assert check_vendor_functions({"customer_success", "product"})
    assert str(check_vendor_functions(...)).startswith("✎ Not answered yet")
    too_many = check_vendor_functions(["product", "customer_success", "sales"])
    assert not too_many and "sales has metrics its own customer team owns" in str(too_many)
    too_few = check_vendor_functions(["product"])
    assert not too_few and "1 more function" in str(too_few) and "customer_success" not in str(too_few)
    unknown = check_vendor_functions(["vendor"])
    assert not unknown and "not a function of the catalog: vendor" in str(unknown)
    assert not check_vendor_functions([1, 2])


# ----------------------------------------------------------------------------------------------
# the command


def _table_rows(out: str, names: set[str]) -> list[str]:
    return [ln for ln in out.splitlines() if ln.split(" ")[0] in names]


def test_classify_shows_each_metrics_function(capsys, classified):
    assert main(["classify"]) == 0
    out = capsys.readouterr().out
    header = next(ln for ln in out.splitlines() if ln.startswith("metric "))
    assert "function" in header
    start = header.index("function")
    functions = dict(zip(classified["name"], classified["function"]))
    rows = _table_rows(out, set(functions))
    assert len(rows) == len(classified)
    for ln in rows:
        assert ln[start:].split()[0] == (functions[ln.split()[0]] or "-")


def test_classify_filters_by_one_function(capsys, classified):
    assert main(["classify", "--function", "sales"]) == 0
    out = capsys.readouterr().out
    sales = set(classified.loc[classified["function"] == "sales", "name"])
    rows = _table_rows(out, set(classified["name"]))
    assert {ln.split()[0] for ln in rows} == sales
    assert "function: sales" in out
    assert out.rstrip().splitlines()[-1].startswith(f"{len(sales)} metrics: ")


@pytest.mark.parametrize("args", [["--function", "hr,finance"], ["--function", "hr", "--function", "finance"],
                                  ["--function", " hr , finance ,"]])
def test_classify_filters_by_several_functions_with_json(capsys, classified, args):
    assert main(["classify", "--json", *args]) == 0
    records = json.loads(capsys.readouterr().out)
    wanted = classified[classified["function"].isin(["hr", "finance"])]
    assert [r["metric"] for r in records] == list(wanted["name"])  # catalog order kept
    assert {r["function"] for r in records} == {"hr", "finance"}


def test_classify_refuses_an_unknown_function_and_lists_the_catalogs(capsys, classified):
    assert main(["classify", "--function", "sales,recruiting"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    assert "unknown function 'recruiting'" in err and "'sales'" not in err
    for function in functions_of(classified):
        assert function in err
    assert main(["classify", "--json", "--function", "nope", "--function", "vendor"]) == 2
    err = capsys.readouterr().err
    assert "unknown functions 'nope', 'vendor'" in err


def test_classify_refuses_an_empty_function(capsys):
    assert main(["classify", "--function", ""]) == 2
    assert "--function needs a function name" in capsys.readouterr().err


def test_classify_filters_a_catalog_of_your_own(tmp_path, capsys):
    path = tmp_path / "metrics.yaml"
    path.write_text("""\
- name: cost_per_lead
  description: Spend per lead.
  owner: customer
  level: outcome
  countable: true
  unit: USD
  function: marketing
- name: logins
  description: Sign-ins.
  owner: vendor
  level: activity
  countable: true
  unit: logins per month
""", encoding="utf-8")
    assert main(["classify", str(path), "--function", "marketing", "--json"]) == 0
    assert [r["metric"] for r in json.loads(capsys.readouterr().out)] == ["cost_per_lead"]
    assert main(["classify", str(path), "--function", "sales"]) == 2
    assert "the functions in the catalog are: marketing" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# the lesson


def test_lesson_9_teaches_kpis_by_business_function():
    nb = nbformat.read(str(LESSON), as_version=4)
    assert "business function" in nb.metadata["title"].lower()
    source = "\n".join(c.source for c in nb.cells)
    for needed in ("by_function(", "check_function_kpis(", "csresearch classify --function", "## Learning goals",
                   "## Summary"):
        assert needed in source, needed
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert len(solutions) == 2
