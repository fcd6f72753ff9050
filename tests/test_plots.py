"""Figures for people: labels that never overlap, honest axes, clipped log axes, every figure described in words."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from csresearch import params as P  # noqa: E402
from csresearch import plots, report  # noqa: E402
from csresearch.world import WorldConfig, generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _overlaps(texts, renderer):
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_visible() and t.get_text()]
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:] if ba.overlaps(bb)]


def _crowded_metrics(n_kpi=24, n_usage=12, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_kpi + n_usage
    hr = np.exp(rng.normal(0, 0.05, n))  # every point in a small cloud: labels would pile up
    effect = rng.normal(0.005, 0.0005, n)
    frame = pd.DataFrame({
        "metric": [f"customer_metric_{i}" for i in range(n_kpi)] + [f"usage_metric_{i}" for i in range(n_usage)],
        "kind": ["kpi"] * n_kpi + ["usage"] * n_usage,
        "verdict": rng.choice(["goldilocks", "papa", "mama", "inconclusive"], n),
        "relevance_hr": hr, "relevance_ci_low": hr / 1.6, "relevance_ci_high": hr * 1.6,
        "attrib_effect": effect, "attrib_ci_low": effect - 0.001, "attrib_ci_high": effect + 0.001})
    frame.loc[n - 1, ["attrib_effect", "attrib_ci_low", "attrib_ci_high"]] = np.nan  # the usage baseline
    frame.loc[0, "verdict"] = "insufficient_data"
    return frame


@pytest.mark.parametrize("sizes", [(24, 12), (6, 4), (3, 2)])
def test_metric_quadrant_labels_never_overlap(sizes):
    axes = plots.metric_quadrants(_crowded_metrics(*sizes))
    fig = axes[0].figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        assert not _overlaps(ax.texts, renderer), _overlaps(ax.texts, renderer)[:3]
        labelled = [t for t in ax.texts if t.get_text().startswith(("customer_metric", "usage_metric"))]
        assert labelled, "a panel labels at least its most important metrics"
        frame = ax.get_window_extent(renderer)
        for t in labelled:  # labels stay inside their panel
            b = t.get_window_extent(renderer)
            assert frame.x0 - 1 <= b.x0 and b.x1 <= frame.x1 + 1 and frame.y0 - 1 <= b.y0 and b.y1 <= frame.y1 + 1


def test_metric_quadrants_use_human_names():
    axes = plots.metric_quadrants(_crowded_metrics(3, 2), names=lambda m: m.replace("_", " ").upper())
    texts = [t.get_text() for ax in axes for t in ax.texts]
    assert any(t.startswith("CUSTOMER METRIC") for t in texts)
    assert not any("customer_metric" in t for t in texts)


def _tick_labels(ax, which="x"):
    ax.figure.canvas.draw()
    axis = ax.xaxis if which == "x" else ax.yaxis
    return [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]


def test_log_axes_are_clipped_with_sane_ticks_that_never_overlap():
    rows = pd.DataFrame({"label": ["tiny world", "wide", "normal", "separated"],
                         "hr": [0.3, 1.2, 0.8, 1e-9], "ci_low": [1e-20, 0.0005, 0.5, 1e-25],
                         "ci_high": [1e3, 2e4, 1.1, 1e-3]})
    ax = plots.forest(rows, title="t")
    lo, hi = ax.get_xlim()
    assert lo >= plots.RATIO_BOUNDS[0] * 0.999 and hi <= plots.RATIO_BOUNDS[1] * 1.001
    labels = _tick_labels(ax)
    values = [float(t.get_text().replace("−", "-")) for t in labels]
    assert min(values) >= 0.01 and max(values) <= 100
    assert not _overlaps(labels, ax.figure.canvas.get_renderer())
    # the clipped ends are marked: triangles at the edges, and the estimate beyond the axis is labelled
    markers = {line.get_marker() for line in ax.lines}
    assert {"<", ">"} <= markers
    assert any(t.get_text() == "1e-09" for t in ax.texts)


def test_narrow_ratio_axes_have_enough_ticks_and_effects_clip_too():
    ax = plots.forest(pd.DataFrame({"label": ["a", "b"], "hr": [0.9, 1.05], "ci_low": [0.8, 0.95],
                                    "ci_high": [1.0, 1.15]}))
    labels = _tick_labels(ax)
    assert len(labels) >= 3 and not _overlaps(labels, ax.figure.canvas.get_renderer())
    table = pd.DataFrame({"label": ["x", "y"], "kind": ["usage", "account"], "effect": [2.0, 0.5],
                          "ci_low": [1e-12, 0.4], "ci_high": [1e12, 0.6]})
    ax = plots.effects(table)
    lo, hi = ax.get_xlim()
    assert lo >= 0.0099 and hi <= 100.1


def test_c_index_axis_starts_at_the_coin_toss_and_never_cuts_a_point():
    table = pd.DataFrame({"model": ["baseline", "usage", "attainment", "both"],
                          "label": ["baseline", "usage", "outcomes", "both"], "c_index": [0.47, 0.55, 0.58, 0.6],
                          "ci_low": [0.41, 0.5, 0.52, 0.55], "ci_high": [0.53, 0.6, 0.64, 0.66],
                          "in_sample": [0.5, 0.57, 0.6, 0.63]})
    ax = plots.c_index_intervals(table)
    lo, hi = ax.get_xlim()
    assert lo <= 0.41 and hi >= 0.66
    assert any(abs(line.get_xdata()[0] - 0.5) < 1e-12 for line in ax.lines if len(line.get_xdata()) == 2
               and line.get_xdata()[0] == line.get_xdata()[1])  # the coin-toss line
    high = table.assign(c_index=[0.6, 0.7, 0.72, 0.75], ci_low=[0.55, 0.65, 0.68, 0.7], ci_high=[0.65, 0.75, 0.76, 0.8])
    assert plots.c_index_intervals(high).get_xlim()[0] == pytest.approx(0.5)


def test_ladder_axis_from_the_coin_toss_with_gains_labelled():
    lad = pd.DataFrame({"level": [2, 3, 4, 5], "c_index": [0.56, 0.58, 0.6, 0.6], "ci_low": [0.52, 0.48, 0.55, 0.56],
                        "ci_high": [0.6, 0.62, 0.64, 0.65], "c_index_in_sample": [0.57, 0.6, 0.62, 0.63],
                        "gain": [np.nan, 0.02, 0.02, 0.0]})
    ax = plots.ladder(lad)
    lo, hi = ax.get_ylim()
    assert lo <= 0.48 and hi >= 0.65  # nothing cut off, and 0.5 is on the axis
    texts = [t.get_text() for t in ax.texts]
    assert "+0.020" in texts and "±0.000" in texts


def test_km_curves_announce_a_suppressed_group_with_readable_names():
    km = pd.DataFrame({"group": ["partial"] * 3, "time": [30.0, 60.0, 90.0], "survival": [0.95, 0.9, 0.85],
                       "ci_low": [0.9, 0.85, 0.8], "ci_high": [0.99, 0.95, 0.9], "at_risk": [40, 35, 30]})
    ax = plots.km_curves(km, suppressed={"attained": "fewer than 10 accounts", "none": "fewer than 10 accounts"})
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("partial progress") for t in legend)
    assert "goals reached: fewer than 10 accounts, not shown" in legend
    assert "no progress: fewer than 10 accounts, not shown" in legend
    assert not any(t in ("none", "partial", "attained") for t in legend)


def test_retention_heatmap_shows_only_observed_cells_on_a_fitted_scale():
    rows = []
    for q, start in enumerate(pd.date_range("2023-01-01", periods=4, freq="QS")):
        for m in range(25):
            observed = q != 1 and m <= 12 - 3 * q  # one quarter never observed; later ones shorter
            rows.append({"cohort": start, "month": m, "retention": 1 - 0.01 * m if observed else np.nan})
    ax = plots.retention_heatmap(pd.DataFrame(rows), period="Q")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["2023 Q1", "2023 Q3", "2023 Q4"]
    assert len(ax.get_xticklabels()) == 13  # months 0..12: no column nobody reached
    mesh = ax.collections[0]
    assert mesh.norm.vmin == pytest.approx(0.85) and mesh.norm.vmax == pytest.approx(1.0)


# ------------------------------------------------------------------------------------- every figure of a study
def _check_study_figures(r, *, require_numbers=True):
    figures = [(s.name, f) for s in r.sections for f in s.figures]
    assert figures
    for section, f in figures:
        assert len(f.alt) >= 40, (section, f.name, f.alt)
        if require_numbers:
            assert re.search(r"\d", f.alt), (section, f.name, f.alt)
        # identifiers are given their human names: no raw group or covariate names
        assert not re.search(r"\b(none|log_arr|mid_market)\b|(?<!goals )(?<!not )\battained\b|\bpartial\b(?! progress)", f.alt), (f.name, f.alt)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = f.draw()
            fig = out.figure if hasattr(out, "figure") else np.atleast_1d(out)[0].figure
            fig.canvas.draw()
        for ax in fig.axes:
            if ax.get_xscale() == "log":
                lo, hi = ax.get_xlim()
                assert lo >= 0.0099 and hi <= 100.1, (f.name, lo, hi)
            if ax.get_yscale() == "log":
                lo, hi = ax.get_ylim()
                assert lo >= 0.0099 and hi <= 100.1, (f.name, lo, hi)
        plt.close("all")
    return dict(figures)


@pytest.fixture(scope="module")
def smb_study():
    return report.run(P.validate({"data_dir": str(SAMPLE), "segment": "smb", "study": "smb",
                                  "health_score_metric": "health_score", "bootstrap": 50}, "test"))


def test_every_figure_of_a_sample_study_is_described_and_draws_cleanly(smb_study):
    figs = {f.name: (s, f) for s in smb_study.sections for f in s.figures}
    _check_study_figures(smb_study)
    assert "usage_vs_outcome" not in figs  # in-sample C-indices are drawn in the out-of-sample chart
    alt = figs["effects"][1].alt
    assert "CI" in alt and re.search(r"\d\.\d\d", alt)
    partial = smb_study["partial_value"]
    if partial.findings and partial.findings[0].verdict == "not_estimable":
        assert "dose_response" not in figs  # no curve the finding says is not estimable


def test_a_tiny_world_draws_no_absurd_figure(tmp_path):
    generate(WorldConfig(n_accounts=60, seed=7), tmp_path / "tiny")
    r = report.run(P.validate({"data_dir": str(tmp_path / "tiny"), "study": "tiny", "bootstrap": 20}, "test"))
    _check_study_figures(r)
