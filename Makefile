# sovstack — every target first installs the system packages it needs when they
# are missing (apt-get, as root; otherwise it names them), makes or updates the
# project's virtualenv and fetches what it needs; nothing else has to be
# installed by hand.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SOV    := $(VENV)/bin/sovstack
STAMP  := $(VENV)/.sovstack-installed
# The one constraints file: the virtualenv (so the tests) installs the same pins the bundle ships.
PINS   := requirements/bundle-pins.txt
# Installs the Debian packages of the named groups (services/sovstack/core/syspkgs.py) if missing.
SYSPKGS = @$(PYTHON) services/sovstack/core/syspkgs.py

# Debian's Go may be older than OPA needs: let go fetch the toolchain the
# module asks for from the Go module proxy.
export GOTOOLCHAIN ?= auto

.DEFAULT_GOAL := help
.PHONY: help venv deps dev dev-down dev-status lint policy-test test test-unit test-integration \
        bench-audit bench-gateway clean cluster-up cluster-down cluster-status cluster-test \
        bundle verify-bundle test-bundle-full system-packages deploy deploy-test audit \
        bench-audit-report bench-litellm bench-vllm promtool mutation

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(PINS)
	$(SYSPKGS) venv
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q --upgrade pip
	$(PY) -m pip install --disable-pip-version-check -q -c $(PINS) -e '.[dev]'
	@touch $@

venv: $(STAMP) ## Create or update the project's virtualenv (.venv)

system-packages: ## Install every system package any target needs (apt-get, as root)
	$(SYSPKGS) venv deps cluster bundle deploy audit

deps: venv ## Fetch OPA, Regal, Keycloak, vLLM (CPU) and the tiny model into .cache/
	$(SYSPKGS) deps
	$(SOV) deps

# The main job. With no INVENTORY: keys, a cpu bundle and the local cluster, made as
# needed, then the stack deployed onto it. With INVENTORY, BUNDLE and BUNDLE_PUBKEY: a
# real site, and nothing is built. ANSIBLE_ARGS go to ansible-playbook (--check --diff).
deploy: $(if $(INVENTORY),venv,deps) ## Deploy the stack from the signed bundle (default: the local cluster)
	$(SYSPKGS) deploy $(if $(INVENTORY),,cluster bundle)
	$(SOV) deploy $(if $(INVENTORY),--inventory $(INVENTORY) --bundle $(BUNDLE) --pubkey $(BUNDLE_PUBKEY)) \
		$(if $(FORCE),--force) $(if $(ANSIBLE_ARGS),-- $(ANSIBLE_ARGS))

dev: deps ## Bring the whole request path up on this machine; writes .sovstack/dev.json
	$(SOV) dev up

dev-down: venv ## Stop everything 'make dev' started, and nothing else
	$(SOV) dev down

dev-status: venv ## Show what 'make dev' started and whether it still runs
	$(SOV) dev status

lint: venv ## ruff (lint and format) and mypy --strict on services/
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/ruff format --check services tests bench
	$(VENV)/bin/mypy

policy-test: venv ## Rego: opa fmt, opa check --strict, regal lint, opa test (100% coverage), controls
	$(SYSPKGS) deps
	$(SOV) deps --only opa --only regal
	$(SOV) policy test

# promtool (tests/unit/prometheus checks the alert rules): Debian's prometheus package,
# unpacked into .cache/promtool rather than installed (installing starts a Prometheus).
promtool: ## Unpack Debian's promtool into .cache/promtool (the alert rules' tests), unless installed
	@command -v promtool >/dev/null || test -x .cache/promtool/usr/bin/promtool || { \
		apt-get update -q >/dev/null && tmp=$$(mktemp -d) && \
		(cd $$tmp && apt-get download -q prometheus) && mkdir -p .cache/promtool && \
		dpkg-deb -x $$tmp/prometheus_*.deb .cache/promtool && rm -rf $$tmp; }

test-unit: venv promtool ## Unit tests only: no services, seconds
	$(PY) -m pytest tests/unit

test-integration: deps ## Integration tests against real OPA, Keycloak and vLLM on loopback
	$(SYSPKGS) bundle audit
	$(PY) -m pytest tests/integration

test: system-packages deps promtool lint policy-test cluster-test deploy-test ## The whole test suite (lint, policies, cluster, deploy, unit, integration)
	$(PY) -m pytest tests/unit tests/integration

# Not part of make test: minutes of mutants, a report (score per module), not a gate.
mutation: venv ## Mutation testing of the fail-closed code (mutmut; MUTATION_ARGS="--minutes 25")
	$(PY) tests/mutation/run.py $(MUTATION_ARGS)

# The bench re-runs itself in a network namespace with only loopback (bench/netns.py).
bench-gateway: deps bench-litellm ## Benchmark the gateway's variants, direct and LiteLLM side by side (stub upstream)
	$(SYSPKGS) bench
	$(PY) -m bench.gateway_bench $(BENCH_ARGS)

# LiteLLM's proxy for the bench, in a virtualenv of its own (never the project's .venv):
# every wheel pinned with its sha256 (pip's hash-checking mode), no sdist built.
LITELLM_VENV := .cache/bench-litellm
$(LITELLM_VENV)/.installed: bench/litellm-requirements.txt
	@test -x $(LITELLM_VENV)/bin/python || $(PYTHON) -m venv $(LITELLM_VENV)
	PIP_FIND_LINKS= $(LITELLM_VENV)/bin/python -m pip install --disable-pip-version-check -q \
		--require-hashes --only-binary=:all: -r bench/litellm-requirements.txt
	@touch $@

bench-litellm: $(LITELLM_VENV)/.installed ## Install LiteLLM's proxy (the bench's peer, hash-checked) into .cache/bench-litellm

bench-vllm: deps ## Benchmark 16 streams of the tiny model through the gateway against direct vLLM
	$(PY) -m bench.vllm_stream_bench $(BENCH_ARGS)

bench-audit: venv ## Benchmark the audit log: durable appends/s (1, 8, 64 writers), verify 1M entries
	$(PY) bench/audit_bench.py

bench-audit-report: venv ## Benchmark make audit over a log of 100,000 records (target <= 60 s)
	PYTHONPATH=$(CURDIR) $(PY) bench/audit_report_bench.py $(BENCH_ARGS)

cluster-up: venv ## Boot the local isolated cluster of inventory/local (root; builds its image once)
	$(SYSPKGS) cluster
	$(SOV) cluster up

cluster-down: venv ## Remove everything 'cluster-up' made, also after a crash
	$(SOV) cluster down

cluster-status: venv ## Show the local cluster's nodes
	$(SOV) cluster status

# Up, the tests against the nodes, then down, even when a test fails or make is interrupted.
cluster-test: venv ## Bring the local cluster up, test its nodes with testinfra, bring it down
	$(SYSPKGS) cluster
	@trap '$(SOV) cluster down' EXIT; trap 'exit 130' INT TERM; \
	$(SOV) cluster up && \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest tests/cluster \
		--hosts=ansible://all --ansible-inventory=inventory/local

# make deploy onto the local cluster (built and brought up as needed), the nodes checked
# as deployed with testinfra, a second deploy, then the cluster down, even on failure.
deploy-test: deps ## Deploy onto the local cluster, test the deployed nodes, bring the cluster down
	$(SYSPKGS) cluster bundle deploy
	@trap '$(SOV) cluster down' EXIT; trap 'exit 130' INT TERM; \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest tests/deploy --timeout=3600 \
		--hosts=ansible://all --ansible-inventory=inventory/local

# The offline bundle. Keys: 'sovstack bundle keygen --out $(BUNDLE_KEY)' and
# 'sovstack policy keygen --out-dir $(dir $(POLICY_KEY))', made once and kept.
PROFILE       ?= cpu
BUNDLE_KEY    ?= .sovstack/keys/bundle.key
POLICY_KEY    ?= .sovstack/keys/policy-signing.key
MODEL         ?= tiny-llama=.cache/models/tiny-llama
BUNDLE        ?= .sovstack/bundle/$(PROFILE)
BUNDLE_PUBKEY ?= $(BUNDLE_KEY).pub

bundle: venv ## Build the signed offline bundle and its .tar (PROFILE=cpu|gpu, MODEL=name=dir)
	$(SYSPKGS) deps bundle
	$(SOV) bundle build --profile $(PROFILE) --out $(BUNDLE) --tar $(BUNDLE).tar \
		--signing-key $(BUNDLE_KEY) --policy-key $(POLICY_KEY) --model $(MODEL)

verify-bundle: venv ## Verify a bundle offline: BUNDLE=folder-or-.tar BUNDLE_PUBKEY=key.pub
	$(SOV) bundle verify $(BUNDLE) --pubkey $(BUNDLE_PUBKEY)

test-bundle-full: venv ## Opt-in: build full cpu and gpu bundles (vLLM wheelhouses: many GB)
	$(SYSPKGS) deps bundle
	$(PY) -m pytest tests/bundle_full

# The compliance evidence pack. AUDIT_DEV=1: the dev stack's log and keys (make dev first).
# A deployed site: AUDIT_ARGS="--log DIR PUBKEY --witness-state DIR --hosts ansible://all
#   --inventory inventory/<site> --bundle $(BUNDLE) --bundle-pubkey $(BUNDLE_PUBKEY)
#   --signing-key KEY".
AUDIT_OUT ?= .sovstack/audit-report/$(shell date -u +%Y%m%dT%H%M%SZ)
AUDIT_DEV ?=
AUDIT_ARGS ?=

audit: venv ## Signed compliance evidence pack in AUDIT_OUT (AUDIT_DEV=1: dev stack; AUDIT_ARGS=...)
	$(SYSPKGS) audit
	$(SOV) deps --only opa
	$(SOV) audit report --out $(AUDIT_OUT) $(if $(AUDIT_DEV),--dev) $(AUDIT_ARGS)

clean: ## Remove the virtualenv and dev-stack state (keeps the .cache/ of fetched components)
	@test ! -e .sovstack/cluster/state.json || \
		{ echo "the local cluster is up: 'make cluster-down' first"; exit 1; }
	rm -rf $(VENV) .sovstack .pytest_cache .mypy_cache .ruff_cache
