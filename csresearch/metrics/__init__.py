"""Success metrics: the metric catalog and the classification of metrics as Papa Bear, Mama Bear,
Goldilocks or needing a proxy.

* :mod:`.catalog`: reading and checking ``metrics.yaml`` (:func:`load_catalog`, :class:`CatalogError`).
* :mod:`.definition`: classification by definition (:func:`classify_definition`, :func:`classify_metric`);
  the rules and the bears are explained there.

Classification by data (does a metric move with the product, does it predict retention) belongs
in a sibling module of its own.
"""
from .catalog import (CATALOG_FILE, CATALOG_SCHEMA, FIELDS, LEVELS, OPTIONAL_FIELDS, OWNERS, REQUIRED_FIELDS,
                      CatalogError, bundled_catalog_path, load_catalog, parse_catalog)
from .definition import (RULE_ORDER, VERDICT_LABELS, VERDICTS, MetricDefinitionError, classify_definition,
                         classify_metric)

__all__ = [
    "CATALOG_FILE", "CATALOG_SCHEMA", "FIELDS", "LEVELS", "OPTIONAL_FIELDS", "OWNERS", "REQUIRED_FIELDS",
    "CatalogError", "bundled_catalog_path", "load_catalog", "parse_catalog",
    "RULE_ORDER", "VERDICT_LABELS", "VERDICTS", "MetricDefinitionError", "classify_definition", "classify_metric",
]
