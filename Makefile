# cpudb: the two set-up commands are `make report` and `make test`; both bootstrap .venv.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# make report HOSTS='@amd !cmp-naples-*' DUMPS=path/to/dumps REPORT_NAME=change-1234
HOSTS ?=
DUMPS ?= data/hosts
REPORT_NAME ?=
REPORT_DB := build/cpudb.duckdb
REFERENCE ?= ../shared/reference

.PHONY: setup test report bench catalog clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "cpudb needs Python 3.11 or newer (python3.11 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# The database is rebuilt from DUMPS each time, so the report covers exactly that folder.
# HOSTS is passed as one argument: the shell must not expand its globs.
report: $(STAMP)
	@mkdir -p build reports/out
	@rm -f $(REPORT_DB)
	$(BIN)/cpudb ingest --quiet --db $(REPORT_DB) $(DUMPS)
	$(BIN)/cpudb report --db $(REPORT_DB) -o reports/out $(if $(REPORT_NAME),--name '$(REPORT_NAME)') '$(HOSTS)'

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Regenerate data/flags.json and data/models.json from the reference tables.
catalog: $(STAMP)
	$(BIN)/cpudb catalog build --reference $(REFERENCE)

clean:
	rm -rf build reports/out .pytest_cache
