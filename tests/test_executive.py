"""The executive page: the effect in churn points and ARR (csresearch.value), calibrated certainty words
(csresearch.findings), and one source of truth: every sentence the report and the index say about a finding has
that finding's verdict."""
from __future__ import annotations

import html as htmllib
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from csresearch import executive, params, report, studies, value
from csresearch.findings import CHANCE_WORDS, Claim, chance_text, chance_words, direction_chance, interval_verdict
from csresearch.world import WorldConfig, generate

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ value
def test_churn_at_follows_the_proportional_hazards_model():
    p0, hr = 0.3, 0.4
    assert value.churn_at(0.0, p0, hr) == pytest.approx(p0)
    # S_reached = S_none ** hr
    assert 1 - value.churn_at(1.0, p0, hr) == pytest.approx((1 - p0) ** hr)
    assert value.churn_at(0.5, p0, hr) == pytest.approx(1 - (1 - p0) ** math.sqrt(hr))
    assert value.churn_at(1.0, p0, 1.0) == pytest.approx(p0)  # no effect: no difference


def test_anchor_reproduces_the_observed_churn():
    rng = np.random.default_rng(3)
    att = rng.uniform(0, 1, 500)
    for hr in (0.2, 0.7, 1.0, 1.8):
        p0 = value.anchor_baseline(0.18, att, hr)
        assert value.churn_at(att, p0, hr).mean() == pytest.approx(0.18, abs=1e-9)
    # with every account at no progress the anchor is the observed churn itself
    assert value.anchor_baseline(0.25, np.zeros(10), 0.3) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        value.anchor_baseline(1.2, att, 0.5)


def test_churn_difference_has_the_sign_of_the_effect_and_brackets_it():
    att = np.linspace(0, 1, 101)
    est, lo, hi = value.churn_difference(0.2, att, [0.5, 0.3, 0.8])
    assert est["points"] < 0 and lo["points"] < est["points"] < hi["points"] < 0
    (null,) = value.churn_difference(0.2, att, [1.0])
    assert null["points"] == pytest.approx(0.0, abs=1e-9)
    (worse,) = value.churn_difference(0.2, att, [1.5])
    assert worse["points"] > 0


def test_arr_at_stake_adds_up_and_moving_up_keeps_arr_only_when_goals_help():
    acc = pd.DataFrame({"arr": [100.0] * 6 + [50.0] * 4, "attainment": [0, 0, 0.5, 0.5, 1, 1, np.nan, 0, 0.2, 1]})
    anchor = np.linspace(0, 1, 50)
    res = value.arr_at_stake(acc, observed=0.2, anchor=anchor, hr=0.4)
    groups = {g["group"]: g for g in res["groups"]}
    assert sum(g["arr"] for g in res["groups"]) == pytest.approx(acc["arr"].sum())
    assert groups["none"]["accounts"] == 3 and groups["no goals"]["accounts"] == 1
    assert groups["none"]["churn"] > groups["partial"]["churn"] > groups["reached"]["churn"]
    assert groups["no goals"]["churn"] == pytest.approx(0.2)
    assert all(m["arr_retained"] > 0 for m in res["moves"])
    flat = value.arr_at_stake(acc, observed=0.2, anchor=anchor, hr=1.0)
    assert all(m["arr_retained"] == pytest.approx(0.0, abs=1e-9) for m in flat["moves"])
    harm = value.arr_at_stake(acc, observed=0.2, anchor=anchor, hr=2.0)
    assert all(m["arr_retained"] < 0 for m in harm["moves"])


def test_money_is_written_for_readers():
    assert value.money(1_234_567, "$") == "$1.2 million"
    assert value.money(48_213, "$") == "$48,000"
    assert value.money(950, "€") == "€950"
    assert value.money(-2_500_000, "$") == "-$2.5 million"
    assert value.money(None) == "–" and value.money(float("nan")) == "–"
    # a range reads as two amounts: ends that round alike get more digits (a narrow interval on a large book)
    assert value.money_range(375.0e6, 381.5e6, "$") == "between $375.0 million and $381.5 million"
    assert value.money_range(1.688e9, 1.724e9, "$") == "between $1.69 billion and $1.72 billion"
    assert value.money_range(1.7001e9, 1.7004e9, "$") == "about $1.700 billion"
    assert value.money_range(48_213, 48_420, "$") == "between $48,200 and $48,400"
    assert value.money_range(-2.53e6, -2.47e6, "$") == "between -$2.53 million and -$2.47 million"


# ------------------------------------------------------------------------------------------------ certainty
def test_direction_chance_is_one_minus_the_one_sided_p_value():
    # HR 0.6 (0.4 to 0.9) at 95%: z = log(0.6) / se
    se = (math.log(0.9) - math.log(0.4)) / (2 * stats.norm.ppf(0.975))
    expected = stats.norm.cdf(-math.log(0.6) / se)
    assert direction_chance(0.6, 0.4, 0.9, level=0.95, null=1.0, direction="below", log=True) == pytest.approx(expected)
    # a difference: linear scale, the other direction
    se = (0.05 - -0.01) / (2 * stats.norm.ppf(0.95))
    expected = stats.norm.cdf(0.02 / se)
    assert direction_chance(0.02, -0.01, 0.05, level=0.9, null=0.0, direction="above", log=False) == pytest.approx(expected)
    assert direction_chance(None, 0.1, 0.2, level=0.95, null=1.0, direction="below", log=True) is None


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_a_supported_claim_is_at_least_very_likely_and_an_unsupported_one_never_is_claimed(level):
    rng = np.random.default_rng(11)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    for _ in range(400):
        est = math.exp(rng.normal(-0.3, 0.5))
        se = rng.uniform(0.05, 1.0)
        lo, hi = est * math.exp(-z * se), est * math.exp(z * se)
        verdict = interval_verdict(lo, hi, null=1.0, direction="below")
        chance = direction_chance(est, lo, hi, level=level, null=1.0, direction="below", log=True)
        if verdict == "supported":
            assert chance >= 1 - (1 - level) / 2 - 1e-9
            assert chance_words(chance) in ("virtually certain", "very likely") or level < 0.9 + 1e-9
        else:
            assert chance <= 1 - (1 - level) / 2 + 1e-9


def test_chance_words_follow_the_calibrated_scale():
    assert chance_words(0.995) == "virtually certain"
    assert chance_words(0.95) == "very likely"
    assert chance_words(0.7) == "likely"
    assert chance_words(0.5) == "about as likely as not"
    assert chance_words(0.2) == "unlikely"
    assert chance_words(0.05) == "very unlikely"
    assert chance_words(0.001) == "exceptionally unlikely"
    assert [f for f, _ in CHANCE_WORDS] == sorted([f for f, _ in CHANCE_WORDS], reverse=True)
    assert chance_text(0.9999) == "more than 99 in 100" and chance_text(0.0001) == "less than 1 in 100"
    assert chance_text(0.42) == "about 42 in 100"


def test_every_verdict_writes_its_range_once_in_plain_words():
    """The certainty sentence of each verdict states the interval as one range, with no doubled or missing words."""
    straddles = {"reached": 0.20, "none": 0.26, "points_low": -6.2, "points_high": 18.7}
    below = {"reached": 0.10, "none": 0.30, "points_low": -24.0, "points_high": -16.0}
    _, inconclusive = executive._answer_words("Full", "inconclusive", 0.55, straddles, "12 months", 0.95, None)
    assert "anywhere from 6 fewer to 19 more leaving per 100 accounts over 12 months (95% interval)" in inconclusive
    assert "about as likely as not (about 55 in 100 for less churn)" in inconclusive
    # the odds in brackets are those of the direction the sentence names
    more = executive._answer_words("Full", "inconclusive", 0.2, straddles, "12 months", 0.95, None)[1]
    less = executive._answer_words("Full", "inconclusive", 0.8, straddles, "12 months", 0.95, None)[1]
    assert "leans toward more churn (about 80 in 100)" in more and "leans toward less churn (about 80 in 100)" in less
    _, supported = executive._answer_words("Full", "supported", 0.999, below, "12 months", 0.95, None)
    assert "between 16 and 24 fewer leaving per 100 accounts over 12 months (95% interval)" in supported
    # a narrow interval (a large book) is one number, not "between 18 and 18"
    narrow = {"reached": 0.05, "none": 0.23, "points_low": -18.4, "points_high": -17.6}
    _, sure = executive._answer_words("Full", "supported", 0.999, narrow, "12 months", 0.95, None)
    assert "about 18 fewer leaving per 100 accounts over 12 months (95% interval)" in sure and "18 and 18" not in sure
    for text in (inconclusive, supported):
        words = re.findall(r"[a-z]+", text.lower())
        assert not [a for a, b in zip(words, words[1:]) if a == b], text


# ------------------------------------------------------------------------------------------------ the page
@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    generate(WorldConfig(n_accounts=60, seed=5), folder, fmt="parquet")
    return folder


@pytest.fixture(scope="module")
def studies_run(tiny_world):
    """In-process runs: the sample's smb segment, the sample's all segments, and a 60-account world."""
    runs = {}
    for name, data, seg in (("sample_smb", ROOT / "data" / "sample", "smb"), ("sample_all", ROOT / "data" / "sample", None),
                            ("tiny_all", tiny_world, None)):
        p = params.validate({"data_dir": str(data), "segment": seg, "study": name, "bootstrap": 20}, name)
        runs[name] = report.run(p)
    return runs


def _text(fragment: str) -> str:
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", fragment))


def test_the_executive_page_has_no_statistical_jargon(studies_run):
    for name, r in studies_run.items():
        page = executive.render(r.results["executive"]).lower()
        text = " " + re.sub(r"\s+", " ", _text(page)) + " "
        found = [w for w in executive.JARGON if w in text]
        assert not found, f"{name}: jargon on the executive page: {found}"
        assert "nan" not in text.split() and "none" not in text.split()


def test_the_page_answers_for_each_segment_and_ranks_only_what_the_data_can_tell(studies_run):
    r = studies_run["sample_all"]
    answers = r.results["executive"]["answers"]
    assert [a["segment"] for a in answers[1:]] == r.ctx.ds.segments
    ranks = [a.get("rank") for a in answers[1:]]
    for a in answers[1:]:
        assert (a.get("rank") is not None) == (a["verdict"] == "supported")
    ranked = sorted([a for a in answers[1:] if a.get("rank")], key=lambda a: a["rank"])
    assert [a["effect"]["points"] for a in ranked] == sorted(a["effect"]["points"] for a in ranked)
    assert any(ranks)
    # the sample plants a strong attainment effect: the answer is yes, in points and money
    main = answers[0]
    assert main["verdict"] == "supported" and main["answer"] == "Yes"
    assert main["effect"]["points_low"] <= main["effect"]["points"] <= main["effect"]["points_high"] < 0
    money = r.results["executive"]["money"]
    assert money["by_group"] and money["moves"] and money["arr_at_risk"] > 0
    assert all(m["low"] <= m["arr_retained"] <= m["high"] for m in money["moves"])


def test_a_tiny_world_says_plainly_what_it_cannot_tell(studies_run):
    ex = studies_run["tiny_all"].results["executive"]
    main = ex["answers"][0]
    assert main["verdict"] in ("inconclusive", "not_estimable")
    assert main["answer"] in ("Cannot tell yet", "Not enough data yet")
    assert not any(a.get("rank") for a in ex["answers"][1:] if a["verdict"] != "supported")
    assert ex["next_step"]["text"]


def _claims() -> dict[str, Claim]:
    """Every Claim of the analyses, by id (per-segment pooled claims share one)."""
    import csresearch.analyses as A

    out = {}
    for module in A.REGISTRY:
        for v in vars(module).values():
            if isinstance(v, Claim):
                out[v.id] = v
    return out


def _other_headlines(claim: Claim, verdict: str) -> list[str]:
    """The headlines this claim would print for verdicts other than ``verdict`` (fixed texts only)."""
    mine = {"supported": [claim.supported], "not_supported": [claim.not_supported, claim.opposite],
            "inconclusive": [claim.cannot_tell], "not_estimable": [claim.not_estimable]}
    heads = []
    for v, texts in mine.items():
        if v != verdict:
            heads += [t[0] for t in texts if t is not None and "{" not in t[0]]
    own = {t[0] for t in mine[verdict] if t is not None}
    return [h for h in heads if h not in own]


def _report_text(r) -> str:
    """Everything the report says in words: the executive page, the findings, every section's text and the caveats."""
    parts = [_text(executive.render(r.results["executive"])), report.executive_summary(r), report.methods_text(r)]
    for s in r.sections:
        parts += [s.intro, s.text, s.lead, *s.highlights, *(sh.caption for sh in s.shown), *(f.alt for f in s.figures)]
    return "\n".join(p for p in parts if p)


def contradictions(findings: list[dict], text: str) -> list[str]:
    """Sentences of ``text`` that speak of a finding with another verdict than its own, and own sentences missing."""
    claims = _claims()
    out = []
    for f in findings:
        claim = claims.get(f["id"].split(":")[0])
        if claim is None:
            out.append(f"finding {f['id']} has no Claim in the analyses")
            continue
        out += [f"{f['id']} is {f['verdict']}, yet the report says {o!r}" for o in _other_headlines(claim, f["verdict"])
                if o in text]
        if (f["verdict"] != "not_estimable" or f["id"] in report.CORE_FINDINGS) and not (
                f["headline"] in text and f["claim"] in text):
            out.append(f"{f['id']}'s own sentence is missing")
    return out


def test_the_checker_catches_a_contradiction():
    from csresearch.analyses.attainment_effect import CLAIM

    f = {"id": "attainment_effect", "verdict": "inconclusive", "headline": CLAIM.cannot_tell[0], "claim": "x"}
    assert contradictions([f], f"{CLAIM.cannot_tell[0]} x") == []
    assert contradictions([f], f"{CLAIM.cannot_tell[0]} x {CLAIM.supported[0]}")
    assert contradictions([f], "nothing said")


def test_every_sentence_about_a_finding_has_its_verdict(studies_run, tmp_path):
    outcomes = []
    for name, r in studies_run.items():
        found = {f["id"]: f for f in r.results["findings"]}
        problems = contradictions(r.results["findings"], _report_text(r))
        assert not problems, f"{name}: {problems}"
        page = executive.render(r.results["executive"])
        for fid, verdict in re.findall(r'data-finding="([^"]+)" data-verdict="([^"]+)"', page):
            assert found[fid]["verdict"] == verdict, f"{name}: the page speaks of {fid} as {verdict}"
        outcomes.append(studies.Outcome(name, True, 1.0, results=r.results))
    # the index speaks from the same findings
    specs = [studies.StudySpec(n, r.params, "test") for n, r in studies_run.items()]
    index = studies.write_index(outcomes, specs, tmp_path).read_text(encoding="utf-8")
    by_study = {n: {f["id"]: f["verdict"] for f in r.results["findings"]} for n, r in studies_run.items()}
    marks = re.findall(r'data-finding="([^"]+)" data-verdict="([^"]+)"', index)
    assert marks
    every = {}
    for verdicts in by_study.values():
        for fid, v in verdicts.items():
            every.setdefault(fid, set()).add(v)
    for fid, verdict in marks:
        assert verdict in every[fid], f"the index speaks of {fid} as {verdict}, no study found that"
    for name, r in studies_run.items():
        main = r.results["executive"]["answers"][0]
        assert main["answer"] == executive.ANSWER_WORDS[{"not_supported": "not_supported"}.get(main["verdict"], main["verdict"])] \
            or main["verdict"] == "not_supported"
        assert htmllib.escape(main["sentence"]) in index


def test_the_core_questions_are_always_answered_in_words(studies_run):
    for name, r in studies_run.items():
        ex = r.results["executive"]
        assert ex["answers"][0]["sentence"] and ex["answers"][0]["answer"]
        assert ex["usage"]["sentence"]
