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


#: readable names of the attainment groups (landmark groups none / partial / attained)
GROUP_NAMES = {"none": "no progress", "partial": "partial progress", "attained": "goals reached"}
#: a ratio axis (hazard or odds ratios) never runs beyond these: an interval reaching further is drawn clipped,
#: its end marked by a triangle
RATIO_BOUNDS = (0.01, 100.0)


def _name(names, x) -> str:
    """``names(x)`` when a names callable is given, else ``x`` as text."""
    return str(names(x)) if names is not None else str(x)


def _ratio_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis from ``lo`` to ``hi``: 1-2-5 steps on a narrow range, powers of ten on a wide one, so
    that labels never crowd (at most about eight)."""
    decades = np.log10(hi / lo)
    if decades <= 0.45:
        subs = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    elif decades <= 1.0:
        subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    elif decades <= 2.2:
        subs = (1.0, 2.0, 5.0)
    elif decades <= 3.2:
        subs = (1.0, 3.0)
    else:
        subs = (1.0,)
    ticks = [s * 10.0 ** e for e in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
             for s in subs]
    ticks = [float(f"{t:.6g}") for t in ticks if lo <= t <= hi]
    if len(ticks) < 2:  # a very narrow range: its two ends
        ticks = [float(f"{lo:.2g}"), float(f"{hi:.2g}")]
    return ticks


def _tick_text(v: float, _=None) -> str:
    return f"{v:g}" if 1e-3 <= abs(v) < 1e4 else f"{v:.0e}"


def _log_axis(ax, which: str = "x", values=None, bounds: tuple[float, float] = RATIO_BOUNDS,
              reference: float | None = 1.0) -> tuple[float, float]:
    """Log scale with plain tick labels (0.1, 0.2, 0.5, 1, 2), never crowded and never beyond ``bounds``.

    The range is that of ``values`` (estimates and interval ends; default: what is drawn) with ``reference`` (1,
    no effect) included, padded and clipped to ``bounds``. Returns the limits: a value beyond them is the caller's
    to mark as clipped (see :func:`_ratio_intervals`)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    if values is None:
        cur = ax.get_xlim() if which == "x" else ax.get_ylim()
        vals = np.asarray(cur, float)
        pad = 1.0
    else:
        vals = np.asarray(values, float).ravel()
        pad = 1.25
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if reference is not None:
        vals = np.r_[vals, reference]
    if not len(vals):
        vals = np.array([0.5, 2.0])
    lo = float(np.clip(vals.min() / pad, *bounds))
    hi = float(np.clip(vals.max() * pad, *bounds))
    if hi / lo < 1.5:  # never a range so narrow that noise looks like an effect
        mid = np.sqrt(lo * hi)
        lo, hi = max(bounds[0], mid / 1.25), min(bounds[1], mid * 1.25)
    (ax.set_xlim if which == "x" else ax.set_ylim)(lo, hi)
    axis.set_major_locator(mticker.FixedLocator(_ratio_ticks(lo, hi)))
    axis.set_major_formatter(mticker.FuncFormatter(_tick_text))
    axis.set_minor_locator(mticker.NullLocator())
    axis.set_minor_formatter(mticker.NullFormatter())
    return lo, hi


def _ratio_intervals(ax, est, lo, hi, y, *, colors=None, bounds=RATIO_BOUNDS, reference: float | None = 1.0,
                     marker: str = "o", ms: float = 7, capsize: float = 3, ecolor="0.3", zorder: int = 3,
                     include=()):
    """Horizontal interval plot of ratios on a log x axis (see :func:`_log_axis`). Interval ends beyond the axis
    are drawn at its edge as triangles pointing out; an estimate beyond it as a hollow triangle labelled with its
    value. Returns the axis limits."""
    est, lo, hi, y = (np.asarray(a, float) for a in (est, lo, hi, y))
    left, right = _log_axis(ax, "x", values=np.r_[est, lo, hi, list(include)], bounds=bounds, reference=reference)
    colors = list(colors) if colors is not None else [PALETTE["both"]] * len(est)
    for e, a, b, yi, c in zip(est, lo, hi, y, colors):
        if np.isfinite(a) and np.isfinite(b):
            ax.plot([np.clip(a, left, right), np.clip(b, left, right)], [yi, yi], color=ecolor, lw=1.3, zorder=2,
                    solid_capstyle="butt")
            for end, edge, tri in ((a, left, "<"), (b, right, ">")):
                if (tri == "<" and end < left) or (tri == ">" and end > right):
                    ax.plot([edge], [yi], marker=tri, color=ecolor, ms=7, zorder=2, clip_on=False)
                else:
                    ax.plot([end], [yi], marker="|", color=ecolor, ms=capsize * 2.5, zorder=2)
        if not np.isfinite(e):
            continue
        if e < left or e > right:
            edge = left if e < left else right
            ax.plot([edge], [yi], marker="<" if e < left else ">", ms=ms + 2, mfc="white", color=c, zorder=zorder,
                    clip_on=False)
            ax.annotate(f"{e:.2g}", (edge, yi), textcoords="offset points", xytext=(8 if e < left else -8, 6),
                        ha="left" if e < left else "right", fontsize=8, color="0.3")
        else:
            ax.plot([e], [yi], marker=marker, ms=ms, color=c, zorder=zorder, ls="")
    if reference is not None:
        ax.axvline(reference, color="0.5", lw=0.8, zorder=1)
    return left, right


def _ax(ax, figsize=None):
    use_style()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def km_curves(km: pd.DataFrame, *, ax=None, title: str = "Retention by attainment group",
              time_unit: str = "months", xlabel: str | None = None, order=None, names=None,
              suppressed=None, min_cell: int | None = None) -> plt.Axes:
    """Kaplan-Meier step curves with their confidence bands, one per ``group`` of a :func:`fit_km` frame.

    Attainment groups get their readable names (no progress / partial progress / goals reached; ``names`` maps any
    other group). ``suppressed`` (groups, or ``{group: reason}``) are announced in the legend as not shown."""
    ax = _ax(ax)
    scale = DAYS_PER_MONTH if time_unit == "months" else 1.0
    groups = order or [g for g in ("none", "partial", "attained") if g in set(km["group"])] or sorted(km["group"].unique())

    def label(g):
        return GROUP_NAMES.get(str(g)) or _name(names, g)

    for g in groups:
        cur = km[km["group"] == g].sort_values("time")
        t = np.concatenate([[0.0], cur["time"].to_numpy() / scale])
        s = np.concatenate([[1.0], cur["survival"].to_numpy()])
        lo = np.concatenate([[1.0], cur["ci_low"].to_numpy()])
        hi = np.concatenate([[1.0], cur["ci_high"].to_numpy()])
        color = PALETTE.get(str(g))
        ax.step(t, s, where="post", label=f"{label(g)} ({int(cur['at_risk'].iloc[0])} accounts)"
                if "at_risk" in cur and len(cur) else label(g), color=color, lw=2)
        ax.fill_between(t, lo, hi, step="post", alpha=0.15, color=color, lw=0)
    from matplotlib.lines import Line2D

    handles, _ = ax.get_legend_handles_labels()
    items = suppressed.items() if isinstance(suppressed, dict) else [(g, None) for g in (suppressed or [])]
    for g, why in items:
        why = why or (f"fewer than {min_cell} accounts" if min_cell else "too few accounts")
        handles.append(Line2D([], [], ls="", marker="x", color=PALETTE.get(str(g), "0.5"),
                              label=f"{label(g)}: {why}, not shown"))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel or f"time ({time_unit})")
    ax.set_ylabel("share of accounts retained")
    ax.set_title(title)
    leg = ax.legend(handles=handles, title="attainment at the landmark", frameon=False, loc="lower left")
    leg._legend_box.align = "left"
    return ax


def retention_heatmap(matrix: pd.DataFrame, *, cohort: str = "cohort", ax=None, max_months: int = 24,
                      title: str = "Retention by signup cohort (Kaplan-Meier)", period: str | None = None,
                      annotate: bool | None = None) -> plt.Axes:
    """Cohort by months-since-start heatmap of a :func:`retention_matrix` frame.

    Only observed cells are drawn: cohorts with no observed cell and months no cohort reached are left out, an
    empty cell is not yet observed (or suppressed). The colour scale spans the observed values (rounded out to
    5 points), not 0 to 1, so differences between cohorts show. ``period="Q"`` labels timestamp cohorts as
    quarters (2024 Q1); ``annotate`` writes each cell's percentage (default: when the grid is small enough)."""
    wide = matrix[matrix["month"] <= max_months].pivot(index=cohort, columns="month", values="retention")
    wide = wide.dropna(how="all")
    if len(wide):
        wide = wide.loc[:, wide.notna().any()]
    if pd.api.types.is_datetime64_any_dtype(wide.index):
        idx = pd.DatetimeIndex(wide.index)
        wide.index = ([f"{d.year} Q{(d.month - 1) // 3 + 1}" for d in idx] if period == "Q" else idx.strftime("%Y-%m"))
    ax = _ax(ax, figsize=(9, max(3.0, 0.22 * len(wide) + 1.2)))
    vals = wide.to_numpy(float)
    vals = vals[np.isfinite(vals)]
    vmin = float(np.floor(vals.min() * 20) / 20) if len(vals) else 0.0
    vmax = float(min(1.0, np.ceil(vals.max() * 20) / 20)) if len(vals) else 1.0
    if vmax - vmin < 0.1:
        vmin = max(0.0, vmax - 0.1)
    if annotate is None:
        annotate = wide.shape[0] <= 16 and wide.shape[1] <= 14
    sns.heatmap(wide, ax=ax, vmin=vmin, vmax=vmax, cmap="viridis", mask=wide.isna(), linewidths=0.5,
                linecolor="white", annot=annotate, fmt=".0%", annot_kws={"fontsize": 8},
                cbar_kws={"label": "share retained", "format": mticker.PercentFormatter(1.0, decimals=0)})
    ax.set_facecolor("white")
    ax.grid(False)
    ax.tick_params(axis="y", labelrotation=0)
    ax.set_xlabel("months since start")
    ax.set_ylabel("signup quarter" if period == "Q" else "signup cohort")
    ax.set_title(title)
    return ax


def dose_response(curve: pd.DataFrame, *, ax=None, title: str = "Churn hazard by partial attainment",
                  level: float = 0.95, bounds: tuple[float, float] = RATIO_BOUNDS) -> plt.Axes:
    """Hazard ratio versus attainment 0 along the spline, with its CI (at ``level``), and the linear fit.

    The log axis runs at most over ``bounds``; a band reaching beyond is cut at the edge and says so."""
    ax = _ax(ax)
    lo, hi = curve["ci_low"].to_numpy(float), curve["ci_high"].to_numpy(float)
    values = np.r_[curve["hr"].to_numpy(float), lo, hi,
                   curve["linear_hr"].to_numpy(float) if "linear_hr" in curve else []]
    bottom, top = _log_axis(ax, "y", values=values, bounds=bounds)
    ax.fill_between(curve["attainment"], np.clip(lo, bottom, top), np.clip(hi, bottom, top), alpha=0.2,
                    color=PALETTE["both"], lw=0, label=f"{level * 100:g}% CI")
    ax.plot(curve["attainment"], np.clip(curve["hr"], bottom, top), color=PALETTE["both"], lw=2, label="spline")
    if "linear_hr" in curve:
        ax.plot(curve["attainment"], np.clip(curve["linear_hr"], bottom, top), color="0.3", lw=1, ls="--",
                label="linear")
    ax.axhline(1, color="0.5", lw=0.8)
    cut = [w for w, hit in (("below", np.nanmin(lo) < bottom), ("above", np.nanmax(hi) > top)) if hit]
    if cut:
        ax.text(0.99, 0.02, f"band cut at the axis {' and '.join(cut)}", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=8, color="0.4")
    ax.set_xlabel("account attainment (0 = no progress, 1 = goals reached)")
    ax.set_ylabel("hazard ratio vs no progress (log scale)")
    ax.set_title(title)
    ax.legend(frameon=False)
    return ax


def _c_axis(ax, values, which: str = "x") -> tuple[float, float]:
    """A C-index axis from the coin toss (0.5) or below it when an estimate or interval lies there (never a point
    cut off), to a little beyond the highest value; the coin toss drawn as a dashed line."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    top = max(0.6, float(v.max()) if len(v) else 0.6)
    low = min(0.5, float(v.min()) if len(v) else 0.5)
    span = top - low
    lim = (low - (0.04 * span if low < 0.5 else 0.0), min(1.0, top + 0.08 * span))
    (ax.set_xlim if which == "x" else ax.set_ylim)(*lim)
    (ax.axvline if which == "x" else ax.axhline)(0.5, color="0.35", ls="--", lw=1, zorder=1)
    return lim


def c_index_bars(table: pd.DataFrame, *, ax=None, title: str = "Who ranks churn risk better?",
                 level: float = 0.95) -> plt.Axes:
    """C-index per model (0.5 = a coin toss, 1 = perfect ranking) as points on an axis from the coin toss, with
    their intervals when the frame has ``ci_low``/``ci_high``."""
    labels = {"usage": "usage only", "attainment": "outcomes only", "both": "usage + outcomes"}
    data = table.assign(label=table["model"].map(labels).fillna(table["model"]))
    if "ci_low" not in data:
        data = data.assign(ci_low=np.nan, ci_high=np.nan)
    return c_index_intervals(data, ax=ax, level=level, title=title,
                             xlabel="C-index (share of account pairs ranked correctly; 0.5 = coin toss)")


def forest(rows: pd.DataFrame, *, label: str = "label", ax=None, reference: float | None = None,
           title: str = "Hazard ratio, full versus no attainment", xlabel: str = "hazard ratio (log scale)",
           bounds: tuple[float, float] = RATIO_BOUNDS) -> plt.Axes:
    """Forest plot of ``hr`` with ``ci_low``-``ci_high`` per row; ``reference`` draws a line (e.g. a known truth).

    The axis runs at most over ``bounds`` (0.01 to 100): an interval reaching beyond ends in a triangle."""
    ax = _ax(ax, figsize=(7, 0.5 * len(rows) + 1.5))
    y = np.arange(len(rows))[::-1]
    _ratio_intervals(ax, rows["hr"], rows["ci_low"], rows["ci_high"], y, bounds=bounds,
                     include=() if reference is None else (reference,))
    if reference is not None:
        ax.axvline(reference, color=PALETTE["attained"], ls="--", lw=1.2, label=f"truth {reference:.2f}")
        ax.legend(frameon=False, loc="lower right")
    ax.set_yticks(y, rows[label])
    ax.set_ylim(y.min() - 0.6, y.max() + 0.6)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return ax


# ---------------------------------------------------------------------------------------------------------
# metrics by data, Goodhart and the vendor-customer gap (csresearch.metrics.by_data / .goodhart)
# ---------------------------------------------------------------------------------------------------------
VERDICT_COLORS = {"goldilocks": "#2e8b57", "papa": "#2c6fbb", "mama": "#e6a23c", "leading_indicator": "#8e44ad",
                  "noise": "#7f8c8d", "inconclusive": "#a89f91", "insufficient_data": "#bdc3c7"}


def _repel(ax, labels, *, fixed=(), priority=None, max_iter: int = 150, pad: float = 2.0) -> list:
    """Nudge text labels (annotations in offset points) apart in display coordinates until none overlaps another
    or a ``fixed`` text; a label still overlapping then (a crowded panel) is removed, lowest ``priority`` first.
    Labels moved away from their point get a thin leader line. Returns the labels removed."""
    if not labels:
        return []
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    start = {id(t): np.array(t.xyann, float) for t in labels}

    def box(t):
        return t.get_window_extent(renderer).expanded(1.0, 1.0).padded(pad)

    fixed_boxes = [t.get_window_extent(renderer).padded(pad) for t in fixed if t.get_visible()]
    for _ in range(max_iter):
        boxes = [box(t) for t in labels]
        moved = False
        for i, t in enumerate(labels):
            shift = np.zeros(2)
            for j, other in enumerate(boxes):
                if j == i or not boxes[i].overlaps(other):
                    continue
                dy = (boxes[i].y0 + boxes[i].y1 - other.y0 - other.y1) / 2
                dx = (boxes[i].x0 + boxes[i].x1 - other.x0 - other.x1) / 2
                over_y = min(boxes[i].y1, other.y1) - max(boxes[i].y0, other.y0)
                direction = np.sign(dy) if dy else (1.0 if i > j else -1.0)
                shift[1] += direction * (over_y / 2 + 0.5)
                shift[0] += 0.15 * np.sign(dx) * min(abs(dx), 4.0)
            for other in fixed_boxes:
                if boxes[i].overlaps(other):
                    dy = (boxes[i].y0 + boxes[i].y1 - other.y0 - other.y1) / 2
                    over_y = min(boxes[i].y1, other.y1) - max(boxes[i].y0, other.y0)
                    shift[1] += (np.sign(dy) or -1.0) * (over_y + 0.5)
            # stay inside the panel
            b = boxes[i]
            if b.y1 + shift[1] > frame.y1:
                shift[1] = frame.y1 - b.y1
            if b.y0 + shift[1] < frame.y0:
                shift[1] = frame.y0 - b.y0
            if b.x1 + shift[0] > frame.x1:
                shift[0] = frame.x1 - b.x1
            if b.x0 + shift[0] < frame.x0:
                shift[0] = frame.x0 - b.x0
            if np.abs(shift).max() > 0.05:
                t.xyann = tuple(np.array(t.xyann, float) + shift / px_per_pt)
                boxes[i] = box(t)
                moved = True
        if not moved:
            break
    # a crowded panel: drop what still overlaps, least important first
    order = sorted(range(len(labels)), key=lambda k: (priority[k] if priority is not None else 0, -k))
    removed = []
    for k in order:
        t = labels[k]
        others = [box(o) for o in labels if o is not t and o not in removed] + fixed_boxes
        if any(box(t).overlaps(o) for o in others):
            t.remove()
            removed.append(t)
    for t in labels:
        if t in removed:
            continue
        offset = np.array(t.xyann, float) - start[id(t)]
        if np.hypot(*offset) > 6:  # moved away from its point: a leader line back to it
            x, y = t.xy
            bx = t.get_window_extent(renderer)
            px, py = ax.transData.transform((x, y))
            end = ax.transData.inverted().transform((np.clip(px, bx.x0, bx.x1), np.clip(py, bx.y0, bx.y1)))
            ax.plot([x, end[0]], [y, end[1]], color="0.6", lw=0.5, zorder=1, scalex=False, scaley=False)
    return removed


#: how much a verdict matters for a label on a crowded quadrant panel (higher: labelled first)
_LABEL_PRIORITY = {"goldilocks": 5, "papa": 4, "mama": 4, "leading_indicator": 4, "noise": 2, "inconclusive": 1}
#: a panel with more metrics than this labels only those placed by a verdict (the rest are dots; the table below
#: the figure lists every metric)
MAX_QUADRANT_LABELS = 8


def _quadrant_panel(ax, rows: pd.DataFrame, xscale: float, xlabel: str, ylabel: str, title: str,
                    x_min: float | None, names=None) -> None:
    from matplotlib.lines import Line2D

    drawn = rows[rows["verdict"] != "insufficient_data"]
    tested = drawn[drawn["attrib_effect"].notna()]
    by_def = drawn[drawn["attrib_effect"].isna()]
    xs = tested["attrib_effect"].to_numpy(float) * xscale
    x_hi = max([0.0, *(tested["attrib_ci_high"].to_numpy(float) * xscale)]) if len(tested) else 1.0
    x_lo = min([0.0, *(tested["attrib_ci_low"].to_numpy(float) * xscale)]) if len(tested) else 0.0
    pad = 0.08 * (x_hi - x_lo or 1.0)
    x_def = x_hi + 2 * pad  # metrics attributable by definition (the usage baseline) sit at the right edge
    y_values = np.r_[drawn["relevance_hr"].to_numpy(float), drawn["relevance_ci_low"].to_numpy(float),
                     drawn["relevance_ci_high"].to_numpy(float)]
    bottom, top = _log_axis(ax, "y", values=y_values)
    crowded = len(drawn) > MAX_QUADRANT_LABELS
    labels, priority, unlabelled = [], [], 0
    for frame, x, by_definition in ((tested, xs, False), (by_def, np.full(len(by_def), x_def), True)):
        for (_, r), xi in zip(frame.iterrows(), x):
            color = VERDICT_COLORS.get(r["verdict"], "0.3")
            y, lo, hi = r["relevance_hr"], r["relevance_ci_low"], r["relevance_ci_high"]
            yc = float(np.clip(y, bottom, top))
            xerr = None if by_definition else [[xi - r["attrib_ci_low"] * xscale], [r["attrib_ci_high"] * xscale - xi]]
            yerr = [[max(0.0, yc - max(lo, bottom))], [max(0.0, min(hi, top) - yc)]]
            ax.errorbar([xi], [yc], yerr=yerr, xerr=xerr, fmt="D" if by_definition else "o",
                        color=color, ecolor=color, elinewidth=1, capsize=2, ms=6, alpha=0.9,
                        mfc="white" if by_definition else color)
            for end, edge, tri in ((lo, bottom, "v"), (hi, top, "^")):
                if (tri == "v" and end < bottom) or (tri == "^" and end > top):
                    ax.plot([xi], [edge], marker=tri, color=color, ms=5, clip_on=False)
            label = _name(names, r["metric"]) + (" (usage baseline)" if by_definition else "")
            labels.append(ax.annotate(label, (xi, yc), xytext=(-5, 4) if by_definition else (4, 3),
                                      textcoords="offset points", fontsize=7.5, color="0.15",
                                      ha="right" if by_definition else "left"))
            priority.append(9 if by_definition else _LABEL_PRIORITY.get(r["verdict"], 0) - (0.5 if crowded else 0))
    ax.axhline(1, color="0.4", lw=0.9)
    ax.axvline(0, color="0.4", lw=0.9)
    if x_min:
        ax.axvline(x_min * xscale, color="0.4", lw=0.8, ls=":")
    ax.set_xlim(x_lo - pad, x_def + 3 * pad)
    ax.axvspan(max(x_min or 0, 0) * xscale, x_def + 3 * pad, ymin=0, ymax=1, color=VERDICT_COLORS["goldilocks"],
               alpha=0.05, lw=0)
    ax.set_ylim(bottom, top)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fixed = [ax.text(0.99, 0.99, "moved by usage →", transform=ax.transAxes, ha="right", va="top", fontsize=8,
                     color="0.35"),
             ax.text(0.01, 0.99, "↑ more churn", transform=ax.transAxes, ha="left", va="top", fontsize=8,
                     color="0.35"),
             ax.text(0.01, 0.06, "↓ less churn", transform=ax.transAxes, ha="left", va="bottom", fontsize=8,
                     color="0.35")]
    n_out = int((rows["verdict"] == "insufficient_data").sum())
    notes = ([f"{n_out} with insufficient data not shown"] if n_out else [])
    handles = [Line2D([], [], marker="o", ls="", color=c, label=v.replace("_", " "))
               for v, c in VERDICT_COLORS.items() if v in set(drawn["verdict"])]
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13),
              ncol=max(1, len(handles)))
    removed = _repel(ax, labels, fixed=fixed, priority=priority)
    unlabelled += len(removed)
    if unlabelled:
        notes.append(f"{unlabelled} unlabelled (see the table)")
    if notes:
        fixed.append(ax.text(0.01, 0.01, "\n".join(notes), transform=ax.transAxes, fontsize=8, color="0.4"))
        # the note may sit on a label: nudge again with the note fixed
        rest = [t for t in labels if t not in removed]
        removed2 = _repel(ax, rest, fixed=fixed, priority=[p for t, p in zip(labels, priority) if t not in removed])
        if removed2:
            fixed[-1].set_text("\n".join([*(n for n in notes if "unlabelled" not in n),
                                          f"{unlabelled + len(removed2)} unlabelled (see the table)"]))


def metric_quadrants(table: pd.DataFrame, *, axes=None, min_kpi_effect: float | None = 0.0005,
                     min_usage_effect: float | None = 0.05,
                     title: str = "Which metrics matter, and which does the product move?", names=None):
    """Quadrant plot of :func:`classify_by_data`: x = attributability (effect of usage), y = relevance (HR, log).

    One panel for customer KPIs (x in attainment points per month per SD of usage; y = hazard ratio per full
    attainment) and one for usage metrics (x in % per SD of usage; y = hazard ratio per SD), since the units
    differ. Error bars are the CIs of the classification, colours the verdicts (a neutral taupe for
    ``inconclusive``: an interval too wide to place the metric); the dotted line is the minimum effect, the
    shaded side the attributable half. The usage baseline (attributable by definition) is drawn hollow at the
    right edge; ``insufficient_data`` metrics are left out. Labels never overlap: they are nudged apart, and on a
    crowded panel only metrics placed by a verdict are labelled (``names`` gives metrics their human names).
    Returns the array of Axes.
    """
    use_style()
    drawn = table[table["verdict"] != "insufficient_data"]
    kinds = [k for k in ("kpi", "usage") if (drawn["kind"] == k).any()] or \
        [k for k in ("kpi", "usage") if (table["kind"] == k).any()]
    if axes is None:
        fig, axes = plt.subplots(1, len(kinds), figsize=(6.2 * len(kinds), 5.0), squeeze=False)
        axes = axes[0]
        fig.suptitle(title, fontweight="bold")
    axes = np.atleast_1d(axes)
    for ax, kind in zip(axes, kinds):
        rows = table[table["kind"] == kind]
        if kind == "kpi":
            _quadrant_panel(ax, rows, 100.0, "attainment points per month per SD of usage (within account)",
                            "churn hazard ratio per full attainment (log)", "Customer KPIs", min_kpi_effect,
                            names=names)
        else:
            _quadrant_panel(ax, rows, 100.0, "log-% change per SD of usage (within account)",
                            "churn hazard ratio per SD, beyond usage (log)", "Usage (vendor) metrics",
                            min_usage_effect, names=names)
    return axes


def goodhart_trends(series: pd.DataFrame, table: pd.DataFrame | None = None, *, metrics=None, segments=None,
                    axes=None, title: str = "Vendor metrics versus customer progress, by segment", names=None):
    """Per segment: vendor metric indices (left axis, 100 = an average month) and the mean month-on-month
    change of account attainment (right axis, bars; the same scale in every panel) over calendar months, from
    :func:`goodhart_monthly`. With the :func:`goodhart_divergence` table, segments with a diverging metric get
    a red title naming it. Returns the array of (left) Axes.
    """
    use_style()
    segments = list(segments or sorted(series["segment"].unique()))
    metrics = list(metrics or list(dict.fromkeys(series["metric"])))
    if axes is None:
        fig, axes = plt.subplots(1, len(segments), figsize=(max(7.5, 5.0 * len(segments)), 4.4), squeeze=False,
                                 sharey=True, sharex=True)
        axes = axes[0]
        fig.suptitle(title, fontweight="bold", y=1.03)
    axes = np.atleast_1d(axes)
    deep = sns.color_palette("deep", 10)
    colors = dict(zip(metrics, [deep[i] for i in (0, 1, 3, 4, 5, 6, 7, 8, 9, 0, 1, 3)][:len(metrics)]))
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
            ax.plot(cur["month"], cur["index"], color=colors[m], lw=1.8, label=_name(names, m))
        ax.set_zorder(twin.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.axhline(100, color="0.5", lw=0.7, ls=":")
        if k == 0:
            ax.set_ylabel("vendor metric index (100 = average month)")
        ax.set_xlabel("calendar month")
        ax.tick_params(axis="x", labelrotation=30)
        head, color = _name(names, seg), "0.1"
        if table is not None:
            hit = table[(table["segment"] == seg) & table["diverging"]]
            if len(hit):
                head, color = (f"{_name(names, seg)}: {', '.join(_name(names, m) for m in hit['metric'])} up, "
                               "outcomes not"), PALETTE["none"]
        ax.set_title(head, color=color)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].figure.legend(handles, labels, frameon=False, fontsize=8, loc="upper center", ncol=min(len(labels), 6),
                          bbox_to_anchor=(0.5, -0.1))
    return axes


def vendor_gap(table: pd.DataFrame, *, segment: str = "all", ax=None, min_cell: int = 10,
               title: str = "Green by usage is not the same as successful", names=None):
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
    ax.set_title(title if segment == "all" else f"{title}: {_name(names, segment)}")
    return ax


def ladder(table: pd.DataFrame, *, ax=None, title: str = "What each level of measurement adds in foresight of churn",
           level: float = 0.95):
    """Cross-validated C-index per maturity level with its CIs (a :func:`csresearch.maturity.ladder` frame), the
    in-sample C beside it (hollow, when the frame has it) and the coin toss (C = 0.5) the axis starts from (or
    below it, when an interval reaches there: nothing is cut off), so a small gain looks small; each step is
    labelled with its gain."""
    ax = _ax(ax, figsize=(7.5, 3.8))
    x = table["level"].to_numpy()
    c = table["c_index"].to_numpy(float)
    lo, hi = table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float)
    err = np.vstack([np.nan_to_num(c - lo), np.nan_to_num(hi - c)])
    ins = table["c_index_in_sample"].to_numpy(float) if "c_index_in_sample" in table.columns else c
    bottom, top = _c_axis(ax, np.r_[c, lo, hi, ins, 0.5], which="y")
    ax.annotate("coin toss\n(C = 0.5)", (1.0, 0.5), xycoords=("axes fraction", "data"), textcoords="offset points",
                xytext=(4, 0), fontsize=8, color="0.4", va="center", annotation_clip=False)
    ax.errorbar(x, c, yerr=err, fmt="-o", color=PALETTE["both"], ecolor="0.3", capsize=4, lw=2,
                label=f"cross-validated ({level * 100:g}% CI)")
    if "c_index_in_sample" in table.columns:
        ax.plot(x, ins, "o", mfc="white", color="0.45", ms=5, zorder=3, label="in-sample (optimistic)")
    for xi, ci in zip(x, c):
        ax.annotate(f"{ci:.3f}", (xi, ci), textcoords="offset points", xytext=(7, -3), fontsize=9, va="top")
    for k in range(1, len(x)):  # the gain of each step, between its two points
        gain = table["gain"].iloc[k] if "gain" in table.columns else c[k] - c[k - 1]
        if np.isfinite(gain):
            ax.annotate(f"{gain:+.3f}".replace("-0.000", "±0.000").replace("+0.000", "±0.000"), ((x[k - 1] + x[k]) / 2, (c[k - 1] + c[k]) / 2), textcoords="offset points",
                        xytext=(0, 7), ha="center", fontsize=8, color=PALETTE["both"], fontweight="bold")
    ax.legend(frameon=False, fontsize=8, loc="upper left", ncol=2)
    ax.set_ylim(bottom, top + 0.12 * (top - bottom))  # room for the legend above the intervals
    ax.set_xticks(x, [f"level {lv}" for lv in x])
    ax.set_xlim(x.min() - 0.4, x.max() + 0.5)
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
    ax.bar(labels, shown["monthly_churn"] * 100, color=PALETTE["usage"], yerr=np.clip(err, 0, None), capsize=4)
    n_out = int(table["suppressed"].sum())
    if n_out:
        ax.text(0.99, 0.98, f"{n_out} band(s) with too few accounts not shown", transform=ax.transAxes, ha="right",
                va="top", fontsize=8, color="0.4")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"{metric} band (lowest fifth to highest fifth)")
    ax.set_ylabel("churn per 100 account-months")
    ax.set_title(title or f"Does a better {metric} mean less churn?")
    return ax


def c_index_intervals(table: pd.DataFrame, *, ax=None, level: float = 0.95,
                      title: str = "Out of sample: who ranks churn risk better?", xlabel: str | None = None) -> plt.Axes:
    """C-index per model with its interval (``model, label, c_index, ci_low, ci_high``; an ``in_sample`` column
    adds the in-sample C as an open marker). The axis starts at 0.5, a coin toss, or below it when an estimate or
    interval lies there: no point is ever cut off."""
    ax = _ax(ax, figsize=(7, 0.55 * len(table) + 1.6))
    y = np.arange(len(table))[::-1]
    c = table["c_index"].to_numpy(float)
    lo = table["ci_low"].to_numpy(float)
    hi = table["ci_high"].to_numpy(float)
    ins = table["in_sample"].to_numpy(float) if "in_sample" in table else np.full(len(table), np.nan)
    left, right = _c_axis(ax, np.r_[c, lo, hi, ins])
    err = np.vstack([np.nan_to_num(c - lo), np.nan_to_num(hi - c)])
    colors = [PALETTE.get(m, "0.45") for m in table["model"]]
    for yi, ci, e0, e1, color in zip(y, c, err[0], err[1], colors):
        ax.errorbar([ci], [yi], xerr=[[max(e0, 0)], [max(e1, 0)]], fmt="o", color=color, ecolor=color, capsize=4,
                    ms=7, lw=2)
        ax.annotate(f"{ci:.3f}", (ci, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=9)
    if np.isfinite(ins).any():
        ax.scatter(ins, y, marker="o", facecolors="none", edgecolors="0.3", s=45, zorder=3)
    ax.text(0.5, y.max() + 0.45, " coin toss", color="0.4", fontsize=8, va="bottom")
    ax.set_ylim(-0.6, y.max() + 0.9)
    ax.set_yticks(y, table["label"])
    ax.grid(axis="y", visible=False)
    ax.set_xlabel((xlabel or f"C-index out of sample ({level * 100:g}% bootstrap CI; 0.5 = coin toss)")
                  + ("\nhollow circles: in sample (fitted and scored on the same accounts)" if np.isfinite(ins).any()
                     else ""))
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
def churn_bars(table: pd.DataFrame, *, ax=None, level: float = 0.95, window: str = "", names=None) -> plt.Axes:
    """Churn ``rate`` per ``segment`` with its ``ci_low``-``ci_high`` interval (suppressed rows left out; ``names``
    gives segments their human names, "all" is "all segments")."""
    rows = table[table["rate"].notna()]
    ax = _ax(ax, figsize=(7, 0.45 * len(rows) + 1.6))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, rows["rate"], color=[PALETTE["usage"] if s != "all" else PALETTE["both"] for s in rows["segment"]])
    lo = (rows["rate"] - rows["ci_low"]).fillna(0).clip(lower=0)
    hi = (rows["ci_high"] - rows["rate"]).fillna(0).clip(lower=0)
    ax.errorbar(rows["rate"], y, xerr=np.vstack([lo, hi]), fmt="none", ecolor="0.2", capsize=3)
    ax.set_yticks(y, ["all segments" if s == "all" else _name(names, s) for s in rows["segment"]])
    ax.set_xlim(0, max(0.05, float(np.nanmax(np.r_[rows["ci_high"].to_numpy(float), rows["rate"].to_numpy(float)]))
                       * 1.1) if len(rows) else 1)
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0 if ax.get_xlim()[1] >= 0.1 else 1))
    ax.set_xlabel(f"accounts churned {window} (bars: {level:.0%} CI)".replace("  ", " "))
    ax.set_title("Churn by segment")
    return ax


def effects(table: pd.DataFrame, *, ax=None, ratio: str = "hazard ratio", level: float = 0.95,
            bounds: tuple[float, float] = RATIO_BOUNDS) -> plt.Axes:
    """Each driver's ``effect`` (a ratio, log scale, at most over ``bounds``: an interval reaching beyond ends in a
    triangle) with its interval; rows labelled by ``label``."""
    ax = _ax(ax, figsize=(7.5, 0.4 * len(table) + 1.6))
    y = np.arange(len(table))[::-1]
    colors = [PALETTE["both"] if k == "usage" else PALETTE["partial"] for k in table["kind"]]
    _ratio_intervals(ax, table["effect"], table["ci_low"], table["ci_high"], y, colors=colors, bounds=bounds, ms=6)
    ax.set_yticks(y, table["label"])
    ax.set_ylim(y.min() - 0.6, y.max() + 0.6)
    ax.grid(axis="y", visible=False)
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
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0 if ax.get_ylim()[1] >= 0.1 else 1))
    ax.set_xticks(table["decile"])
    ax.set_xlabel("decile of predicted churn risk (10 = riskiest)")
    ax.set_ylabel("accounts that churned")
    ax.set_title("Observed churn by decile of predicted risk")
    return ax


# ---------------------------------------------------------------------------------------------------------
# alt texts: the key numbers of a figure in words (every Figure's ``alt``)
# ---------------------------------------------------------------------------------------------------------
def _num(v, digits: int = 2) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "n/a"
    if not np.isfinite(v):
        return "n/a"
    return f"{v:.{digits}f}" if abs(v) >= 10 ** -digits or v == 0 else f"{v:.1g}"


def describe_intervals(rows: pd.DataFrame, label: str, est: str, lo: str = "ci_low", hi: str = "ci_high", *,
                       digits: int = 2, level: float = 0.95, pct: bool = False, limit: int = 12) -> str:
    """``label est (95% CI lo to hi)`` for each row, joined by semicolons (at most ``limit`` rows, then "and N
    more"): the numbers of an interval chart for its alt text."""
    def f(v):
        return f"{100 * float(v):.0f}%" if pct and v is not None and np.isfinite(float(v)) else _num(v, digits)

    parts = []
    for _, r in rows.head(limit).iterrows():
        ci = (f" ({level * 100:g}% CI {f(r[lo])} to {f(r[hi])})"
              if lo in r and hi in r and pd.notna(r[lo]) and pd.notna(r[hi]) else "")
        parts.append(f"{r[label]} {f(r[est])}{ci}")
    more = f"; and {len(rows) - limit} more" if len(rows) > limit else ""
    return "; ".join(parts) + more
