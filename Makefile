# Two commands on a fresh machine: `make run` (install + serve on embedded defaults)
# and `make test` (install + the whole suite: lint, types, tests).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install run test lint screenshots bench-api bench-audio bench-engine bench-sip

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/openivr serve

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

# The console's pages at desktop and phone width, in docs/console/ (needs chromium and
# chromium-driver; SIPp for the voicemail and call log pages' sample calls).
screenshots: install
	$(VENV)/bin/python -m tests.console.screenshots

test: lint
	$(VENV)/bin/pytest -n 4 -p no:cacheprovider
