# streamline: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
N ?= 100000
#: Test processes (pytest-xdist): most integration tests wait on the broker (group joins), so two
#: halve `make test` on 2 cores. Each process starts its own embedded broker.
TEST_WORKERS ?= 2
#: The browser the dashboard test drives (Debian's package; Playwright never downloads one). `make test`
#: uses it when it is there and never installs it: `.ci/run`, on CI's own machine, does.
CHROMIUM := /usr/bin/chromium
#: EMBEDDED_BROKER (noida, the default, or tansu) picks the embedded broker of `make run`, `make test`
#: and `make bench`, from the environment or the command line (`make test EMBEDDED_BROKER=tansu`).

.DEFAULT_GOAL := help
.PHONY: help install run test chromium-check test-unit test-integration lint typecheck contracts bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "streamline: $(PYTHON) not found: install Python 3.11 (or set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create or refresh .venv from pyproject.toml (with both embedded brokers)

run: $(STAMP) ## Run a worker; starts the embedded broker (EMBEDDED_BROKER) unless KAFKA_BOOTSTRAP_SERVERS is set
	$(PY) -m worker

test: lint typecheck chromium-check ## Lint, type-check and run every test (on its own embedded broker: EMBEDDED_BROKER)
	$(PY) -m pytest -n $(TEST_WORKERS)

chromium-check:
	@test -x $(CHROMIUM) || echo "streamline: no $(CHROMIUM): the dashboard's browser test is skipped (.ci/run installs it)"

test-unit: $(STAMP) ## Run the tests that need no broker
	$(PY) -m pytest -m "not integration"

test-integration: $(STAMP) ## Run the tests against the embedded broker (or KAFKA_BOOTSTRAP_SERVERS)
	$(PY) -m pytest -n $(TEST_WORKERS) -m integration

lint: $(STAMP) ## Lint and check formatting (ruff)
	$(VENV)/bin/ruff check worker tests bench
	$(VENV)/bin/ruff format --check worker tests bench

typecheck: $(STAMP) ## Type-check the package (mypy --strict)
	$(VENV)/bin/mypy

contracts: $(STAMP) ## Write the topic contracts (JSON Schema per topic, AsyncAPI) to docs/contracts
	$(PY) -m worker.contracts docs/contracts

bench: $(STAMP) ## Benchmark the worker against raw aiokafka (N=100000 orders; EMBEDDED_BROKER or KAFKA_BOOTSTRAP_SERVERS)
	$(PY) -m bench --orders $(N)

clean: ## Remove .venv, state and caches
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
