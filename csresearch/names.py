"""Human names for the identifiers a report shows: metrics, segments, covariates, table columns.

One rule, used by every figure, table and sentence a reader sees: a name in the study's ``labels:`` map (a params
key) wins; then the metric catalog's ``label`` (``csresearch/metrics/metrics.yaml``, or the data folder's own
catalog); then the identifier made readable (``mid_market`` -> "Mid market", ``log_arr`` -> "log ARR").
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

#: words written in capitals wherever they appear in an identifier
ACRONYMS = {"arr": "ARR", "mrr": "MRR", "nps": "NPS", "csat": "CSAT", "sla": "SLA", "kpi": "KPI", "otif": "OTIF",
            "sd": "SD", "ci": "CI", "id": "ID", "hr": "HR", "roi": "ROI", "qbr": "QBR", "smb": "SMB", "api": "API", "crm": "CRM"}


def readable(name: str) -> str:
    """An identifier made readable: ``mid_market`` -> "Mid market", ``log_arr`` -> "log ARR", ``otif_pct`` ->
    "OTIF %"; a name that already has spaces or capitals is kept as it is."""
    text = str(name)
    if not re.fullmatch(r"[a-z0-9_]+", text):
        return text
    words = [w for w in text.split("_") if w]
    out = []
    for i, w in enumerate(words):
        if w in ACRONYMS:
            out.append(ACRONYMS[w])
        elif w == "pct":
            out.append("%")
        elif w == "log" and i == 0 and len(words) > 1:
            out.append("log")
        else:
            out.append(w.capitalize() if i == 0 else w)
    return " ".join(out) if out else text


class Names:
    """Human names for one study: ``names(x)`` or ``names.of(iterable)``."""

    def __init__(self, labels: Mapping[str, str] | None = None, catalog: Mapping[str, str] | None = None):
        self.labels = {str(k): str(v) for k, v in (labels or {}).items()}
        self.catalog = {str(k): str(v) for k, v in (catalog or {}).items()}

    def __call__(self, name: object) -> str:
        key = str(name)
        if key in self.labels:
            return self.labels[key]
        if key in self.catalog:
            return self.catalog[key]
        if key.startswith("log_") and key[4:] in {**self.catalog, **self.labels}:
            return "log " + self(key[4:])
        return readable(key)

    def of(self, names: Iterable[object]) -> list[str]:
        return [self(n) for n in names]
