"""csresearch.tables: the one rule for the tables a report shows."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from csresearch import tables
from csresearch.names import Names
from csresearch.tables import MISSING, readable

BAD = {"nan", "NaN", "None", "<NA>", "NaT", "-0", "-0.0", "-0.00", "-0.000", "-0.0%"}


def cells(frame: pd.DataFrame) -> list[str]:
    return [str(v) for v in frame.to_numpy().ravel()]


def assert_clean(frame: pd.DataFrame) -> None:
    for v in [*cells(frame), *map(str, frame.index), *map(str, frame.columns)]:
        assert v not in BAD, v
    html = frame.to_html()
    for word in ("NaN", "None", "&lt;NA&gt;", ">nan<", "-0.000"):
        assert word not in html, word


def header_rows(frame: pd.DataFrame) -> int:
    return frame.to_html().split("<tbody>")[0].count("<tr")


# ------------------------------------------------------------------------------------------- numbers


def test_counts_get_thousands_separators():
    out = readable(pd.DataFrame({"accounts": [52726, 7, 1234567]}))
    assert list(out["Accounts"]) == ["52,726", "7", "1,234,567"]


def test_counts_blanked_by_suppression_stay_integers():
    out = readable(pd.DataFrame({"churned": [35.0, np.nan, 1200.0]}))
    assert list(out["Churned"]) == ["35", MISSING, "1,200"]


def test_nullable_integers():
    out = readable(pd.DataFrame({"n": pd.array([1, None, 3000], dtype="Int64")}))
    assert list(out["N"]) == ["1", MISSING, "3,000"]


def test_years_seeds_and_ids_keep_plain_digits():
    out = readable(pd.DataFrame({"year": [2024, 2025], "seed": [12345, 1], "account_id": [10001, 10002]}))
    assert list(out["Year"]) == ["2024", "2025"]
    assert list(out["Seed"]) == ["12345", "1"]
    assert list(out["Account ID"]) == ["10001", "10002"]


@pytest.mark.parametrize("values, expected", [
    ([0.4213, 0.5371], ["0.421", "0.537"]),  # below 1: three decimals
    ([0.85, 1.034], ["0.85", "1.03"]),  # below 10: two
    ([12.34, 56.78], ["12.3", "56.8"]),  # below 100: one
    ([1250.4, 99.5], ["1,250", "100"]),  # larger: none, with separators
    ([0.0123, 0.0004], ["0.012", "0.000"]),  # never more than three
])
def test_decimals_give_three_significant_digits_of_the_largest_value(values, expected):
    assert list(readable(pd.DataFrame({"x": values}))["X"]) == expected


def test_digits_override_for_all_columns_or_per_column():
    f = pd.DataFrame({"a": [0.12345], "b": [1.23456]})
    assert cells(readable(f, digits=1)) == ["0.1", "1.2"]
    assert cells(readable(f, digits={"b": 4})) == ["0.123", "1.2346"]


def test_no_negative_zero():
    out = readable(pd.DataFrame({"delta": [-0.0, -0.0001, 0.25], "text": ["-0.000", "-0.0%", "-0.5"]}))
    assert list(out["Delta"]) == ["0.000", "0.000", "0.250"]
    assert list(out["Text"]) == ["0.000", "0.0%", "-0.5"]
    assert tables.number(-0.0004, 3) == "0.000"
    assert tables.percent(-0.00001) == "0.0%"


def test_missing_values_are_an_en_dash():
    f = pd.DataFrame({"x": [np.nan, 1.5], "t": [None, "ok"], "u": ["nan", "<NA>"], "v": [pd.NA, "None"],
                      "d": [pd.NaT, pd.Timestamp("2024-12-31")], "w": ["NaN", "—"]})
    out = readable(f)
    assert list(out["X"]) == [MISSING, "1.50"]
    assert list(out["T"]) == [MISSING, "ok"]
    assert list(out["U"]) == [MISSING, MISSING]
    assert list(out["V"]) == [MISSING, MISSING]
    assert list(out["D"]) == [MISSING, "2024-12-31"]
    assert list(out["W"]) == [MISSING, MISSING]
    assert_clean(out)


def test_an_all_missing_column():
    out = readable(pd.DataFrame({"x": [np.nan, np.nan]}))
    assert list(out["X"]) == [MISSING, MISSING]


def test_infinite_values():
    assert list(readable(pd.DataFrame({"x": [np.inf, -np.inf, 1.0]}))["X"]) == ["∞", "-∞", "1"]


def test_shares_are_percentages_by_their_name():
    f = pd.DataFrame({"rate": [0.093, 0.1225], "churn_rate": [0.5, np.nan], "share_won": [1.0, 0.0],
                      "win_rate_pct": [45.0, 50.5], "ratio": [0.5, 0.25]})
    out = readable(f)
    assert list(out["Rate"]) == ["9.3%", "12.2%"]
    assert list(out["Churn rate"]) == ["50.0%", MISSING]
    assert list(out["Share won"]) == ["100.0%", "0.0%"]
    assert list(out["Win rate %"]) == ["45.0", "50.5"]  # already in points: a number, not ×100
    assert list(out["Ratio"]) == ["0.500", "0.250"]  # "ratio" is not a share


def test_percent_names_more_share_columns():
    out = readable(pd.DataFrame({"observed": [0.1, 0.25]}), percent=["observed"])
    assert list(out["Observed"]) == ["10.0%", "25.0%"]


def test_booleans_and_dates():
    f = pd.DataFrame({"ok": [True, False], "when": pd.to_datetime(["2024-01-31 00:00", "2024-02-01 13:30"])})
    out = readable(f)
    assert list(out["Ok"]) == ["yes", "no"]
    assert list(out["When"]) == ["2024-01-31", "2024-02-01 13:30"]


def test_text_and_numbers_mixed_in_a_column():
    out = readable(pd.DataFrame({"value": ["suppressed", 0.25, 1.5, None]}))
    assert list(out["Value"]) == ["suppressed", "0.25", "1.50", MISSING]


# ------------------------------------------------------------------------------------------- names


def test_columns_and_row_labels_through_names():
    names = Names({"enterprise": "Big accounts"}, {"active_users": "Active users (monthly)"})
    f = pd.DataFrame({"active_users": [1, 2], "mid_market": [3, 4], "C-index (out of sample)": [0.5, 0.6]},
                     index=pd.Index(["enterprise", "mid_market"], name="segment"))
    out = readable(f, names)
    assert list(out.columns) == ["Active users (monthly)", "Mid market", "C-index (out of sample)"]
    assert list(out.index) == ["Big accounts", "Mid market"]
    assert out.columns.name == "Segment"


def test_default_names_are_readable_identifiers():
    out = readable(pd.DataFrame({"log_arr": [1.0], "otif_pct": [95.0]}))
    assert list(out.columns) == ["log ARR", "OTIF %"]


def test_text_cells_are_not_renamed():
    out = readable(pd.DataFrame({"kind": ["usage_metric", "no clear link"]}))
    assert list(out["Kind"]) == ["usage_metric", "no clear link"]


def test_numeric_and_missing_column_labels():
    f = pd.DataFrame([[1, 2, 3]], columns=[3, 12.5, None])
    assert list(readable(f).columns) == ["3", "12.5", ""]


# ------------------------------------------------------------------------------------------- index rows


def test_a_named_index_has_no_header_row_of_its_own():
    f = pd.DataFrame({"accounts": [419, 12]}, index=pd.Index(["enterprise", "all"], name="segment"))
    assert header_rows(f) == 2  # pandas: a line for the columns, one for the index name
    out = readable(f)
    assert header_rows(out) == 1
    assert out.index.name is None
    assert "<th>Segment</th>" in out.to_html()
    assert list(out.index) == ["Enterprise", "All"]


def test_an_unnamed_range_index_is_left_alone():
    out = readable(pd.DataFrame({"a": [1, 2]}))
    assert isinstance(out.index, pd.RangeIndex)
    assert out.columns.name is None
    assert header_rows(out) == 1


def test_a_numeric_named_index():
    f = pd.DataFrame({"accounts": [42, 41]}, index=pd.Index([1, 10], name="decile"))
    out = readable(f)
    assert list(out.index) == ["1", "10"]
    assert out.columns.name == "Decile"
    assert header_rows(out) == 1


def test_a_row_multiindex_becomes_leading_columns():
    idx = pd.MultiIndex.from_tuples([("enterprise", "usage"), ("smb", "usage")], names=["segment", "model"])
    out = readable(pd.DataFrame({"c_index": [0.51, 0.62]}, index=idx))
    assert list(out.columns) == ["Model", "C index"]
    assert list(out.index) == ["Enterprise", "SMB"]
    assert out.columns.name == "Segment"
    assert header_rows(out) == 1
    assert_clean(out)


def test_multiindex_columns():
    cols = pd.MultiIndex.from_tuples([("usage", "c_index"), ("usage", "in_sample"), ("outcomes", "c_index")])
    f = pd.DataFrame([[0.5, np.nan, 0.61], [-0.0, 0.4, 0.7]], columns=cols,
                     index=pd.Index(["a_b", "c"], name="model"))
    out = readable(f)
    assert list(out.columns) == [("Usage", "C index"), ("Usage", "In sample"), ("Outcomes", "C index")]
    assert list(out.iloc[:, 1]) == [MISSING, "0.400"]
    assert list(out.iloc[:, 0]) == ["0.500", "0.000"]
    assert list(out.index) == ["A b", "C"]
    html = out.to_html()
    assert "Model" in html
    assert_clean(out)


def test_empty_frames():
    out = readable(pd.DataFrame({"a": pd.Series([], dtype=float)}))
    assert list(out.columns) == ["A"] and len(out) == 0
    assert readable(pd.DataFrame()).empty


# ------------------------------------------------------------------------------------------- the whole rule


def mixed() -> pd.DataFrame:
    return pd.DataFrame({
        "accounts": [52726, 35, 0], "churned": [35.0, np.nan, 2.0], "rate": [0.0931, np.nan, -0.0],
        "hazard_ratio": [0.8512, 1.0934, np.nan], "q": [0.868, 0.0, -0.0], "kind": ["usage", None, "attribute"],
        "flag": [True, False, True]}, index=pd.Index(["mid_market", "smb", "all"], name="segment"))


def test_idempotent():
    names = Names({"smb": "Small business"})
    once = readable(mixed(), names)
    twice = readable(once, names)
    pd.testing.assert_frame_equal(once, twice)
    assert once.columns.name == twice.columns.name == "Segment"
    assert_clean(once)


def test_idempotent_on_already_formatted_text():
    f = pd.DataFrame({"C-index (out of sample)": ["0.421", "–"], "95% CI": ["0.29 to 0.55", "–"],
                      "Accounts": ["52,726", "7"]}, index=pd.Index(["Baseline", "Usage"]))
    f.columns.name = "Model"
    pd.testing.assert_frame_equal(readable(f), f)


def test_the_input_is_not_modified():
    f = mixed()
    before = f.copy()
    readable(f)
    pd.testing.assert_frame_equal(f, before)


def test_every_cell_is_text():
    out = readable(mixed())
    assert all(isinstance(v, str) for v in out.to_numpy().ravel())
    assert list(out.loc["Mid market"]) == ["52,726", "35", "9.3%", "0.85", "0.868", "usage", "yes"]
    assert list(out.loc["All"]) == ["0", "2", "0.0%", MISSING, "0.000", "attribute", "yes"]


def test_helpers():
    assert tables.interval(0.6612, 1.0923) == "0.66 to 1.09"
    assert tables.interval(0.063, 0.122, 1, as_percent=True) == "6.3% to 12.2%"
    assert tables.interval(np.nan, 1.0) == MISSING
    assert tables.q_value(0.0004) == "< 0.001"
    assert tables.q_value(0.8681) == "0.868"
    assert tables.q_value(None) == MISSING
    assert tables.count(52726.0) == "52,726"
    assert tables.percent(0.093) == "9.3%"
    assert tables.auto_digits([]) == tables.MAX_DIGITS


# ------------------------------------------------------------------------------------------- catalog labels


ENTRY = {"name": "otif_pct", "description": "Orders on time and in full.", "owner": "customer", "level": "outcome",
         "countable": True, "unit": "percent"}


def test_every_bundled_metric_has_a_short_label():
    from csresearch.metrics import load_catalog

    catalog = load_catalog()
    assert catalog["label"].notna().all()
    assert catalog["label"].is_unique
    assert (catalog["label"].str.len() <= 30).all()
    assert not catalog["label"].str.contains("_").any()
    assert catalog.set_index("name").loc["otif_pct", "label"] == "On-time in-full %"


def test_a_catalog_without_labels_still_loads(tmp_path):
    from csresearch.metrics import classify_definition, parse_catalog
    from csresearch.metrics.catalog import catalog_labels

    frame = parse_catalog([dict(ENTRY)])
    assert frame["label"].tolist() == [None]
    assert classify_definition(frame.drop(columns=["label", "function"]))["verdict"].tolist() == ["goldilocks"]
    (tmp_path / "metrics.yaml").write_text("- name: otif_pct\n  description: d\n  owner: customer\n"
                                           "  level: outcome\n  countable: true\n  unit: percent\n")
    assert catalog_labels(tmp_path) == {}


def test_catalog_labels_feed_names(tmp_path):
    from csresearch.metrics import CatalogError, parse_catalog
    from csresearch.metrics.catalog import catalog_labels

    assert parse_catalog([{**ENTRY, "label": "  On time,\n in full  "}])["label"].tolist() == ["On time, in full"]
    with pytest.raises(CatalogError, match="field label: must be text, got a number"):
        parse_catalog([{**ENTRY, "label": 3}])
    (tmp_path / "metrics.yaml").write_text("- name: otif_pct\n  description: d\n  owner: customer\n"
                                           "  level: outcome\n  countable: true\n  unit: percent\n  label: OTIF\n")
    labels = catalog_labels(tmp_path)
    assert labels == {"otif_pct": "OTIF"}
    names = Names({"logins": "Sign-ins"}, catalog_labels(None))
    out = readable(pd.DataFrame({"otif_pct": [0.5], "logins": [3]}), names)
    assert list(out.columns) == ["On-time in-full %", "Sign-ins"]


# ------------------------------------------------------------------------------------------- the report's tables


def _label_export(folder, horizon=180):
    import dataclasses

    from csresearch.data import load

    ds = load(folder)
    label_from = ds.as_of - pd.Timedelta(days=horizon - 1)
    acc = ds.accounts
    acc = acc[(acc["start_date"] < label_from) & (acc["end_date"].isna() | (acc["end_date"] >= label_from))]
    acc = acc.reset_index(drop=True)
    usage = ds.usage[ds.usage["account_id"].isin(set(acc["account_id"]))].reset_index(drop=True)
    return dataclasses.replace(ds, accounts=acc, usage=usage, observed_from=label_from, label_horizon_days=horizon)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """The report of a small world with goals (dated), and of the same world as a 180-day label export."""
    from csresearch import params as P
    from csresearch import report
    from csresearch.world import WorldConfig, generate

    folder = tmp_path_factory.mktemp("tables-world")
    generate(WorldConfig(n_accounts=800, seed=5), folder)
    p = P.validate({"data_dir": str(folder), "study": "tables", "labels": {"smb": "Small business"},
                    "bootstrap": 0}, "test")
    return {"dated": report.run(p), "label": report.run(p, _label_export(folder))}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dated", "label"])
def test_every_shown_table_is_for_people(studies, kind):
    r = studies[kind]
    shown = {s.name: sh.frame for s in r.sections for sh in s.shown}
    assert {"churn_by_segment", "churn_drivers", "usage_model", "study_design"} <= set(shown)
    if kind == "dated":
        assert {"discrimination", "metrics"} <= set(shown)
    for name, frame in shown.items():
        assert header_rows(frame) == 1, name
        assert frame.index.name is None, name
        assert all(isinstance(v, str) for v in frame.to_numpy().ravel()), name
        assert_clean(frame)
        for label in [*frame.columns, *frame.index]:
            assert not re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", str(label)), (name, label)
        pd.testing.assert_frame_equal(readable(frame, Names({"smb": "Small business"})), frame)
    seg = shown["churn_by_segment"]
    assert seg.columns.name == "Segment"
    assert "Small business" in seg.index and "All segments" in seg.index
    assert seg.iloc[:, 1].str.fullmatch(r"[\d,]+|–").all()
    assert seg.iloc[:, 2].str.fullmatch(r"\d+\.\d%|suppressed").all()
    assert seg.iloc[:, 3].str.fullmatch(r"\d+\.\d% to \d+\.\d%|–").all()
    when = "over the 180-day label horizon" if kind == "label" else "within a year"
    assert list(seg.columns) == ["Accounts", f"Accounts churned {when}", f"Churn {when}", "95% CI"]
    drivers = shown["churn_drivers"]
    assert drivers.columns.name == "Driver"
    assert ("Odds ratio" if kind == "label" else "Hazard ratio") in drivers.columns
    assert drivers["95% CI"].str.fullmatch(r"\d+\.\d\d to \d+\.\d\d").all()
    design = shown["study_design"]
    assert design.columns.name == "Relative churn reduction" and list(design.index) == ["5%", "10%", "20%"]
    assert design["Accounts needed (log-rank)"].str.fullmatch(r"\d{1,3}(,\d{3})*").all()


@pytest.mark.slow
def test_shown_tables_leave_the_record_alone(studies):
    res = studies["dated"].results
    rows = res["churn_by_segment"]
    assert {"segment", "accounts", "churned", "rate", "ci_low", "ci_high", "window_days"} <= set(rows[0])
    assert isinstance(rows[0]["rate"], float)
    assert all(isinstance(r["effect"], float) for r in res["churn_drivers"]["drivers"])
