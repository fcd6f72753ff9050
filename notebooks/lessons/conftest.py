"""pytest configuration for the lessons: nbval compares outputs after applying nbval_sanitize.cfg.

With ``pytest --nbval notebooks/lessons`` every lesson is re-executed and each cell's output compared with the
stored one. nbval reads the sanitize file named by ``--nbval-sanitize-with``; when that option is not given this
conftest supplies the lessons' own file, so the lessons check the same way from `make test`, from the command line
and from an IDE.
"""
from __future__ import annotations

from pathlib import Path

SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")


def pytest_configure(config):
    option = config.option
    if hasattr(option, "nbval_sanitize_with") and option.nbval_sanitize_with is None:
        option.nbval_sanitize_with = str(SANITIZE)
