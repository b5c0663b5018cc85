# Every target creates the virtual environment it needs (.venv) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help test lint unit crds sandbox bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

venv: $(STAMP)  ## create .venv with the project and its dev tools

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

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
