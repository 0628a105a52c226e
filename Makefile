# The two commands a newcomer needs:  make run   and   make test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The gateway's internal port under make run (tests leave it ephemeral).
RUN_INTERNAL := $(or $(GATEWAY_INTERNAL_ADDRESS),127.0.0.1:8001)

.DEFAULT_GOAL := help
.PHONY: help install run test test-full test-unit lint bench services tools clean web test-web

help:
	@echo "make run    - install, then run every service, the relay and the gateway (Ctrl-C stops)"
	@echo "make test   - install, start RabbitMQ/PostgreSQL if stopped, lint, run all tests"
	@echo "make test-full - the same with long journey, fault and fuzz profiles"
	@echo "make bench  - run the benchmarks under bench/"
	@echo "make web    - build the web app (make run does; the gateway serves it at /)"

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(INSTALLED)

install: $(INSTALLED)

# The web app (web/): built when its sources, its lock file or the API changed.
# Its typed client is generated from the gateway's OpenAPI document, so a
# changed API that breaks the app fails this build.
WEB_SOURCES := $(shell find web/src web/index.html web/package.json web/tsconfig.json \
	web/vite.config.ts -type f -not -name schema.d.ts 2>/dev/null)
API_SOURCES := $(shell find gateway services shared -name '*.py' -not -path '*/tests/*' 2>/dev/null)

web/node_modules/.installed: web/package-lock.json
	@command -v npm >/dev/null || { echo "Node.js 20.19+ and npm are needed for the web app" >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web/openapi.json: $(INSTALLED) $(API_SOURCES)
	$(BIN)/python -m gateway.openapi > $@.tmp && mv $@.tmp $@

web/dist/index.html: web/node_modules/.installed web/openapi.json $(WEB_SOURCES)
	cd web && npm run --silent build
	@touch $@

web: web/dist/index.html

run: install web
	@mkdir -p var
	@$(BIN)/python -m shared.probes amqp
	@echo "Starting the marketplace; the gateway will listen on $$($(BIN)/python -c 'from shared.config import settings; print(settings().gateway_url)')"
	@echo "Readiness: GET /health/ready   Every service, and metrics: http://$(RUN_INTERNAL)/health/services, /metrics   Stop: Ctrl-C"
	@GATEWAY_INTERNAL_ADDRESS=$(RUN_INTERNAL) exec $(BIN)/honcho start -f Procfile

services:
	@scripts/ensure-services.sh

tools:
	@scripts/install-tool.sh chromium chromium || echo "the browser tests will fail"
	@scripts/install-tool.sh kubectl kubectl kubernetes-client || echo "the manifest tests will be skipped"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two pytest processes at once, then the modules that must run alone: see the script.
test: install services tools lint test-web
	PYTEST=$(BIN)/pytest scripts/run-tests.sh

# The web app's type check and build, and its unit tests (its browser tests
# run in the suite above: tests/integration/test_web_app.py).
test-web: web
	cd web && npm test --silent

test-unit: install
	$(BIN)/pytest -m "not integration"

# The long profile of the journey, fault and fuzz tests (CI runs the short one).
test-full: install services tools lint test-web
	JOURNEYS=100 FAULT_JOURNEYS=20 FAULT_KILLS=40 FUZZ_EXAMPLES=200 PYTEST=$(BIN)/pytest \
		scripts/run-tests.sh

bench: install services
	@scripts/install-tool.sh wrk wrk
	$(BIN)/python bench/eventstore.py
	$(BIN)/python bench/gateway_reads.py
	PYTHONPATH=. $(BIN)/python bench/consumer.py
	$(BIN)/python bench/marketplace.py
	PYTHONPATH=. $(BIN)/python bench/sign_up_memory.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache *.egg-info web/node_modules web/dist
