# The README's quick start calls these two targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup setup-cpu demo test lint typecheck bench clean

$(BIN)/biasprobe: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	touch $(BIN)/biasprobe

setup: $(BIN)/biasprobe

# Without a GPU (README, Install): torch and torchvision from PyTorch's CPU index, without the
# CUDA libraries, then biasprobe as `setup` installs it. Not the default: CI uses `setup`.
# Run it in a fresh clone or after `make clean` (a CUDA build already in .venv is kept).
setup-cpu:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/pip install -e '.[dev]'
	touch $(BIN)/biasprobe

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
