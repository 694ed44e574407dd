# The two commands a user needs: `make run` and `make test`. Both start from a fresh clone
# with nothing but Python 3.11+, and install what they need into .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1

.DEFAULT_GOAL := help
.PHONY: help run test lint format migrate lock

help:
	@echo "make run     serve the inbox on http://$(HOST):$(PORT) (SQLite, in-process live updates)"
	@echo "make test    lint and run the whole test suite"
	@echo "make format  format the code with ruff"
	@echo "make lock    re-pin requirements.lock (the Docker image's dependencies) from pyproject.toml"

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
	DEBUG=$${DEBUG:-true} $(BIN)/daphne -b $(HOST) -p $(PORT) project.asgi:application

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

test: lint
	$(BIN)/pytest

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The image installs exactly these versions, checked by hash. Run after changing the runtime
# dependencies in pyproject.toml; the pins are for Linux on Python 3.11, the image's.
lock: $(VENV)/.dev
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
