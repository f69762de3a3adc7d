# dagtrigger developer entry points. `make demo` and `make test` install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION ?= 3.12
STACK_DIR      := .stack
UV_VERSION     := 0.13.8
UV             := $(STACK_DIR)/uv/bin/uv
VENV           := .venv
SAM_VENV       := .venv-sam
PY             := $(VENV)/bin/python
SAM            := $(SAM_VENV)/bin/sam
CHECKOV_VENV   := .venv-checkov
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv sam-venv lock lint format test test-unit test-template test-contract test-e2e \
        reliability validate build demo up down clean bench

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(UV):
	@mkdir -p $(STACK_DIR)
	python3 -m venv $(STACK_DIR)/uv
	$(STACK_DIR)/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml layers/core/requirements.txt requirements/dev.lock
	@test -x $(PY) || $(UV) venv --quiet --python "$$(scripts/find-python $(PYTHON_VERSION))" $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip sync --quiet requirements/dev.lock
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --no-deps -e .
	@touch $@

venv: $(VENV)/.installed ## the development virtual environment (.venv)

$(SAM_VENV)/.installed: $(UV) requirements/sam.txt
	@test -x $(SAM_VENV)/bin/python || $(UV) venv --quiet --python "$$(scripts/find-python $(PYTHON_VERSION))" $(SAM_VENV)
	VIRTUAL_ENV=$(SAM_VENV) $(UV) pip install --quiet -r requirements/sam.txt
	@touch $@

sam-venv: $(SAM_VENV)/.installed ## the SAM CLI in its own environment (it pins boto3 and cfn-lint)

# The lock is committed and only changes on purpose: run `make lock` after editing the
# dependencies in pyproject.toml or layers/core/requirements.txt.
lock: | $(UV) ## re-pin the development lock (requirements/dev.lock)
	$(UV) pip compile --quiet --python-version $(PYTHON_VERSION) --extra dev \
	  pyproject.toml layers/core/requirements.txt -o requirements/dev.lock

# checkov pins its own boto3, which the dev lock cannot share: it has an environment of its own,
# synced from its lock (requirements/checkov.txt, compiled from requirements/checkov.in).
$(CHECKOV_VENV)/.installed: $(UV) requirements/checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(UV) venv --quiet --python "$$(scripts/find-python $(PYTHON_VERSION))" $(CHECKOV_VENV)
	VIRTUAL_ENV=$(CHECKOV_VENV) $(UV) pip sync --quiet requirements/checkov.txt
	@touch $@

# checkov fails on any finding; the ones that do not apply are skipped on their resource in
# template.yaml (Metadata: checkov: skip), each with its reason. --skip-download: offline.
lint: venv $(CHECKOV_VENV)/.installed ## ruff, mypy and checkov (template.yaml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/core/dagtrigger functions devstack dagtrigger_cli bench
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --quiet --compact \
	  --skip-download

format: venv ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The Airflow versions the contract suite runs against (keys of AIRFLOW_RELEASES in
# devstack/airflow_install.py, or majors 3|2, comma-separated; all: every one): 3.3 (3.3.2, the
# newest), 3.0 (3.0.6, MWAA's newest Airflow 3) and 2.11 (2.11.0, MWAA's newest Airflow 2).
# `make test-contract AIRFLOW_VERSIONS=3.0`. The whole matrix took 6 min on a quiet 2-CPU machine,
# 3.0 and 2.11 alone 3.6 min: TEST_AIRFLOW_VERSIONS=3.0,2.11 trims `make test` if time is short.
AIRFLOW_VERSIONS      ?= all
TEST_AIRFLOW_VERSIONS ?= all

# The end-to-end suite runs on the newest Airflow 3; file sets and asset routes run again on a
# stack with MWAA's Airflow 2 (datasets, Airflow 2's REST API), about a minute more.
E2E_ON_AIRFLOW_2 := tests/e2e/test_file_sets.py tests/e2e/test_asset_routes.py

test: venv sam-venv $(CHECKOV_VENV)/.installed ## every test: unit, template, contract (real Airflow 3.3, 3.0 and 2.11) and end to end
	DAGTRIGGER_AIRFLOW_VERSIONS=$(TEST_AIRFLOW_VERSIONS) $(PY) -m pytest
	DAGTRIGGER_E2E_AIRFLOW=2.11 $(PY) -m pytest $(E2E_ON_AIRFLOW_2)

test-unit: venv ## unit tests only (no servers but loopback fakes; about a minute)
	$(PY) -m pytest tests/unit

test-template: venv sam-venv $(CHECKOV_VENV)/.installed ## sam validate --lint, cfn-lint and sam build
	$(PY) -m pytest tests/template

test-contract: venv ## transports, emulator and launchers against real Airflow 3.3, 3.0 and 2.11 (AIRFLOW_VERSIONS=3.0)
	DAGTRIGGER_AIRFLOW_VERSIONS=$(AIRFLOW_VERSIONS) $(PY) -m pytest tests/contract

test-e2e: venv ## the whole local stack: S3, webhooks, API calls and schedules to real Airflow runs
	$(PY) -m pytest tests/e2e

# The full fault matrix (tests/reliability, issue 9) and every property test at 10,000 examples;
# `make test` runs a bounded subset. The table is printed and written to .stack/reliability-table.md.
reliability: venv ## fault matrix on the local stack, and fuzzing at 10,000 examples a target
	HYPOTHESIS_PROFILE=reliability $(PY) -m pytest tests/fuzz tests/reliability

validate: sam-venv ## sam validate --lint
	$(SAM) validate --lint

build: sam-venv ## sam build (python3.12 runtime)
	PATH="$$(dirname "$$(scripts/find-python $(PYTHON_VERSION))"):$$PATH" $(SAM) build

# The local stack's options: `make up AIRFLOW=2 TRANSPORT=cli ROUTES=my-routes.yaml`,
# `make demo AIRFLOW=3.0 LOGS=1`. AIRFLOW is 3, 2 or a version (3.3, 3.0, 2.11: MWAA runs 3.0
# and 2.11); TRANSPORT is invoke_rest_api, cli or airflow_rest.
AIRFLOW       ?= 3
TRANSPORT     ?=
ROUTES        ?=
LOGS          ?=
STACK_OPTIONS  = --airflow $(AIRFLOW) $(if $(TRANSPORT),--transport $(TRANSPORT))

demo: venv ## the main job on one machine: drop files in S3, watch real Airflow runs (AIRFLOW=2, TRANSPORT=, LOGS=1)
	$(PY) -m devstack demo $(STACK_OPTIONS) $(if $(filter-out 0 no false,$(LOGS)),--logs)

up: venv ## start the local stack in the background and print how to drive it (AIRFLOW=2, TRANSPORT=, ROUTES=)
	$(PY) -m devstack up $(STACK_OPTIONS) $(if $(ROUTES),--routes "$(ROUTES)")

down: venv ## stop the local stack started by `make up`
	$(PY) -m devstack down

# `make bench`: dagtrigger against the usual sample on the local stack, written to bench/results.md
# (about 30 minutes). QUICK=1: small sizes (a few minutes); BENCH_ARGS: any `python -m bench.run`
# option, e.g. BENCH_ARGS="--skip demo,cold --burst 200".
QUICK      ?=
BENCH_ARGS ?=

bench: venv build ## benchmark against the usual sample (QUICK=1: small sizes; BENCH_ARGS=...); writes bench/results.md
	$(PY) -m bench.run $(if $(filter-out 0 no false,$(QUICK)),--quick) $(BENCH_ARGS)

clean: ## remove build output and the local stack's state (not the virtual environments)
	rm -rf .aws-sam $(STACK_DIR)/state
