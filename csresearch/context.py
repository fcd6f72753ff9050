"""The study context: the data, the panel, every parameter and the model engine of one study, built once.

Analyses read what they need from a :class:`StudyContext` (``ctx.alpha``, ``ctx.panel``, ``ctx.engine``, ...);
no parameter is passed by hand through a chain of calls. It is built from *validated* parameters
(:mod:`csresearch.params`), so nothing below it re-checks them.

On a large book the secondary analyses (metric roles, Goodhart, the ladder, the health score) run on a seeded
random sample of accounts (``secondary_max_accounts``): :attr:`StudyContext.sample` and
:attr:`StudyContext.sample_panel`. When the first of them asks for the sample panel, the full panel is let go.
"""
from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from . import __version__, privacy
from ._memory import release_memory
from .attainment import episodes
from .attainment_models import AttainmentFrame, attainment_rows
from .cohorts import survival_table
from .data import Dataset, LetGo, load
from .names import Names
from .findings import Floors, ci_text, level_text
from .models import AnalysisError, Engine, require_usage
from .survival import fit_km
from . import windows

#: fewer accounts than this: no model is fitted (counts only)
MIN_ACCOUNTS = 30


@dataclass
class StudyContext:
    params: dict[str, Any]
    ds: Dataset
    engine: Engine
    run_info: dict[str, Any] = field(default_factory=dict)
    #: study-level caveats (no goals, too few accounts, ...) in report order
    warnings: list[str] = field(default_factory=list)
    sample: Dataset | None = None
    _panel: pd.DataFrame | None = field(default=None, repr=False)
    _sample_panel: pd.DataFrame | None = field(default=None, repr=False)
    #: the one attainment frame held, with the usage metrics it was built for (:meth:`model_frame`)
    _frame: tuple[tuple[str, ...], AttainmentFrame] | None = field(default=None, repr=False)
    #: the full panel was let go once the analyses that read it had run (:meth:`release_panel`)
    _panel_released: bool = field(default=False, repr=False)
    #: the full book's goal measurements were let go once the analyses that read them had run (:meth:`release_goals`)
    goals_released: bool = field(default=False, repr=False)
    #: :meth:`first_landmark`, or the error it raised
    _first_landmark: pd.DataFrame | Exception | None = field(default=None, repr=False)

    # ----------------------------------------------------------------------------------------------- building
    @classmethod
    def build(cls, params: dict[str, Any], ds: Dataset | None = None) -> "StudyContext":
        """The context of one study from validated ``params`` (the data is loaded unless ``ds`` is given)."""
        p = params
        if ds is None:
            ds = load(p["data_dir"], as_of=p["as_of"])
        run_info = {"package_version": __version__, "git_commit": git_commit(), "data_fingerprint": ds.fingerprint(),
                    "data_dir": str(p["data_dir"]), "python": platform.python_version(),
                    "as_of_source": getattr(ds, "as_of_source", None)}
        if p["segment"] is not None:
            ds = ds.for_segment(p["segment"])
        engine = Engine(alpha=p["alpha"], cox_max_rows=p["cox_max_rows"], backend=p["engine"],
                        spark_master=p["spark_master"])
        ctx = cls(params=p, ds=ds, engine=engine, run_info=run_info)
        ctx._study_warnings()
        ctx._plan_sample()
        return ctx

    def _study_warnings(self) -> None:
        m = self.min_cell
        if not self.visible:
            self.warnings.append(f"This study has fewer than {m} accounts (the privacy threshold), so nothing about it "
                                 "is shown.")
            return
        if self.n_accounts < MIN_ACCOUNTS:
            self.warnings.append(f"Only {self.n_accounts} accounts: fewer than {MIN_ACCOUNTS}, too few for any model "
                                 "to be stable, so no model was fitted; the counts above are all this study can say.")
        if self.n_churned == 0:
            self.warnings.append("No account churned in the data, so nothing about churn can be estimated.")
        if not self.ds.has_goals:
            self.warnings.append("The data has no goals table: outcome attainment cannot be measured, so this study "
                                 "reports retention by cohort and where the team's measurement stands (maturity level "
                                 "2 at most); recording each customer's goals is what would make the rest possible.")

    def _plan_sample(self) -> None:
        """On a large book, draw the secondary analyses' sample; the headline models then need only the panel, so
        the full long usage table is let go (gigabytes on a large book) once the panel holds what they need."""
        cap = self.params["secondary_max_accounts"]
        if not self.visible or cap is None or self.n_accounts <= cap:
            return
        self.sample = self.ds.sample_accounts(cap, self.params["seed"])
        if self.goals_ok:
            _ = self.panel
        self.ds = replace(self.ds, usage=None)
        release_memory()

    # ----------------------------------------------------------------------------------------------- parameters
    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    @property
    def alpha(self) -> float:
        return float(self.params["alpha"])

    @cached_property
    def floors(self) -> Floors:
        """The data floors below which an estimate is not a finding."""
        return Floors.from_params(self.params)

    @property
    def level(self) -> float:
        """The confidence level of every interval: ``1 - alpha``."""
        return 1.0 - self.alpha

    @property
    def level_text(self) -> str:
        return level_text(self.level)

    @property
    def z(self) -> float:
        """The two-sided normal quantile of the confidence level."""
        return float(stats.norm.ppf(1 - self.alpha / 2))

    @property
    def power(self) -> float:
        return float(self.params["power"])

    @property
    def min_cell(self) -> int:
        return int(self.params["min_cell"])

    @property
    def seed(self) -> int:
        return int(self.params["seed"])

    @property
    def label(self) -> str:
        return self.params["segment"] or "all segments"

    @cached_property
    def names(self) -> "Names":
        """Human names for metrics, segments and covariates: the params ``labels:`` map over the catalog's labels."""
        from .metrics.catalog import catalog_labels

        return Names(self.params.get("labels"), catalog_labels(self.params["data_dir"]))

    def ci(self, ci_low: float | None, ci_high: float | None, digits: int = 2) -> str:
        """An interval in words at the study's level: "90% CI 0.12 to 0.34"."""
        return ci_text(ci_low, ci_high, self.level, digits)

    # ----------------------------------------------------------------------------------------------- the data
    @cached_property
    def survival(self) -> pd.DataFrame:
        """One row per account: duration, event, entry, cohort (:func:`csresearch.cohorts.survival_table`)."""
        return survival_table(self.ds)

    @cached_property
    def n_accounts(self) -> int:
        return int(len(self.ds.accounts))

    @cached_property
    def n_churned(self) -> int:
        return int(self.survival["event"].sum())

    @property
    def visible(self) -> bool:
        """At least ``min_cell`` accounts: below it nothing about the study is shown."""
        return not privacy.is_small(self.n_accounts, self.min_cell)

    @property
    def can_model(self) -> bool:
        """Enough accounts and at least one churn: models may be fitted."""
        return self.visible and self.n_accounts >= MIN_ACCOUNTS and self.n_churned > 0

    @property
    def has_goals(self) -> bool:
        return self.ds.has_goals

    @property
    def goals_ok(self) -> bool:
        return self.can_model and self.ds.has_goals

    @property
    def has_usage(self) -> bool:
        return self.ds.has_usage or (self.sample is not None and self.sample.has_usage)

    @cached_property
    def usage_metrics(self) -> list[str] | None:
        """The usage metrics of the usage models: the ``usage_metrics`` parameter, else every metric of the usage
        table but the health score; None without usage."""
        if self.params["usage_metrics"] is not None:
            return list(self.params["usage_metrics"])
        data = self.ds if self.ds.has_usage else self.sample
        if data is None or not data.has_usage:
            return None
        return sorted(set(data.usage_metrics) - {self.params["health_score_metric"]})

    @property
    def panel(self) -> pd.DataFrame:
        """The account-month panel of every account (attainment known at each month's start, lagged usage), built by
        the study's engine (params ``engine``: DuckDB or Spark) from the one panel definition."""
        if self._panel is None:
            if self._sample_panel is not None and self.sample is not None:
                # rebuilt now it would lack usage (let go for the sample): the runner runs full-book analyses first
                raise RuntimeError("the full panel was let go for the secondary sample; an analysis of the whole book "
                                   "must not set USES_SAMPLE")
            if self._panel_released:
                raise RuntimeError("the full panel was let go once the analyses that read it had run; an analysis "
                                   "that reads ctx.panel (or asks for a model frame of its own) must set USES_PANEL")
            with self.engine.session() as con:
                self._panel = episodes(self.ds, lag_days=self.params["lag_days"],
                                       threshold=self.params["attainment_threshold"], con=con)
            release_memory()
        return self._panel

    def release_panel(self) -> None:
        """On a large book (one with a secondary sample), let the full panel go, once the shared model frame
        (:meth:`model_frame` with :attr:`headline_usage`) is built from it. The runner calls this once the analyses
        that read the panel (``USES_PANEL``) have run; the headline calls it itself as soon as it is done with it,
        before its usage-adjusted models (the panel, a frame and a fit at once were the study's peak). The
        whole-book analyses after it read the shared frame, the secondary ones their sample's panel; at a million
        accounts the panel is about 2 GB. On a smaller book it stays: the secondary analyses read it."""
        if self.sample is None or self._panel is None:
            return
        usage = self.headline_usage or None

        def let_go() -> None:
            self._panel = None
            self._panel_released = True
            release_memory()

        try:  # the shared frame is built from the panel, which goes as soon as the frame's rows are copied
            self.model_frame(usage, let_go=let_go)
        except (AnalysisError, ValueError):
            if self._panel_released:
                raise
            return  # the panel stays, and each analysis that needs the frame says why it could not be built
        if not self._panel_released:  # the frame was built already
            let_go()

    def release_goals(self) -> None:
        """On a large book (one with a secondary sample), let the full book's goal measurements go (at a million
        accounts about 35 million rows, 0.8 GB) once the analyses that read them (``USES_GOALS``) have run: the
        runner calls this after the last of them. What the executive page needs of them later is computed first:
        each active account's attainment on the extraction date (:attr:`attainment_at_as_of`) and the accounts at
        the first landmark (:meth:`first_landmark`); when that fails, the measurements stay (the executive page
        computes them again inside its own error boundary and says why it could not). Afterwards
        ``ctx.ds.goal_progress`` is a :class:`~csresearch.data.LetGo`: reading it raises a RuntimeError naming the
        flag. The sample keeps its own. On a smaller book they stay."""
        if self.sample is None or self.goals_released or self.ds.goal_progress is None:
            return
        try:
            _ = self.attainment_at_as_of
            try:
                self.first_landmark()
            except (ValueError, KeyError):
                pass  # kept: asked for again, it raises the same
        except Exception:  # noqa: BLE001 - not this step's to report: the executive page meets it and says so
            return
        self.ds = replace(self.ds, goal_progress=LetGo(
            "the full book's goal measurements were let go once the analyses that read them had run; an analysis "
            "that reads ctx.ds.goal_progress (or attainment from it) must set USES_GOALS"))
        self.goals_released = True
        release_memory()

    def first_landmark(self) -> pd.DataFrame:
        """The accounts active at the first landmark with their attainment then and their follow-up after it
        (:func:`csresearch.landmarks.landmark_table` at the study's lag and threshold), computed once; its
        ValueError or KeyError (no goals, no account at risk then) is raised again each time."""
        if self._first_landmark is None:
            from .landmarks import landmark_table

            try:
                self._first_landmark = landmark_table(self.ds, self.params["landmark_days"][0],
                                                      lag_days=self.params["lag_days"],
                                                      threshold=self.params["attainment_threshold"])
            except (ValueError, KeyError) as exc:
                self._first_landmark = exc.with_traceback(None)  # its frames would hold the data
        if isinstance(self._first_landmark, Exception):
            raise self._first_landmark
        return self._first_landmark

    @cached_property
    def attainment_at_as_of(self) -> pd.DataFrame:
        """Each account still active at the extraction date (``account_id``) with its ``attainment`` then (the
        lag and threshold of the study; NaN when it has no goal yet): the executive page's ARR by attainment."""
        from .attainment import account_attainment

        st = self.survival
        points = st.loc[st["event"] == 0, ["account_id"]].reset_index(drop=True).assign(date=self.ds.as_of)
        att = account_attainment(self.ds.goals, self.ds.goal_progress, points, lag_days=self.params["lag_days"],
                                 threshold=self.params["attainment_threshold"])
        return att[["account_id", "attainment"]]

    @cached_property
    def headline_usage(self) -> list[str]:
        """The usage metrics the headline models adjust for: those of :attr:`usage_metrics` the panel has."""
        return [m for m in (self.usage_metrics or []) if f"usage_{m}" in self.panel.columns]

    def model_frame(self, usage_metrics: Sequence[str] | None, *,
                    let_go: Callable[[], None] | None = None) -> AttainmentFrame:
        """The attainment frame of the full panel adjusted for ``usage_metrics`` (none when None), shared by the models
        fitted on it (:class:`~csresearch.attainment_models.AttainmentFrame`): the headline with and without usage,
        the proportional-hazards check, the dose-response, each segment's effect, and (adjusted for every usage
        metric, :meth:`comparison_frame`) the usage-versus-outcome comparisons. Built when first asked for; one is
        held at a time (on a large book each is gigabytes), until the secondary sample's panel is built. ``let_go``
        is called once the frame's rows are copied from the panel, before the usage features are added
        (:func:`~csresearch.attainment_models.attainment_rows`): :meth:`release_panel` lets the panel go there. The
        raw ``usage_<metric>`` columns go once the features are computed from them
        (:meth:`~csresearch.attainment_models.AttainmentFrame.without_raw_usage`)."""
        key = tuple(usage_metrics or ())
        if self._frame is None or self._frame[0] != key:
            self._frame = None
            release_memory()
            rows = attainment_rows(self.ds, self.panel, self.params["covariates"], list(key) or None)
            if let_go is not None:  # the panel's part is done: it may go before the usage features are added
                let_go()
            self._frame = (key, rows.with_usage_features().without_raw_usage())
        return self._frame[1]

    def comparison_frame(self) -> AttainmentFrame:
        """The frame on which usage and outcomes are compared: :meth:`model_frame` adjusted for every metric of
        :attr:`usage_metrics` (a metric the panel lacks is an error), so with the headline's usage it is the
        headline's frame."""
        require_usage([f"usage_{m}" for m in self.headline_usage], self.usage_metrics or [])
        return self.model_frame(self.headline_usage)

    @property
    def secondary(self) -> Dataset:
        """The data of the secondary analyses: the seeded sample on a large book, else all accounts."""
        return self.sample if self.sample is not None else self.ds

    @property
    def sample_panel(self) -> pd.DataFrame:
        """The panel of :attr:`secondary`; on a large book, built when first asked for, after the full panel is let go."""
        if self.sample is None:
            return self.panel
        if self._sample_panel is None:
            self._panel = self._frame = None
            release_memory()
            with self.engine.session() as con:
                self._sample_panel = episodes(self.sample, lag_days=self.params["lag_days"],
                                              threshold=self.params["attainment_threshold"], con=con)
            release_memory()
        return self._sample_panel

    @cached_property
    def retention_12m(self) -> float | None:
        """Kaplan-Meier retention at 12 months (None when no account was followed that long)."""
        return retention_at(self.survival, 365.25)

    @property
    def label_horizon(self) -> int | None:
        """The label horizon in days of a label export (churn a 0/1 label over it); None for dated exports."""
        return windows.label_horizon(self.ds)

    @cached_property
    def base_churn(self) -> dict:
        """The churn a study is sized on, never extrapolated: ``{rate, days, text, twelve_month}``.

        12-month Kaplan-Meier churn when the data followed accounts that long; else churn over the label horizon
        (label exports) or over the longest window at which at least ``min_cell`` accounts were still observed;
        ``text`` says which ("within a year", "over the 60-day window observed"); ``rate`` None without one."""
        label = self.label_horizon is not None
        if not label and self.retention_12m is not None:
            return {"rate": 1.0 - self.retention_12m, "days": windows.YEAR_DAYS, "twelve_month": True,
                    "text": windows.window_text(windows.YEAR_DAYS, False)}
        days = windows.study_window(self.ds, self.survival, self.min_cell)
        rate = windows.window_churn(self.survival, days, alpha=self.alpha, label=label)["rate"] if days else None
        return {"rate": rate, "days": int(days), "twelve_month": False, "text": windows.window_text(days, label)}

    # ----------------------------------------------------------------------------------------------- privacy
    def suppress(self, frame: pd.DataFrame, count: str, columns: Sequence[str], **kw) -> pd.DataFrame:
        return privacy.suppress(frame, count, columns, self.min_cell, **kw)

    def drop_small(self, frame: pd.DataFrame, count: str) -> tuple[pd.DataFrame, int]:
        return privacy.drop_small(frame, count, self.min_cell)

    def record(self) -> dict[str, Any]:
        """The study-level part of results.json."""
        p = self.params
        res: dict[str, Any] = {
            "study": p["study"], "segment": p["segment"], "as_of": str(self.ds.as_of.date()),
            "observed_from": None if self.ds.observed_from is None else str(self.ds.observed_from.date()),
            "n_accounts": self.n_accounts, "n_churned": self.n_churned,
            "segments": {s: int(n) for s, n in self.ds.accounts["segment"].value_counts().sort_index().items()},
            "parameters": {k: v for k, v in p.items() if k not in ("output_dir",)},
        }
        if not self.visible:
            res.update({"n_accounts": None, "n_churned": None, "segments": {}})
        if self.sample is not None:
            res["secondary_sample"] = {"accounts": int(len(self.sample.accounts)), "of_accounts": self.n_accounts,
                                       "seed": self.seed}
        return res


def retention_at(st: pd.DataFrame, days: float) -> float | None:
    """Kaplan-Meier retention at ``days`` of a survival table (left-truncated when it has entry times).

    None unless the curve is estimable out to ``days``: some account was *followed* that long (its days from
    entry to churn or the as-of date, so a snapshot of a few months gives no 12-month figure, however old its
    accounts), some account was at risk at ``days`` of tenure, and at every tenure before it some account was at
    risk (a gap in the risk set breaks the product of the curve)."""
    if not len(st) or (st["duration"] - st["entry"]).max() < days or not at_risk_throughout(st, days):
        return None
    entry = "entry" if (st["entry"] > 0).any() else None
    km = fit_km(st, "duration", "event", entry=entry)
    km = km[km["time"] <= days]
    return float(km["survival"].iloc[-1]) if len(km) else 1.0


def at_risk_throughout(st: pd.DataFrame, days: float) -> bool:
    """Whether at least one account is at risk (``entry < t <= duration``) at every tenure ``t`` in (0, days]."""
    entry = np.sort(st["entry"].to_numpy(float))
    stop = np.sort(st["duration"].to_numpy(float))
    # the count at risk only drops just after a duration and rises just after an entry: check right after each
    points = np.concatenate([[1e-9, float(days)], entry + 1e-9, stop + 1e-9])
    points = points[(points > 0) & (points <= days)]
    at_risk = np.searchsorted(entry, points, side="left") - np.searchsorted(stop, points, side="left")
    return bool((at_risk > 0).all())


def git_commit() -> str | None:
    """The commit of a source checkout the package runs from (None for an installed copy)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
