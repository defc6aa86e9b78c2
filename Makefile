# Two commands do everything on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-unit test-integration bench bench-scale lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "install: creating $(VENV) with the pinned dependencies of pyproject.toml (once; a few minutes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

DEMO_ARGS ?=
demo: install
	$(BIN)/nhis demo $(DEMO_ARGS)

test: install
	$(BIN)/python -m pytest -q tests

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	$(BIN)/python -m pytest -q tests/integration

bench: install
	$(BIN)/python -m bench.generate
	$(BIN)/python -m bench.rules
	$(BIN)/python -m bench.etl
	$(BIN)/python -m bench.etl --reload
	$(BIN)/python -m bench.etl --poison
	$(BIN)/python -m bench.etl --index-costs
	$(BIN)/python -m bench.stats
	$(BIN)/python -m bench.simulate
	$(BIN)/python -m bench.boot
	$(BIN)/python -m bench.soak
	$(BIN)/python -m bench.load

bench-scale: install  # ten years x 1M rows: about 15 minutes and 3 GB of disk
	$(BIN)/python -m bench.scale

lint: install
	$(BIN)/ruff check api workers shared tests bench

clean:
	rm -rf $(VENV) data/.demo
