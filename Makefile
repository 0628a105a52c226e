# The two commands a newcomer needs:  make run   and   make test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The gateway's internal port under make run (tests leave it ephemeral).
RUN_INTERNAL := $(or $(GATEWAY_INTERNAL_ADDRESS),127.0.0.1:8001)

.DEFAULT_GOAL := help
.PHONY: help install run test test-full test-unit lint bench services tools clean

help:
	@echo "make run    - install, then run every service, the relay and the gateway (Ctrl-C stops)"
	@echo "make test   - install, start RabbitMQ/PostgreSQL if stopped, lint, run all tests"
	@echo "make test-full - the same with long journey, fault and fuzz profiles"
	@echo "make bench  - run the benchmarks under bench/"

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(INSTALLED)

install: $(INSTALLED)

run: install
	@mkdir -p var
	@$(BIN)/python -m shared.probes amqp
	@echo "Starting the marketplace; the gateway will listen on $$($(BIN)/python -c 'from shared.config import settings; print(settings().gateway_url)')"
	@echo "Readiness: GET /health/ready   Every service, and metrics: http://$(RUN_INTERNAL)/health/services, /metrics   Stop: Ctrl-C"
	@GATEWAY_INTERNAL_ADDRESS=$(RUN_INTERNAL) exec $(BIN)/honcho start -f Procfile

services:
	@scripts/ensure-services.sh

tools:
	@command -v kubectl >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& apt-get install -y -q kubectl >/dev/null 2>&1 || apt-get install -y -q kubernetes-client >/dev/null 2>&1; } \
		|| echo "kubectl not found: the manifest tests will be skipped"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install services tools lint
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest -m "not integration"

# The long profile of the journey, fault and fuzz tests (CI runs the short one).
test-full: install services tools lint
	JOURNEYS=100 FAULT_JOURNEYS=20 FAULT_KILLS=40 FUZZ_EXAMPLES=200 $(BIN)/pytest

bench: install services
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null 2>&1; } \
		|| { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
	$(BIN)/python bench/eventstore.py
	$(BIN)/python bench/gateway_reads.py
	$(BIN)/python bench/marketplace.py
	PYTHONPATH=. $(BIN)/python bench/sign_up_memory.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache *.egg-info
