"""The exercise checks of the course: right answers pass, usual mistakes get their own hint, no answer leaks."""
from __future__ import annotations

import math

import pytest

from csresearch import analyses as A
from csresearch import exercises as X
from csresearch.maturity import assess
from csresearch.metrics import classify_metric, goodhart_divergence, load_catalog, vendor_customer_gap


@pytest.fixture(scope="module")
def world():
    return X.lesson_world(seed=5, n_accounts=1500)


@pytest.fixture(scope="module")
def ds(world):
    return world[0]


def hides(feedback: X.Feedback, expected: float) -> bool:
    """The message does not print the expected value in any usual rounding."""
    text = feedback.message
    forms = {f"{expected:.{d}f}" for d in range(1, 5)} | {f"{expected:.{d}g}" for d in range(2, 5)}
    forms |= {f"{100 * expected:.{d}f}" for d in range(0, 3)} if abs(expected) < 1 else set()
    return not any(f in text for f in forms if f.strip("0.-") != "")


def is_unanswered(feedback: X.Feedback) -> bool:
    return not feedback and "Not answered yet" in feedback.message


# -- feedback and the lesson world -----------------------------------------------------------------------------
def test_feedback_is_truthy_only_when_correct_and_shows_its_message():
    assert X.Feedback(True, "✔ Correct.") and not X.Feedback(False, "✘ Not yet: x")
    assert repr(X.Feedback(False, "✘ Not yet: x")) == "✘ Not yet: x" == str(X.Feedback(False, "✘ Not yet: x"))


def test_lesson_world_is_a_validated_dataset_with_its_truth(world):
    ds, truth = world
    assert ds.path.is_dir() and (ds.path / "truth.json").is_file()
    assert len(ds.accounts) == 1500 and ds.segments == ["enterprise", "mid_market", "smb"]
    assert truth["config"]["seed"] == 5 and truth["effects"]["attainment_full_vs_none"]["hr"] > 0


def test_lesson_world_restricts_to_a_segment_and_is_deterministic(ds):
    smb, _ = X.lesson_world(seed=5, n_accounts=1500, segment="smb")
    assert smb.segments == ["smb"]
    assert smb.accounts.reset_index(drop=True).equals(
        ds.accounts[ds.accounts["segment"] == "smb"].reset_index(drop=True))
    with pytest.raises(ValueError, match="segment"):
        X.lesson_world(seed=5, n_accounts=200, segment="nope")


# -- lesson 1 -----------------------------------------------------------------------------------------------------
def test_check_owners():
    catalog = load_catalog()
    owners = dict(zip(catalog["name"], catalog["owner"]))
    right = {m: owners[m] for m in X.OWNER_METRICS}
    assert X.check_owners(right)
    assert is_unanswered(X.check_owners({m: ... for m in X.OWNER_METRICS}))
    partial = X.check_owners({"signal_on_the_wire": "vendor"})
    assert not partial and "still to answer" in partial.message
    flipped = {**right, "tv_outage_days": "vendor", "logins": "customer"}
    fb = X.check_owners(flipped)
    assert not fb and "2 of 8" in fb.message and "tv_outage_days" in fb.message
    assert "not in the metric catalog" in X.check_owners({"no_such_metric": "vendor"}).message
    assert "'vendor' or 'customer'" in X.check_owners({"logins": "client"}).message


def test_check_gap(ds):
    table, summary = vendor_customer_gap(ds)
    gap = summary["gap"]["green_not_attained_minus_green_attained"]
    assert X.check_gap(gap, ds)
    assert is_unanswered(X.check_gap(..., ds))
    assert "percentage points" in X.check_gap(100 * gap, ds).message
    assert "wrong sign" in X.check_gap(-gap, ds).message
    low = summary["gap"]["green_not_attained_minus_low_attained"]
    if abs(low - gap) > 0.01:
        assert "low-usage" in X.check_gap(low, ds).message
    wrong = X.check_gap(gap + 0.2, ds)
    assert not wrong and hides(wrong, gap)
    assert "single number" in X.check_gap("a lot", ds).message


# -- lesson 2 -----------------------------------------------------------------------------------------------------
def test_exercise_metrics_are_new_and_cover_every_verdict():
    assert not set(X.EXERCISE_METRICS) & set(load_catalog()["name"])
    verdicts = {classify_metric(n, **d)["verdict"] for n, d in X.EXERCISE_METRICS.items()}
    assert verdicts == {"papa", "mama", "goldilocks", "needs_proxy"}
    assert list(X.exercise_metrics()["name"]) == list(X.EXERCISE_METRICS)


def test_check_verdict_and_verdicts():
    right = {n: classify_metric(n, **d)["verdict"] for n, d in X.EXERCISE_METRICS.items()}
    assert X.check_verdicts(right)
    assert all(X.check_verdict(n, v) for n, v in right.items())
    fb = X.check_verdict("city_crime_rate", "goldilocks")
    assert not fb and "level" in fb.message and "papa" not in fb.message
    assert "who owns" in X.check_verdict("sensor_uptime_pct", "goldilocks").message
    assert "counted" in X.check_verdict("residents_feel_safe", "goldilocks").message
    assert "one of" in X.check_verdict("alerts_reviewed", "small bear").message
    assert is_unanswered(X.check_verdict("alerts_reviewed", ...))
    some = X.check_verdicts({**right, "alerts_reviewed": "goldilocks", "city_crime_rate": ...})
    assert not some and "4 of 6" in some.message and "city_crime_rate: not answered" in some.message
    assert not X.check_verdicts({"not_a_metric": "papa"})


def test_check_goldilocks():
    mine = dict(name="offer_acceptance_pct", owner="customer", level="outcome", countable=True,
                unit="percent of offers", function="hr")
    assert X.check_goldilocks(mine, function="hr")
    assert "function='hr'" in X.check_goldilocks({**mine, "function": "sales"}, function="hr").message
    assert "already in the bundled catalog" in X.check_goldilocks({**mine, "name": "time_to_fill_days"}).message
    assert "Mama Bear" in X.check_goldilocks({**mine, "level": "activity"}).message
    assert "Papa Bear" in X.check_goldilocks({**mine, "level": "business_result"}).message
    assert "owner" in X.check_goldilocks({**mine, "owner": "client"}).message
    assert "unit" in X.check_goldilocks({**mine, "unit": ""}).message
    assert "needs" in X.check_goldilocks({"name": "x"}).message
    assert is_unanswered(X.check_goldilocks({**mine, "name": ...}))


# -- lessons 3 and 4 ----------------------------------------------------------------------------------------------
def test_check_hazard_ratio_time_varying(ds):
    tv = A.time_varying_effect(ds)[1]
    naive = A.naive_effect(ds)[1]
    assert X.check_hazard_ratio(tv["hr"], ds)
    assert "naive" in X.check_hazard_ratio(naive["hr"], ds).message
    assert "log hazard ratio" in X.check_hazard_ratio(tv["coef"], ds).message
    assert "inverse" in X.check_hazard_ratio(1 / tv["hr"], ds).message
    wrong = X.check_hazard_ratio(tv["hr"] * 1.5, ds)
    assert not wrong and hides(wrong, tv["hr"])
    assert is_unanswered(X.check_hazard_ratio(..., ds))
    lagged = A.time_varying_effect(ds, lag_days=30)[1]["hr"]
    assert X.check_hazard_ratio(lagged, ds, lag_days=30)
    if abs(lagged - tv["hr"]) > 0.01:
        assert "without the lag" in X.check_hazard_ratio(tv["hr"], ds, lag_days=30).message


def test_check_hazard_ratio_landmark(ds):
    lm = A.landmark_effect(ds, 180)[1]
    tv = A.time_varying_effect(ds)[1]
    assert X.check_hazard_ratio(lm["hr"], ds, method="landmark", landmark_days=180)
    assert "time-varying" in X.check_hazard_ratio(tv["hr"], ds, method="landmark", landmark_days=180).message
    other = A.landmark_effect(ds, 365)[1]["hr"]
    if abs(other - lm["hr"]) > 0.01:
        assert "another landmark" in X.check_hazard_ratio(other, ds, method="landmark", landmark_days=180).message
    assert X.check_hazard_ratio(round(lm["hr"], 2), ds, method="landmark", landmark_days=180)  # copied as printed
    with pytest.raises(ValueError, match="landmark_days"):
        X.check_hazard_ratio(0.5, ds, method="landmark")
    with pytest.raises(ValueError, match="method"):
        X.check_hazard_ratio(0.5, ds, method="cox")


def test_check_immortal_months():
    assert X.check_immortal_months(15) and X.check_immortal_months(15.0)
    assert "not all of it" in X.check_immortal_months(24).message
    assert "after the goals were reached" in X.check_immortal_months(9).message
    assert "survive" in X.check_immortal_months(0).message
    assert X.check_immortal_months(10, followed_months=30, reached_month=10)
    assert not X.check_immortal_months(True)


# -- lesson 5 -----------------------------------------------------------------------------------------------------
def test_check_partial_value(ds):
    _, info = A.dose_response(ds)
    hr = info["hr_at"]
    share = (1 - hr["0.5"]) / (1 - hr["1"])
    assert X.check_partial_value(share, ds)
    assert "percentage" in X.check_partial_value(100 * share, ds).message
    assert "hazard ratio at that attainment" in X.check_partial_value(hr["0.5"], ds).message
    wrong = X.check_partial_value(share + 0.3, ds)
    assert not wrong and hides(wrong, share)
    share_75 = (1 - hr["0.75"]) / (1 - hr["1"])
    assert X.check_partial_value(share_75, ds, at=0.75)


# -- lesson 6 -----------------------------------------------------------------------------------------------------
def test_check_goodhart(ds):
    table = goodhart_divergence(ds)[0]
    flagged = [(r.segment, r.metric) for r in table[table["diverging"]].itertuples()]
    assert flagged, "the world plants a login campaign; it should be flagged"
    answer = flagged[0] if len(flagged) == 1 else flagged
    assert X.check_goodhart(answer, ds)
    segment = flagged[0][0]
    other_metric = next(m for m in table["metric"].unique() if (segment, m) not in flagged)
    assert "right segment" in X.check_goodhart((segment, other_metric), ds).message
    assert "look again" in X.check_goodhart("none", ds).message
    assert "pair" in X.check_goodhart(42, ds).message
    assert is_unanswered(X.check_goodhart(..., ds))


def test_check_goodhart_growth(ds):
    table = goodhart_divergence(ds)[0]
    row = table[table["diverging"] & (table["metric"] == "logins")].iloc[0]
    pct = 100 * (math.exp(row["vendor_trend"]) - 1)
    assert X.check_goodhart_growth(pct, ds)
    assert X.check_goodhart_growth(pct, ds, segment=row["segment"])
    assert "log points" in X.check_goodhart_growth(row["vendor_trend"], ds).message
    assert "in percent" in X.check_goodhart_growth(pct / 100, ds).message
    wrong = X.check_goodhart_growth(pct + 10, ds)
    assert not wrong and hides(wrong, pct)
    with pytest.raises(ValueError):
        X.check_goodhart_growth(1.0, ds, segment="no_such_segment")


def test_check_goodhart_without_divergence():
    smb, _ = X.lesson_world(seed=5, n_accounts=1500, segment="smb")
    assert X.check_goodhart("none", smb)
    assert "answer 'none'" in X.check_goodhart(("smb", "logins"), smb).message
    assert "no single answer" in X.check_goodhart_growth(5.0, smb).message


# -- lesson 7 -----------------------------------------------------------------------------------------------------
def test_check_maturity_level():
    team = {"features_pitched": True, "usage_tracked": True, "goals_recorded": True, "playbooks_per_goal": True,
            "ecosystem_mapped": False, "early_health_indicators": True, "partial_value_recorded": True}
    level = assess(team)["level"]
    assert X.check_maturity_level(level, team)
    assert "too high" in X.check_maturity_level(level + 1, team).message
    assert "too low" in X.check_maturity_level(level - 1, team).message
    assert "1 to 5" in X.check_maturity_level(7, team).message
    assert is_unanswered(X.check_maturity_level(..., team))


def test_check_c_index(ds):
    c = A.usage_vs_outcome(ds)[1]["c_index"]
    assert X.check_c_index(c["attainment"], ds)
    assert X.check_c_index(c["usage"], ds, model="usage")
    assert "1 - C" in X.check_c_index(1 - c["attainment"], ds).message
    if abs(c["usage"] - c["attainment"]) > 0.002:
        assert "usage model" in X.check_c_index(c["usage"], ds).message
    with pytest.raises(ValueError, match="model"):
        X.check_c_index(0.6, ds, model="everything")


# -- lesson 8 -----------------------------------------------------------------------------------------------------
def test_check_events():
    expected = math.ceil(A.schoenfeld_events(0.85, power=0.9))
    assert X.check_events(expected, 0.85, power=0.9)
    assert X.check_events(A.schoenfeld_events(0.85, power=0.9), 0.85, power=0.9)  # unrounded is fine
    assert "80% power" in X.check_events(math.ceil(A.schoenfeld_events(0.85)), 0.85, power=0.9).message
    assert "half" in X.check_events(expected / 2, 0.85, power=0.9).message
    wrong = X.check_events(expected + 100, 0.85, power=0.9)
    assert not wrong and str(expected) not in wrong.message


def test_check_sample_size():
    row = A.sample_size(0.2, [0.07], power=0.9).iloc[0]
    assert X.check_sample_size(row["n_total_logrank"], 0.2, 0.07, power=0.9)
    assert "one arm" in X.check_sample_size(row["n_total_logrank"] / 2, 0.2, 0.07, power=0.9).message
    assert "churn events" in X.check_sample_size(row["events_logrank"], 0.2, 0.07, power=0.9).message
    assert "two-proportions" in X.check_sample_size(row["n_total_proportions"], 0.2, 0.07, power=0.9).message
    wrong = X.check_sample_size(123, 0.2, 0.07, power=0.9)
    assert not wrong and str(int(row["n_total_logrank"])) not in wrong.message


def test_check_health_verdict(ds):
    from csresearch import health

    expected = health.audit(ds, "health_score")[1]["verdict"]
    assert expected == "decoration"
    assert X.check_health_verdict("decoration", ds, "health_score")
    assert X.check_health_verdict(" Decoration ", ds, "health_score")
    wrong = X.check_health_verdict("informative", ds, "health_score")
    assert not wrong and "likelihood-ratio" in str(wrong.message) and "decoration" not in str(wrong.message).lower()
    assert not X.check_health_verdict("great", ds, "health_score")
    assert is_unanswered(X.check_health_verdict(..., ds, "health_score"))
