"""The analysis contract: one registry, one result shape, one error boundary, findings, alpha and privacy in one place."""
from __future__ import annotations

import json
import math
import re
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from csresearch import analyses, privacy, report
from csresearch import params as P
from csresearch.findings import VERDICTS, Claim, interval_verdict, judge
from csresearch.result import Result

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
FINDING_KEYS = {"id", "verdict", "claim", "estimate", "ci_low", "ci_high", "method", "reason"}


def _params(**kw):
    values = {"data_dir": str(SAMPLE), "segment": "smb", "study": "smb", "health_score_metric": "health_score",
              "bootstrap": 50, **kw}
    return P.validate(values, "test")


@pytest.fixture(scope="module")
def smb():
    return report.run(_params())


@pytest.fixture(scope="module")
def smb_alpha10():
    return report.run(_params(alpha=0.1, power=0.9))


# ---------------------------------------------------------------------------------------------- the registry
def test_every_registered_analysis_has_the_one_shape():
    names = [m.NAME for m in analyses.REGISTRY]
    assert len(names) == len(set(names))
    for m in analyses.REGISTRY:
        for attr in ("NAME", "TITLE", "INTRO", "requires", "run", "empty"):
            assert hasattr(m, attr), f"{m.__name__} has no {attr}"


def test_a_study_is_one_result_per_analysis_in_registry_order(smb):
    assert [s.name for s in smb.sections] == [m.NAME for m in analyses.REGISTRY]
    assert all(isinstance(s, Result) for s in smb.sections)
    for s in smb.sections:
        for name, table in s.tables.items():
            assert isinstance(table, pd.DataFrame), (s.name, name)
    assert smb["attainment_effect"].ok and smb.figure("effects") is not None


def test_the_timings_say_where_the_memory_peak_rose(smb):
    t = smb.results["timings"]
    peaks = t["peak_gb_after"]
    # every analysis, in the order they ran: whole-book analyses first, those reading the full panel or the goal
    # measurements leading (a large book lets those go after their last reader), then those on the secondary sample
    def has(m, flag):
        return bool(getattr(m, flag, False))

    whole = [m for m in analyses.REGISTRY if not has(m, "USES_SAMPLE")]
    leading = [m.NAME for m in whole if has(m, "USES_PANEL") or has(m, "USES_GOALS")]
    ran = leading + [m.NAME for m in whole if m.NAME not in leading] + \
        [m.NAME for m in analyses.REGISTRY if has(m, "USES_SAMPLE")]
    assert leading == ["attainment_effect", "km_by_attainment"]
    assert list(peaks) == ran and set(peaks) == set(t["analyses"])
    values = [t["peak_gb_context"], *peaks.values()]
    assert values[0] > 0.05 and all(b >= a for a, b in zip(values, values[1:]))  # a peak so far never falls


def test_a_new_analysis_is_one_module_and_one_registry_line(monkeypatch):
    """What adding an analysis takes: a module of the shape, one entry in the registry; nothing else changes."""
    extra = types.ModuleType("extra")
    extra.NAME, extra.TITLE, extra.INTRO = "extra", "An extra analysis", "Counted at {level}."
    extra.requires = lambda ctx: None
    extra.empty = lambda ctx, reason: {"extra": None}

    def run(ctx):
        counts = ctx.survival.groupby("event").size().rename("accounts").reset_index()
        return Result("extra", extra.TITLE, record={"extra": {"accounts": int(counts["accounts"].sum())}},
                      tables={"counts": counts}, text=f"{ctx.n_accounts:,} accounts.")

    extra.run = run
    monkeypatch.setattr(report, "REGISTRY", (*analyses.REGISTRY[:1], extra))
    r = report.run(_params(bootstrap=0))
    assert [s.name for s in r.sections] == [analyses.REGISTRY[0].NAME, "extra"]
    assert r.results["extra"] == {"accounts": r.results["n_accounts"]}
    assert r["extra"].intro == "Counted at 95%."


def test_a_failing_analysis_becomes_not_estimated_and_the_study_completes(monkeypatch):
    broken = types.ModuleType("broken")
    broken.NAME, broken.TITLE, broken.INTRO = "broken", "A broken analysis", ""
    broken.requires = lambda ctx: None
    broken.empty = lambda ctx, reason: {"broken": {"not_estimated": reason}}

    def run(ctx):
        raise ZeroDivisionError("planted")

    broken.run = run
    monkeypatch.setattr(report, "REGISTRY", (broken, analyses.attainment_effect))
    r = report.run(_params(bootstrap=0))
    reason = "an unexpected error (ZeroDivisionError: planted)"
    assert r["broken"].not_estimated == reason
    assert r.results["broken"] == {"not_estimated": reason}
    assert f"A broken analysis could not be estimated: {reason}." in r.results["warnings"]
    assert r.results["attainment_effect"]["time_varying"]["hr"] is not None
    # the traceback is kept for the analyst in results.json, never printed where a report would show it
    (err,) = [e for e in r.results["errors"] if e["part"] == "broken"]
    assert err["error"] == "ZeroDivisionError: planted" and "Traceback" in err["trace"] and "raise ZeroDivisionError" in err["trace"]
    assert "broken" in r.results["not_estimated"]


# ---------------------------------------------------------------------------------------------- findings
@pytest.mark.parametrize("lo, hi, direction, verdict", [
    (0.2, 0.5, "below", "supported"), (1.2, 2.0, "below", "not_supported"), (0.8, 1.2, "below", "inconclusive"),
    (0.01, 0.03, "above", "not_supported"), (-0.01, 0.03, "above", "inconclusive"), (0.01, 0.03, "above", "supported"),
    (None, 0.5, "below", "not_estimable"), (float("nan"), 0.5, "below", "not_estimable"),
])
def test_interval_verdicts(lo, hi, direction, verdict):
    null = 1.0 if direction == "below" else 0.0
    if direction == "above" and verdict == "not_supported":
        lo, hi = -0.03, -0.01
    assert interval_verdict(lo, hi, null=null, direction=direction) == verdict


def test_a_claim_is_chosen_by_its_verdict():
    claim = Claim("x", supported=("Yes.", "Less churn: {estimate:.2f} ({ci})."), not_supported=("No.", "More: {ci}."),
                  cannot_tell=("Cannot tell.", "Interval {ci}."), not_estimable=("Not estimated.", "Because {reason}."))
    f = judge(claim, estimate=1.02, ci_low=0.83, ci_high=1.24, null=1.0, direction="below", level=0.9, method="m")
    assert (f.verdict, f.headline, f.claim) == ("inconclusive", "Cannot tell.", "Interval 90% CI 0.83 to 1.24.")
    f = judge(claim, estimate=0.3, ci_low=0.2, ci_high=0.4, null=1.0, direction="below", level=0.95, method="m")
    assert f.claim == "Less churn: 0.30 (95% CI 0.20 to 0.40)."
    f = judge(claim, estimate=None, ci_low=None, ci_high=None, null=1.0, direction="below", level=0.95, method="m",
              reason="no goals table")
    assert (f.verdict, f.claim, f.estimate) == ("not_estimable", "Because no goals table.", None)


def test_results_carry_findings_with_verdicts(smb):
    found = {f["id"]: f for f in smb.results["findings"]}
    assert {"attainment_effect", "outcomes_vs_usage", "partial_value", "health_score"} <= set(found)
    for f in found.values():
        assert FINDING_KEYS <= set(f) and f["verdict"] in VERDICTS and f["claim"]
    tv = smb.results["attainment_effect"]["usage_adjusted"]  # the headline: adjusted for usage when there is usage
    head = found["attainment_effect"]
    assert (head["estimate"], head["ci_low"], head["ci_high"]) == (tv["hr"], tv["ci_low"], tv["ci_high"])
    assert head["verdict"] == "supported"  # the sample plants HR 0.2
    # which ranks churn risk better is decided out of sample; the in-sample head-to-head states no verdict
    assert [f.id for f in smb["discrimination"].findings] == ["outcomes_vs_usage"]
    assert not smb["outcomes_vs_usage"].findings
    ovu = found["outcomes_vs_usage"]
    assert ovu["method"].startswith("5-fold cross-validation grouped by account")
    assert (ovu["estimate"], ovu["ci_low"], ovu["ci_high"]) == tuple(
        smb.results["discrimination"]["delta_c"][k] for k in ("estimate", "ci_low", "ci_high"))
    summary = report.executive_summary(smb)
    for f in found.values():
        if f["verdict"] != "not_estimable":
            assert f["claim"] in summary


def test_data_without_goals_says_not_estimable_with_the_reason(tmp_path):
    from csresearch.world import WorldConfig, generate

    generate(WorldConfig(n_accounts=400, seed=3), tmp_path, fmt="parquet")
    (tmp_path / "goals.parquet").unlink()
    (tmp_path / "goal_progress.parquet").unlink()
    r = report.run(P.validate({"data_dir": str(tmp_path), "study": "nogoals"}, "test"))
    found = {f["id"]: f for f in r.results["findings"]}
    assert found["attainment_effect"]["verdict"] == "not_estimable"
    assert found["attainment_effect"]["reason"] == "no goals are recorded, so attainment cannot be measured"
    assert "Outcomes predict retention" not in report.executive_summary(r)
    assert r["attainment_effect"].not_estimated == "no goals are recorded, so attainment cannot be measured"


# ---------------------------------------------------------------------------------------------- alpha and power
def _intervals(obj, path=""):
    """Every (path, low, high) interval in a results.json: ``*ci_low``/``*ci_high`` pairs and ``ci_at`` pairs."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str) and k.endswith("ci_low") and isinstance(v, (int, float)):
                hi = obj.get(k[:-6] + "ci_high")
                if isinstance(hi, (int, float)) and math.isfinite(v) and math.isfinite(hi):
                    yield f"{path}.{k[:-6]}", v, hi
            yield from _intervals(v, f"{path}.{k}")
    elif isinstance(obj, list):
        if path.endswith(tuple(f"ci_at.{a}" for a in ("0.25", "0.5", "0.75", "1"))):
            yield path, obj[0], obj[1]
        for i, v in enumerate(obj):
            yield from _intervals(v, f"{path}[{i}]")


#: intervals that are exp(coef +- z se): their log width scales exactly with the normal quantile
WALD_LOG = re.compile(r"^\.(attainment_effect\.(time_varying|landmark|naive|landmarks\[\d\])|dose_response\.linear|"
                      r"health_score_audit|dose_response\.ci_at\.[\d.]+)\.?$|^\.metrics\[\d+\]\.relevance_$")


def test_alpha_sets_every_interval(smb, smb_alpha10):
    before = {k: (lo, hi) for k, lo, hi in _intervals(smb.results)}
    after = {k: (lo, hi) for k, lo, hi in _intervals(smb_alpha10.results)}
    assert set(before) == set(after) and len(before) > 40
    z_ratio = stats.norm.ppf(0.95) / stats.norm.ppf(0.975)  # 0.839
    wald = 0
    for k, (lo0, hi0) in before.items():
        lo1, hi1 = after[k]
        if hi0 == lo0:
            continue
        ratio = (hi1 - lo1) / (hi0 - lo0)
        assert 0.7 < ratio < 0.95, f"{k}: width ratio {ratio:.3f} at alpha 0.1 against 0.05"
        if WALD_LOG.match(k) and lo0 > 0 and lo1 > 0:
            wald += 1
            assert math.log(hi1 / lo1) / math.log(hi0 / lo0) == pytest.approx(z_ratio, rel=2e-3), k
    assert wald >= 8
    d0, d1 = smb.results["study_design"]["rows"], smb_alpha10.results["study_design"]["rows"]
    assert [r["events_logrank"] for r in d1] != [r["events_logrank"] for r in d0]


def _report_text(r) -> str:
    parts = [report.executive_summary(r), report.methods_text(r)]
    for s in r.sections:
        parts += [s.intro, s.text, *s.highlights, *(f.claim for f in s.findings)]
    return "\n".join(parts)


def test_every_percentage_in_the_report_follows_alpha_and_power(smb, smb_alpha10):
    for r, ci, two_sided, power in ((smb, "95%", "5%", "80%"), (smb_alpha10, "90%", "10%", "90%")):
        text = _report_text(r)
        levels = re.findall(r"(\d+(?:\.\d+)?%) (?:CI|confidence|band|bootstrap)", text)
        assert levels and set(levels) == {ci}, set(levels)
        assert set(re.findall(r"(\d+(?:\.\d+)?%) two-sided", text)) == {two_sided}
        assert set(re.findall(r"(\d+(?:\.\d+)?%) power", text)) == {power}
        assert f"Confidence intervals are {ci}" in text


# ---------------------------------------------------------------------------------------------- privacy
def test_the_privacy_rule_blanks_or_drops_small_rows():
    frame = pd.DataFrame({"group": ["a", "b", "c"], "n": [3, 10, 50], "rate": [0.5, 0.2, 0.1]})
    out = privacy.suppress(frame, "n", ["rate"], 10)
    assert out["suppressed"].tolist() == [True, False, False] and np.isnan(out.loc[0, "rate"])
    assert out["n"].tolist() == [3, 10, 50] and frame.loc[0, "rate"] == 0.5  # counts kept, input untouched
    kept, dropped = privacy.drop_small(frame, "n", 10)
    assert kept["group"].tolist() == ["b", "c"] and dropped == 1
    assert privacy.is_small(None, 10) and privacy.is_small(9, 10) and not privacy.is_small(10, 10)


def test_min_cell_is_read_from_the_study(smb):
    r = report.run(_params(min_cell=400, bootstrap=0))
    km = r.results["km_by_attainment"]["groups"]
    assert any(g.get("suppressed") == "fewer than 400 accounts" for g in km.values())
    assert all(m["n_accounts"] >= 400 for m in r.results["metrics"])
    gap = r["goodhart"].tables["gap"]
    assert gap.loc[gap["n"] < 400, "churn_rate"].isna().all()
    assert len(r.results["metrics"]) < len(smb.results["metrics"])
