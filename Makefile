# The README's commands. Everything a fresh Debian machine with Python >= 3.11 needs is
# installed from here: the virtualenv, our package with its dev tools, and the mosquitto
# binary the broker tests start on free ports.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench fuzz venv system-deps clean

# Debian's python3 ships without venv/ensurepip: install python3-venv when we may (root).
$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing python3-venv"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  fi; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml setup.py | $(BIN)/python
	@PYTHON=$(PYTHON) sh scripts/system-deps.sh
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	@PYTHON=$(PYTHON) sh scripts/system-deps.sh

demo: venv
	$(BIN)/settleguard demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy protocol

pytest: venv system-deps
	@$(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

test: lint typecheck pytest

bench: venv system-deps
	$(BIN)/python benchmarks/run_all.py --quick

fuzz: venv
	SETTLEGUARD_FUZZ_EXAMPLES=20000 $(BIN)/python -m pytest -q -m fuzz tests

clean:
	rm -rf $(VENV) settleguard-demo .pytest_cache .mypy_cache .ruff_cache
