# csresearch: two commands do everything on a machine that has python3 and make.
#   make study   set up the locked environment, then run the main job on the bundled sample
#   make test    set up the locked environment, then run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data/sample
OUT ?= reports

.PHONY: setup study test lab lessons lock sample clean help chromium

help:
	@echo "make study   run the main job on the bundled sample (sets up .venv first)"
	@echo "make test    run the whole test suite (sets up .venv first)"
	@echo "make lab     open JupyterLab at notebooks/ with csresearch importable"
	@echo "make lessons build the course: student copies and offline HTML in build/lessons/"
	@echo "make sample  regenerate data/sample from its fixed seed"
	@echo "make lock    re-resolve requirements.lock from pyproject.toml"

# The environment is rebuilt only when the lock file or the package metadata changed.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP)

# The main job: validate the bundled sample, then one study per segment plus all segments, HTML reports included.
study: $(STAMP)
	$(BIN)/csresearch validate $(DATA)
	$(BIN)/csresearch study params/*.yaml --out $(OUT)
	@echo "Reports: $(OUT)/index.html (one folder per study: report.html, results.json, notebook.ipynb)"

test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || $(MAKE) --no-print-directory chromium
	$(BIN)/python -m pytest

# Headless Chromium renders the reports in the test suite (Debian's package; needs root to install).
chromium:
	@if [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium (Debian package) for the report-rendering test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "warning: could not install chromium; the report-rendering test will be skipped"; \
	else echo "warning: chromium is missing and this is not root; the report-rendering test will be skipped"; fi

# LAB_ARGS passes options through, e.g. make lab LAB_ARGS="--no-browser --port=8899"
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# The course: student copies (no outputs, no solutions) and an offline HTML rendering with a contents page.
lessons: $(STAMP)
	$(BIN)/python notebooks/lessons/build_course.py all

sample: $(STAMP)
	$(BIN)/python data/make_sample.py

lock:
	@test -x $(BIN)/pip-compile || $(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --strip-extras --extra lab --extra test --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) build *.egg-info
