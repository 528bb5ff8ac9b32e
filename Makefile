# carenet: `make help` lists the targets. `make run` and `make test` do all the set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SERVICES := $(patsubst services/%/pyproject.toml,%,$(wildcard services/*/pyproject.toml))
PACKAGES := proto libs/servicekit libs/testkit libs/carenet_client $(addprefix services/,$(SERVICES))
STAMP := $(VENV)/.installed
IDP_STAMP := infra/local-idp/node_modules/.installed
BUF_STAMP := node_modules/.installed
PYTEST_ARGS ?=

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements/constraints.txt requirements/dev.txt tests/chart/requirements.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	@echo "make install: installing the Python packages into $(VENV) (the first time takes a few minutes)..."
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt \
	  -r requirements/dev.txt -r tests/chart/requirements.txt $(addprefix -e ,$(PACKAGES))
	@echo "make install: Python packages installed"
	touch $@

CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: tests/chart/requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/chart/requirements-checkov.txt
	touch $@

$(IDP_STAMP): infra/local-idp/package-lock.json
	@echo "make install: installing the local OIDC issuer's Node packages (infra/local-idp)..."
	cd infra/local-idp && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# @bufbuild/buf is pinned exactly in package.json and its only dependencies are its own
# platform binaries, pinned by it; no lockfile (npm's lockfile cannot list the platform
# binaries the registry does not serve, and npm ci then refuses it).
$(BUF_STAMP): package.json
	npm install --no-audit --no-fund --no-package-lock --loglevel=error
	touch $@

# The web front's CSS and fonts (NL Design System Utrecht components, EUPL-1.2), pinned in
# services/web/package-lock.json, copied into its static/vendor (git-ignored).
WEB_ASSETS := services/web/src/web/static/vendor/.installed
$(WEB_ASSETS): services/web/package-lock.json services/web/vendor_assets.py
	cd services/web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	$(PYTHON) services/web/vendor_assets.py
	touch $@

# The browser tests (tests/web) drive the system's Chromium (Debian package chromium).
.PHONY: chromium
chromium: ## install the system Chromium for the browser tests when it is missing (apt-get, as root)
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && \
	  apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	  { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium; }; } || \
	  echo "warning: no chromium and no apt-get: tests/web cannot run (set CARENET_CHROMIUM)"

.PHONY: install
install: $(STAMP) $(IDP_STAMP) $(WEB_ASSETS) chromium ## create the virtualenv and install Python and Node packages, and Chromium

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
	$(VENV)/bin/mypy libs services tests bench scripts

.PHONY: test
test: install chart-check ## run the whole suite against a real PostgreSQL, and the chart check
	$(PY) -m pytest $(PYTEST_ARGS) --ignore=tests/chart libs services tests

# `make test` runs tests/fuzz too, with a few derandomized examples per RPC (profile ci).
FUZZ_EXAMPLES ?= 10000
FUZZ_RAW_EXAMPLES ?= $(FUZZ_EXAMPLES)
FUZZ_REPORT_DIR ?= build/fuzz
FUZZ_WORKERS ?= 8
FUZZ_SECONDS ?= 0
.PHONY: fuzz
fuzz: install ## fuzz every RPC: FUZZ_EXAMPLES (10000) generated requests and FUZZ_RAW_EXAMPLES raw bodies each, random seed, FUZZ_WORKERS threads (FUZZ_SECONDS: a time box); report in build/fuzz
	rm -rf $(FUZZ_REPORT_DIR)
	CARENET_FUZZ_PROFILE=fuzz CARENET_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
	  CARENET_FUZZ_RAW_EXAMPLES=$(FUZZ_RAW_EXAMPLES) CARENET_FUZZ_REPORT_DIR=$(FUZZ_REPORT_DIR) \
	  CARENET_FUZZ_WORKERS=$(FUZZ_WORKERS) CARENET_FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  $(PY) -m pytest $(PYTEST_ARGS) tests/fuzz

.PHONY: chart-check
chart-check: $(STAMP) $(CHECKOV_VENV)/.installed ## lint, render, validate, checkov, golden diff and tests of the Helm chart
	CHECKOV=$(CHECKOV_VENV)/bin/checkov $(PY) tests/chart/check.py

.PHONY: images
images: ## build one image per service from the Dockerfile (SERVICE build arg) where a Docker engine exists (REGISTRY, TAG)
	for svc in identity referral careplan outcomes web fhir; do \
	  docker build --build-arg SERVICE=$$svc -t $${REGISTRY:-localhost/carenet}/$$svc:$${TAG:-0.1.0} . || exit 1; done

.PHONY: run
run: install ## start the whole platform locally on an embedded PostgreSQL with a local OIDC issuer and demo data, the web front at :8000 and the FHIR API at http://127.0.0.1:8001/fhir/R4 (logs in .run/<service>.log)
	$(PY) scripts/run_local.py

.PHONY: bench
bench: install ## run the benchmarks in bench/ and print their ratios
	$(PY) bench/run_all.py

.PHONY: all
all: lint typecheck proto-check test ## everything CI runs

.PHONY: clean
clean: ## remove the virtualenv, node_modules and build output
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules infra/local-idp/node_modules build .run
