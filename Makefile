# The README's quick start calls these two targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint typecheck bench clean

$(BIN)/biasprobe: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	touch $(BIN)/biasprobe

setup: $(BIN)/biasprobe

demo: setup
	$(BIN)/biasprobe demo

# ruff, then mypy (settings and files in pyproject.toml's [tool.mypy]), then every test.
test: setup
	bash scripts/install-test-system-deps.sh
	$(BIN)/ruff check biasprobe tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check biasprobe tests benchmarks
	$(BIN)/mypy

typecheck: setup
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
