# carenet: `make help` lists the targets. `make run` and `make test` do all the set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SERVICES := $(patsubst services/%/pyproject.toml,%,$(wildcard services/*/pyproject.toml))
PACKAGES := proto libs/servicekit libs/testkit $(addprefix services/,$(SERVICES))
STAMP := $(VENV)/.installed
IDP_STAMP := infra/local-idp/node_modules/.installed
BUF_STAMP := node_modules/.installed
PYTEST_ARGS ?=

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements/constraints.txt requirements/dev.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt \
	  -r requirements/dev.txt $(addprefix -e ,$(PACKAGES))
	touch $@

$(IDP_STAMP): infra/local-idp/package-lock.json
	cd infra/local-idp && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(BUF_STAMP): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: install
install: $(STAMP) $(IDP_STAMP) ## create the virtualenv and install Python and Node packages

.PHONY: proto
proto: $(STAMP) ## regenerate the Python code from proto/ into proto/gen/python
	PYTHON=$(PY) scripts/gen_proto.sh

.PHONY: proto-check
proto-check: $(STAMP) ## fail if the committed generated code is stale
	rm -rf build/proto-check && mkdir -p build/proto-check
	PYTHON=$(PY) scripts/gen_proto.sh build/proto-check
	diff -r -x __pycache__ proto/gen/python/carenet build/proto-check/carenet

.PHONY: lint
lint: $(STAMP) $(BUF_STAMP) ## ruff, buf lint and buf breaking against main
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	npx --no-install buf lint
	scripts/buf_breaking.sh

.PHONY: typecheck
typecheck: $(STAMP) ## mypy --strict over libs, services, tests and bench
	$(VENV)/bin/mypy libs services tests bench

.PHONY: test
test: install ## run the whole suite against a real PostgreSQL
	$(PY) -m pytest $(PYTEST_ARGS) libs services tests

.PHONY: run
run: install ## start the whole platform locally on SQLite with a local OIDC issuer and demo data
	$(PY) scripts/run_local.py

.PHONY: bench
bench: install ## run the benchmarks in bench/ and print their ratios
	$(PY) bench/run_all.py

.PHONY: all
all: lint typecheck proto-check test ## everything CI runs

.PHONY: clean
clean: ## remove the virtualenv, node_modules and build output
	rm -rf $(VENV) node_modules infra/local-idp/node_modules build .run
