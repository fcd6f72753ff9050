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

The world is simulated in **blocks** of at most ``BLOCK_ACCOUNTS`` accounts (100,000) and :func:`generate`
writes each block as soon as it is simulated (Parquet row groups, CSV rows, events parts), so a world of a
million accounts never has a whole table in memory. A world of one block draws everything from
``default_rng(seed)`` (every world the tests, lessons and sample use, unchanged). Block ``b`` of a larger
world draws from ``SeedSequence(seed).spawn(n_blocks)[b]``; everything global (calendar, as_of, the segments'
ARR medians in the hazard, the Goodhart date) comes from the config, so every block is the same process, and
truth.json's figures and the events' scale are accumulated over all blocks.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
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


# ---- blocks of accounts -------------------------------------------------------------------------

#: Worlds of up to this many accounts are simulated as one block, from ``default_rng(seed)``: every world the
#: tests, the lessons and the bundled sample use. Larger worlds are simulated and written a block at a time.
BLOCK_ACCOUNTS = 100_000


def _check(config: WorldConfig) -> None:
    """Refuse a world that cannot be simulated, before anything is drawn or written."""
    if int(config.n_accounts) < 1:
        raise ValueError("--accounts must be at least 1")
    if _day(config.first_start) >= _day(config.resolved_as_of()) - 31:
        raise ValueError("first_start must be more than a month before as_of")
    if config.goodhart_segment not in SEGMENTS:
        raise ValueError(f"goodhart_segment must be one of {', '.join(SEGMENTS)}, not {config.goodhart_segment!r}")


def block_sizes(n_accounts: int, block_accounts: int = BLOCK_ACCOUNTS) -> list[int]:
    """Accounts per block: ``ceil(n / block_accounts)`` blocks as even as possible (the first ones one larger)."""
    if int(block_accounts) < 1:
        raise ValueError(f"--block-accounts must be at least 1, not {block_accounts}")
    n = int(n_accounts)
    k = max(1, -(-n // int(block_accounts)))
    return [n // k + (1 if b < n % k else 0) for b in range(k)]


def _block_rngs(seed: int, n_blocks: int) -> list[np.random.Generator]:
    """One world is one stream, ``default_rng(seed)`` (today's worlds, unchanged); block ``b`` of a larger world
    draws from the independent stream ``SeedSequence(seed).spawn(n_blocks)[b]``."""
    if n_blocks == 1:
        return [np.random.default_rng(seed)]
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n_blocks)]


@dataclass
class _Block:
    """One simulated block of accounts as compact numpy columns, after the ``observed_from`` cut.

    Account positions (``g_acc``, ``u_acc``) index the block's kept accounts, goal positions (``p_goal``)
    its kept goals; ``account_no`` and ``goal_no`` are the 1-based numbers in the ids (numbered across blocks).
    Progress rows are in (goal, date) order and usage rows are account-months in (account, date) order, so the
    tables come out sorted exactly as the contract files are.
    """

    width: int
    metrics: list[str]
    account_no: np.ndarray
    seg: np.ndarray
    start: np.ndarray
    end: np.ndarray  # churn day, -1 while active
    arr: np.ndarray
    seats: np.ndarray
    goal_no: np.ndarray
    g_acc: np.ndarray
    g_kpi: np.ndarray
    baseline: np.ndarray
    target: np.ndarray
    set_day: np.ndarray
    due_day: np.ndarray
    weight: np.ndarray
    p_goal: np.ndarray
    p_day: np.ndarray
    p_value: np.ndarray
    u_acc: np.ndarray
    u_day: np.ndarray
    u_values: np.ndarray  # (account-months, metrics) int64, columns in ``metrics`` order
    hazard_rows: int
    n_drawn_goals: int  # goals drawn (kept or not): the next block's goal numbers follow them


def _simulate_block(config: WorldConfig, n: int, rng: np.random.Generator, first_account: int, first_goal: int,
                    width: int) -> _Block:
    """Simulate ``n`` accounts (numbered from ``first_account``, goals from ``first_goal``) with one stream.

    Everything global is derived from the config, never from the block's data, so every block lives on the same
    calendar with the same as_of, segment ARR medians (the specs' ``arr_median``) and Goodhart date.
    """
    as_of = _day(config.resolved_as_of())
    first = _day(config.first_start)

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
    order = np.argsort(start, kind="stable")  # ids follow signup order (within a block)
    seg, arr, arr_dev, seats, start = seg[order], arr[order], arr_dev[order], seats[order], start[order]

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

    # ---- compact tables: the observed_from cut, then the contract's row order ---------------
    keep = np.ones(n, dtype=bool)
    if config.observed_from:
        keep = (end < 0) | (end >= _day(config.observed_from))  # active, or churned on or after the cut
    acc_pos = np.cumsum(keep) - 1  # position among the kept accounts
    g_keep = keep[g_acc]
    goal_pos = np.cumsum(g_keep) - 1
    pg = np.concatenate([r[0] for r in prog_rows]) if prog_rows else np.zeros(0, np.int64)
    p_day = np.concatenate([r[1] for r in prog_rows]) if prog_rows else np.zeros(0, np.int64)
    p_value = np.concatenate([r[2] for r in prog_rows]) if prog_rows else np.zeros(0)
    del prog_rows
    order = np.argsort(pg, kind="stable")  # rows were appended month by month: (goal, date) order
    pg, p_day, p_value = pg[order], p_day[order], p_value[order]
    pk = g_keep[pg]
    metrics = list(USAGE_METRICS) + ([HEALTH_SCORE] if config.health_score else [])
    ua = np.concatenate([r[0] for r in use_rows])
    u_day = np.concatenate([r[1] for r in use_rows])
    u_values = np.empty((ua.size, len(metrics)), dtype=np.int64)
    for j in range(len(metrics)):
        u_values[:, j] = np.concatenate([r[2 + j] for r in use_rows]).astype(np.int64)
    del use_rows
    order = np.argsort(ua, kind="stable")  # (account, date) order
    uk = keep[ua[order]]
    order = order[uk]
    return _Block(
        width=width, metrics=metrics,
        account_no=np.arange(first_account, first_account + n, dtype=np.int64)[keep],
        seg=seg[keep], start=start[keep], end=end[keep], arr=arr[keep], seats=seats[keep],
        goal_no=np.arange(first_goal, first_goal + m, dtype=np.int64)[g_keep],
        g_acc=acc_pos[g_acc[g_keep]], g_kpi=g_kpi[g_keep], baseline=baseline[g_keep], target=target[g_keep],
        set_day=set_day[g_keep], due_day=due_day[g_keep], weight=weight[g_keep],
        p_goal=goal_pos[pg[pk]], p_day=p_day[pk], p_value=p_value[pk],
        u_acc=acc_pos[ua[order]], u_day=u_day[order], u_values=u_values[order],
        hazard_rows=hazard_rows, n_drawn_goals=m,
    )


def _blocks(config: WorldConfig, block_accounts: int = BLOCK_ACCOUNTS):
    """Yield the world's blocks in order, one at a time (only one block is ever held)."""
    _check(config)
    n = int(config.n_accounts)
    sizes = block_sizes(n, block_accounts)
    width = max(5, len(str(n)))
    next_account, next_goal = 1, 1
    for size, rng in zip(sizes, _block_rngs(config.seed, len(sizes))):
        block = _simulate_block(config, size, rng, next_account, next_goal, width)
        next_account += size
        next_goal += block.n_drawn_goals
        yield block
        del block  # not held while the next block is simulated


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in numbers], dtype=object)


def _block_frames(block: _Block) -> dict[str, pd.DataFrame]:
    """The block's contract tables as pandas frames (what :func:`simulate` returns)."""
    epoch = np.datetime64("1970-01-01", "D")
    b = block
    account_id = _ids("acc-", b.account_no, b.width)
    goal_id = _ids("g-", b.goal_no, b.width + 1)
    k = len(b.metrics)
    accounts = pd.DataFrame({
        "account_id": account_id,
        "segment": np.array(list(SEGMENTS), dtype=object)[b.seg],
        "start_date": epoch + b.start,
        "end_date": np.where(b.end >= 0, epoch + np.maximum(b.end, 0), np.datetime64("NaT")),
        "arr": b.arr,
        "seats": b.seats,
    })
    goals = pd.DataFrame({
        "goal_id": goal_id,
        "account_id": account_id[b.g_acc],
        "metric": np.array([kpi.name for kpi in KPIS], dtype=object)[b.g_kpi],
        "baseline": b.baseline,
        "target": b.target,
        "set_date": epoch + b.set_day,
        "due_date": epoch + b.due_day,
        "weight": b.weight,
    })
    goal_progress = pd.DataFrame({"goal_id": goal_id[b.p_goal], "date": epoch + b.p_day, "value": b.p_value})
    usage = pd.DataFrame({
        "account_id": np.repeat(account_id[b.u_acc], k),
        "date": np.repeat(epoch + b.u_day, k),
        "metric": np.tile(np.array(b.metrics, dtype=object), b.u_acc.size),
        "value": b.u_values.ravel(),
    })
    return {"accounts": accounts, "goals": goals, "goal_progress": goal_progress, "usage": usage}


def _date32(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int64).astype("datetime64[D]"), type=pa.date32(), mask=null)


def _block_arrow(block: _Block) -> dict[str, pa.Table]:
    """The block's contract tables as Arrow tables, built straight from the numpy columns.

    They equal ``_to_arrow`` of :func:`_block_frames` (same types, values and order), without the pandas
    object columns in between, so the files are byte-identical and a block needs a fraction of the memory.
    """
    b = block
    k = len(b.metrics)
    account_id = pa.array(_ids("acc-", b.account_no, b.width), type=pa.string())
    goal_id = pa.array(_ids("g-", b.goal_no, b.width + 1), type=pa.string())
    accounts = pa.table({
        "account_id": account_id,
        "segment": pa.array(list(SEGMENTS), type=pa.string()).take(pa.array(b.seg)),
        "start_date": _date32(b.start),
        "end_date": _date32(np.maximum(b.end, 0), null=b.end < 0),
        "arr": pa.array(b.arr, type=pa.float64()),
        "seats": pa.array(b.seats, type=pa.int64()),
    })
    goals = pa.table({
        "goal_id": goal_id,
        "account_id": account_id.take(pa.array(b.g_acc)),
        "metric": pa.array([kpi.name for kpi in KPIS], type=pa.string()).take(pa.array(b.g_kpi)),
        "baseline": pa.array(b.baseline, type=pa.float64()),
        "target": pa.array(b.target, type=pa.float64()),
        "set_date": _date32(b.set_day),
        "due_date": _date32(b.due_day),
        "weight": pa.array(b.weight, type=pa.float64()),
    })
    goal_progress = pa.table({
        "goal_id": goal_id.take(pa.array(b.p_goal, type=pa.int64())),
        "date": _date32(b.p_day),
        "value": pa.array(b.p_value, type=pa.float64()),
    })
    usage = pa.table({
        "account_id": account_id.take(pa.array(np.repeat(b.u_acc, k))),
        "date": _date32(np.repeat(b.u_day, k)),
        "metric": pa.array(b.metrics, type=pa.string()).take(pa.array(np.tile(np.arange(k), b.u_acc.size))),
        "value": pa.array(b.u_values.ravel(), type=pa.int64()),
    })
    return {"accounts": accounts, "goals": goals, "goal_progress": goal_progress, "usage": usage}


class _Realised:
    """The ``realised`` figures of truth.json, accumulated over blocks (counts summed, ARR medians over the
    whole world's accounts of a segment, never a block's)."""

    def __init__(self) -> None:
        self.n_accounts = self.n_churned = self.n_goals = self.n_goal_progress = self.n_usage = 0
        self.hazard_rows = 0
        self.n_blocks = 0
        self.seg_arr: dict[int, list[np.ndarray]] = {}
        self.seg_churned: dict[int, int] = {}

    def add(self, b: _Block) -> None:
        self.n_blocks += 1
        self.n_accounts += int(b.account_no.size)
        self.n_churned += int((b.end >= 0).sum())
        self.n_goals += int(b.goal_no.size)
        self.n_goal_progress += int(b.p_goal.size)
        self.n_usage += int(b.u_values.size)
        self.hazard_rows += int(b.hazard_rows)
        for s in np.unique(b.seg):
            inside = b.seg == s
            self.seg_arr.setdefault(int(s), []).append(b.arr[inside])
            self.seg_churned[int(s)] = self.seg_churned.get(int(s), 0) + int((b.end[inside] >= 0).sum())

    def as_dict(self) -> dict:
        names = list(SEGMENTS)
        by_segment = {}
        for s in sorted(self.seg_arr, key=lambda s: names[s]):
            arr = np.concatenate(self.seg_arr[s])
            by_segment[names[s]] = {"n_accounts": int(arr.size), "n_churned": self.seg_churned[s],
                                    "arr_median": float(np.median(arr))}
        return {"n_accounts": self.n_accounts, "n_churned": self.n_churned, "n_goals": self.n_goals,
                "n_goal_progress": self.n_goal_progress, "n_usage": self.n_usage,
                "n_account_months_at_risk": self.hazard_rows, "by_segment": by_segment}


def _blocks_note(config: WorldConfig, block_accounts: int) -> dict:
    sizes = block_sizes(config.n_accounts, block_accounts)
    return {"n_blocks": len(sizes), "block_accounts": int(block_accounts), "accounts_per_block": sizes,
            "seeding": f"block b draws from numpy SeedSequence({config.seed}).spawn({len(sizes)})[b]; account and "
                       "goal ids are numbered across blocks and follow signup order within a block; the calendar, "
                       "as_of, segment ARR medians and Goodhart date come from the config, so every block is the "
                       "same world's process"}


def simulate(config: WorldConfig, block_accounts: int = BLOCK_ACCOUNTS) -> tuple[dict[str, pd.DataFrame], dict]:
    """Simulate the world in memory. Returns the contract tables (accounts, goals, goal_progress, usage) and the truth.

    A world of more than ``block_accounts`` accounts is the concatenation of its blocks, the same tables
    :func:`generate` streams to files; for large worlds use :func:`generate`, which never holds them all.
    """
    realised = _Realised()
    frames: list[dict[str, pd.DataFrame]] = []
    for block in _blocks(config, block_accounts):
        realised.add(block)
        frames.append(_block_frames(block))
    if len(frames) == 1:
        tables = frames[0]
    else:
        tables = {t: pd.concat([f[t] for f in frames], ignore_index=True) for t in TABLES}
    return tables, _truth(config, realised.as_dict(), _blocks_note(config, block_accounts) if len(frames) > 1 else None)


def _truth(config: WorldConfig, realised: dict, blocks: dict | None = None) -> dict:
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
    truth = {
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
        "realised": realised,
    }
    if blocks is not None:
        truth["blocks"] = blocks
    return truth


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


def _clear_out(out: Path, overwrite: bool) -> None:
    """Make ``out`` a folder free of contract files: refuse to replace any without ``overwrite``, else remove them."""
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


def _write_meta(truth: dict, out: Path) -> None:
    meta = {"as_of": truth["as_of"]}
    if truth.get("observed_from"):
        meta["observed_from"] = truth["observed_from"]
    meta["description"] = (f"Synthetic customer base written by `csresearch generate` (world v{WORLD_VERSION}, "
                           f"seed {truth['config']['seed']}, {truth['config']['n_accounts']} accounts). "
                           "Planted effects are in truth.json.")
    (out / "dataset.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, width=100), encoding="utf-8")
    (out / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write(tables: dict[str, pd.DataFrame], truth: dict, out: Path, fmt: str = "csv", overwrite: bool = False) -> None:
    """Write in-memory contract tables (from :func:`simulate`), ``dataset.yaml`` and ``truth.json`` into ``out``."""
    out = Path(out)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be csv or parquet, not {fmt!r}")
    _clear_out(out, overwrite)
    for name in TABLES:
        with _TableWriter(out / f"{name}.{fmt}", fmt) as writer:
            writer.write(_to_arrow(tables[name]))
    _write_meta(truth, out)


class _TableWriter:
    """One contract file, written a block at a time: a Parquet row group per block (zstd, no Arrow schema) or
    CSV batches under one header. A one-block file is byte-identical to ``pq.write_table`` / ``write_csv``."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt, self.writer = path, fmt, None

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            if self.fmt == "csv":
                self.writer = pacsv.CSVWriter(self.path, table.schema,
                                              write_options=pacsv.WriteOptions(quoting_style="needed"))
            else:
                self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd", store_schema=False)
        elif table.num_rows == 0:
            return  # a later block with no rows adds nothing (no empty row group)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __enter__(self) -> "_TableWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- raw events (optional): `csresearch generate --events-per-account-month N` ---------------------

#: usage metric -> the event type whose monthly count follows it (health_score is a score, not a count)
EVENT_TYPES = {"active_users": "session", "logins": "login", "reports_created": "report_created"}
EVENTS_PER_PART = 2_000_000  # about this many events per Parquet part (whole accounts per part)
_DAY_S = 86_400


def event_scale(usage: pd.DataFrame, per_account_month: float) -> float:
    """Events per unit of usage value: ``N / mean over account-months of (active_users + logins + reports_created)``."""
    counted = usage[usage["metric"].isin(list(EVENT_TYPES))]
    n_account_months = len(usage[["account_id", "date"]].drop_duplicates())
    total = float(counted["value"].sum())
    return _scale(per_account_month, n_account_months, total)


def _scale(per_account_month: float, n_account_months: int, total: float) -> float:
    return 0.0 if total == 0 or n_account_months == 0 else per_account_month * n_account_months / total


def _clear_events(folder: Path) -> None:
    if folder.exists():
        for p in folder.glob("part-*.parquet"):
            p.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def _limit_s(as_of: str | pd.Timestamp) -> int:
    """The end of as_of's day, in seconds since 1970-01-01: no event after it."""
    return pd.Timestamp(as_of).normalize().value // 10**9 + _DAY_S


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
    (:func:`generate_world` writes the same events for a one-block world without holding the usage table.)
    """
    out = Path(out)
    usage, accounts = tables["usage"], tables["accounts"]
    scale = event_scale(usage, per_account_month)
    folder = out / "events"
    _clear_events(folder)
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
    limit = _limit_s(as_of)
    end = np.where(np.isnat(end_raw), limit, end_raw.astype(np.int64) + _DAY_S)
    ids = accounts["account_id"].to_numpy(dtype=object)
    n_events, n_parts, _ = _write_event_parts(folder, ids, acc_pos, counts, etype, month, start, end, limit, seed,
                                              events_per_part)
    return {"events": n_events, "parts": n_parts, "scale": scale, "folder": str(folder)}


def _write_event_parts(folder: Path, ids: np.ndarray, acc_pos: np.ndarray, counts: np.ndarray, etype: np.ndarray,
                       month: np.ndarray, start: np.ndarray, end: np.ndarray, limit: int, seed: int,
                       events_per_part: int, first_key: int = 0, first_part: int = 0) -> tuple[int, int, int]:
    """Expand per-(account, month, event type) counts into event parts (see :func:`write_events`).

    ``acc_pos`` indexes ``ids`` (sorted: each account's rows contiguous), ``month``, ``start`` and ``end`` are
    seconds (``end``: the day after end_date, or ``limit``). Part ``i`` of this call draws from
    ``default_rng([seed, first_key + i])`` and is written as ``part-{first_part + n:05d}``. Returns the events
    and parts written and the keys used (the next call's ``first_key`` offset).
    """
    next_month = (month.astype("datetime64[s]").astype("datetime64[M]") + np.timedelta64(1, "M")
                  ).astype("datetime64[s]").astype(np.int64)
    lo = np.maximum(month, start[acc_pos])
    hi = np.minimum(np.minimum(next_month, end[acc_pos]), limit)
    del next_month
    id_arr = pa.array(ids, type=pa.string())
    name_arr = pa.array(list(EVENT_TYPES.values()), type=pa.string())
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
        rng = np.random.default_rng([seed, first_key + i])
        rep = np.repeat(np.arange(r0, r1), c)
        span = np.maximum(hi[rep] - lo[rep], 1)
        ts = lo[rep] + np.floor(rng.random(total) * span).astype(np.int64)
        table = pa.table({
            "account_id": id_arr.take(pa.array(acc_pos[rep])),
            "ts": pa.array(ts * 1_000_000, type=pa.timestamp("us")),
            "event": name_arr.take(pa.array(etype[rep])),
        }, schema=schema)
        pq.write_table(table, folder / f"part-{first_part + n_parts:05d}.parquet", compression="zstd",
                       store_schema=False)
        n_events += total
        n_parts += 1
        del table, rep, span, ts
    return n_events, n_parts, len(bounds) - 1


class _EventInputs:
    """Each block's account-month counts of the event metrics, kept until the whole world's scale is known.

    A one-block world keeps them in memory; a larger one saves them to ``.npy`` files in a hidden temporary
    folder under ``out`` (removed by :meth:`cleanup`), so memory stays bounded by one block.
    """

    _NAMES = ("account_no", "start", "end", "u_acc", "u_day", "counted")

    def __init__(self, out: Path, spill: bool) -> None:
        self.blocks: list[dict[str, np.ndarray] | int] = []
        self.dir = Path(tempfile.mkdtemp(prefix=".generate-events-", dir=out)) if spill else None
        self.width = 5
        self.n_account_months = 0
        self.total = 0

    def add(self, b: _Block) -> None:
        cols = [b.metrics.index(m) for m in EVENT_TYPES]
        arrays = {"account_no": b.account_no, "start": b.start, "end": b.end, "u_acc": b.u_acc, "u_day": b.u_day,
                  "counted": b.u_values[:, cols]}
        self.width = b.width
        self.n_account_months += int(b.u_acc.size)
        self.total += int(arrays["counted"].sum())
        if self.dir is None:
            self.blocks.append(arrays)
            return
        i = len(self.blocks)
        for name in self._NAMES:
            np.save(self.dir / f"block-{i:05d}-{name}.npy", arrays[name], allow_pickle=False)
        self.blocks.append(i)

    def _load(self, entry: dict[str, np.ndarray] | int) -> dict[str, np.ndarray]:
        if isinstance(entry, dict):
            return entry
        return {name: np.load(self.dir / f"block-{entry:05d}-{name}.npy", allow_pickle=False) for name in self._NAMES}

    def write_events(self, folder: Path, per_account_month: float, seed: int, as_of: str,
                     events_per_part: int) -> dict:
        """Write every block's events with the whole world's scale; parts and their streams are numbered on
        across blocks (a one-block world's parts are those :func:`write_events` writes)."""
        scale = _scale(per_account_month, self.n_account_months, float(self.total))
        limit = _limit_s(as_of)
        n_types = len(EVENT_TYPES)
        n_events = n_parts = n_keys = 0
        for i, entry in enumerate(self.blocks):
            a = self._load(entry)
            self.blocks[i] = -1  # done: let the block's arrays go
            counts = np.floor(a["counted"].astype(float) * scale + 0.5).astype(np.int64).ravel()
            keep = counts > 0
            acc_pos = np.repeat(a["u_acc"], n_types)[keep]
            etype = np.tile(np.arange(n_types), a["u_acc"].size)[keep]
            month = np.repeat(a["u_day"].astype(np.int64) * _DAY_S, n_types)[keep]
            start = a["start"].astype(np.int64) * _DAY_S
            end = np.where(a["end"] < 0, limit, a["end"].astype(np.int64) * _DAY_S + _DAY_S)
            ids = _ids("acc-", a["account_no"], self.width)
            events, parts, keys = _write_event_parts(folder, ids, acc_pos, counts[keep], etype, month, start, end,
                                                     limit, seed, events_per_part, first_key=n_keys,
                                                     first_part=n_parts)
            n_events, n_parts, n_keys = n_events + events, n_parts + parts, n_keys + keys
            del a, counts, keep, acc_pos, etype, month
        return {"events": n_events, "parts": n_parts, "scale": scale, "folder": str(folder)}

    def cleanup(self) -> None:
        self.blocks = []
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


# ---- the streaming generator ---------------------------------------------------------------------

@dataclass(frozen=True)
class Generated:
    """What :func:`generate_world` wrote: the truth (also in ``truth.json``) and, with events, their summary
    (``events``, ``parts``, ``scale``, ``folder``: as :func:`write_events` returns)."""

    truth: dict
    events: dict | None = None


def generate(config: WorldConfig, out: Path | str, fmt: str = "csv", overwrite: bool = False,
             block_accounts: int = BLOCK_ACCOUNTS) -> dict:
    """Simulate a world and write it to ``out``, a block at a time. Returns the truth (also in ``out/truth.json``)."""
    return generate_world(config, out, fmt=fmt, overwrite=overwrite, block_accounts=block_accounts).truth


def generate_world(config: WorldConfig, out: Path | str, fmt: str = "csv", overwrite: bool = False,
                   events_per_account_month: float | None = None, block_accounts: int = BLOCK_ACCOUNTS,
                   events_per_part: int = EVENTS_PER_PART) -> Generated:
    """Simulate a world and stream it to ``out``: the contract tables, optionally raw events, ``dataset.yaml``
    and ``truth.json`` (the last files written).

    The world is simulated in blocks of at most ``block_accounts`` accounts (:func:`block_sizes`), and each
    block is written as soon as it is simulated (a Parquet row group per table, or CSV rows under one header),
    so memory is bounded by one block whatever the number of accounts. A world of one block is the world
    :func:`simulate` has always made from ``default_rng(seed)``, written byte for byte as before. Truth figures
    are accumulated over all blocks. Events (``events_per_account_month``) follow :func:`write_events`; their
    scale depends on the whole world's usage, so each block's account-month counts are kept (in memory for a
    one-block world, otherwise in ``.npy`` files in a hidden folder under ``out`` that is removed afterwards)
    until the last block is written, then the events are expanded block by block.

    Refuses, before anything is written, a world that cannot be simulated and (without ``overwrite``) a folder
    that already holds contract files or, when events are asked for, an ``events/`` folder.
    """
    out = Path(out)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be csv or parquet, not {fmt!r}")
    _check(config)
    n_blocks = len(block_sizes(config.n_accounts, block_accounts))
    events = events_per_account_month is not None
    if events:
        value = float(events_per_account_month)
        if not value > 0:
            raise ValueError("--events-per-account-month must be greater than 0")
        if not math.isfinite(value):
            raise ValueError(f"--events-per-account-month must be a finite number, not {events_per_account_month}")
        if int(events_per_part) < 1:
            raise ValueError(f"events_per_part must be at least 1, not {events_per_part}")
    if out.exists() and not overwrite:
        clash = [t for t in TABLES if (out / f"{t}.csv").exists() or (out / f"{t}.parquet").exists()]
        if clash:
            raise FileExistsError(f"{out} already holds {', '.join(clash)}; use --force to replace them")
        if events and (out / "events").exists():
            raise FileExistsError(f"{out} already holds events/; use --force to replace them")
    _clear_out(out, overwrite)
    folder = out / "events"
    if events:
        _clear_events(folder)
    realised = _Realised()
    writers = {t: _TableWriter(out / f"{t}.{fmt}", fmt) for t in TABLES}
    kept = _EventInputs(out, spill=n_blocks > 1) if events else None
    try:
        for block in _blocks(config, block_accounts):
            realised.add(block)
            tables = _block_arrow(block)
            for t in TABLES:
                writers[t].write(tables[t])
            del tables
            if kept is not None:
                kept.add(block)
            del block
        for w in writers.values():
            w.close()
        truth = _truth(config, realised.as_dict(), _blocks_note(config, block_accounts) if n_blocks > 1 else None)
        info = None
        if kept is not None:
            info = kept.write_events(folder, float(events_per_account_month), seed=config.seed,
                                     as_of=truth["as_of"], events_per_part=int(events_per_part))
        _write_meta(truth, out)
    finally:
        for w in writers.values():
            w.close()
        if kept is not None:
            kept.cleanup()
    return Generated(truth, info)
