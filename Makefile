# The two commands a user needs: `make run` and `make test`. Both start from a fresh clone
# with nothing but Python 3.11+, and install what they need into .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1

.DEFAULT_GOAL := help
.PHONY: help run test lint format migrate

help:
	@echo "make run     serve the inbox on http://$(HOST):$(PORT) (SQLite, in-process live updates)"
	@echo "make test    lint and run the whole test suite"
	@echo "make format  format the code with ruff"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps, so a second `make run` starts at once and a changed pyproject.toml reinstalls.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(VENV)/.runtime $@

migrate: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py ensure_agent
	@# manage.py serve is daphne with a graceful SIGTERM (see inbox/management/commands/serve.py).
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py serve -b $(HOST) -p $(PORT)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
