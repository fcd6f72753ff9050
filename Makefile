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

# The course: make lessons, make lab and make lab OUT=DIR use build/lessons (or OUT=DIR); make lesson uses build/class.
COURSE_OUT = $(if $(filter command line environment,$(origin OUT)),$(OUT),build/lessons)
CLASS_OUT = $(if $(filter command line environment,$(origin OUT)),$(OUT),build/class)
LESSON_SOURCES := $(wildcard notebooks/lessons/[0-9][0-9]_*/lesson.ipynb) \
	notebooks/lessons/README.md notebooks/lessons/course.yaml notebooks/lessons/build_course.py
STUDENT_BUILT = $(COURSE_OUT)/student/.course.json

.PHONY: setup study test lab lab-solutions lesson lessons lock sample clean help chromium java

help:
	@echo "make study   run the main job on the bundled sample (sets up .venv first)"
	@echo "make test    run the whole test suite (sets up .venv first)"
	@echo "make lab     for learners: JupyterLab on the student copies of the lessons (build/lessons/student/,"
	@echo "             no solutions; built or refreshed first when the lessons are newer)"
	@echo "make lab-solutions  for educators: JupyterLab on the lessons with their solutions (notebooks/lessons/)"
	@echo "             both take LAB_ARGS=\"--no-browser --port=8899\"; make lab OUT=DIR serves DIR/student/"
	@echo "make lessons [OUT=DIR]  build the course: student copies and offline HTML in build/lessons/ (or DIR)"
	@echo "make lesson N=3 [SEED=7] [SEGMENT=smb|mid_market|enterprise|all] [N_ACCOUNTS=3000] [OUT=DIR]"
	@echo "             run lesson N on a class's own data; writes the executed notebook + HTML to build/class/ (or DIR)"
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
	@command -v java >/dev/null 2>&1 || test -n "$$JAVA_HOME" || $(MAKE) --no-print-directory java
	$(BIN)/python -m pytest

# Headless Chromium renders the reports in the test suite (Debian's package; needs root to install).
chromium:
	@if [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium (Debian package) for the report-rendering test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "warning: could not install chromium; the report-rendering test will be skipped"; \
	else echo "warning: chromium is missing and this is not root; the report-rendering test will be skipped"; fi

# Java for the Spark tests' local session (PySpark 4 needs Java 17 or later; Debian's headless runtime).
java:
	@if [ "$$(id -u)" = 0 ]; then \
	  echo "installing openjdk-17-jre-headless (Debian package) for the Spark tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null) \
	    || echo "warning: could not install Java; the Spark tests will be skipped"; \
	else echo "warning: java is missing and this is not root; the Spark tests will be skipped"; fi

# JupyterLab from the locked environment. LAB_ARGS passes options through, e.g. make lab LAB_ARGS="--no-browser --port=8899"
lab_at = $(BIN)/jupyter lab --ServerApp.root_dir=$(1) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# For learners: the student copies (no outputs, no solutions), built when missing or older than the lessons.
lab: $(STAMP) $(STUDENT_BUILT)
	$(call lab_at,$(COURSE_OUT)/student)

# For educators: the lessons themselves, solutions and outputs included.
lab-solutions: $(STAMP)
	$(call lab_at,notebooks/lessons)

# Only the student copies (seconds; copies a learner has worked in are kept). The manifest is the stamp.
$(STUDENT_BUILT): $(LESSON_SOURCES) | $(STAMP)
	$(BIN)/python notebooks/lessons/build_course.py student --out $(COURSE_OUT)

# The course: student copies (no outputs, no solutions) and an offline HTML rendering with a contents page.
lessons: $(STAMP)
	$(BIN)/python notebooks/lessons/build_course.py all --out $(COURSE_OUT)

# One lesson on other data, for a class: make lesson N=3 SEED=7 SEGMENT=smb [N_ACCOUNTS=...] [OUT=DIR].
# The same without make: .venv/bin/papermill notebooks/lessons/03_*/lesson.ipynb out.ipynb -p seed 7 -p segment smb
ifneq ($(filter lesson,$(MAKECMDGOALS)),)
ifeq ($(filter $(N),1 2 3 4 5 6 7 8 9),)
$(error make lesson: N must be a lesson number from 1 to 9 (got "$(N)"), e.g. make lesson N=3 SEED=7 SEGMENT=smb)
endif
endif
lesson: $(STAMP)
	$(BIN)/python notebooks/lessons/build_course.py run $(N) --out $(CLASS_OUT) $(if $(SEED),-p seed $(SEED)) \
	  $(if $(SEGMENT),-p segment $(SEGMENT)) $(if $(N_ACCOUNTS),-p n_accounts $(N_ACCOUNTS))

sample: $(STAMP)
	$(BIN)/python data/make_sample.py

lock:
	@test -x $(BIN)/pip-compile || $(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --strip-extras --extra lab --extra test --extra spark --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) build *.egg-info
