"""YAML for data and parameters: ``yaml.safe_load`` (values are data, never code), except that dates stay text.

PyYAML turns ``2024-01-31`` into a ``datetime.date`` and crashes with a traceback on ``2024-02-30``; callers here
check dates themselves, strictly, and say which file and key is wrong.
"""
from __future__ import annotations

from typing import Any

import yaml


class DatesAsTextLoader(yaml.SafeLoader):
    """A SafeLoader without the implicit timestamp resolver."""


DatesAsTextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def safe_load(text: str) -> Any:
    """Parse YAML safely, dates left as text."""
    return yaml.load(text, Loader=DatesAsTextLoader)  # noqa: S506 - a SafeLoader subclass
