"""A synthetic customer base with a known truth, for teaching and for testing the analyses.

The world is simulated month by month on a calendar-month grid. For every account:

* a **segment** (smb, mid_market, enterprise) fixes its size, ARR and baseline churn hazard;
* a latent **engagement** ``e`` (standard normal; an account level plus an AR(1) monthly wobble)
  drives the vendor's view, the monthly ``usage`` metrics: ``active_users`` (binomial out of
  the account's seats), ``logins`` (about a dozen per active user), ``reports_created``
  (product output that follows active users: the planted *Mama Bear* metric, with no effect
  on churn) and, optionally, ``health_score`` (a vendor scorecard that is almost pure noise);
* 1-4 **goals** in the customer's own KPIs, each with a baseline, a target (direction by
  sign), a weight and a set date within 45 days of the start. Progress toward the target is a
  latent fraction ``p`` that moves every month. For the *Goldilocks* KPIs the monthly step is
  driven by the previous month's engagement (the product moves them); for the *Papa Bear* KPI
  (``company_revenue``) it is driven by a market cycle and the account's luck, not by usage.
  Goals grow, stall or regress. The KPI is measured on the first day of each calendar month
  (sometimes a month is not reported), with a little measurement noise;
* **churn** happens in continuous time with a hazard that is constant within each calendar
  month and depends on covariates *known at the month's start*:

      log h(t) = log h0[segment] + b_att * A(month start) + b_arr * (log ARR - log median ARR of
                 the segment) + b_eng * e(previous month)

  where ``A`` is the account's attainment computed from the *recorded* measurements with the
  data contract's formula (latest measurement on or before the date, clipped to [0, 1],
  weight-averaged over the goals set by then; 0 before any measurement). A time-varying Cox
  model on ``(start, stop]`` monthly episodes with attainment taken at each episode's start
  therefore recovers ``b_att``; the naive analysis (final attainment as if known from the
  start) is biased, because accounts that churn early had less time to make progress.
* One segment is a **Goodhart** story: from a calendar date on, the vendor pushes logins
  (a campaign makes them grow every month) while the customer's Goldilocks KPIs start to slide.

Everything is vectorised over accounts and goals (one loop over calendar months), deterministic
for a seed, and written with pyarrow so that the same arguments give byte-identical files.
``truth.json`` records every planted effect in the units the analyses report.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

WORLD_VERSION = 1
DEFAULT_AS_OF = "2026-06-30"
TABLES = ("accounts", "goals", "goal_progress", "usage")
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class SegmentSpec:
    """How one segment of the synthetic customer base looks."""

    share: float
    arr_median: float
    arr_sigma: float
    monthly_churn: float  # baseline hazard per month at zero attainment, average engagement, median ARR
    goals_p: tuple[float, float, float, float]  # probability of 1, 2, 3, 4 goals


@dataclass(frozen=True)
class KPI:
    """A customer KPI a goal can be set in."""

    name: str
    function: str
    direction: int  # +1: the customer wants it up; -1: down
    baseline: float  # typical baseline value
    unit: str
    role: str  # "goldilocks" (usage moves it) or "papa" (outside factors move it)
    pick_weight: float = 1.0


SEGMENTS: dict[str, SegmentSpec] = {
    "smb": SegmentSpec(0.60, 9_000.0, 0.6, 0.032, (0.50, 0.35, 0.15, 0.00)),
    "mid_market": SegmentSpec(0.30, 45_000.0, 0.5, 0.020, (0.20, 0.40, 0.30, 0.10)),
    "enterprise": SegmentSpec(0.10, 220_000.0, 0.5, 0.012, (0.00, 0.30, 0.40, 0.30)),
}

KPIS: tuple[KPI, ...] = (
    KPI("qualified_pipeline", "sales", +1, 120.0, "opportunities", "goldilocks"),
    KPI("win_rate_pct", "sales", +1, 22.0, "percent", "goldilocks"),
    KPI("sales_cycle_days", "sales", -1, 75.0, "days", "goldilocks"),
    KPI("qualified_leads", "marketing", +1, 300.0, "leads per month", "goldilocks", 1.5),
    KPI("cost_per_lead", "marketing", -1, 85.0, "USD", "goldilocks"),
    KPI("time_to_fill_days", "hr", -1, 48.0, "days", "goldilocks"),
    KPI("onboarding_days", "hr", -1, 30.0, "days", "goldilocks"),
    KPI("schedule_variance_days", "project_management", -1, 21.0, "days late", "goldilocks"),
    KPI("otif_pct", "supply_chain", +1, 82.0, "percent", "goldilocks"),
    KPI("inventory_turns", "supply_chain", +1, 6.0, "turns per year", "goldilocks"),
    KPI("prosecutions_with_evidence", "public_safety", +1, 40.0, "cases per quarter", "goldilocks"),
    KPI("company_revenue", "finance", +1, 5_000_000.0, "USD per quarter", "papa", 2.0),
)

USAGE_METRICS = ("active_users", "logins", "reports_created")
HEALTH_SCORE = "health_score"


@dataclass(frozen=True)
class WorldConfig:
    """Arguments of a synthetic world. Defaults give the bundled sample's world."""

    n_accounts: int = 3000
    seed: int = 42
    as_of: str | None = None  # default DEFAULT_AS_OF
    first_start: str = "2021-07-01"
    observed_from: str | None = None
    health_score: bool = True
    # planted effects (log hazard ratios)
    log_hr_attainment: float = math.log(0.20)  # full vs no attainment
    log_hr_log_arr: float = -0.15  # per unit of log ARR, within segment
    # Usage acts on churn only through the outcomes it moves (0 by default). A direct effect would confound
    # attainment (engagement drives Goldilocks progress) unless the analysis adjusts for usage.
    log_hr_engagement: float = 0.0  # per SD of the previous month's latent engagement
    # goal dynamics
    months_to_target: float = 14.0  # median months for a goal to reach its target at average drive
    usage_drive: float = 0.6  # Goldilocks monthly step multiplier: exp(usage_drive * engagement)
    missing_measurement: float = 0.10
    # Goodhart segment
    goodhart_segment: str = "mid_market"
    goodhart_from: str = "2024-07-01"
    goodhart_login_growth: float = 0.04  # logins grow by this share of their level per month
    goodhart_progress: float = -0.15  # Goldilocks step multiplier once the campaign runs (slides back)

    def __post_init__(self) -> None:
        """Dates are strict YYYY-MM-DD, and a snapshot starts before extraction; errors name the command's options."""
        as_of = _strict_date(self.as_of, "--as-of") or _dt.date.fromisoformat(DEFAULT_AS_OF)
        _strict_date(self.first_start, "first_start")  # its order against as_of is checked by simulate
        observed = _strict_date(self.observed_from, "--observed-from")
        if observed is not None and observed >= as_of:
            given = "" if self.as_of else ", the default"
            raise ValueError(f"--observed-from must be before the extraction date (--as-of {as_of}{given}), "
                             f"not {observed}: a snapshot starts before it is extracted")

    def resolved_as_of(self) -> pd.Timestamp:
        return pd.Timestamp(self.as_of or DEFAULT_AS_OF)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _strict_date(value: str | None, name: str) -> _dt.date | None:
    if value is None:
        return None
    try:
        if isinstance(value, str) and _DATE.match(value):
            return _dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise ValueError(f"{name} must be a date YYYY-MM-DD, not {value!r}")


def _day(ts: pd.Timestamp | str) -> int:
    """Days since 1970-01-01."""
    return int((pd.Timestamp(ts) - pd.Timestamp("1970-01-01")).days)


def _month_starts(first: int, last: int) -> np.ndarray:
    """First days (as day numbers) of every calendar month from the month of ``first`` to the month after ``last``."""
    lo = pd.Timestamp("1970-01-01") + pd.Timedelta(days=first)
    hi = pd.Timestamp("1970-01-01") + pd.Timedelta(days=last)
    months = pd.date_range(lo.to_period("M").to_timestamp(), hi.to_period("M").to_timestamp() + pd.offsets.MonthBegin(1), freq="MS")
    return ((months - pd.Timestamp("1970-01-01")).days).to_numpy(dtype=np.int64)


def _sample_without_replacement(rng: np.random.Generator, weights: np.ndarray, n_rows: int, k: np.ndarray) -> np.ndarray:
    """For each row, the indices of ``k[row]`` items drawn without replacement with probability ~ weights.

    Gumbel-top-k: the k largest of log(w) + Gumbel noise are a weighted sample without replacement.
    Returns a (n_rows, max k) array; entries past k[row] are -1.
    """
    keys = np.log(weights)[None, :] + rng.gumbel(size=(n_rows, weights.size))
    order = np.argsort(-keys, axis=1, kind="stable")[:, : k.max()]
    order[np.arange(order.shape[1])[None, :] >= k[:, None]] = -1
    return order


def simulate(config: WorldConfig) -> tuple[dict[str, pd.DataFrame], dict]:
    """Simulate the world. Returns the contract tables (accounts, goals, goal_progress, usage) and the truth."""
    rng = np.random.default_rng(config.seed)
    n = int(config.n_accounts)
    if n < 1:
        raise ValueError("--accounts must be at least 1")
    as_of = _day(config.resolved_as_of())
    first = _day(config.first_start)
    if first >= as_of - 31:
        raise ValueError("first_start must be more than a month before as_of")

    # ---- accounts -------------------------------------------------------------------------
    seg_names = list(SEGMENTS)
    specs = [SEGMENTS[s] for s in seg_names]
    seg = rng.choice(len(seg_names), size=n, p=[s.share for s in specs])
    arr_median = np.array([s.arr_median for s in specs])[seg]
    arr_sigma = np.array([s.arr_sigma for s in specs])[seg]
    arr_dev = arr_sigma * rng.standard_normal(n)  # log ARR minus the segment's log median
    arr = np.round(arr_median * np.exp(arr_dev), -2)
    seats = np.maximum(1, np.round(arr / 1_100.0 * np.exp(0.2 * rng.standard_normal(n)))).astype(np.int64)
    # starts grow over time (a younger book of business), none in the last month before as_of
    span = as_of - 31 - first
    start = first + np.floor(span * rng.beta(1.4, 1.0, size=n)).astype(np.int64)
    order = np.argsort(start, kind="stable")  # ids follow signup order
    seg, arr, arr_dev, seats, start = seg[order], arr[order], arr_dev[order], seats[order], start[order]
    width = max(5, len(str(n)))
    account_id = np.array([f"acc-{i:0{width}d}" for i in range(1, n + 1)], dtype=object)

    # ---- goals ----------------------------------------------------------------------------
    goals_p = np.array([s.goals_p for s in specs])[seg]
    n_goals = 1 + (rng.random(n)[:, None] > np.cumsum(goals_p, axis=1)).sum(axis=1)
    n_goals = np.minimum(n_goals, 4)
    picks = _sample_without_replacement(rng, np.array([k.pick_weight for k in KPIS]), n, n_goals)
    g_acc, g_slot = np.nonzero(picks >= 0)
    g_kpi = picks[g_acc, g_slot]
    m = g_acc.size
    kpi_dir = np.array([k.direction for k in KPIS])[g_kpi]
    kpi_base = np.array([k.baseline for k in KPIS])[g_kpi]
    is_pct = np.array([k.unit == "percent" for k in KPIS])[g_kpi]
    is_papa = np.array([k.role == "papa" for k in KPIS])[g_kpi]
    baseline = kpi_base * np.exp(0.35 * rng.standard_normal(m))
    improve = rng.uniform(0.10, 0.40, size=m)
    target = baseline * (1 + kpi_dir * improve)
    # percentages: move by 4-15 points and stay inside (0, 100)
    pct_base = np.clip(baseline, 5, 90)
    pct_target = np.clip(pct_base + kpi_dir * rng.uniform(4, 15, size=m), 1, 99)
    baseline = np.where(is_pct, pct_base, baseline)
    target = np.where(is_pct, pct_target, target)
    baseline = np.round(baseline, 2)
    target = np.round(target, 2)
    target = np.where(target == baseline, baseline + kpi_dir, target)
    set_day = np.minimum(start[g_acc] + rng.integers(0, 46, size=m), as_of)  # set during onboarding, never after as_of
    due_day = set_day + rng.choice([182, 365, 365, 548], size=m)
    weight = rng.choice([1.0, 1.0, 1.0, 2.0, 3.0], size=m)
    goal_id = np.array([f"g-{i:0{width + 1}d}" for i in range(1, m + 1)], dtype=object)
    # trajectory: 70% grow, 20% stall, 10% regress after a turning month
    traj = rng.choice(3, size=m, p=[0.70, 0.20, 0.10])
    turn_month = rng.integers(2, 13, size=m)
    speed = np.exp(np.log(1.0 / config.months_to_target) + 0.5 * rng.standard_normal(m))
    papa_luck = 0.3 * rng.standard_normal(m)

    # ---- calendar-month simulation ----------------------------------------------------------
    months = _month_starts(first, as_of)  # month starts; months[-1] > as_of
    n_months = months.size - 1
    goodhart_seg = seg_names.index(config.goodhart_segment)
    goodhart_day = _day(config.goodhart_from)
    base_daily = np.array([s.monthly_churn for s in specs])[seg] / DAYS_PER_MONTH
    log_h_static = config.log_hr_log_arr * arr_dev
    account_level = math.sqrt(0.7) * rng.standard_normal(n)
    wobble = math.sqrt(0.3) * rng.standard_normal(n)
    engagement_prev = account_level + wobble
    p = np.zeros(m)  # latent fraction of the way from baseline to target
    recorded = np.full(m, np.nan)  # latest recorded attainment (clipped), NaN before the first measurement
    months_measured = np.zeros(m, dtype=np.int64)
    end = np.full(n, -1, dtype=np.int64)  # churn day, -1 while active
    login_rate = 12.0 * np.exp(0.25 * rng.standard_normal(n))
    health_level = rng.normal(70, 8, size=n)

    prog_rows: list[tuple[np.ndarray, ...]] = []
    use_rows: list[tuple[np.ndarray, ...]] = []
    hazard_rows = 0
    market = 1.0 + 0.8 * np.sin(2 * np.pi * np.arange(n_months) / 30.0 + 1.0)
    for mi in range(n_months):
        m0, m1 = int(months[mi]), int(months[mi + 1])
        alive = (start < m1) & ((end < 0) | (end > m0))
        # engagement of this month (AR(1) wobble around the account's level)
        wobble = 0.7 * wobble + math.sqrt(1 - 0.49) * math.sqrt(0.3) * rng.standard_normal(n)
        engagement = account_level + wobble

        # -- goal measurements on the month's first day: the step covers the previous month
        set_before = set_day < m0
        step = speed * np.where(is_papa, market[mi] * np.exp(papa_luck), np.exp(config.usage_drive * engagement_prev[g_acc] - config.usage_drive ** 2 / 2))
        months_measured += set_before
        phase = np.ones(m)
        phase[(traj == 1) & (months_measured > turn_month)] = 0.0
        phase[(traj == 2) & (months_measured > turn_month)] = -0.5
        if m0 >= goodhart_day:
            phase = np.where((seg[g_acc] == goodhart_seg) & ~is_papa, config.goodhart_progress, phase)
        p = np.where(set_before, p + step * phase + 0.03 * rng.standard_normal(m), p)
        span_g = target - baseline
        value = np.round(baseline + p * span_g + 0.02 * np.abs(span_g) * rng.standard_normal(m), 2)
        report = set_before & alive[g_acc] & (start[g_acc] < m0) & (rng.random(m) >= config.missing_measurement) & (m0 <= as_of)
        recorded = np.where(report, np.clip((value - baseline) / span_g, 0.0, 1.0), recorded)
        if report.any():
            idx = np.nonzero(report)[0]
            prog_rows.append((idx, np.full(idx.size, m0), value[idx]))

        # -- account attainment known at the month's start (contract formula on recorded values)
        counted = set_day <= m0
        w = weight * counted
        att_sum = np.bincount(g_acc, weights=w * np.nan_to_num(recorded, nan=0.0), minlength=n)
        w_sum = np.bincount(g_acc, weights=w, minlength=n)
        attainment = np.divide(att_sum, w_sum, out=np.zeros(n), where=w_sum > 0)

        # -- churn within (max(start, m0), min(m1, as_of)]
        lo = np.maximum(start, m0)
        hi = min(m1, as_of)
        at_risk = alive & (lo < hi)
        hazard_rows += int(at_risk.sum())
        rate = base_daily * np.exp(config.log_hr_attainment * attainment + log_h_static + config.log_hr_engagement * engagement_prev)
        t = rng.exponential(1.0, size=n) / rate
        churn_day = np.ceil(lo + t).astype(np.int64)
        churned = at_risk & (churn_day <= hi)
        end = np.where(churned, churn_day, end)

        # -- usage of this month, recorded for accounts active during it (dated at the period start)
        if m0 <= as_of:
            active = (start < m1) & alive
            idx = np.nonzero(active)[0]
            users = rng.binomial(seats[idx], 1 / (1 + np.exp(0.3 - engagement[idx])))
            boost = 1.0 + config.goodhart_login_growth * max(0, (m0 - goodhart_day) / DAYS_PER_MONTH)
            login_mult = np.where(seg[idx] == goodhart_seg, boost, 1.0)
            logins = rng.poisson(users * login_rate[idx] * login_mult)
            reports = rng.poisson(0.8 * users * np.exp(0.3 * rng.standard_normal(idx.size)))
            health = np.clip(np.round(health_level[idx] + 12 * rng.standard_normal(idx.size) + 0.5 * engagement[idx]), 0, 100)
            use_rows.append((idx, np.full(idx.size, m0), users, logins, reports, health))
        engagement_prev = engagement

    # ---- tables -----------------------------------------------------------------------------
    epoch = np.datetime64("1970-01-01", "D")
    accounts = pd.DataFrame({
        "account_id": account_id,
        "segment": np.array(seg_names, dtype=object)[seg],
        "start_date": epoch + start,
        "end_date": np.where(end >= 0, epoch + np.maximum(end, 0), np.datetime64("NaT")),
        "arr": arr,
        "seats": seats,
    })
    goals = pd.DataFrame({
        "goal_id": goal_id,
        "account_id": account_id[g_acc],
        "metric": np.array([k.name for k in KPIS], dtype=object)[g_kpi],
        "baseline": baseline,
        "target": target,
        "set_date": epoch + set_day,
        "due_date": epoch + due_day,
        "weight": weight,
    })
    pi = np.concatenate([r[0] for r in prog_rows]) if prog_rows else np.zeros(0, np.int64)
    goal_progress = pd.DataFrame({
        "goal_id": goal_id[pi],
        "date": epoch + (np.concatenate([r[1] for r in prog_rows]) if prog_rows else np.zeros(0, np.int64)),
        "value": np.concatenate([r[2] for r in prog_rows]) if prog_rows else np.zeros(0),
    })
    goal_progress = goal_progress.sort_values(["goal_id", "date"], kind="stable").reset_index(drop=True)
    metrics = list(USAGE_METRICS) + ([HEALTH_SCORE] if config.health_score else [])
    parts = []
    for idx, day, users, logins, reports, health in use_rows:
        values = [users, logins, reports] + ([health] if config.health_score else [])
        for name, vals in zip(metrics, values):
            parts.append(pd.DataFrame({"account_id": account_id[idx], "date": epoch + day,
                                       "metric": name, "value": vals.astype(np.int64)}))
    usage = pd.concat(parts, ignore_index=True)
    usage["metric"] = pd.Categorical(usage["metric"], categories=metrics)
    usage = usage.sort_values(["account_id", "date", "metric"], kind="stable").reset_index(drop=True)
    usage["metric"] = usage["metric"].astype(object)

    if config.observed_from:
        cut = np.datetime64(pd.Timestamp(config.observed_from).date(), "D")
        keep = accounts["end_date"].isna() | (accounts["end_date"] >= cut)
        kept_ids = set(accounts.loc[keep, "account_id"])
        accounts = accounts[keep].reset_index(drop=True)
        goals = goals[goals["account_id"].isin(kept_ids)].reset_index(drop=True)
        goal_progress = goal_progress[goal_progress["goal_id"].isin(set(goals["goal_id"]))].reset_index(drop=True)
        usage = usage[usage["account_id"].isin(kept_ids)].reset_index(drop=True)

    tables = {"accounts": accounts, "goals": goals, "goal_progress": goal_progress, "usage": usage}
    truth = _truth(config, tables, hazard_rows)
    return tables, truth


def _truth(config: WorldConfig, tables: dict[str, pd.DataFrame], hazard_rows: int) -> dict:
    acc = tables["accounts"]
    churned = acc["end_date"].notna()
    kpi_roles = {
        k.name: {
            "role": k.role,
            "function": k.function,
            "direction": "increase" if k.direction > 0 else "decrease",
            "unit": k.unit,
            "moved_by_usage": k.role == "goldilocks",
            "predicts_churn": True,
            "driver": "previous month's product engagement" if k.role == "goldilocks"
            else "a market cycle and the account's own luck, not product usage",
        }
        for k in KPIS
    }
    usage_roles = {
        "active_users": {"role": "usage", "moved_by_usage": True, "predicts_churn": True,
                         "note": "direct measure of engagement; engagement moves the Goldilocks KPIs, and acts on churn through them "
                                 "(plus effects.engagement, 0 by default)"},
        "logins": {"role": "vendor", "moved_by_usage": True, "predicts_churn": True,
                   "note": f"inflated by a login campaign in {config.goodhart_segment} from {config.goodhart_from} (Goodhart)"},
        "reports_created": {"role": "mama", "moved_by_usage": True, "predicts_churn": False,
                            "note": "product output that follows active users; no effect on churn beyond usage"},
    }
    if config.health_score:
        usage_roles[HEALTH_SCORE] = {"role": "noise", "moved_by_usage": False, "predicts_churn": False,
                                     "expected_audit_verdict": "decoration",
                                     "note": "vendor scorecard: account level + monthly noise, a trace (0.5 points per SD) of engagement"}
    by_segment = {}
    for name, grp in acc.groupby("segment", sort=True):
        by_segment[name] = {"n_accounts": int(len(grp)), "n_churned": int(grp["end_date"].notna().sum()),
                            "arr_median": float(grp["arr"].median())}
    return {
        "world_version": WORLD_VERSION,
        "config": {k: v for k, v in asdict(config).items()},
        "as_of": str(config.resolved_as_of().date()),
        "observed_from": config.observed_from,
        "hazard_model": {
            "form": "piecewise-constant hazard per calendar month; churn in (start, stop] depends on covariates known at the interval's start",
            "attainment_definition": "account attainment on the first day of the calendar month (or the account's start): "
                                     "latest recorded goal value on or before that day, clip((value-baseline)/(target-baseline), 0, 1), "
                                     "weight-averaged over goals with set_date on or before that day; 0 before any measurement",
            "baseline_monthly_hazard": {s: SEGMENTS[s].monthly_churn for s in SEGMENTS},
        },
        "effects": {
            "attainment_full_vs_none": {"log_hr": config.log_hr_attainment, "hr": math.exp(config.log_hr_attainment),
                                        "unit": "account attainment 1 versus 0, time-varying, known at interval start (lag_days=0)"},
            "log_arr": {"log_hr": config.log_hr_log_arr, "hr": math.exp(config.log_hr_log_arr),
                        "unit": "per unit of natural log ARR, within segment (stratify or adjust for segment)"},
            "engagement": {"log_hr": config.log_hr_engagement, "hr": math.exp(config.log_hr_engagement),
                           "unit": "per SD of latent engagement in the previous calendar month (observed through active_users)"},
            "naive_bias": "final attainment used as if known from the start (immortal time) gives a hazard ratio "
                          "further below 1 than the true one",
        },
        "segments": {s: asdict(SEGMENTS[s]) for s in SEGMENTS},
        "metrics": {"kpis": kpi_roles, "usage": usage_roles},
        "goodhart": {
            "segment": config.goodhart_segment, "from": config.goodhart_from, "vendor_metric": "logins",
            "login_growth_per_month": config.goodhart_login_growth,
            "goldilocks_progress_multiplier": config.goodhart_progress,
            "story": "a login campaign makes logins climb month after month while the customers' own KPIs slide back",
        },
        "realised": {
            "n_accounts": int(len(acc)),
            "n_churned": int(churned.sum()),
            "n_goals": int(len(tables["goals"])),
            "n_goal_progress": int(len(tables["goal_progress"])),
            "n_usage": int(len(tables["usage"])),
            "n_account_months_at_risk": hazard_rows,
            "by_segment": by_segment,
        },
    }


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    cols = {}
    for name in df.columns:
        s = df[name]
        if pd.api.types.is_datetime64_any_dtype(s):
            cols[name] = pa.array(s.dt.date.where(s.notna(), None), type=pa.date32())
        elif s.dtype == object:
            cols[name] = pa.array(s.to_numpy(), type=pa.string())
        else:
            cols[name] = pa.array(s.to_numpy())
    return pa.table(cols)


def write(tables: dict[str, pd.DataFrame], truth: dict, out: Path, fmt: str = "csv", overwrite: bool = False) -> None:
    """Write the contract tables, ``dataset.yaml`` and ``truth.json`` into ``out``."""
    out = Path(out)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be csv or parquet, not {fmt!r}")
    names = [f"{t}.{ext}" for t in TABLES for ext in ("csv", "parquet")] + ["dataset.yaml", "truth.json"]
    if out.exists():
        if not out.is_dir():
            raise NotADirectoryError(f"{out} exists and is not a folder")
        present = sorted(p for p in names if (out / p).exists())
        if present and not overwrite:
            raise FileExistsError(f"{out} already holds {', '.join(present)}; use --force to replace them")
        for p in present:
            (out / p).unlink()
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        table = _to_arrow(tables[name])
        if fmt == "csv":
            pacsv.write_csv(table, out / f"{name}.csv", pacsv.WriteOptions(quoting_style="needed"))
        else:
            pq.write_table(table, out / f"{name}.parquet", compression="zstd", store_schema=False)
    meta = {"as_of": truth["as_of"]}
    if truth.get("observed_from"):
        meta["observed_from"] = truth["observed_from"]
    meta["description"] = (f"Synthetic customer base written by `csresearch generate` (world v{WORLD_VERSION}, "
                           f"seed {truth['config']['seed']}, {truth['config']['n_accounts']} accounts). "
                           "Planted effects are in truth.json.")
    (out / "dataset.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, width=100), encoding="utf-8")
    (out / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def generate(config: WorldConfig, out: Path | str, fmt: str = "csv", overwrite: bool = False) -> dict:
    """Simulate a world and write it to ``out``. Returns the truth (also in ``out/truth.json``)."""
    out = Path(out)
    if out.exists() and not overwrite:
        clash = [t for t in TABLES if (out / f"{t}.csv").exists() or (out / f"{t}.parquet").exists()]
        if clash:
            raise FileExistsError(f"{out} already holds {', '.join(clash)}; use --force to replace them")
    tables, truth = simulate(config)
    write(tables, truth, out, fmt=fmt, overwrite=overwrite)
    return truth


# ---- raw events (optional): `csresearch generate --events-per-account-month N` ---------------------

#: usage metric -> the event type whose monthly count follows it (health_score is a score, not a count)
EVENT_TYPES = {"active_users": "session", "logins": "login", "reports_created": "report_created"}
EVENTS_PER_PART = 2_000_000  # about this many events per Parquet part (whole accounts per part)


def event_scale(usage: pd.DataFrame, per_account_month: float) -> float:
    """Events per unit of usage value: ``N / mean over account-months of (active_users + logins + reports_created)``."""
    counted = usage[usage["metric"].isin(list(EVENT_TYPES))]
    n_account_months = len(usage[["account_id", "date"]].drop_duplicates())
    total = float(counted["value"].sum())
    return 0.0 if total == 0 or n_account_months == 0 else per_account_month * n_account_months / total


def write_events(tables: dict[str, pd.DataFrame], out: Path | str, per_account_month: float, seed: int,
                 as_of: str | pd.Timestamp, events_per_part: int = EVENTS_PER_PART) -> dict:
    """Write raw events to ``out/events/part-NNNNN.parquet`` whose aggregation reproduces the usage's levels.

    For every usage row of ``active_users``, ``logins`` and ``reports_created`` (account, month), the number of
    events of type ``session``, ``login`` and ``report_created`` is ``floor(value * scale + 0.5)`` with
    ``scale = per_account_month / mean over account-months of (active_users + logins + reports_created)``, so the
    events average about ``per_account_month`` per account-month and their monthly counts keep the metrics'
    relative levels (0 events: no row after aggregation). Each event's ``ts`` is uniform (whole seconds) over
    the part of the month the account was active: from the later of the month start and start_date, to the
    earlier of the next month, the day after end_date and the day after as_of. health_score has no events.

    Streaming: whole accounts per part (about ``events_per_part`` events), one ``pq.write_table`` per part,
    so memory is bounded by a part (plus the usage table). Deterministic: part ``i`` draws from
    ``default_rng([seed, i])``. Columns: account_id string, ts timestamp[us], event string (zstd).
    Nothing else in ``out`` is touched; an existing ``events/`` folder is replaced.
    """
    out = Path(out)
    usage, accounts = tables["usage"], tables["accounts"]
    scale = event_scale(usage, per_account_month)
    folder = out / "events"
    if folder.exists():
        for p in folder.glob("part-*.parquet"):
            p.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    names = list(EVENT_TYPES.values())
    sub = usage[usage["metric"].isin(list(EVENT_TYPES))]
    acc_pos = pd.Index(accounts["account_id"]).get_indexer(sub["account_id"])
    counts = np.floor(sub["value"].to_numpy(dtype=float) * scale + 0.5).astype(np.int64)
    keep = counts > 0
    acc_pos, counts = acc_pos[keep], counts[keep]
    etype = pd.Index(list(EVENT_TYPES)).get_indexer(sub["metric"].to_numpy()[keep])
    month = sub["date"].to_numpy(dtype="datetime64[s]")[keep].astype(np.int64)
    # usage is sorted by account_id (signup order), so each account's rows are contiguous
    order = np.argsort(acc_pos, kind="stable")
    acc_pos, counts, etype, month = acc_pos[order], counts[order], etype[order], month[order]
    start = accounts["start_date"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    end_raw = accounts["end_date"].to_numpy(dtype="datetime64[s]")
    day = 86_400
    limit = pd.Timestamp(as_of).normalize().value // 10**9 + day
    end = np.where(np.isnat(end_raw), limit, end_raw.astype(np.int64) + day)
    next_month = (month.astype("datetime64[s]").astype("datetime64[M]") + np.timedelta64(1, "M")
                  ).astype("datetime64[s]").astype(np.int64)
    lo = np.maximum(month, start[acc_pos])
    hi = np.minimum(np.minimum(next_month, end[acc_pos]), limit)
    ids = accounts["account_id"].to_numpy(dtype=object)
    id_arr = pa.array(ids, type=pa.string())
    name_arr = pa.array(names, type=pa.string())
    # part boundaries: whole accounts, about events_per_part events each
    per_account = np.bincount(acc_pos, weights=counts, minlength=len(ids))
    cum = np.cumsum(per_account)
    cuts = np.searchsorted(cum, np.arange(events_per_part, cum[-1] if len(cum) else 0, events_per_part), side="left")
    bounds = np.unique(np.concatenate([[0], cuts + 1, [len(ids)]]).clip(0, len(ids)))
    row_bounds = np.searchsorted(acc_pos, bounds, side="left")
    schema = pa.schema([("account_id", pa.string()), ("ts", pa.timestamp("us")), ("event", pa.string())])
    n_events, n_parts = 0, 0
    for i in range(len(bounds) - 1):
        r0, r1 = row_bounds[i], row_bounds[i + 1]
        c = counts[r0:r1]
        total = int(c.sum())
        if total == 0:
            continue
        rng = np.random.default_rng([seed, i])
        rep = np.repeat(np.arange(r0, r1), c)
        span = np.maximum(hi[rep] - lo[rep], 1)
        ts = lo[rep] + np.floor(rng.random(total) * span).astype(np.int64)
        table = pa.table({
            "account_id": id_arr.take(pa.array(acc_pos[rep])),
            "ts": pa.array(ts * 1_000_000, type=pa.timestamp("us")),
            "event": name_arr.take(pa.array(etype[rep])),
        }, schema=schema)
        pq.write_table(table, folder / f"part-{n_parts:05d}.parquet", compression="zstd", store_schema=False)
        n_events += total
        n_parts += 1
        del table, rep, span, ts
    return {"events": n_events, "parts": n_parts, "scale": scale, "folder": str(folder)}
