# The two commands of the README: `make run` and `make test`. Both are idempotent.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
CLI := $(BIN)/plinqy-search
SCALE ?= demo
SEED ?= 42

.PHONY: setup run test lint db-up migrate seed bench bench-large bench-events soak clean

setup:
	@bash scripts/setup.sh

db-up: setup
	@if [ -z "$$DATABASE_URL" ]; then $(CLI) db up; fi

migrate: db-up
	@$(CLI) migrate

seed: migrate
	@$(CLI) seed-demo --scale $(SCALE) --seed $(SEED)
	@$(CLI) worker --drain

HOST ?= 127.0.0.1
PORT ?= 8000

run: seed
	@echo "Plinqy Search: open http://$(HOST):$(PORT)/  (API: http://$(HOST):$(PORT)/v1/search?q=oat+milk, docs: /schema)"
	@$(CLI) serve --host $(HOST) --port $(PORT)

test: setup
	@$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy && $(BIN)/lint-imports
	@$(BIN)/pytest -q

lint: setup
	@$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy && $(BIN)/lint-imports

bench: migrate
	@$(BIN)/python -m benchmarks.run --scale small

# BENCH_GENERATOR=synthetic: random clustered vectors instead of the model's (1M texts take ~2-3 h to embed here)
BENCH_GENERATOR ?= auto
bench-large: migrate
	@$(BIN)/python -m benchmarks.run --scale large --generator $(BENCH_GENERATOR)

bench-events: migrate
	@$(BIN)/python -m benchmarks.bench_events

# Chaos over both queues (not part of `make test`, which runs a short version): 8 workers, 10k embedding tasks and
# 10k webhook deliveries, a worker SIGKILLed every 2-5 s, a connection terminated every 10 s. Takes minutes.
soak: migrate
	@$(BIN)/python -m benchmarks.chaos --workers 8 --tasks 10000 --deliveries 10000 --kill-every 2,5 \
		--terminate-every 10 --chaos 120

clean:
	@if [ -x $(CLI) ] && [ -z "$$DATABASE_URL" ]; then $(CLI) db down || true; fi
	rm -rf .pgdata .pgdata.log .cache .pytest_cache .mypy_cache .ruff_cache
