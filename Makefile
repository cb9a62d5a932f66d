# pim: developer and CI entry points. GNU make; no Docker needed.
#
#   make install    uv (pip-installed if missing) + `uv sync --frozen` -> .venv
#   make services   Postgres, Redis, ClickHouse reachable; URLs written to .env
#   make migrate    install + services, then `pim migrate`
#   make run        migrate, then worker + demo tenant + API (PORT=8000 WORKERS=2)
#   make lint       ruff (lint + format check) and mypy over app, workers, tests, bench
#   make test       install + services, then pytest on databases of its own (tests/databases.py)
#   make bench      migrate, then a benchmark (BENCH=bench/catalog.py BENCH_ARGS="--n 1000000")
#   make stop       stop the private service instances under .services/
#   make clean      remove caches and build output (keeps .venv, .services, .env)
#
# Every target can be run again at any time. Settings reach the app through
# .env (read by pydantic-settings) or PIM_* environment variables; this
# Makefile never includes .env. PIM_FORCE_PRIVATE=1 makes `services` ignore
# services on the standard ports and use private ones (see scripts/services.sh).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV        ?= .venv
PORT        ?= 8000
WORKERS     ?= 2
PYTEST_ARGS ?=
BENCH       ?= bench/catalog.py
BENCH_ARGS  ?=

PIM := $(VENV)/bin/pim

.PHONY: help install services migrate run lint test bench stop clean

help:
	@sed -n 's/^#   make /  make /p' $(firstword $(MAKEFILE_LIST))

install:
	@bash scripts/install.sh

services:
	@bash scripts/services.sh

migrate: install services
	$(PIM) migrate

run: migrate
	PORT=$(PORT) WORKERS=$(WORKERS) bash scripts/run.sh

LINT_PATHS := app workers tests bench migrations scripts

lint: install
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

test: install services
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

bench: migrate
	@test -f "$(BENCH)" || { echo "no benchmark script at $(BENCH) (set BENCH=...)" >&2; exit 1; }
	mkdir -p bench/out
	$(VENV)/bin/python $(BENCH) $(BENCH_ARGS)

stop:
	@bash scripts/stop-services.sh

clean:
	find . \( -path ./.venv -o -path ./.services -o -path ./.git \) -prune -o \
		\( -name __pycache__ -o -name .pytest_cache -o -name .mypy_cache -o -name .ruff_cache \
		   -o -name '*.egg-info' \) -type d -print0 | xargs -0 rm -rf
	find . \( -path ./.venv -o -path ./.services -o -path ./.git \) -prune -o -name '*.py[co]' -type f -print0 \
		| xargs -0 rm -f
	rm -rf build dist bench/out htmlcov .coverage .coverage.*
