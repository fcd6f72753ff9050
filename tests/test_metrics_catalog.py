"""The metric catalog (csresearch/metrics/metrics.yaml), its checking, classification by definition and `csresearch classify`."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from csresearch.cli import main
from csresearch.metrics import (FIELDS, LEVELS, OWNERS, RULE_ORDER, VERDICTS, CatalogError, MetricDefinitionError,
                                bundled_catalog_path, classify_definition, classify_metric, load_catalog)
from csresearch.metrics.render import render_table, verdict_counts
from csresearch.world import HEALTH_SCORE, KPIS, USAGE_METRICS

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = ("sales", "marketing", "hr", "project_management", "supply_chain", "public_safety", "finance",
             "customer_service")


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return load_catalog()


@pytest.fixture(scope="module")
def classified(catalog) -> pd.DataFrame:
    return classify_definition(catalog)


def verdict_of(classified: pd.DataFrame, name: str) -> str:
    return classified.set_index("name").loc[name, "verdict"]


# ----------------------------------------------------------------------------------------------
# the bundled catalog


def test_bundled_catalog_is_the_single_file_in_the_package():
    assert bundled_catalog_path() == REPO / "csresearch" / "metrics" / "metrics.yaml"
    copies = [p for top in ("csresearch", "data", "notebooks", "params") for p in (REPO / top).rglob("metrics.yaml")]
    assert copies == [bundled_catalog_path()], "one copy of the catalog, in the package"


def test_bundled_catalog_loads_with_the_contract_columns(catalog):
    assert list(catalog.columns) == list(FIELDS)
    assert len(catalog) >= 45
    assert catalog["name"].is_unique
    assert catalog["countable"].dtype == bool
    assert set(catalog["owner"]) == set(OWNERS)
    assert set(catalog["level"]) == set(LEVELS)
    assert (catalog["description"].str.len() > 20).all()
    assert catalog.attrs["source"] == str(bundled_catalog_path())


def test_bundled_catalog_covers_the_functions(catalog):
    assert set(FUNCTIONS) <= set(catalog["function"].dropna())


def test_every_world_metric_is_in_the_catalog(catalog):
    names = set(catalog["name"])
    wanted = {k.name for k in KPIS} | set(USAGE_METRICS) | {HEALTH_SCORE}
    assert wanted - names == set()


def test_world_kpis_keep_their_function_and_unit(catalog):
    by_name = catalog.set_index("name")
    for kpi in KPIS:
        assert by_name.loc[kpi.name, "owner"] == "customer", kpi.name
        assert by_name.loc[kpi.name, "function"] == kpi.function, kpi.name
        assert by_name.loc[kpi.name, "unit"] == kpi.unit, kpi.name


def test_every_verdict_appears(classified):
    counts = verdict_counts(classified)
    assert all(counts[v] > 0 for v in VERDICTS), counts
    assert set(classified["rule"]) == set(RULE_ORDER)


def test_vendor_metrics_are_never_goldilocks(classified):
    vendor = classified[classified["owner"] == "vendor"]
    assert len(vendor) >= 10
    assert (vendor["verdict"] == "mama").all()
    assert (classified.loc[classified["verdict"] == "goldilocks", "owner"] == "customer").all()


def test_world_truth_agrees_with_the_definitions(classified):
    for kpi in KPIS:
        assert verdict_of(classified, kpi.name) == kpi.role, kpi.name
    assert verdict_of(classified, "company_revenue") == "papa"
    assert verdict_of(classified, "reports_created") == "mama"
    for name in (*USAGE_METRICS, HEALTH_SCORE):
        assert verdict_of(classified, name) == "mama", name


@pytest.mark.parametrize("name, verdict", [
    ("overall_public_safety", "papa"),        # not countable, but a business result comes first
    ("market_share_pct", "papa"),             # countable is not enough
    ("employee_engagement", "needs_proxy"),
    ("employee_nps", "goldilocks"),           # ... and its countable proxy
    ("red_light_tickets_issued", "mama"),
    ("red_light_violations", "mama"),         # customer-owned output: the Goodhart trap
    ("intersection_accidents", "goldilocks"),
    ("twitter_followers", "mama"),
    ("diagrams_drawn", "mama"),
    ("process_cycle_time_days", "goldilocks"),
    ("signal_on_the_wire", "mama"),
    ("tv_outage_days", "goldilocks"),
    ("renewal_rate_pct", "mama"),             # a vendor business result is still the vendor's
])
def test_instructive_cases(classified, name, verdict):
    assert verdict_of(classified, name) == verdict


def test_rationale_names_the_rule_and_the_metric(classified):
    row = classified.set_index("name").loc["qualified_leads"]
    assert row["rationale"] == ("Goldilocks: a customer-owned outcome (qualified leads, in leads per month) "
                                "that can be counted and that the product can move.")
    prefix = {"papa": "Papa Bear:", "mama": "Mama Bear:", "goldilocks": "Goldilocks:", "needs_proxy": "Needs a proxy:"}
    for r in classified.itertuples():
        assert r.rationale.startswith(prefix[r.verdict])
        assert r.name.split("_")[0] in r.rationale
    assert classified["rationale"].is_unique


def test_classify_definition_keeps_the_input(catalog):
    before = catalog.copy()
    out = classify_definition(catalog)
    pd.testing.assert_frame_equal(catalog, before)
    assert list(out.columns) == [*FIELDS, "verdict", "rule", "rationale"]
    assert list(out["name"]) == list(catalog["name"])


# ----------------------------------------------------------------------------------------------
# the rules, one by one


@pytest.mark.parametrize("owner", OWNERS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("countable", [True, False])
def test_rules_in_order(owner, level, countable):
    if owner == "vendor":
        expected = ("mama", "vendor_owned")
    elif level == "business_result":
        expected = ("papa", "business_result")
    elif level in ("activity", "output"):
        expected = ("mama", "activity_or_output")
    elif countable:
        expected = ("goldilocks", "countable_outcome")
    else:
        expected = ("needs_proxy", "uncountable_outcome")
    got = classify_metric("m_x", owner, level, countable, unit="things")
    assert (got["verdict"], got["rule"]) == expected


def test_classify_metric_returns_the_definition():
    got = classify_metric("time_to_fill_days", "customer", "outcome", True, description="Days to hire.",
                          unit="days", function="hr")
    assert got == {"name": "time_to_fill_days", "description": "Days to hire.", "owner": "customer",
                   "level": "outcome", "countable": True, "unit": "days", "function": "hr",
                   "verdict": "goldilocks", "rule": "countable_outcome",
                   "rationale": "Goldilocks: a customer-owned outcome (time to fill, in days) that can be counted "
                                "and that the product can move."}


@pytest.mark.parametrize("kwargs, message", [
    (dict(owner="client"), "metric 'm': owner: 'client' is not one of customer, vendor"),
    (dict(level="impact"), "metric 'm': level: 'impact' is not one of activity, output, outcome, business_result"),
    (dict(countable="yes"), "metric 'm': countable: must be True or False, got 'yes'"),
    (dict(countable=1), "metric 'm': countable: must be True or False, got 1"),
    (dict(name=""), "metric: name: is empty"),
    (dict(name=7), "metric: name: must be text, got a number (7)"),
    (dict(name=" m"), "name: ' m' starts or ends with spaces"),
    (dict(unit=3), "metric 'm': unit: must be text, got a number (3)"),
    (dict(function=["hr"]), "metric 'm': function: must be text, got a list"),
])
def test_classify_metric_validates(kwargs, message):
    args = dict(name="m", owner="customer", level="outcome", countable=True)
    args.update(kwargs)
    with pytest.raises(MetricDefinitionError) as err:
        classify_metric(**args)
    assert isinstance(err.value, ValueError)
    assert message in str(err.value)


def test_classify_metric_lists_every_problem():
    with pytest.raises(MetricDefinitionError) as err:
        classify_metric("m", "client", "impact", "no")
    assert len(err.value.problems) == 3


# ----------------------------------------------------------------------------------------------
# malformed catalogs

GOOD = """\
# a comment
- name: cost_per_lead
  description: Marketing spend per qualified lead.
  owner: customer
  level: outcome
  countable: true
  unit: USD
  function: marketing
- name: logins
  description: Sign-ins per month.
  owner: vendor
  level: activity
  countable: true
  unit: logins per month
"""

MALFORMED = {
    "owner": (GOOD.replace("owner: customer", "owner: client"),
              "bad.yaml: entry 1 (cost_per_lead): field owner: 'client' is not one of customer, vendor (line 4)"),
    "level": (GOOD.replace("level: activity", "level: impact"),
              "entry 2 (logins): field level: 'impact' is not one of activity, output, outcome, business_result"),
    "countable_text": (GOOD.replace("countable: true\n  unit: USD", "countable: \"yes\"\n  unit: USD"),
                       "entry 1 (cost_per_lead): field countable: 'yes' is text, not a boolean; write true or false"),
    "countable_number": (GOOD.replace("countable: true\n  unit: logins", "countable: 1\n  unit: logins"),
                         "entry 2 (logins): field countable: 1 is not a boolean"),
    "countable_empty": (GOOD.replace("countable: true\n  unit: USD", "countable:\n  unit: USD"),
                        "entry 1 (cost_per_lead): field countable: is empty; write true or false"),
    "missing_field": (GOOD.replace("  unit: USD\n", ""),
                      "entry 1 (cost_per_lead): field unit: missing; every entry needs name, description"),
    "duplicate_name": (GOOD.replace("name: logins", "name: cost_per_lead"),
                       "entry 2 (cost_per_lead): field name: 'cost_per_lead' is already the name of entry 1 (line 9)"),
    "yaml_syntax": (GOOD.replace("owner: vendor", "owner: [vendor"),
                    "bad.yaml: line 12, column 8: YAML syntax error: while parsing a flow sequence (line 11)"),
    "yaml_tab": (GOOD.replace("  level: outcome", "\tlevel: outcome"),
                 "bad.yaml: line 5, column 1: YAML syntax error"),
    "top_level_mapping": ("metrics:\n" + "".join("  " + ln + "\n" for ln in GOOD.splitlines()),
                          "bad.yaml: the top level is a mapping; expected a list of metric definitions"),
    "top_level_text": ("just some words\n", "bad.yaml: the top level is text; expected a list"),
    "empty_file": ("# nothing here yet\n", "bad.yaml: the file is empty; expected a list of metric definitions"),
    "empty_list": ("[]\n", "bad.yaml: the list is empty"),
    "entry_not_mapping": (GOOD + "- active_users\n", "bad.yaml: entry 3: is text ('active_users'); expected a mapping"),
    "unknown_field": (GOOD.replace("countable: true\n  unit: USD", "countabel: true\n  unit: USD"),
                      "entry 1 (cost_per_lead): field countabel: not a catalog field (did you mean countable?)"),
    "field_twice": (GOOD.replace("owner: vendor", "owner: vendor\n  owner: customer"),
                    "entry 2 (logins): field owner: given 2 times (lines 11, 12); keep one"),
    "no_unit": (GOOD.replace("unit: USD", "unit: \"\""),
                "entry 1 (cost_per_lead): field unit: is empty; a countable metric needs a unit"),
    "empty_description": (GOOD.replace("description: Sign-ins per month.", "description:"),
                          "entry 2 (logins): field description: is empty (line 10)"),
    "function_number": (GOOD.replace("function: marketing", "function: 3"),
                        "entry 1 (cost_per_lead): field function: must be text, got a number (3)"),
    "not_utf8": (None, "bad.yaml: line 1: not UTF-8 text (byte 0xff)"),
}


def _write_bad(tmp_path: Path, case: str) -> Path:
    text, _ = MALFORMED[case]
    path = tmp_path / "bad.yaml"
    if text is None:
        path.write_bytes(b"- name: caf\xff\n")
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_catalog_raises(tmp_path, case):
    path = _write_bad(tmp_path, case)
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert isinstance(err.value, ValueError)
    assert MALFORMED[case][1] in str(err.value)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_catalog_exits_2_and_leaves_the_file(tmp_path, case, capsys):
    path = _write_bad(tmp_path, case)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    assert main(["classify", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert MALFORMED[case][1] in err
    assert "nothing classified" in err
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert sorted(os.listdir(tmp_path)) == ["bad.yaml"]


def test_every_problem_is_listed(tmp_path, capsys):
    text = (GOOD.replace("owner: customer", "owner: client").replace("level: activity", "level: impact")
            .replace("countable: true\n  unit: USD", "countable: \"yes\"\n  unit: USD")
            .replace("name: logins", "name: cost_per_lead") + "- 42\n")
    path = tmp_path / "metrics.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    assert err.value.problems == [
        "metrics.yaml: entry 1 (cost_per_lead): field owner: 'client' is not one of customer, vendor (line 4)",
        "metrics.yaml: entry 1 (cost_per_lead): field countable: 'yes' is text, not a boolean; "
        "write true or false, without quotes (line 6)",
        "metrics.yaml: entry 2 (cost_per_lead): field name: 'cost_per_lead' is already the name of entry 1 (line 9)",
        "metrics.yaml: entry 2 (cost_per_lead): field level: 'impact' is not one of activity, output, outcome, "
        "business_result (line 12)",
        "metrics.yaml: entry 3: is a number (42); expected a mapping with the fields name, description, owner, "
        "level, countable, unit, function, label (line 15)",
    ]
    assert main(["classify", str(path)]) == 2
    err_lines = capsys.readouterr().err.splitlines()
    assert err_lines[:-1] == err.value.problems
    assert err_lines[-1] == "csresearch classify: 5 problems in the metric catalog; nothing classified"


def test_missing_catalog_exits_2(tmp_path, capsys):
    assert main(["classify", str(tmp_path / "nope.yaml")]) == 2
    assert "metric catalog not found" in capsys.readouterr().err
    assert main(["classify", str(tmp_path)]) == 2
    assert "is a folder without metrics.yaml" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# the command and a user's own catalog


def test_classify_prints_a_grouped_table(capsys, classified):
    assert main(["classify"]) == 0
    out = capsys.readouterr().out
    counts = verdict_counts(classified)
    summary = f"{len(classified)} metrics: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)
    assert out.rstrip().endswith(summary)
    lines = out.splitlines()
    header = next(ln for ln in lines if ln.startswith("metric "))
    for column in ("owner", "level", "countable", "verdict"):
        assert column in header


@pytest.mark.parametrize("width", [60, 100, 200])
def test_table_is_aligned_and_grouped(classified, width):
    text = render_table(classified, width=width)
    rows = [ln for ln in text.splitlines() if ln.split(" ")[0] in set(classified["name"])]
    assert len(rows) == len(classified)
    header = text.splitlines()[0]
    for column, values in (("owner", OWNERS), ("level", LEVELS), ("verdict", VERDICTS)):
        start = header.index(column)
        assert all(ln[start:].split()[0] in values for ln in rows), f"{column} column aligned"
    order = [classified.set_index("name").loc[ln.split()[0], "verdict"] for ln in rows]
    assert order == sorted(order, key=VERDICTS.index)
    if width >= 160:
        assert all(len(ln) <= width for ln in text.splitlines())
    assert "rationale" in text or "    Papa Bear:" in text


def test_json_output(capsys, catalog):
    assert main(["classify", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == len(catalog)
    assert [r["metric"] for r in records] == list(catalog["name"])
    for r in records:
        assert {"metric", "verdict", "rationale", "rule", "description", "owner", "level", "countable",
                "unit", "function"} <= set(r)
        assert r["verdict"] in VERDICTS
        assert isinstance(r["countable"], bool)


def test_a_users_own_catalog(tmp_path, capsys):
    folder = tmp_path / "my_data"
    folder.mkdir()
    path = folder / "metrics.yaml"
    path.write_text(GOOD + """\
- name: employee_engagement
  description: How committed our people are.
  owner: customer
  level: outcome
  countable: false
  unit:
""")
    frame = load_catalog(path)
    assert list(frame["name"]) == ["cost_per_lead", "logins", "employee_engagement"]
    assert frame["function"].tolist() == ["marketing", None, None]
    assert frame["unit"].tolist() == ["USD", "logins per month", ""]
    for target in (path, folder):  # a file or a data folder holding metrics.yaml
        assert main(["classify", str(target), "--json"]) == 0
        records = {r["metric"]: r["verdict"] for r in json.loads(capsys.readouterr().out)}
        assert records == {"cost_per_lead": "goldilocks", "logins": "mama", "employee_engagement": "needs_proxy"}
    assert main(["classify", str(path)]) == 0
    out = capsys.readouterr().out
    assert str(path) in out and "3 metrics: 0 papa, 1 mama, 1 goldilocks, 1 needs_proxy" in out


def test_hand_made_frame_without_function_can_be_classified():
    frame = pd.DataFrame({"name": ["a"], "description": ["d"], "owner": ["customer"], "level": ["output"],
                          "countable": [True], "unit": ["u"]})
    assert classify_definition(frame)["verdict"].tolist() == ["mama"]


def test_yaml_anchors_are_not_reported_as_repeated_fields(tmp_path):
    path = tmp_path / "metrics.yaml"
    path.write_text(GOOD.replace("- name: logins", "- &v\n  name: logins")
                    + "- <<: *v\n  name: reports_created\n  level: output\n", encoding="utf-8")
    frame = classify_definition(load_catalog(path))
    row = frame.set_index("name").loc["reports_created"]
    assert (row["owner"], row["level"], row["verdict"]) == ("vendor", "output", "mama")
