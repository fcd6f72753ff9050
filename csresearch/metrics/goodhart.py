"""When the vendor's number and the customer's outcome part ways: the Goodhart view and the vendor-customer gap.

Two analyses of the gap between *the vendor's* success metrics (product usage) and *the customer's* (goal
attainment):

* :func:`goodhart_divergence`: per segment, the calendar-time trend of every vendor usage metric next to the
  trend of customer attainment, flagging a segment where a vendor metric climbs while attainment is flat or
  falls (the red-light camera story: the counted output improves, the real objective does not).
  :func:`goodhart_monthly` gives the month-by-month series behind it, for the plot.
* :func:`vendor_customer_gap`: at a tenure landmark, accounts that look "green" by usage versus accounts that
  are reaching their goals, with the churn that followed in each of the four cells (the cable-company story:
  the signal is on the wire, the customer has no picture, and leaves anyway).

**Vendor trend.** Within-account (account fixed effects) OLS of ``log(1 + value)`` on calendar time in years,
cluster-robust (CR1) SE by account, per segment. For a metric other than the usage baseline the model also
holds ``log(1 + baseline)`` of the same period, so the trend is *per active user* (a campaign that makes each
user log in more), not the growth or shrinkage of the accounts' teams; this also works for scores, where a
ratio would not. The slope is in log points per year (``exp(slope) - 1`` is the yearly % change).
Account fixed effects keep the changing mix of the book (new, larger accounts) out of the trend. Usage periods
that are not complete for the account (its start month when it started after the 1st, its churn month) are
left out, because a partial month would look like a dip.

**Attainment trend.** Raw attainment rises with tenure (goals take months to reach), so the calendar trend of
mean attainment mostly shows the ageing of the book; and within an account, calendar time and tenure move
together, so they cannot be separated there. The trend here is therefore the calendar-time slope of account
attainment *at a given tenure*: OLS of attainment (at the start of each account-month, from
:func:`csresearch.attainment.episodes`) on calendar years with tenure-month fixed effects (one intercept per
whole month of tenure), cluster-robust SE by account, per segment. It compares accounts at the same stage of
their life observed at different dates: a positive slope means customers now reach more of their goals at a
given age than customers did earlier; a negative one, less. Units: attainment (0-1) per year.

**Divergence.** A row is ``diverging`` when the vendor trend is up: significant after Benjamini-Hochberg over
all segment x metric rows (``vendor_q < alpha``) and at least ``min_vendor_trend`` (default 0.05 log points,
about +5% a year; per-user rates of large accounts are measured so precisely that a meaningless drift of 0.1% a
year can be significant), while the segment's attainment trend
is *not* significantly positive (flat or down: ``attainment_trend <= 0`` or ``attainment_p >= alpha``).
``since`` / ``until`` restrict both trends to a calendar window (e.g. since a campaign started).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from .._json import jsonable, records
from ..attainment import episodes
from ..landmarks import attainment_at_tenure
from ..models import AnalysisError
from ..privacy import suppress
from .by_data import bh, requested_metrics, resolve_baseline, usage_metric_names, usage_wide, within_ols

if TYPE_CHECKING:
    from ..data import Dataset

#: Columns of :func:`goodhart_divergence`'s table.
GOODHART_COLUMNS = ("segment", "metric", "n_accounts", "vendor_trend", "vendor_ci_low", "vendor_ci_high", "vendor_p",
                    "vendor_q", "vendor_pct_per_year", "attainment_trend", "attainment_ci_low", "attainment_ci_high",
                    "attainment_p", "attainment_n_accounts", "diverging", "sentence")
#: Cells of the vendor-customer gap, in reading order.
GAP_CELLS = (("green usage, goals attained", True, True), ("green usage, goals not attained", True, False),
             ("low usage, goals attained", False, True), ("low usage, goals not attained", False, False))


def _require_goals(ds: "Dataset", what: str) -> None:
    if ds.goals is None or len(ds.goals) == 0:
        raise AnalysisError(f"the dataset has no goals table, so {what} cannot compare usage with customer attainment")


def _window(since, until) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    lo = pd.Timestamp(since) if since is not None else None
    hi = pd.Timestamp(until) if until is not None else None
    if lo is not None and hi is not None and hi <= lo:
        raise AnalysisError(f"until ({hi.date()}) must be after since ({lo.date()})")
    return lo, hi


def _in_window(dates: pd.Series, lo, hi) -> pd.Series:
    keep = pd.Series(True, index=dates.index)
    if lo is not None:
        keep &= dates >= lo
    if hi is not None:
        keep &= dates <= hi
    return keep


def _baseline_or_none(ds: "Dataset", baseline) -> tuple[list[str], list[str]]:
    try:
        return resolve_baseline(ds, baseline), []
    except AnalysisError as exc:
        if baseline is not None:
            raise
        return [], [f"No usage baseline ({exc}); vendor trends are per account, not per active user."]


def complete_usage(ds: "Dataset", metrics: Iterable[str]) -> pd.DataFrame:
    """The usage table wide (one row per account and period) with ``segment``, keeping only complete periods.

    A period (monthly, dated at its first day) is complete when the account had started by its first day and
    had not churned before the next period began.
    """
    wide = usage_wide(ds, metrics)
    acc = ds.accounts.set_index("account_id")
    start = wide["account_id"].map(acc["start_date"])
    end = wide["account_id"].map(acc["end_date"])
    nxt = wide["date"] + pd.offsets.MonthBegin(1)
    keep = (wide["date"] >= start) & (end.isna() | (end >= nxt))
    wide = wide[keep.to_numpy()].copy()
    wide["segment"] = wide["account_id"].map(acc["segment"]).to_numpy()
    return wide.reset_index(drop=True)


def _years(dates: pd.Series, origin: pd.Timestamp) -> np.ndarray:
    return (dates - origin).dt.days.to_numpy(float) / 365.25


def goodhart_divergence(ds: "Dataset", *, metrics: Sequence[str] | None = None,
                        baseline: str | Sequence[str] | None = None, since=None, until=None, alpha: float = 0.05,
                        min_vendor_trend: float = 0.05, min_accounts: int = 30,
                        panel: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """Per segment: calendar trend of each vendor usage metric next to the tenure-adjusted attainment trend.

    Method: see the module docstring (within-account log-usage trend per active user; attainment slope over
    calendar time with tenure-month fixed effects; cluster-robust SE by account; BH over the vendor trends).

    Args:
        ds: the dataset; needs a usage table and a goals table.
        metrics: vendor metrics to trend (default: every usage metric).
        baseline: usage metric(s) held fixed for the per-active-user trend (default ``active_users`` when
            present; without it trends are per account, with a warning).
        since, until: calendar window (dates) for both trends; default the whole history.
        alpha: significance level (BH q for vendor trends, p for the attainment trend).
        min_vendor_trend: minimum vendor slope (log points per year; 0.05 = about +5% a year) to count as
            "up": in large accounts the per-user rate is measured so precisely that a drift of 0.1% a year can
            be significant without meaning anything.
        min_accounts: a segment x metric with fewer accounts is reported without a trend (NaN, not flagged).
        panel: a precomputed :func:`episodes` panel to reuse.

    Returns:
        The table (columns :data:`GOODHART_COLUMNS`; one row per segment and metric) and a JSON-serialisable
        summary ``{window, alpha, baseline, flagged: [{segment, metric}], n_flagged, table, warnings, method}``.
    """
    _require_goals(ds, "the Goodhart view")
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be in (0, 1), not {alpha}")
    metrics = requested_metrics(ds, metrics)
    base, notes = _baseline_or_none(ds, baseline)
    lo, hi = _window(since, until)
    wide = complete_usage(ds, sorted(set(metrics) | set(base)))
    wide = wide[_in_window(wide["date"], lo, hi).to_numpy()]
    if wide.empty:
        raise AnalysisError("no complete usage period falls in the window")
    origin = lo if lo is not None else wide["date"].min()
    wide["_t"] = _years(wide["date"], origin)
    for m in base:
        wide[f"_b_{m}"] = np.log1p(wide[m].clip(lower=0))

    ep = panel if panel is not None else episodes(ds, usage_metrics=[])
    ep = ep[ep["attainment"].notna()]
    ep = ep[_in_window(ep["month"], lo, hi).to_numpy()].copy()
    ep["_t"] = _years(ep["month"], origin)
    ep["_tenure"] = np.floor(ep["tenure_months"].to_numpy()).astype(int)

    rows = []
    for seg in sorted(ds.accounts["segment"].unique()):
        e = ep[ep["segment"] == seg]
        att = _trend(e, "attainment", [], "_tenure", min_accounts, alpha)
        w = wide[wide["segment"] == seg]
        for m in metrics:
            controls = [f"_b_{b}" for b in base if b != m]
            sub = w.assign(_y=np.log1p(w[m].clip(lower=0)))
            sub = sub[sub[["_y", *controls]].notna().all(axis=1)]
            ven = _trend(sub, "_y", controls, "account_id", min_accounts, alpha)
            rows.append({"segment": seg, "metric": m, "n_accounts": ven["n_accounts"],
                         "vendor_trend": ven["coef"], "vendor_ci_low": ven["ci_low"], "vendor_ci_high": ven["ci_high"],
                         "vendor_p": ven["p"], "attainment_trend": att["coef"], "attainment_ci_low": att["ci_low"],
                         "attainment_ci_high": att["ci_high"], "attainment_p": att["p"],
                         "attainment_n_accounts": att["n_accounts"], "_per_user": bool(controls)})
    table = pd.DataFrame(rows)
    table["vendor_q"] = bh(table["vendor_p"])
    table["vendor_pct_per_year"] = 100 * (np.exp(table["vendor_trend"]) - 1)
    up = (table["vendor_trend"] >= max(min_vendor_trend, 0.0)) & (table["vendor_trend"] > 0) & (table["vendor_q"] < alpha)
    att_up = (table["attainment_trend"] > 0) & (table["attainment_p"] < alpha)
    table["diverging"] = (up & ~att_up & table["attainment_trend"].notna()).astype(bool)
    table["sentence"] = [_sentence(r, base, alpha, min_vendor_trend) for r in table.to_dict("records")]
    table = table[list(GOODHART_COLUMNS)]
    window = {"since": None if lo is None else str(lo.date()), "until": None if hi is None else str(hi.date())}
    flagged = table.loc[table["diverging"], ["segment", "metric"]]
    summary = {
        "method": "vendor trend: within-account OLS of log(1 + value) on calendar years"
                  + (f", holding log(1 + {' + '.join(base)}) fixed" if base else "")
                  + "; attainment trend: OLS of attainment on calendar years with tenure-month fixed effects; "
                  "cluster-robust SE by account; BH over vendor trends",
        "window": window, "alpha": float(alpha), "min_vendor_trend": float(min_vendor_trend), "baseline": base,
        "flagged": records(flagged), "n_flagged": int(len(flagged)),
        "table": records(table), "warnings": notes,
    }
    return table, jsonable(summary)


def _trend(frame: pd.DataFrame, y: str, controls: list[str], fe: str, min_accounts: int, alpha: float) -> dict:
    n_acc = int(frame["account_id"].nunique()) if len(frame) else 0
    out = {"coef": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan, "n_accounts": n_acc}
    if n_acc < min_accounts or frame["_t"].nunique() < 3:
        return out
    controls = [c for c in controls if frame[c].nunique() > 1]
    res = within_ols(frame, y, ["_t", *controls], fe=fe, cluster="account_id", alpha=alpha)
    if not np.isfinite(res["se"]) or res["se"] == 0:
        return out
    out.update({k: res[k] for k in ("coef", "ci_low", "ci_high", "p")})
    return out


def _p(name: str, value: float) -> str:
    return f"{name} < 0.001" if value < 0.001 else f"{name} = {value:.3f}"


def _sentence(r: dict, base: list[str], alpha: float, min_trend: float) -> str:
    seg, m = r["segment"], r["metric"]
    if not np.isfinite(r["vendor_trend"]):
        return f"{seg}: too few accounts to estimate the trend of {m}."
    per = f" at constant {' + '.join(base)}" if r["_per_user"] else " per account"
    pct = 100 * (math.exp(r["vendor_trend"]) - 1)
    lo, hi = 100 * (math.exp(r["vendor_ci_low"]) - 1), 100 * (math.exp(r["vendor_ci_high"]) - 1)
    q = r["vendor_q"]
    sig = "significant" if q < alpha else "not significant"
    if q < alpha and 0 < r["vendor_trend"] < min_trend:
        sig += f", below the {100 * (math.exp(min_trend) - 1):.0f}% a year that counts as up"
    level = f"{100 * (1 - alpha):g}%"
    vend = f"{m}{per} changed {pct:+.1f}% per year ({level} CI {lo:+.1f}% to {hi:+.1f}%, {_p('q', q)}, {sig})"
    if not np.isfinite(r["attainment_trend"]):
        return f"{seg}: {vend}; attainment trend not estimable."
    a = r["attainment_trend"]
    att = (f"attainment at a given tenure changed {100 * a:+.1f} points per year "
           f"({level} CI {100 * r['attainment_ci_low']:+.1f} to {100 * r['attainment_ci_high']:+.1f}, "
           f"{_p('p', r['attainment_p'])})")
    if r["diverging"]:
        return f"{seg}: {vend} while {att}: the vendor metric is up and the customer outcome is not (Goodhart)."
    return f"{seg}: {vend}; {att}: no divergence."


def _month_effects(y: np.ndarray, account: np.ndarray, month: np.ndarray, tol: float = 1e-10,
                   max_iter: int = 500) -> np.ndarray:
    """Month effects of the two-way fixed-effects model ``y = a_account + m_month + e`` (alternating projections).

    Returns one effect per month code (mean-zero over rows); exact least squares at convergence."""
    n_a, n_m = account.max() + 1, month.max() + 1
    cnt_a = np.bincount(account, minlength=n_a)
    cnt_m = np.bincount(month, minlength=n_m)
    m_eff = np.zeros(n_m)
    for _ in range(max_iter):
        a_eff = np.bincount(account, weights=y - m_eff[month], minlength=n_a) / cnt_a
        new = np.bincount(month, weights=y - a_eff[account], minlength=n_m) / np.maximum(cnt_m, 1)
        done = np.max(np.abs(new - m_eff)) < tol
        m_eff = new
        if done:
            break
    return m_eff


def goodhart_monthly(ds: "Dataset", *, metrics: Sequence[str] | None = None, since=None, until=None,
                     min_accounts: int = 30, panel: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """The month-by-month series behind :func:`goodhart_divergence`, for plotting.

    Method: per segment and vendor metric, the calendar-month effects of a two-way fixed-effects model
    ``log(1 + value) = account effect + month effect`` on complete usage periods (alternating projections),
    shown as an index ``100 * exp(month effect - reference)``, the reference being the account-weighted mean
    effect over the window's months (so 100 = an average month; early months with few accounts are too noisy
    to anchor on): how the metric moves for the same accounts, free of the changing mix of the book. Per account (not per active user), so the index of
    ``active_users`` shows whether teams grew. Next to it, per segment and month: ``attainment_change``, the
    mean month-on-month change of account attainment (accounts at risk in both months), and
    ``attainment_mean``, the mean attainment at the month's start. Months with fewer than ``min_accounts``
    accounts get NaN.

    Returns a long frame ``segment, month, metric, index, n_accounts, attainment_change, attainment_mean``
    and ``{window, segments, metrics}``.
    """
    _require_goals(ds, "the Goodhart view")
    metrics = requested_metrics(ds, metrics)
    lo, hi = _window(since, until)
    wide = complete_usage(ds, metrics)
    wide = wide[_in_window(wide["date"], lo, hi).to_numpy()]
    parts = []
    for seg, w in wide.groupby("segment", sort=True):
        acc_code = pd.factorize(w["account_id"])[0]
        mon_code, months = pd.factorize(w["date"], sort=True)
        n_acc = np.bincount(mon_code, minlength=len(months))
        for m in metrics:
            y = np.log1p(w[m].clip(lower=0).to_numpy(float))
            ok = np.isfinite(y)
            if ok.sum() == 0:
                continue
            eff = _month_effects(y[ok], pd.factorize(acc_code[ok])[0], mon_code[ok])
            eff = np.resize(eff, len(months)) if len(eff) < len(months) else eff
            valid = n_acc >= min_accounts
            if not valid.any():
                continue
            ref = np.average(eff[valid], weights=n_acc[valid])
            index = np.where(valid, 100 * np.exp(eff - ref), np.nan)
            parts.append(pd.DataFrame({"segment": seg, "month": months, "metric": m, "index": index,
                                       "n_accounts": n_acc}))
    if not parts:
        raise AnalysisError("no complete usage period falls in the window")
    series = pd.concat(parts, ignore_index=True)
    ep = panel if panel is not None else episodes(ds, usage_metrics=[])
    ep = ep[ep["attainment"].notna()].sort_values(["account_id", "month"], kind="stable")
    prev_same = ep["account_id"].eq(ep["account_id"].shift())
    ep = ep.assign(_d=(ep["attainment"] - ep["attainment"].shift()).where(prev_same))
    ep = ep[_in_window(ep["month"], lo, hi).to_numpy()]
    att = ep.groupby(["segment", "month"], sort=True).agg(attainment_change=("_d", "mean"),
                                                           attainment_mean=("attainment", "mean"),
                                                           _n=("account_id", "size")).reset_index()
    small = att["_n"] < min_accounts
    att.loc[small, ["attainment_change", "attainment_mean"]] = np.nan
    series = series.merge(att.drop(columns="_n"), on=["segment", "month"], how="left")
    summary = {"window": {"since": None if lo is None else str(lo.date()), "until": None if hi is None else str(hi.date())},
               "segments": sorted(series["segment"].unique().tolist()), "metrics": list(metrics),
               "min_accounts": int(min_accounts)}
    return series, jsonable(summary)


# ---------------------------------------------------------------------------------------------------------
# the vendor-customer gap
# ---------------------------------------------------------------------------------------------------------
def vendor_customer_gap(ds: "Dataset", *, usage_metric: str | None = None, landmark_days: float = 365,
                        horizon_days: float = 365, usage_threshold: float | None = None, usage_per: str | None = None,
                        attainment_threshold: float = 0.5, min_cell: int = 10, alpha: float = 0.05,
                        by_segment: bool = False) -> tuple[pd.DataFrame, dict]:
    """Green by usage versus reaching their goals: the 2x2 of accounts at a tenure landmark and their churn.

    Method. Accounts still active at ``landmark_days`` of tenure (their *landmark*) are classified by:

    * **usage green**: the usage metric (default the usage baseline, ``active_users``) in the last completed
      usage period before the landmark's calendar month, optionally divided by the accounts column
      ``usage_per`` (e.g. ``"seats"``), is at or above ``usage_threshold``; default: the median of that value
      among the segment's accounts at their landmark (so "green" means busier than the typical account of its
      own segment: a vendor's dashboard judges a small account against small accounts);
    * **goals attained**: account attainment at the landmark (contract formula) >= ``attainment_threshold``.
      The default 0.5 ("at least halfway to its goals") rather than the contract's 1.0: at a 12-month landmark
      most goals are not due yet and full attainment of every goal is rare (about 1 account in 7 in the
      sample), which would leave the attained cells nearly empty. Set 1.0 for "fully attained".

    The outcome is churn within ``horizon_days`` after the landmark. Accounts whose horizon is not fully
    observed (not churned and ``as_of`` before the horizon ends) are left out rather than counted as retained;
    with ``observed_from`` (a snapshot), accounts whose landmark falls before it are left out (those that
    churned in between are missing). Accounts without goals or without a usage value are left out. Churn rates
    have Wilson confidence intervals. A cell with fewer than ``min_cell`` accounts has its rate and interval
    suppressed (NaN) and ``suppressed=True`` (counts are kept; reports should print them as "< min_cell").

    Returns the table ``segment, cell, usage_green, goals_attained, n, churned, churn_rate, ci_low, ci_high,
    suppressed`` (segment ``"all"``, plus one block per segment with ``by_segment``) and a JSON-serialisable
    summary ``{landmark_days, horizon_days, usage_metric, usage_per, usage_threshold (rule or value),
    attainment_threshold, min_cell, n_accounts, excluded: {...}, cells: [...], gap: {...}}`` where ``gap``
    holds ``green_not_attained_minus_green_attained`` and ``green_not_attained_minus_low_attained``
    (differences of churn rates, NaN when a cell is suppressed).
    """
    _require_goals(ds, "the vendor-customer gap")
    if not 0 < attainment_threshold <= 1:
        raise AnalysisError(f"attainment_threshold must be in (0, 1], not {attainment_threshold}")
    if landmark_days < 0 or horizon_days <= 0:
        raise AnalysisError("landmark_days must be >= 0 and horizon_days > 0")
    metric = usage_metric if usage_metric is not None else resolve_baseline(ds, None)[0]
    if metric not in usage_metric_names(ds):
        raise AnalysisError(f"usage metric {metric!r} is not in the usage table")
    acc = ds.accounts.copy()
    if usage_per is not None:
        if usage_per not in acc.columns or not pd.api.types.is_numeric_dtype(acc[usage_per]):
            raise AnalysisError(f"usage_per: accounts has no numeric column {usage_per!r}")
    as_of = ds.as_of
    landmark = acc["start_date"] + pd.Timedelta(days=float(landmark_days))
    horizon_end = landmark + pd.Timedelta(days=float(horizon_days))
    end = acc["end_date"]
    active = (end.isna() | (end > landmark)) & (landmark <= as_of)
    churn = end.notna() & (end > landmark) & (end <= horizon_end)
    followed = churn | (horizon_end <= as_of)
    excluded = {"not_active_at_landmark": int((~active).sum()),
                "horizon_not_observed": int((active & ~followed).sum())}
    keep = active & followed
    if ds.observed_from is not None:
        early = keep & (landmark < ds.observed_from)
        excluded["landmark_before_observed_from"] = int(early.sum())
        keep &= ~early
    cohort = acc[keep.to_numpy()].copy()
    cohort["landmark"] = landmark[keep.to_numpy()]
    cohort["churned"] = churn[keep.to_numpy()].to_numpy()
    if cohort.empty:
        raise AnalysisError(f"no account was active at {landmark_days:g} days of tenure with {horizon_days:g} days "
                            "of follow-up observed")
    att = attainment_at_tenure(ds, landmark_days).set_index("account_id")["attainment"]
    cohort["attainment"] = cohort["account_id"].map(att).to_numpy()
    # usage: the last usage period that began before the landmark's calendar month (within 45 days)
    u = ds.usage[ds.usage["metric"] == metric][["account_id", "date", "value"]]
    u = u.assign(date=u["date"].astype("datetime64[ns]")).sort_values("date", kind="stable")
    left = pd.DataFrame({"_i": np.arange(len(cohort)), "account_id": cohort["account_id"].to_numpy(),
                         "_m": cohort["landmark"].dt.to_period("M").dt.to_timestamp().astype("datetime64[ns]").to_numpy()})
    left = left.sort_values("_m", kind="stable")
    m = pd.merge_asof(left, u, left_on="_m", right_on="date", by="account_id", direction="backward",
                      allow_exact_matches=False, tolerance=pd.Timedelta(days=45)).sort_values("_i", kind="stable")
    value = m["value"].to_numpy(float)
    if usage_per is not None:
        per = cohort[usage_per].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(per > 0, value / per, np.nan)
    cohort["usage"] = value
    excluded["no_goals"] = int(cohort["attainment"].isna().sum())
    excluded["no_usage"] = int((cohort["attainment"].notna() & cohort["usage"].isna()).sum())
    cohort = cohort[cohort["attainment"].notna() & cohort["usage"].notna()]
    if cohort.empty:
        raise AnalysisError("no account at the landmark has both goals and a usage value")
    if int(cohort["churned"].sum()) == 0:
        raise AnalysisError(f"no account churned within {horizon_days:g} days after the landmark; the gap has no outcome")
    if usage_threshold is None:
        thr = cohort.groupby("segment")["usage"].transform("median")
        rule = f"median of {metric}{' per ' + usage_per if usage_per else ''} within the segment at the landmark"
        thresholds = {str(k): float(v) for k, v in cohort.groupby("segment")["usage"].median().items()}
    else:
        thr = pd.Series(float(usage_threshold), index=cohort.index)
        rule = float(usage_threshold)
        thresholds = {"all": float(usage_threshold)}
    cohort["usage_green"] = cohort["usage"] >= thr
    cohort["goals_attained"] = cohort["attainment"] >= attainment_threshold

    blocks = [("all", cohort)]
    if by_segment:
        blocks += [(s, g) for s, g in cohort.groupby("segment", sort=True)]
    rows = []
    for seg, g in blocks:
        for label, green, hit in GAP_CELLS:
            cell = g[(g["usage_green"] == green) & (g["goals_attained"] == hit)]
            n, k = int(len(cell)), int(cell["churned"].sum())
            if n > 0:
                lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson")
                rate = k / n
            else:
                lo = hi = rate = float("nan")
            rows.append({"segment": seg, "cell": label, "usage_green": green, "goals_attained": hit, "n": n,
                         "churned": k, "churn_rate": rate, "ci_low": float(lo), "ci_high": float(hi)})
    table = suppress(pd.DataFrame(rows), "n", ["churn_rate", "ci_low", "ci_high"], min_cell)
    allrows = table[table["segment"] == "all"].set_index("cell")["churn_rate"]
    gap = {"green_not_attained_minus_green_attained":
           float(allrows["green usage, goals not attained"] - allrows["green usage, goals attained"]),
           "green_not_attained_minus_low_attained":
           float(allrows["green usage, goals not attained"] - allrows["low usage, goals attained"])}
    summary = {"landmark_days": float(landmark_days), "horizon_days": float(horizon_days), "usage_metric": metric,
               "usage_per": usage_per, "usage_threshold": rule, "usage_thresholds": thresholds,
               "attainment_threshold": float(attainment_threshold), "min_cell": int(min_cell), "alpha": float(alpha),
               "n_accounts": int(len(cohort)), "n_churned": int(cohort["churned"].sum()), "excluded": excluded,
               "cells": records(table), "gap": gap,
               "suppressed_cells": int(table["suppressed"].sum())}
    return table, jsonable(summary)
