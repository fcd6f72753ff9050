"""Shared modelling helpers: what every churn model on the account-month panel needs, in one public place.

* :class:`Engine` — fits the panel models with a study's ``alpha`` and Cox row limit (Cox up to the limit, the
  discrete-time cloglog model above it). A study's context holds one; functions that fit take it.
* :func:`model_frame` — the lean copy of the panel a model needs (keys, columns, account covariates).
* :func:`panel_exposure` — each account-month row's length in months, the discrete-time model's exposure.
* :func:`account_covariates` — adjustment covariates from the accounts table (``log_arr`` by default).
* :func:`strata_of` — stratify by segment when a frame holds several.
* :func:`usage_features` — ``log(1 + usage)`` columns of the panel.
* :func:`effect` — the hazard ratio of one term, refusing separated (infinite) fits.
* :class:`AnalysisError` and the ``require_*`` checks — why an analysis cannot be estimated, in plain words.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pandas as pd

from .attainment import DAYS_PER_MONTH
from .survival import Fit, fit_cox, fit_discrete

if TYPE_CHECKING:
    from .data import Dataset


class AnalysisError(ValueError):
    """An analysis cannot be estimated on this data; the message says why in plain words."""


#: above this many account-month rows, the panel models fit the discrete-time model instead of Cox
COX_MAX_ROWS = 5_000_000
#: a log hazard ratio beyond this (HR below 1/22,000 or above 22,000) means the model did not converge to a finite
#: estimate: typically one attainment group has no churn at all (separation)
MAX_ABS_COEF = 10.0
#: the panel columns every churn model on it needs
PANEL_KEYS = ("account_id", "account_code", "segment", "start", "stop", "event", "tenure_months")
#: the column of the discrete-time model's exposure, a row's length in months (:func:`panel_exposure`)
EXPOSURE = "exposure"


def panel_exposure(frame: pd.DataFrame) -> np.ndarray:
    """Each account-month row's length at risk in months, ``(stop - start) / (365.25 / 12)``: ~1 for a whole
    month, less for a partial first or last month or a late entry (tenure in days, as
    :func:`csresearch.attainment.episodes` writes them)."""
    out = np.subtract(frame["stop"].to_numpy(dtype=float), frame["start"].to_numpy(dtype=float))
    out /= DAYS_PER_MONTH
    return out


@dataclass(frozen=True)
class Engine:
    """Fits a study's churn models: every interval at ``1 - alpha``; Cox up to ``cox_max_rows`` panel rows."""

    alpha: float = 0.05
    cox_max_rows: int = COX_MAX_ROWS
    #: where the panel is built and the large-panel models are fitted (params ``engine``, ``spark_master``)
    backend: str = "duckdb"
    spark_master: str | None = None

    def connection(self):
        """The process's Ibis backend of this engine (:func:`csresearch.engine.shared`)."""
        from .engine import shared

        return shared(self.backend, self.spark_master)

    def session(self):
        """A backend of this engine for one large job, in a ``with`` block (:func:`csresearch.engine.backend.session`:
        on DuckDB a private database whose memory goes back to the system at the end)."""
        from .engine.backend import session

        return session(self.backend, self.spark_master)

    def panel(self, frame: pd.DataFrame, covariates: Sequence[str], strata: str | None, *, fast: bool = False) -> Fit:
        """A proportional-hazards model of churn on account-month rows, robust SEs clustered by account.

        Up to ``cox_max_rows`` rows: Cox on the ``(start, stop]`` rows (:func:`csresearch.survival.fit_cox`).
        Above: the discrete-time cloglog GLM on the same rows (:func:`csresearch.survival.fit_discrete`, spline
        baseline in ``tenure_months``, one baseline level per stratum, each row's length in months as its
        exposure, so partial months count for what they are), which estimates the same hazard ratios at a
        fraction of the cost; ``Fit.method`` says which (``"cox"`` or ``"discrete_cloglog"``). The exposure is
        the frame's :data:`EXPOSURE` column when it has one, else :func:`panel_exposure` of its ``start`` and
        ``stop``, added to a shallow copy: the caller's frame is neither changed nor copied.
        ``fast=True`` is for refits whose coefficients alone are used (the folds of a cross-validation): model-based
        SEs instead of the clustered sandwich.

        Where the discrete-time model runs follows the study's ``engine``. On DuckDB, embedded, the frame is in this
        process already and the chunked numpy Newton is the faster of the two (measured at 20M rows: 43 s against
        76 s for the same model as DuckDB aggregates). On Spark the model is fitted by Spark
        (:func:`csresearch.engine.discrete.fit_discrete`: one aggregate query per Newton step, clustered SEs from
        per-account score sums), except the cross-validation refits (``fast``), whose dozens of small fits would
        each pay Spark's per-query latency. Both agree with the numpy fit to ~1e-12 (tests). Fits use the package's vectorised numpy engines at any size (they
        agree with the statsmodels engines to about 1e-9, tested, at a fraction of the time on small panels).
        """
        # the account's integer code clusters as its id does (one to one) and is grouped several times faster
        cluster = None if fast else "account_code" if "account_code" in frame.columns else "account_id"
        engine = "numpy"  # the package's vectorised engines: equal to statsmodels' to ~1e-9 (tests), several times faster
        if len(frame) > self.cox_max_rows:
            if EXPOSURE not in frame.columns:
                frame = frame.copy(deep=False)  # shares the columns' data; the new column is the copy's alone
                frame[EXPOSURE] = panel_exposure(frame)
            if self.backend == "spark" and not fast:
                return self._discrete_on_engine(frame, list(covariates), strata, cluster)
            return fit_discrete(frame, "event", list(covariates), "tenure_months", strata=strata, cluster=cluster,
                                alpha=self.alpha, exposure=EXPOSURE, engine=engine)
        return fit_cox(frame, "stop", "event", list(covariates), entry="start", strata=strata, cluster=cluster,
                       alpha=self.alpha, engine=engine)

    def _discrete_on_engine(self, frame: pd.DataFrame, covariates: list[str], strata: str | None,
                            cluster: str | None) -> Fit:
        """The discrete-time model fitted by the engine (:func:`csresearch.engine.discrete.fit_discrete`: every
        Newton step one aggregate query) on the columns it needs."""
        from .engine.backend import frame_table
        from .engine.discrete import fit_discrete as fit_on_engine

        cols = list(dict.fromkeys(c for c in ("event", "tenure_months", EXPOSURE, *covariates, strata, cluster) if c))
        con = self.connection()
        with frame_table(con, frame[cols]) as table:
            return fit_on_engine(table, "event", covariates, "tenure_months", strata=strata, cluster=cluster,
                                 alpha=self.alpha, exposure=EXPOSURE, con=con)

    def cox(self, frame: pd.DataFrame, duration: str, event: str, covariates: Sequence[str], *,
            entry: str | None = None, strata: str | None = None) -> Fit:
        """A Cox model of one row per account (landmark or naive analyses) at the engine's alpha."""
        return fit_cox(frame, duration, event, list(covariates), entry=entry, strata=strata, alpha=self.alpha,
                       engine="numpy")

    def is_discrete(self, n_rows: int) -> bool:
        return n_rows > self.cox_max_rows


DEFAULT_ENGINE = Engine()


def strata_of(frame: pd.DataFrame, column: str = "segment") -> str | None:
    """``column`` when the frame holds several of its values (each keeps its own baseline churn), else None."""
    return column if frame[column].nunique() > 1 else None


def account_covariates(ds: "Dataset", covariates: Sequence[str] | None) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Account-level covariates for adjustment: ``(frame indexed by account_id, column names, warnings)``.

    ``covariates=None`` means the default: ``log_arr`` when every account has an ARR. A name that is an
    accounts column is used as is (numeric) or one-hot encoded (text, first level as reference); ``log_<col>``
    is ``log(col + 1)`` of a numeric column. A covariate with missing values or no variation is left out with
    a warning rather than silently dropping accounts.
    """
    acc = ds.accounts.set_index("account_id")
    warnings: list[str] = []
    if covariates is None:
        covariates = ["log_arr"] if "arr" in acc.columns and acc["arr"].notna().all() else []
    frame = pd.DataFrame(index=acc.index)
    for name in covariates:
        base = name[4:] if name.startswith("log_") and name not in acc.columns else name
        if base not in acc.columns:
            raise AnalysisError(f"covariate {name!r}: no column {base!r} in accounts")
        col = acc[base]
        if base != name:
            if not pd.api.types.is_numeric_dtype(col):
                raise AnalysisError(f"covariate {name!r}: column {base!r} is not numeric")
            if (col < 0).any():
                raise AnalysisError(f"covariate {name!r}: column {base!r} has negative values")
            col = np.log(col + 1.0)
        if col.isna().any():
            warnings.append(f"Covariate {name} was left out: {int(col.isna().sum())} accounts have no value.")
            continue
        if pd.api.types.is_numeric_dtype(col):
            if col.nunique() < 2:
                warnings.append(f"Covariate {name} was left out: it has the same value for every account.")
                continue
            frame[name] = col.astype(float)
        else:
            dummies = pd.get_dummies(col.astype(str), prefix=name, drop_first=True, dtype=float)
            if dummies.shape[1] == 0:
                warnings.append(f"Covariate {name} was left out: it has the same value for every account.")
                continue
            frame = frame.join(dummies)
    return frame, list(frame.columns), warnings


def model_frame(panel: pd.DataFrame, columns: Sequence[str], *, rows: np.ndarray | pd.Series | None = None,
                covariates: pd.DataFrame | None = None) -> pd.DataFrame:
    """What a model needs from the panel, and only that: :data:`PANEL_KEYS` plus ``columns``, on ``rows``
    (a boolean mask; all rows when None), plus the columns of ``covariates`` (a frame indexed by account_id,
    see :func:`account_covariates`) looked up by account. One lean copy rather than copies and joins of the
    whole panel, which at 20 million account-months is gigabytes a time."""
    keep = None if rows is None else np.flatnonzero(np.asarray(rows, dtype=bool))
    names = list(dict.fromkeys([*(c for c in PANEL_KEYS if c in panel.columns), *columns]))
    if keep is None:  # the panel's own arrays: copied, so a model's frame never writes into the panel
        out = pd.DataFrame({c: panel[c].to_numpy() for c in names})
    else:  # fresh arrays already: kept as they are, not copied again into one block
        out = pd.DataFrame({c: panel[c].to_numpy()[keep] for c in names}, copy=False)
    if covariates is not None and covariates.shape[1]:
        pos = _account_positions(covariates.index, out)
        if (pos < 0).any():
            raise AnalysisError("the panel has accounts that are not in the accounts table")
        for c in covariates.columns:
            out[c] = covariates[c].to_numpy()[pos]
    return out


def _account_positions(index: pd.Index, frame: pd.DataFrame) -> np.ndarray:
    """Each row's position in ``index`` (account ids; -1 where absent). With the panel's ``account_code`` only one
    row per account is looked up by its text id, the rest follow their code: at 20 million account-months that is
    one lookup per account instead of one per row."""
    if "account_code" not in frame.columns:
        return index.get_indexer(frame["account_id"])
    codes = frame["account_code"].to_numpy()
    if not len(codes):
        return np.empty(0, dtype=np.intp)
    first = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # each code's first row (the last write wins)
    present = np.flatnonzero(first >= 0)
    by_code = np.full(len(first), -1, dtype=np.intp)
    by_code[present] = index.get_indexer(frame["account_id"].to_numpy()[first[present]])
    return by_code[codes]


def account_codes(frame: pd.DataFrame) -> np.ndarray:
    """Each row's account as a small non-negative integer: the panel's ``account_code`` (one to one with
    ``account_id``; at 20 million account-months it is counted and grouped many times faster than the text ids),
    else the ids factorized (frames that do not come from the panel)."""
    if "account_code" in frame.columns:
        return frame["account_code"].to_numpy()
    return pd.factorize(frame["account_id"])[0]


def count_accounts(frame: pd.DataFrame, rows: np.ndarray | pd.Series | None = None) -> int:
    """The number of distinct accounts of ``frame`` (on ``rows``, a boolean mask, when given)."""
    codes = account_codes(frame)
    if rows is not None:
        codes = codes[np.asarray(rows, dtype=bool)]
    return int(np.count_nonzero(np.bincount(codes))) if len(codes) else 0


def ever_churned(frame: pd.DataFrame, event: str = "event") -> np.ndarray:
    """Per row, whether its account has a churn event on any of its rows (``event`` is 0/1)."""
    codes = account_codes(frame)
    return (np.bincount(codes, weights=frame[event].to_numpy(dtype=float)) > 0)[codes].astype(frame[event].dtype)


def usage_features(panel: pd.DataFrame, metrics: Iterable[str] | None = None) -> list[str]:
    """Add ``log_<metric>`` = log(1 + usage of the last completed period) columns to ``panel``; return their names."""
    cols = [c for c in panel.columns if c.startswith("usage_")]
    if metrics is not None:
        require_usage(panel.columns, metrics)
        wanted = {f"usage_{m}" for m in metrics}
        cols = [c for c in cols if c in wanted]
    names = []
    for c in cols:
        name = f"log_{c[6:]}"
        panel[name] = np.log1p(panel[c].clip(lower=0))
        names.append(name)
    return names


def require_usage(columns: Iterable[str], metrics: Iterable[str]) -> None:
    """An AnalysisError naming the metrics of ``metrics`` that have no ``usage_<metric>`` among ``columns``."""
    have = set(columns)
    unknown = sorted({m for m in metrics if f"usage_{m}" not in have})
    if unknown:
        raise AnalysisError(f"usage metrics not in the usage table: {', '.join(unknown)}")


def usage_history(panel: pd.DataFrame, metrics: Iterable[str]) -> list[str]:
    """Add ``hist_<metric>`` = log(1 + mean usage over the account's completed periods so far) columns to
    ``panel``; return their names.

    The panel's ``usage_<metric>`` of a row is the last completed period before the row starts, so the running
    mean up to and including the row uses only what was known at its start. With last month's usage it measures
    an account's lasting engagement better than one noisy month can (periods without a value are skipped; NaN
    until the first value).
    """
    from .engine.panel import _in_order

    acc = account_codes(panel)
    start = panel["start"].to_numpy()
    # a panel's rows (and any subset of them) are by account, then time already: then the order is the rows' own
    # and nothing is permuted (at 20 million rows each permuted copy is 160 MB, the sort itself seconds)
    order = None if _in_order(acc, start) else np.lexsort((start, acc))
    if order is not None:
        acc = acc[order]
    first = np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])  # each account's first row (in the sorted order)
    group = np.repeat(np.arange(len(first), dtype=np.int64), np.diff(np.r_[first, len(acc)]))
    names = []
    for m in metrics:
        v = panel[f"usage_{m}"].to_numpy(float)
        if order is not None:
            v = v[order]
        known = ~np.isnan(v)
        s = np.where(known, v, 0.0)
        np.cumsum(s, out=s)
        n = np.cumsum(known)
        del known
        # the sums and counts before each account's first row, taken off every row of that account
        s -= np.r_[0.0, s[first[1:] - 1]][group]
        n -= np.r_[0, n[first[1:] - 1]][group]
        np.divide(s, n, out=s, where=n > 0)
        s[n == 0] = np.nan
        del n
        np.log1p(np.clip(s, 0, None, out=s), out=s)
        if order is not None:
            out = np.empty(len(s))
            out[order] = s
            s = out
        panel[f"hist_{m}"] = s
        names.append(f"hist_{m}")
    return names


def effect(fit: Fit, term: str = "attainment") -> dict:
    """``{hr, ci_low, ci_high, p, coef, se}`` of ``term``; an AnalysisError when the fit has no finite estimate."""
    row = fit.summary.loc[term]
    if not (np.isfinite(row[["coef", "se", "ci_low", "ci_high"]].astype(float)).all()
            and abs(row["coef"]) < MAX_ABS_COEF and row["se"] > 0):
        raise AnalysisError(f"{term} separates accounts that churn from accounts that stay (for instance no account "
                            "with full attainment churned), so its hazard ratio has no finite estimate")
    return {"hr": float(row["hr"]), "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"]),
            "p": float(row["p"]), "coef": float(row["coef"]), "se": float(row["se"])}


def require_goals(ds: "Dataset") -> None:
    if ds.goals is None or len(ds.goals) == 0:
        raise AnalysisError("the dataset has no goals table, so attainment cannot be measured")


def require_events(frame: pd.DataFrame, event: str, what: str, minimum: int = 1) -> None:
    n = int(frame[event].sum())
    if n < minimum:
        raise AnalysisError(f"{what}: {n} churn events, fewer than the {minimum} needed")


def require_variation(frame: pd.DataFrame, column: str, what: str) -> None:
    values = frame[column]
    if values.nunique() < 2:
        raise AnalysisError(f"{what}: every account has attainment {values.iloc[0]:.2f}, so there is nothing to compare")


def goal_progress(ds: "Dataset") -> pd.DataFrame:
    """The dataset's goal_progress table, or an empty one of the same shape when the export has none."""
    if ds.goal_progress is not None:
        return ds.goal_progress
    return pd.DataFrame({"goal_id": pd.Series(dtype=object), "date": pd.Series(dtype="datetime64[ns]"),
                         "value": pd.Series(dtype=float)})
