# Marquee — the two commands that matter: `make dev` and `make test`.
# Needs only python3 (3.11) and make: uv and everything else are installed here.

SHELL := /bin/bash
PYTHON ?= python3
TOOLS := $(CURDIR)/.tools
UV := $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/bin/uv)
PYTEST_WORKERS ?= auto
export UV_PYTHON_DOWNLOADS := never
# Trust the system certificate store (where a machine adds its own CAs), not a bundled one.
export UV_SYSTEM_CERTS := true

.PHONY: help install dev doctor test test-failover test-unit test-integration lint fmt typecheck \
        bench-relay bench-search bench-gateway bench-holds bench-purchase bench-scale \
        bench-waitroom bench-notifications clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

install: $(if $(shell command -v uv 2>/dev/null),,$(TOOLS)/bin/uv) ## Install uv and every package (.venv)
	$(UV) sync --all-packages --frozen

dev: install ## Run the whole platform on 127.0.0.1 (gateway: http://127.0.0.1:8000)
	$(UV) run marquee dev $(DEV_ARGS)

doctor: install ## Say what is missing to run Marquee and how to fix it
	$(UV) run marquee doctor

test: install ## Unit and integration tests against real PostgreSQL, Redis and Kafka
	$(UV) run pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not failover"

test-failover: install ## Replicas of everything SIGKILLed in turn under live traffic (~2 min)
	$(UV) run pytest -m failover tests/e2e/test_failover_e2e.py

test-unit: install ## Only the fast tests that need no infrastructure
	$(UV) run pytest -m "not integration"

test-integration: install ## Only the tests that talk to real infrastructure
	$(UV) run pytest -n $(PYTEST_WORKERS) --dist loadfile -m "integration and not failover"

lint: install ## ruff and mypy
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy libs services

fmt: install ## Format and fix what can be fixed automatically
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

typecheck: install
	$(UV) run mypy libs services

bench-relay: install ## Outbox relay throughput and commit→consume lag
	$(UV) run python bench/relay_bench.py

bench-search: install ## 100,000 events in the PostgreSQL engine: indexing rate, query p50/p99, CDC lag
	$(UV) run python bench/search_bench.py

bench-gateway: install ## Logins/s, the gateway's added latency, memory with 10,000 open streams
	$(UV) run python bench/gateway_bench.py
	$(UV) run python bench/gateway_streams_bench.py

bench-holds: install ## Holds/s vs a bare endpoint, p50/p99, oversold, best-available, expiry lag, rebuild
	$(UV) run python bench/holds_bench.py

bench-purchase: install ## Full purchases/s (hold → order → payment → webhook → tickets), p50/p99 per step, CPU per process
	$(UV) run python bench/purchase_bench.py

bench-scale: install ## Consumer failover and relay takeover after SIGKILL, 1 vs 2 replicas, one publish to 50,000 streams
	$(UV) run python bench/scale_bench.py

bench-waitroom: install ## Waiting room: joins/s, position staleness (50,000 queued, 50,000 streams), Redis MB per 10k fans, conversion
	$(UV) run python bench/waitroom_bench.py

bench-notifications: install ## Messages/s cause → SMTP, transactional p99 while a 50,000-message fan-out drains, duplicates, lost
	$(UV) run python bench/notifications_bench.py

clean: ## Remove local state (.marquee), caches and the virtualenv
	rm -rf .marquee .venv .pytest_cache .mypy_cache .ruff_cache
