# Every target creates the virtual environment it needs (.venv) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo test lint unit crds sandbox bench chaos clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

venv: $(STAMP)  ## create .venv with the project and its dev tools

demo: $(STAMP)  ## no cluster needed: both controllers against the sandbox, every block reason (~30 s); DEMO_ARGS=--keep
	$(BIN)/python -m sandbox demo $(DEMO_ARGS)

lint: $(STAMP)  ## ruff, mypy and the import layering contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint  ## the whole check: lint, then every test (what CI runs)
	@$(BIN)/pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

unit: $(STAMP)  ## only the fast unit tests
	$(BIN)/pytest tests/unit

crds: $(STAMP)  ## regenerate manifests/crds from the models
	$(BIN)/python -m shared.models.crd manifests/crds

sandbox: $(STAMP)  ## run the sandbox API server on 127.0.0.1 (kubeconfig in .sandbox/kubeconfig)
	$(BIN)/python -m sandbox serve $(SANDBOX_ARGS)

bench: $(STAMP)  ## run the benchmarks (python -m benchmarks [NAME ...]); prints one JSON document
	$(BIN)/python -m benchmarks $(BENCH)

CHAOS_DURATION ?= 600
chaos: $(STAMP)  ## chaos soak: faults + load for CHAOS_DURATION s (600), then SPEC 7 checks; CHAOS_ARGS="--seed N"
	$(BIN)/python -m tests.chaos --duration $(CHAOS_DURATION) $(CHAOS_ARGS)

# -- the container image -------------------------------------------------------------------------------------------
# `make image` builds what users build (base python:3.11-slim-bookworm). Without a registry, `make base-image` makes
# a stand-in from Debian's packages and `make image PYTHON_IMAGE=local/python:3.11-slim-bookworm` builds on it.
DOCKER ?= docker
IMAGE ?= kubernaut-controlplane:dev
PYTHON_IMAGE ?= python:3.11-slim-bookworm
BASE_IMAGE ?= local/python:3.11-slim-bookworm

.PHONY: image base-image

image:  ## build the container image IMAGE (kubernaut-controlplane:dev) on PYTHON_IMAGE
	$(DOCKER) build --network host --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) -t $(IMAGE) .

base-image:  ## offline stand-in BASE_IMAGE for python:3.11-slim-bookworm from Debian's packages (root, cached)
	DOCKER=$(DOCKER) hack/base-image.sh $(BASE_IMAGE)

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache

# -- a local cluster and a local run (need kind, docker and kubectl; CI runs none of these) ----------------------------
KIND ?= kind
KUBECTL ?= kubectl
KIND_CLUSTER ?= kubernaut
KIND_IMAGE ?= $(IMAGE)
TEKTON_VERSION ?= v1.9.0
TEKTON_RELEASE := https://infra.tekton.dev/tekton-releases/pipeline/previous/$(TEKTON_VERSION)/release.yaml
KIND_KUBECTL = $(KUBECTL) --context kind-$(KIND_CLUSTER)

.PHONY: kind-up kind-down run-local

kind-up:  ## kind cluster with Tekton and both controllers (manifests/overlays/kind)
	$(KIND) get clusters | grep -qx '$(KIND_CLUSTER)' || \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config manifests/kind/cluster.yaml
	$(KIND_KUBECTL) apply -f $(TEKTON_RELEASE)
	$(KIND_KUBECTL) -n tekton-pipelines wait deployment --all --for=condition=Available --timeout=5m
	$(KIND_KUBECTL) -n tekton-pipelines-resolvers wait deployment --all --for=condition=Available --timeout=5m
	$(MAKE) image IMAGE=$(KIND_IMAGE)
	$(KIND) load docker-image $(KIND_IMAGE) --name $(KIND_CLUSTER)
	$(KIND_KUBECTL) apply -k manifests/overlays/kind
# Same tag, new image: replace the pods so they run what was just built.
	$(KIND_KUBECTL) -n kubernaut-system rollout restart deployment
	$(KIND_KUBECTL) -n kubernaut-system rollout status deployment/kubernaut-orchestrator --timeout=3m
	$(KIND_KUBECTL) -n kubernaut-system rollout status deployment/kubernaut-executor --timeout=3m

kind-down:  ## delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)

run-local: $(STAMP)  ## both controllers on this machine, current kubeconfig, no leader election; Ctrl-C stops both
	@echo "orchestrator: metrics :9090, health :8081   executor: metrics :9091, health :8082"
	@trap 'kill $$orchestrator $$executor 2>/dev/null' INT TERM; \
	KUBERNAUT_ORCHESTRATOR_LEADER_ELECTION=false $(BIN)/kubernaut-orchestrator & orchestrator=$$!; \
	KUBERNAUT_EXECUTOR_LEADER_ELECTION=false KUBERNAUT_EXECUTOR_METRICS_PORT=9091 KUBERNAUT_EXECUTOR_HEALTH_PORT=8082 \
	  $(BIN)/kubernaut-executor & executor=$$!; \
	while kill -0 $$orchestrator 2>/dev/null && kill -0 $$executor 2>/dev/null; do sleep 1; done; \
	kill $$orchestrator $$executor 2>/dev/null; wait $$orchestrator; o=$$?; wait $$executor; e=$$?; \
	exit $$((o > e ? o : e))
