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
	$(PY) -c 'from switchboard_dev.broker import kafka_libs; print(kafka_libs())'

proto: venv ## Regenerate protos/gen/ from protos/ (generated code is committed)
	rm -rf protos/gen/switchboard
	mkdir -p protos/gen
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=protos/gen --pyi_out=protos/gen \
		--grpc_python_out=protos/gen $(PROTOS)
	touch protos/gen/switchboard/__init__.py protos/gen/switchboard/v1/__init__.py

lint: venv ## ruff
	$(VENV)/bin/ruff check services switchboard_dev tests

typecheck: venv ## mypy
	$(VENV)/bin/mypy services switchboard_dev

test: venv kafka monitoring-tools ## Run the whole test suite (unit, then integration/end-to-end on a real broker)
	$(PY) -m pytest tests -q

unit: venv ## Unit tests only (no broker)
	$(PY) -m pytest tests/unit -q

run: venv kafka ## Start a broker, the four services and demo traffic (Ctrl-C stops everything)
	$(VENV)/bin/switchboard run

reliability-roll: venv kafka ## The three-node KRaft cluster rolled under traffic, alone (it is part of make test too)
	$(PY) -m pytest -q tests/reliability/test_rel_broker.py -k roll

reliability-soak: venv kafka ## Broker SIGKILL + restart under traffic with a busy core, 5 runs in a row (slow: ~10 min)
	RELIABILITY_BROKER_RUNS=5 $(PY) -m pytest -q tests/reliability/test_rel_broker.py -k busy_core

bench: venv ## Benchmarks: tables and bench/results/<stage>.json (BENCH_STAGES=engine selects; BENCH_PROFILE=1 profiles)
	$(PY) -m bench.run

HELM_VERSION := v3.22.0
HELM := .cache/bin/helm
# The Kubernetes version helm assumes without a cluster (template, lint). `go install` leaves
# helm's fallback, 1.20, which the chart refuses (kubeVersion >= 1.27); the release builds set it
# with these ldflags, from their client-go. tests/deploy/chart.py builds it the same way.
KUBE_VERSION := 1.37.0
KUBE_MINOR := $(word 2,$(subst ., ,$(KUBE_VERSION)))
HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(KUBE_MINOR) \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(KUBE_MINOR)
HELM_STAMP := .cache/bin/.helm-$(HELM_VERSION)-k8s-$(KUBE_VERSION)

$(HELM_STAMP):
	@command -v go >/dev/null || { echo "need go on PATH to build helm $(HELM_VERSION)"; exit 1; }
	GOBIN=$(PWD)/.cache/bin go install -ldflags "$(HELM_LDFLAGS)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@touch $(HELM_STAMP)

tools: $(HELM_STAMP) ## Install the pinned helm (v3.22.0) into .cache/bin with go install

helm: tools ## Lint the Helm chart (--strict) and render it with the default values
	$(HELM) lint --strict -f tests/deploy/values/default.yaml helm/switchboard
	$(HELM) template switchboard helm/switchboard -f tests/deploy/values/default.yaml >/dev/null

helm-test: venv tools ## Deployment tests: chart lint, render and schema validation; image and compose files
	$(PY) -m pytest tests/deploy -q

monitoring-tools: ## Install prometheus + promtool (Debian's prometheus package) when missing
	deploy/prometheus/install-prometheus.sh

monitoring: venv ## Regenerate the Grafana dashboards and the chart's symlinks to them and to the rules
	$(PY) deploy/grafana/generate.py

monitoring-test: venv monitoring-tools ## promtool check/test rules, dashboards, metric names (unit) and a real Prometheus
	$(PY) -m pytest -q tests/monitoring tests/unit/test_monitoring_files.py tests/unit/test_monitoring_metrics.py \
		tests/integration/test_prometheus_real.py

# The images (tools/image.sh, docs/deployment.md "The image"): switchboard:$(IMAGE_TAG) and
# switchboard-enrichment:$(IMAGE_TAG), built with docker when its engine answers, else buildah.
# BASE_IMAGE: debian (tools/image-base.sh debootstraps bookworm + python3.11 from the apt mirror),
# official (the Dockerfile's python:3.11-slim-bookworm by digest: needs Docker Hub) or any image.
# IMAGE_REPO: the name without tag, e.g. registry.example.com/switchboard. IMAGE_TOOL: docker or buildah.
BASE_IMAGE ?= debian
IMAGE_REPO ?= switchboard
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
IMAGE_TOOL ?=
IMAGE_ENV = BASE_IMAGE='$(BASE_IMAGE)' IMAGE_REPO='$(IMAGE_REPO)' IMAGE_TAG='$(IMAGE_TAG)' IMAGE_TOOL='$(IMAGE_TOOL)'

image-tools: ## Install buildah and debootstrap (Debian packages) when missing
	tools/image.sh tools

image-base: image-tools ## The Debian bookworm + python3.11 base image (root file system cached in .cache/image)
	$(IMAGE_ENV) tools/image-base.sh

image: image-tools ## Build switchboard and switchboard-enrichment (BASE_IMAGE=debian|official|<image>)
	$(IMAGE_ENV) tools/image.sh build

image-test: venv kafka image-tools ## Build the images, start each service from them on the local broker
	$(IMAGE_ENV) $(PY) -m pytest -q tests/integration/test_image.py

image-clean: ## Remove the cached base root file system (the next make image debootstraps again)
	rm -rf .cache/image

clean: ## Remove the venv, caches and run logs (keeps the Kafka jar cache)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .run *.egg-info

.PHONY: help venv kafka proto lint typecheck test unit run clean
.PHONY: tools helm helm-test
.PHONY: bench reliability-soak reliability-roll
.PHONY: monitoring-tools monitoring monitoring-test
.PHONY: image-tools image-base image image-test image-clean
