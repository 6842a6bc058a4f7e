# The two commands a fresh machine needs: `make run` (the responder on http://127.0.0.1:7071) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 7071
DATA   ?= .data

.PHONY: setup run test lint bench clean

setup: $(VENV)/.installed .azurite/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: python3.11 (or python3 >= 3.11) is needed: apt-get install python3 python3-venv"; exit 1; }
	@PYTHON=$(PYTHON) scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# Azurite, the Table Storage emulator the table store's tests run: 3.35.0 is the last release for Node 20.
.azurite/.installed: $(VENV)/.installed
	npm install --prefix .azurite azurite@3.35.0 --no-audit --no-fund --silent
	@touch $@

run: setup
	$(BIN)/dr serve --port $(PORT) --data-dir $(DATA)

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .mypy_cache .ruff_cache .hypothesis
