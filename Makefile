# The two commands of the README: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-fast test-browser test-all setup setup-dev lint benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes (it is the single source of dependencies).
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

setup: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

demo: setup
	$(BIN)/crmkit demo

# The README's test command: the unit tests, the end-to-end runs (marked slow) and the workbooks
# (nbval), in two processes (pytest-xdist; a module's tests, and a workbook's cells, stay in one;
# the modules with the most slow tests go first, tests/conftest.py), then the few marked serial alone. The browser tests (tests/browser/, marked browser) are apart:
# `make test-browser`.
TEST_PROCESSES ?= 2
test: setup-dev
	$(BIN)/python -m pytest -m "not browser and not serial" -n $(TEST_PROCESSES) --dist loadscope \
		--no-loadscope-reorder
	$(BIN)/python -m pytest -m "serial and not browser"

# Chromium driving the dashboard, the report and the lab (apt-get install chromium; .ci/run does).
test-browser: setup-dev
	$(BIN)/python -m pytest -m browser

test-all: setup-dev
	$(BIN)/python -m pytest

# The unit tests only: no `crmkit run`, no browser, no workbook run by nbval (tests/ holds none).
test-fast: setup-dev
	$(BIN)/python -m pytest tests -m "not slow and not browser and not serial" -n $(TEST_PROCESSES) --dist loadscope

lint: setup-dev
	$(BIN)/ruff check lib tests benchmarks
	$(BIN)/lint-imports

benchmark: setup-dev
	$(BIN)/python benchmarks/run_report.py

clean:
	rm -rf $(VENV) reports .pytest_cache
