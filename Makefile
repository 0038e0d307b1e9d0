# Set-up and everyday commands. Every target installs what it needs first.
SHELL := /bin/bash
# The real interpreter, not a pyenv shim (a shim costs ~150 ms on every start).
PYTHON ?= $(shell python3 -c 'import sys; print(sys.executable)')
VENV := .venv
BIN := $(VENV)/bin
# bubblewrap, libseccomp2: sandboxes; autoconf..g++: building AWS's Node.js runtime client (aws-lambda-ric).
DEBIAN_PACKAGES := bubblewrap libseccomp2 nftables python3-venv curl autoconf automake libtool cmake make g++
LAMBDAD_PORT ?= 3001
LAMBDAD_DATA_DIR ?= ./.lambdad
PYTEST_ARGS ?=

.PHONY: install serve test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: Debian packages missing:$$missing (run 'sudo apt-get install$$missing')"; fi; \
	fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python venv failed; on Debian run: apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

serve: install
	$(BIN)/lambdad serve --port $(LAMBDAD_PORT) --data-dir $(LAMBDAD_DATA_DIR)

lint: install
	$(BIN)/ruff check lambdad tests bench
	$(BIN)/ruff format --check lambdad tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
