"""Figures, one style: every function draws a tidy frame returned by the analyses and returns the Axes.

Figures carry a title, labelled axes with units, and readable fonts, so they can go into a report as they are.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

DAYS_PER_MONTH = 365.25 / 12
PALETTE = {"none": "#c0392b", "partial": "#e6a23c", "attained": "#2e8b57",
           "usage": "#7f8c8d", "attainment": "#2e8b57", "both": "#2c6fbb"}


def use_style() -> None:
    """The workbook's figure style (call once per notebook; the plotting functions call it too)."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=1.0,
                  rc={"figure.figsize": (7.5, 4.2), "figure.dpi": 110, "axes.titleweight": "bold",
                      "axes.titlesize": 12, "savefig.bbox": "tight"})


def _log_axis(ax, which: str = "x") -> None:
    """Log scale with plain tick labels (0.1, 0.2, 0.5, 1, 2) instead of powers of ten."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(mticker.NullFormatter())


def _ax(ax, figsize=None):
    use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def km_curves(km: pd.DataFrame, *, ax=None, title: str = "Retention by attainment group",
              time_unit: str = "months", xlabel: str | None = None, order=None) -> plt.Axes:
    """Kaplan-Meier step curves with their confidence bands, one per ``group`` of a :func:`fit_km` frame."""
    ax = _ax(ax)
    scale = DAYS_PER_MONTH if time_unit == "months" else 1.0
    groups = order or [g for g in ("none", "partial", "attained") if g in set(km["group"])] or sorted(km["group"].unique())
    for g in groups:
        cur = km[km["group"] == g].sort_values("time")
        t = np.concatenate([[0.0], cur["time"].to_numpy() / scale])
        s = np.concatenate([[1.0], cur["survival"].to_numpy()])
        lo = np.concatenate([[1.0], cur["ci_low"].to_numpy()])
        hi = np.concatenate([[1.0], cur["ci_high"].to_numpy()])
        color = PALETTE.get(str(g))
        ax.step(t, s, where="post", label=str(g), color=color, lw=2)
        ax.fill_between(t, lo, hi, step="post", alpha=0.15, color=color, lw=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel or f"time ({time_unit})")
    ax.set_ylabel("share of accounts retained")
    ax.set_title(title)
    ax.legend(title="attainment", frameon=False)
    return ax


def retention_heatmap(matrix: pd.DataFrame, *, cohort: str = "cohort", ax=None, max_months: int = 24,
                      title: str = "Retention by signup cohort (Kaplan-Meier)") -> plt.Axes:
    """Cohort by months-since-start heatmap of a :func:`retention_matrix` frame; empty cells are not yet observed."""
    wide = matrix[matrix["month"] <= max_months].pivot(index=cohort, columns="month", values="retention")
    if pd.api.types.is_datetime64_any_dtype(wide.index):
        wide.index = wide.index.strftime("%Y-%m")
    ax = _ax(ax, figsize=(9, max(3.0, 0.22 * len(wide) + 1.2)))
    sns.heatmap(wide, ax=ax, vmin=0, vmax=1, cmap="RdYlGn", cbar_kws={"label": "share retained"},
                mask=wide.isna(), linewidths=0)
    ax.set_xlabel("months since start")
    ax.set_ylabel("signup cohort")
    ax.set_title(title)
    return ax


def dose_response(curve: pd.DataFrame, *, ax=None, title: str = "Churn hazard by partial attainment",
                  level: float = 0.95) -> plt.Axes:
    """Hazard ratio versus attainment 0 along the spline, with its CI (at ``level``), and the linear fit."""
    ax = _ax(ax)
    ax.fill_between(curve["attainment"], curve["ci_low"], curve["ci_high"], alpha=0.2, color=PALETTE["both"], lw=0,
                    label=f"{level * 100:g}% CI")
    ax.plot(curve["attainment"], curve["hr"], color=PALETTE["both"], lw=2, label="spline")
    if "linear_hr" in curve:
        ax.plot(curve["attainment"], curve["linear_hr"], color="0.3", lw=1, ls="--", label="linear")
    ax.axhline(1, color="0.5", lw=0.8)
    _log_axis(ax, "y")
    ax.set_xlabel("account attainment (0 = no progress, 1 = goals reached)")
    ax.set_ylabel("hazard ratio vs no progress (log scale)")
    ax.set_title(title)
    ax.legend(frameon=False)
    return ax


def c_index_bars(table: pd.DataFrame, *, ax=None, title: str = "Who ranks churn risk better?") -> plt.Axes:
    """Bar chart of the C-index per model (0.5 = a coin toss, 1 = perfect ranking)."""
    ax = _ax(ax, figsize=(6.5, 3.2))
    labels = {"usage": "usage only", "attainment": "outcomes only", "both": "usage + outcomes"}
    data = table.assign(label=table["model"].map(labels).fillna(table["model"]))
    palette = {m: PALETTE.get(m, "0.55") for m in data["model"]}
    sns.barplot(data=data, y="label", x="c_index", hue="model", palette=palette, dodge=False, legend=False, ax=ax)
    for patch, value in zip(ax.patches, data["c_index"]):
        ax.text(patch.get_width() + 0.005, patch.get_y() + patch.get_height() / 2, f"{value:.3f}", va="center")
    ax.axvline(0.5, color="0.4", ls=":", lw=1)
    ax.set_xlim(0.4, 1.0)
    ax.set_xlabel("C-index (share of account pairs ranked correctly)")
    ax.set_ylabel("")
    ax.set_title(title)
    return ax


def forest(rows: pd.DataFrame, *, label: str = "label", ax=None, reference: float | None = None,
           title: str = "Hazard ratio, full versus no attainment", xlabel: str = "hazard ratio (log scale)") -> plt.Axes:
    """Forest plot of ``hr`` with ``ci_low``-``ci_high`` per row; ``reference`` draws a line (e.g. a known truth)."""
    ax = _ax(ax, figsize=(7, 0.5 * len(rows) + 1.5))
    y = np.arange(len(rows))[::-1]
    err = np.vstack([rows["hr"] - rows["ci_low"], rows["ci_high"] - rows["hr"]])
    ax.errorbar(rows["hr"], y, xerr=err, fmt="o", color=PALETTE["both"], ecolor="0.3", capsize=3)
    ax.set_yticks(y, rows[label])
    ax.axvline(1, color="0.5", lw=0.8)
    if reference is not None:
        ax.axvline(reference, color=PALETTE["attained"], ls="--", lw=1.2, label=f"truth {reference:.2f}")
        ax.legend(frameon=False, loc="lower right")
    _log_axis(ax, "x")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return ax


# ---------------------------------------------------------------------------------------------------------
# metrics by data, Goodhart and the vendor-customer gap (csresearch.metrics.by_data / .goodhart)
# ---------------------------------------------------------------------------------------------------------
VERDICT_COLORS = {"goldilocks": "#2e8b57", "papa": "#2c6fbb", "mama": "#e6a23c", "leading_indicator": "#8e44ad",
                  "noise": "#7f8c8d", "inconclusive": "#a89f91", "insufficient_data": "#bdc3c7"}


def _quadrant_panel(ax, rows: pd.DataFrame, xscale: float, xlabel: str, ylabel: str, title: str,
                    x_min: float | None) -> None:
    import matplotlib.ticker
    from matplotlib.lines import Line2D

    drawn = rows[rows["verdict"] != "insufficient_data"]
    tested = drawn[drawn["attrib_effect"].notna()]
    by_def = drawn[drawn["attrib_effect"].isna()]
    xs = tested["attrib_effect"].to_numpy(float) * xscale
    x_hi = max([0.0, *(tested["attrib_ci_high"].to_numpy(float) * xscale)]) if len(tested) else 1.0
    x_lo = min([0.0, *(tested["attrib_ci_low"].to_numpy(float) * xscale)]) if len(tested) else 0.0
    pad = 0.08 * (x_hi - x_lo or 1.0)
    x_def = x_hi + 2 * pad  # metrics attributable by definition (the usage baseline) sit at the right edge
    for frame, x, by_definition in ((tested, xs, False), (by_def, np.full(len(by_def), x_def), True)):
        for (_, r), xi in zip(frame.iterrows(), x):
            color = VERDICT_COLORS.get(r["verdict"], "0.3")
            y, lo, hi = r["relevance_hr"], r["relevance_ci_low"], r["relevance_ci_high"]
            xerr = None if by_definition else [[xi - r["attrib_ci_low"] * xscale], [r["attrib_ci_high"] * xscale - xi]]
            ax.errorbar([xi], [y], yerr=[[y - lo], [hi - y]], xerr=xerr, fmt="D" if by_definition else "o",
                        color=color, ecolor=color, elinewidth=1, capsize=2, ms=6, alpha=0.9,
                        mfc="white" if by_definition else color)
            label = r["metric"] + (" (usage baseline)" if by_definition else "")
            ax.annotate(label, (xi, y), xytext=(-5, 4) if by_definition else (4, 3), textcoords="offset points",
                        fontsize=7.5, color="0.15", ha="right" if by_definition else "left")
    ax.set_yscale("log")
    fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.2g}")
    ax.yaxis.set_major_formatter(fmt)
    ax.yaxis.set_minor_formatter(fmt)
    ax.tick_params(axis="y", which="minor", labelsize=8)
    ax.axhline(1, color="0.4", lw=0.9)
    ax.axvline(0, color="0.4", lw=0.9)
    if x_min:
        ax.axvline(x_min * xscale, color="0.4", lw=0.8, ls=":")
    ax.set_xlim(x_lo - pad, x_def + 3 * pad)
    ylo, yhi = ax.get_ylim()
    ax.axvspan(max(x_min or 0, 0) * xscale, x_def + 3 * pad, ymin=0, ymax=1, color=VERDICT_COLORS["goldilocks"],
               alpha=0.05, lw=0)
    ax.set_ylim(ylo, yhi)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.text(0.99, 0.99, "moved by usage →", transform=ax.transAxes, ha="right", va="top", fontsize=8, color="0.35")
    ax.text(0.01, 0.99, "↑ more churn", transform=ax.transAxes, ha="left", va="top", fontsize=8, color="0.35")
    ax.text(0.01, 0.06, "↓ less churn", transform=ax.transAxes, ha="left", va="bottom", fontsize=8, color="0.35")
    handles = [Line2D([], [], marker="o", ls="", color=c, label=v.replace("_", " "))
               for v, c in VERDICT_COLORS.items() if v in set(drawn["verdict"])]
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="best")


def metric_quadrants(table: pd.DataFrame, *, axes=None, min_kpi_effect: float | None = 0.0005,
                     min_usage_effect: float | None = 0.05,
                     title: str = "Which metrics matter, and which does the product move?"):
    """Quadrant plot of :func:`classify_by_data`: x = attributability (effect of usage), y = relevance (HR, log).

    One panel for customer KPIs (x in attainment points per month per SD of usage; y = hazard ratio per full
    attainment) and one for usage metrics (x in % per SD of usage; y = hazard ratio per SD), since the units
    differ. Error bars are the CIs of the classification, colours the verdicts (a neutral taupe for
    ``inconclusive``: an interval too wide to place the metric); the dotted line is the minimum effect, the
    shaded side the attributable half. The usage baseline (attributable by definition) is drawn hollow at the
    right edge; ``insufficient_data`` metrics are left out. Returns the array of Axes.
    """
    use_style()
    kinds = [k for k in ("kpi", "usage") if (table["kind"] == k).any()]
    if axes is None:
        fig, axes = plt.subplots(1, len(kinds), figsize=(6.2 * len(kinds), 5.0), squeeze=False)
        axes = axes[0]
        fig.suptitle(title, fontweight="bold")
    axes = np.atleast_1d(axes)
    for ax, kind in zip(axes, kinds):
        rows = table[table["kind"] == kind]
        if kind == "kpi":
            _quadrant_panel(ax, rows, 100.0, "attainment points per month per SD of usage (within account)",
                            "churn hazard ratio per full attainment (log)", "Customer KPIs", min_kpi_effect)
        else:
            _quadrant_panel(ax, rows, 100.0, "log-% change per SD of usage (within account)",
                            "churn hazard ratio per SD, beyond usage (log)", "Usage (vendor) metrics",
                            min_usage_effect)
        n_out = int((rows["verdict"] == "insufficient_data").sum())
        if n_out:
            ax.text(0.01, 0.01, f"{n_out} metric(s) with insufficient data not shown", transform=ax.transAxes,
                    fontsize=8, color="0.4")
    return axes


def goodhart_trends(series: pd.DataFrame, table: pd.DataFrame | None = None, *, metrics=None, segments=None,
                    axes=None, title: str = "Vendor metrics versus customer progress, by segment"):
    """Per segment: vendor metric indices (left axis, 100 = an average month) and the mean month-on-month
    change of account attainment (right axis, bars; the same scale in every panel) over calendar months, from
    :func:`goodhart_monthly`. With the :func:`goodhart_divergence` table, segments with a diverging metric get
    a red title naming it. Returns the array of (left) Axes.
    """
    use_style()
    segments = list(segments or sorted(series["segment"].unique()))
    metrics = list(metrics or list(dict.fromkeys(series["metric"])))
    if axes is None:
        fig, axes = plt.subplots(1, len(segments), figsize=(5.0 * len(segments), 4.4), squeeze=False,
                                 sharey=True, sharex=True)
        axes = axes[0]
        fig.suptitle(title, fontweight="bold")
    axes = np.atleast_1d(axes)
    colors = dict(zip(metrics, sns.color_palette("deep", len(metrics))))
    change = series.loc[series["segment"].isin(segments), "attainment_change"] * 100
    lo, hi = min(0.0, float(change.min())), max(0.0, float(change.max()))
    pad = 0.05 * ((hi - lo) or 1.0)
    for k, (ax, seg) in enumerate(zip(axes, segments)):
        s = series[series["segment"] == seg]
        att = s.drop_duplicates("month").sort_values("month")
        twin = ax.twinx()
        twin.bar(att["month"], att["attainment_change"] * 100, width=25, color=PALETTE["attainment"], alpha=0.25)
        twin.axhline(0, color=PALETTE["attainment"], lw=0.8)
        twin.set_ylim(lo - pad, hi + pad)
        twin.grid(False)
        if k == len(segments) - 1:
            twin.set_ylabel("mean attainment change (points / month, bars)", color=PALETTE["attainment"])
        else:
            twin.tick_params(axis="y", labelright=False)
        for m in metrics:
            cur = s[s["metric"] == m].sort_values("month")
            ax.plot(cur["month"], cur["index"], color=colors[m], lw=1.8, label=m)
        ax.set_zorder(twin.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.axhline(100, color="0.5", lw=0.7, ls=":")
        if k == 0:
            ax.set_ylabel("vendor metric index (100 = average month)")
        ax.set_xlabel("calendar month")
        ax.tick_params(axis="x", labelrotation=30)
        head, color = seg, "0.1"
        if table is not None:
            hit = table[(table["segment"] == seg) & table["diverging"]]
            if len(hit):
                head, color = f"{seg}: {', '.join(hit['metric'])} up, outcomes not", PALETTE["none"]
        ax.set_title(head, color=color)
    axes[0].legend(frameon=False, fontsize=8, loc="upper left")
    return axes


def vendor_gap(table: pd.DataFrame, *, segment: str = "all", ax=None, min_cell: int = 10,
               title: str = "Green by usage is not the same as successful"):
    """The vendor-customer gap as a 2x2 heatmap of churn rates (:func:`vendor_customer_gap`): rows = usage
    green or low, columns = goals attained or not; each cell shows the rate, its 95% CI and the count.
    Suppressed small cells are grey and say "n < min_cell". Returns the Axes."""
    ax = _ax(ax, figsize=(6.4, 4.4))
    t = table[table["segment"] == segment]
    rows, cols = [True, False], [True, False]
    grid = np.full((2, 2), np.nan)
    labels = [["", ""], ["", ""]]
    for _, r in t.iterrows():
        i, j = rows.index(bool(r["usage_green"])), cols.index(bool(r["goals_attained"]))
        if r["suppressed"]:
            labels[i][j] = f"n < {min_cell}\n(suppressed)"
        else:
            grid[i, j] = r["churn_rate"]
            labels[i][j] = (f"{100 * r['churn_rate']:.0f}% churned\n({100 * r['ci_low']:.0f}-{100 * r['ci_high']:.0f}%)"
                            f"\nn = {int(r['n'])}")
    vmax = np.nanmax(grid) if np.isfinite(grid).any() else 1.0
    sns.heatmap(pd.DataFrame(grid, index=["usage green", "usage low"], columns=["goals attained", "goals not attained"]),
                ax=ax, annot=np.array(labels), fmt="", cmap="Reds", vmin=0, vmax=max(vmax, 1e-9) * 1.15,
                cbar_kws={"label": "churn rate"}, linewidths=1, linecolor="white", mask=np.isnan(grid),
                annot_kws={"fontsize": 10})
    for i in range(2):
        for j in range(2):
            if np.isnan(grid[i, j]):
                ax.add_patch(plt.Rectangle((j, i), 1, 1, color="0.85", zorder=0))
                ax.text(j + 0.5, i + 0.5, labels[i][j], ha="center", va="center", fontsize=10, color="0.3")
    ax.grid(False)
    ax.set_xlabel("customer's view (goal attainment at the landmark)")
    ax.set_ylabel("vendor's view (usage)")
    ax.set_title(title if segment == "all" else f"{title}: {segment}")
    return ax


def ladder(table: pd.DataFrame, *, ax=None, title: str = "What each level of measurement adds in foresight of churn",
           level: float = 0.95):
    """Cross-validated C-index per maturity level with its CIs (a :func:`csresearch.maturity.ladder` frame), the
    in-sample C beside it (hollow, when the frame has it) and the coin toss (C = 0.5) the axis starts from, so a
    small gain looks small."""
    ax = _ax(ax, figsize=(7.5, 3.8))
    x = table["level"].to_numpy()
    err = np.vstack([table["c_index"] - table["ci_low"], table["ci_high"] - table["c_index"]])
    ax.axhline(0.5, color="0.45", lw=1, ls="--")
    ax.annotate("coin toss (C = 0.5)", (x.min(), 0.5), textcoords="offset points", xytext=(0, 4), fontsize=8,
                color="0.4")
    ax.errorbar(x, table["c_index"], yerr=err, fmt="-o", color=PALETTE["both"], ecolor="0.3", capsize=4, lw=2,
                label="cross-validated")
    if "c_index_in_sample" in table.columns:
        ax.plot(x, table["c_index_in_sample"], "o", mfc="white", color="0.45", ms=5, zorder=3,
                label="in-sample (optimistic)")
        ax.legend(frameon=False, fontsize=8, loc="lower right")
    for xi, c in zip(x, table["c_index"]):
        ax.annotate(f"{c:.3f}", (xi, c), textcoords="offset points", xytext=(8, -12), fontsize=9)
    top = np.nanmax(np.r_[table["ci_high"].to_numpy(float), table["c_index"].to_numpy(float),
                          table.get("c_index_in_sample", table["c_index"]).to_numpy(float)])
    ax.set_ylim(0.5 - 0.02 * (top - 0.5 or 1), top + 0.1 * (top - 0.5 or 1))
    ax.set_xticks(x, [f"level {lv}" for lv in x])
    ax.set_xlabel("measurement maturity level (2 = usage only ... 5 = partial value)")
    ax.set_ylabel(f"C-index, cross-validated ({level * 100:g}% CI)")
    ax.set_title(title)
    return ax


def calibration(table: pd.DataFrame, *, metric: str = "health score", ax=None,
                title: str | None = None):
    """Monthly churn rate per health-score band with Wilson CIs (a :func:`csresearch.health.calibration` frame)."""
    ax = _ax(ax, figsize=(7, 3.6))
    shown = table[~table["suppressed"]]
    err = np.vstack([shown["monthly_churn"] - shown["ci_low"], shown["ci_high"] - shown["monthly_churn"]]) * 100
    labels = [f"{a:g}-{b:g}" for a, b in zip(shown["score_from"], shown["score_to"])]
    ax.bar(labels, shown["monthly_churn"] * 100, color=PALETTE["usage"], yerr=err, capsize=4)
    ax.set_xlabel(f"{metric} band (lowest fifth to highest fifth)")
    ax.set_ylabel("churn per 100 account-months")
    ax.set_title(title or f"Does a better {metric} mean less churn?")
    return ax


def c_index_intervals(table: pd.DataFrame, *, ax=None, level: float = 0.95,
                      title: str = "Out of sample: who ranks churn risk better?") -> plt.Axes:
    """C-index per model with its interval (``model, label, c_index, ci_low, ci_high``; an ``in_sample`` column
    adds the in-sample C as an open marker). The axis starts at 0.5, a coin toss."""
    ax = _ax(ax, figsize=(7, 0.55 * len(table) + 1.6))
    y = np.arange(len(table))[::-1]
    c = table["c_index"].to_numpy(float)
    lo = table["ci_low"].to_numpy(float)
    hi = table["ci_high"].to_numpy(float)
    err = np.vstack([np.nan_to_num(c - lo), np.nan_to_num(hi - c)])
    colors = [PALETTE.get(m, "0.45") for m in table["model"]]
    for yi, ci, e0, e1, color in zip(y, c, err[0], err[1], colors):
        ax.errorbar([ci], [yi], xerr=[[e0], [e1]], fmt="o", color=color, ecolor=color, capsize=4, ms=7, lw=2)
        ax.annotate(f"{ci:.3f}", (ci, yi), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=9)
    if "in_sample" in table:
        ax.scatter(table["in_sample"], y, marker="o", facecolors="none", edgecolors="0.3", s=45, zorder=3,
                   label="in sample (fitted and scored on the same accounts)")
        ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax.axvline(0.5, color="0.4", ls=":", lw=1)
    ax.text(0.5, y.max() + 0.45, " coin toss", color="0.4", fontsize=8, va="bottom")
    right = np.nanmax(np.concatenate([hi, c, table["in_sample"].to_numpy(float) if "in_sample" in table else c]))
    ax.set_xlim(0.5, max(0.6, right + 0.03))
    ax.set_ylim(-0.6, y.max() + 0.9)
    ax.set_yticks(y, table["label"])
    ax.set_xlabel(f"C-index out of sample ({level * 100:g}% bootstrap CI; 0.5 = coin toss)")
    ax.set_title(title)
    return ax


def risk_calibration(table: pd.DataFrame, *, ax=None, level: float = 0.95,
                     title: str = "Predicted against observed 12-month churn") -> plt.Axes:
    """Observed (Kaplan-Meier) against mean predicted risk per group of predicted risk, with the observed risk's
    interval and the diagonal of perfect calibration (a :func:`csresearch.survival.calibration_table` frame;
    suppressed rows are left out)."""
    ax = _ax(ax, figsize=(5.6, 5.0))
    shown = table[~table["suppressed"]] if "suppressed" in table else table
    shown = shown[shown["observed"].notna()]
    x, obs = shown["mean_predicted"].to_numpy(float) * 100, shown["observed"].to_numpy(float) * 100
    err = np.vstack([np.nan_to_num(obs - shown["ci_low"].to_numpy(float) * 100),
                     np.nan_to_num(shown["ci_high"].to_numpy(float) * 100 - obs)])
    top = max(5.0, float(np.nanmax(np.concatenate([x, obs + err[1]]))) * 1.08) if len(shown) else 100.0
    ax.plot([0, top], [0, top], color="0.5", ls="--", lw=1, label="perfect calibration")
    ax.errorbar(x, obs, yerr=err, fmt="o", color=PALETTE["both"], ecolor="0.35", capsize=3, ms=6,
                label=f"tenth of predicted risk ({level * 100:g}% CI)")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.set_xlabel("predicted churn (%)")
    ax.set_ylabel("observed churn, Kaplan-Meier (%)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    return ax


# ---------------------------------------------------------------------------------------------------------
# level 2: usage and account data, no goals (analyses churn_by_segment, churn_drivers, usage_model)
# ---------------------------------------------------------------------------------------------------------
def churn_bars(table: pd.DataFrame, *, ax=None, level: float = 0.95, window: str = "") -> plt.Axes:
    """Churn ``rate`` per ``segment`` with its ``ci_low``-``ci_high`` interval (suppressed rows left out)."""
    rows = table[table["rate"].notna()]
    ax = _ax(ax, figsize=(7, 0.45 * len(rows) + 1.6))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, rows["rate"], color=[PALETTE["usage"] if s != "all" else PALETTE["both"] for s in rows["segment"]])
    lo = (rows["rate"] - rows["ci_low"]).fillna(0).clip(lower=0)
    hi = (rows["ci_high"] - rows["rate"]).fillna(0).clip(lower=0)
    ax.errorbar(rows["rate"], y, xerr=np.vstack([lo, hi]), fmt="none", ecolor="0.2", capsize=3)
    ax.set_yticks(y, rows["segment"])
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set_xlabel(f"accounts churned {window} (bars: {level:.0%} CI)".replace("  ", " "))
    ax.set_title("Churn by segment")
    return ax


def effects(table: pd.DataFrame, *, ax=None, ratio: str = "hazard ratio", level: float = 0.95) -> plt.Axes:
    """Each driver's ``effect`` (a ratio, log scale) with its interval; rows labelled by ``label``."""
    ax = _ax(ax, figsize=(7.5, 0.4 * len(table) + 1.6))
    y = np.arange(len(table))[::-1]
    err = np.vstack([table["effect"] - table["ci_low"], table["ci_high"] - table["effect"]])
    colors = [PALETTE["both"] if k == "usage" else PALETTE["partial"] for k in table["kind"]]
    ax.scatter(table["effect"], y, color=colors, zorder=3)
    ax.errorbar(table["effect"], y, xerr=err, fmt="none", ecolor="0.3", capsize=3)
    ax.set_yticks(y, table["label"])
    ax.axvline(1, color="0.5", lw=0.8)
    _log_axis(ax, "x")
    ax.set_xlabel(f"{ratio} of churn (log scale; {level:.0%} CI; below 1: less churn)")
    ax.set_title("What goes with churn (blue: usage, orange: account attributes)")
    return ax


def lift(table: pd.DataFrame, *, ax=None, average: float | None = None) -> plt.Axes:
    """Observed churn per decile of predicted risk (``decile``, ``observed``), the average as a line."""
    ax = _ax(ax)
    ax.bar(table["decile"], table["observed"], color=PALETTE["both"])
    if average is not None:
        ax.axhline(average, color="0.3", ls="--", lw=1, label=f"average {average:.1%}")
        ax.legend(frameon=False, loc="upper left")
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set_xticks(table["decile"])
    ax.set_xlabel("decile of predicted churn risk (10 = riskiest)")
    ax.set_ylabel("accounts that churned")
    ax.set_title("Observed churn by decile of predicted risk")
    return ax
