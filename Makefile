# Developer entry points. `make demo` and `make test` do all set-up themselves on a fresh machine
# (given Python >= 3.11 with venv support; .ci/run installs the system packages first).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := protocols gateway simulators campaign_core
PROTOCOLS_MIN_BRANCH_COVERAGE := 95
# pytest-xdist workers: the cores this process may use, at most 4 (make test PYTEST_WORKERS=0: one process)
PYTEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(4, len(os.sched_getaffinity(0))))' 2>/dev/null || echo 2)

.DEFAULT_GOAL := help
.PHONY: help venv lint typecheck test demo bench clean distclean

help:
	@echo "make venv       create $(VENV) and install the project with its dev dependencies"
	@echo "make lint       ruff check and ruff format --check"
	@echo "make typecheck  mypy --strict on $(PACKAGES)"
	@echo "make test       lint, typecheck, pytest on every core with branch coverage, coverage gate on protocols/"
	@echo "make demo       simulate a month of the A/B upsell experiment over the real protocols; writes a report"
	@echo "make bench      codec, SMPP, USSD, STK, Diameter and ingest benchmarks against peers"
	@echo "make clean      remove caches and coverage data (distclean also removes $(VENV))"

venv: $(STAMP)

# Re-runs only when pyproject.toml is newer than the stamp (or the venv is missing).
$(STAMP): pyproject.toml protocols/smpp/_speedups.c protocols/diameter/_speedups.c gateway/ingest/_fastjson.c protocols/_slots.c campaign_core/_journey.c gateway/_hugeheap.c
	@if [ ! -x $(BIN)/python ]; then \
		$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 required, $(PYTHON) is " + sys.version.split()[0])' && \
		echo "creating $(VENV) with $$($(PYTHON) --version)" && \
		$(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# [tool.mypy] in pyproject.toml names the packages and sets strict = true.
typecheck: venv
	$(BIN)/mypy --strict

test: venv lint typecheck
	$(BIN)/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) $(addprefix --cov=,$(PACKAGES)) --cov-branch --cov-report= tests
	@echo "--- coverage (files below 100 %) ---"
	@$(BIN)/coverage report
	@echo "total: $$($(BIN)/coverage report --format=total) %"
	@echo "protocols/: $$($(BIN)/coverage report --include='protocols/*' --format=total) % (gate: >= $(PROTOCOLS_MIN_BRANCH_COVERAGE) %)"
	@$(BIN)/coverage report --include='protocols/*' --fail-under=$(PROTOCOLS_MIN_BRANCH_COVERAGE) >/dev/null || \
		{ echo "FAIL: branch coverage of protocols/ is below $(PROTOCOLS_MIN_BRANCH_COVERAGE) %"; exit 1; }

# The scenario's population and days are overridable: make demo DEMO_ARGS="--subscribers 500 --days 7"
DEMO_SCENARIO ?= configs/scenarios/upsell_ab.yaml
DEMO_OUT ?= var/demo
demo: venv
	$(BIN)/tgw simulate --scenario $(DEMO_SCENARIO) --out $(DEMO_OUT) $(DEMO_ARGS)

bench: venv
	$(BIN)/python bench/codec.py
	$(BIN)/python bench/smpp_throughput.py
	$(BIN)/python bench/smsc_absorb.py
	$(BIN)/python bench/stk_push.py --e2e 500
	$(BIN)/python bench/diameter_codec.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/ingest_diameter.py

clean:
	rm -rf .coverage .coverage.* htmlcov .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
