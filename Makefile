# The README's quick start calls these two targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

$(BIN)/biasprobe: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	touch $(BIN)/biasprobe

setup: $(BIN)/biasprobe

demo: setup
	$(BIN)/biasprobe demo

test: setup
	bash scripts/install-test-system-deps.sh
	$(BIN)/ruff check biasprobe tests benchmarks
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check biasprobe tests benchmarks

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
