"""Survival analysis on tidy DataFrames: Kaplan-Meier, log-rank, Cox, discrete-time PH, concordance, logit, and
the measures of a risk prediction (time-dependent AUC, Brier score, calibration).

Every function takes a :class:`pandas.DataFrame` plus column names.  Nothing here knows about customers: a
"subject" is whatever one row (or, with ``entry``, one start/stop episode) describes.  The regression fitters
return one type, :class:`Fit` (``summary``, ``vcov``, ``loglik``, ``n``, ``events``, ``info``); ``fit_km``
returns a tidy frame; ``logrank``, ``lr_test`` and ``concordance`` return plain dicts.  statsmodels is the reference
implementation throughout; the numpy engines are tested against it, lifelines and published R output.

Modules
-------
* ``_checks`` -- input checks and the conventions they enforce (entry exclusive, no silent NaN drops).
* ``fit`` -- :class:`Fit`, the fitted-result type.
* ``km`` -- ``fit_km``, Kaplan-Meier curves with R's intervals.
* ``hypothesis`` -- ``logrank`` (K-sample log-rank) and ``lr_test`` (likelihood ratio of nested fits).
* ``cox`` -- ``fit_cox``: statsmodels ``PHReg`` and a vectorised numpy engine (``SM_MAX_*`` choose).
* ``discrete`` -- ``fit_discrete``: discrete-time cloglog GLM, the large-panel fallback (``DISCRETE_*``).
* ``cindex`` -- ``concordance``: Harrell's C, as R's ``concordance``; ``bootstrap_concordance``: its cluster
  bootstrap for several scores at once.
* ``breslow`` -- ``breslow_baseline``: Breslow's baseline cumulative hazard; ``cumulative_hazard_at`` reads it.
* ``ipcw`` -- ``ipcw_weights``: inverse-probability-of-censoring weights for the status at a horizon.
* ``tdauc`` -- ``cumulative_dynamic_auc``: time-dependent AUC (Uno et al. 2007).
* ``brier`` -- ``brier_score``: the censoring-weighted Brier score at a horizon.
* ``calibration`` -- ``calibration_fit`` (intercept and slope) and ``calibration_table`` (by tenths of risk).
* ``crossval`` -- ``grouped_folds``: cross-validation folds that keep a group's rows together.
* ``logistic`` -- ``fit_logit``, statsmodels ``Logit``.
* ``_newton`` -- step halving and the divergence warning shared by the Newton-Raphson engines.
"""

from .breslow import breslow_baseline, cumulative_hazard_at
from .brier import brier_score
from .calibration import calibration_fit, calibration_table
from .cindex import bootstrap_concordance, concordance
from .crossval import grouped_folds
from .cox import SM_MAX_EVENT_TIMES, SM_MAX_ROWS, SM_MAX_STRATA, fit_cox
from .discrete import DISCRETE_BASELINE_DF, DISCRETE_SM_MAX_ROWS, fit_discrete
from .fit import Fit
from .hypothesis import logrank, lr_test
from .ipcw import censoring_survival, ipcw_weights
from .km import fit_km
from .logistic import fit_logit
from .tdauc import cumulative_dynamic_auc

__all__ = [
    "fit_km",
    "logrank",
    "fit_cox",
    "lr_test",
    "concordance",
    "fit_logit",
    "fit_discrete",
    "Fit",
    "bootstrap_concordance",
    "breslow_baseline",
    "cumulative_hazard_at",
    "censoring_survival",
    "ipcw_weights",
    "cumulative_dynamic_auc",
    "brier_score",
    "calibration_fit",
    "calibration_table",
    "grouped_folds",
    "SM_MAX_ROWS",
    "SM_MAX_EVENT_TIMES",
    "SM_MAX_STRATA",
    "DISCRETE_SM_MAX_ROWS",
    "DISCRETE_BASELINE_DF",
]
