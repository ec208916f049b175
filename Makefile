# Switchboard — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(wildcard protos/switchboard/v1/*.proto)

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv/ and install Switchboard with its pinned dependencies

kafka: venv ## Resolve and cache the Apache Kafka jars for the local broker (Maven, once)
	$(PY) -c 'from services.common.broker import kafka_libs; print(kafka_libs())'

proto: venv ## Regenerate protos/gen/ from protos/ (generated code is committed)
	rm -rf protos/gen/switchboard
	mkdir -p protos/gen
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=protos/gen --pyi_out=protos/gen \
		--grpc_python_out=protos/gen $(PROTOS)
	touch protos/gen/switchboard/__init__.py protos/gen/switchboard/v1/__init__.py

lint: venv ## ruff
	$(VENV)/bin/ruff check services tests

typecheck: venv ## mypy
	$(VENV)/bin/mypy services

test: venv kafka ## Run the whole test suite (unit, then integration/end-to-end on a real broker)
	$(PY) -m pytest tests -q

unit: venv ## Unit tests only (no broker)
	$(PY) -m pytest tests/unit -q

run: venv kafka ## Start a broker, the four services and demo traffic (Ctrl-C stops everything)
	$(VENV)/bin/switchboard run

clean: ## Remove the venv, caches and run logs (keeps the Kafka jar cache)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .run *.egg-info

.PHONY: help venv kafka proto lint typecheck test unit run clean
