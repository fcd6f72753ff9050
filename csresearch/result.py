"""The one shape every analysis returns: :class:`Result`.

An analysis (a module of :mod:`csresearch.analyses`) computes from a study context and hands back:

* ``record`` — its part of ``results.json`` (top-level keys, unchanged from earlier versions);
* ``tables`` — tidy DataFrames (what its figures draw and its readers' tables show);
* ``figures`` — :class:`Figure` objects, each a drawing function and its alt text;
* ``text`` — Markdown paragraphs for its report section, every sentence chosen from its findings or numbers;
* ``findings`` — the claims it makes (:class:`csresearch.findings.Finding`);
* ``warnings`` — plain sentences for the report's caveats;
* ``not_estimated`` — when it could not run at all, the reason in plain words.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from .findings import Finding


@dataclass
class Figure:
    """A figure of a report section: ``draw()`` draws it on a new matplotlib figure and returns its Axes."""

    name: str
    draw: Callable[[], Any]
    alt: str


@dataclass
class Shown:
    """A table a report section shows to readers: a caption and a display-ready frame (readable names)."""

    frame: pd.DataFrame
    caption: str = ""


@dataclass
class Result:
    name: str
    title: str
    intro: str = ""
    record: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    shown: list[Shown] = field(default_factory=list)
    text: str = ""
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: executive-summary lines that are facts, not claims (the study size a design needs, say)
    highlights: list[str] = field(default_factory=list)
    #: a paragraph the executive summary opens with, before any finding (what this data can and cannot answer)
    lead: str = ""
    not_estimated: str | None = None
    #: False when the analysis has no place in this study (pooling segments in a one-segment study): not shown
    applicable: bool = True
    seconds: float = 0.0
    #: the process's peak resident memory (GB) when the analysis ended: where it rises, this analysis raised it
    peak_gb: float = 0.0

    @property
    def ok(self) -> bool:
        return self.not_estimated is None
