"""Success metrics: the metric catalog and the classification of metrics as Papa Bear, Mama Bear,
Goldilocks or needing a proxy.

* :mod:`.catalog`: reading and checking ``metrics.yaml`` (:func:`load_catalog`, :class:`CatalogError`).
* :mod:`.definition`: classification by definition (:func:`classify_definition`, :func:`classify_metric`);
  the rules and the bears are explained there.

* :mod:`.by_data`: classification by data (:func:`classify_by_data`): does a metric predict churn
  (relevance) and does product usage move it (attributability)?
* :mod:`.goodhart`: where vendor metrics and customer outcomes part ways (:func:`goodhart_divergence`,
  :func:`goodhart_monthly`, :func:`vendor_customer_gap`).
"""
from .catalog import (CATALOG_FILE, CATALOG_SCHEMA, FIELDS, LEVELS, OPTIONAL_FIELDS, OWNERS, REQUIRED_FIELDS,
                      CatalogError, bundled_catalog_path, load_catalog, parse_catalog)
from .definition import (RULE_ORDER, VERDICT_LABELS, VERDICTS, MetricDefinitionError, classify_definition,
                         classify_metric)
from .by_data import COLUMNS as DATA_COLUMNS
from .by_data import DATA_VERDICTS, DEFAULT_BASELINE, KPI_VERDICTS, VENDOR_VERDICTS, classify_by_data, data_verdict
from .goodhart import GAP_CELLS, GOODHART_COLUMNS, goodhart_divergence, goodhart_monthly, vendor_customer_gap

__all__ = [
    "CATALOG_FILE", "CATALOG_SCHEMA", "FIELDS", "LEVELS", "OPTIONAL_FIELDS", "OWNERS", "REQUIRED_FIELDS",
    "CatalogError", "bundled_catalog_path", "load_catalog", "parse_catalog",
    "RULE_ORDER", "VERDICT_LABELS", "VERDICTS", "MetricDefinitionError", "classify_definition", "classify_metric",
    "DATA_COLUMNS", "DATA_VERDICTS", "DEFAULT_BASELINE", "KPI_VERDICTS", "VENDOR_VERDICTS", "classify_by_data",
    "data_verdict",
    "GAP_CELLS", "GOODHART_COLUMNS", "goodhart_divergence", "goodhart_monthly", "vendor_customer_gap",
]
