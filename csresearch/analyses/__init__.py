"""The analyses of a study, one module each, listed in :data:`REGISTRY` in report order.

Every analysis module has the same shape:

* ``NAME``, ``TITLE`` and ``INTRO`` (the section's lead; ``{level}``, ``{min_cell}``, ``{alpha_pct}`` and
  ``{power_pct}`` are filled from the study's parameters);
* ``requires(ctx) -> str | None`` — why it cannot run on this study (no goals, too few accounts, ...), or None;
* ``run(ctx) -> Result`` — the analysis, reading every parameter from the :class:`~csresearch.context.StudyContext`;
* ``empty(ctx, reason) -> dict`` — its results.json keys when it could not run;
* optionally ``findings_when_empty(ctx, reason)`` (its claims, ``not_estimable``), ``USES_SAMPLE = True`` (it runs
  on the secondary sample of a large book), ``USES_PANEL = True`` (it reads ``ctx.panel`` itself, or a model frame
  of its own: on a large book the full panel is let go after the last such analysis, or as soon as it calls
  ``ctx.release_panel()``, and the whole-book analyses after it read the shared ``ctx.model_frame``),
  ``USES_GOALS = True`` (it reads the full book's goal measurements, ``ctx.ds.goal_progress``, itself: on a large
  book they are let go after the last such analysis; the runner runs these and the panel's readers first),
  ``ALWAYS = True`` (it runs even when the study is too small to show) and
  ``applies(ctx) -> bool`` (False: the analysis has no place in this study, e.g. comparing segments in a study of
  one; it is left out of the report and not counted as a part not estimated).

Adding an analysis is one new module and one line in :data:`REGISTRY`; :mod:`csresearch.report` loops over it.
The estimator functions (tidy frames in, a table and a plain dict out) stay importable from here for lessons.
"""
from __future__ import annotations

from . import (attainment_effect, churn_by_segment, churn_drivers, cohort_retention, discrimination, goodhart, health_score, maturity, metric_roles,
               outcomes_vs_usage, partial_value, retention_by_attainment, segment_effects, study_design, study_scope,
               usage_model)
from ..attainment_models import NAIVE_LABEL, landmark_effect, naive_effect, time_varying_effect
from .outcomes_vs_usage import usage_vs_outcome
from .partial_value import dose_response
from .retention_by_attainment import attainment_km
from ..design import sample_size, schoenfeld_events

#: the analyses of a study, in report order
REGISTRY = (
    study_scope,
    attainment_effect,
    segment_effects,
    retention_by_attainment,
    cohort_retention,
    churn_by_segment,
    churn_drivers,
    usage_model,
    partial_value,
    outcomes_vs_usage,
    discrimination,
    metric_roles,
    goodhart,
    study_design,
    maturity,
    health_score,
)

__all__ = ["REGISTRY", "NAIVE_LABEL", "attainment_km", "dose_response", "landmark_effect", "naive_effect",
           "sample_size", "schoenfeld_events", "time_varying_effect", "usage_vs_outcome"]
