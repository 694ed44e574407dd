# The two commands a user needs: `make run` and `make test`. Both start from a fresh clone
# with nothing but Python 3.11.3+, and install what they need into .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1

.DEFAULT_GOAL := help
.PHONY: help run test lint format migrate lock demo bench css check-python

help:
	@echo "make run     serve the inbox on http://$(HOST):$(PORT) (SQLite, in-process live updates)"
	@echo "make test    lint and run the whole test suite"
	@echo "make demo    serve the inbox and play simulated conversations into it (Ctrl-C stops both)"
	@echo "make bench   run the benchmarks; results in bench/results/ and the README"
	@echo "make format  format the code with ruff"
	@echo "make lock    re-pin requirements.lock (the Docker image's dependencies) from pyproject.toml"
	@echo "make css     rebuild theme/static/css/dist/styles.css with Tailwind (needs Node/npm)"

# requirements.lock (the image's pins, which `make run` matches) holds only from Python 3.11.3:
# below it redis-py also needs async-timeout, which the lock lacks, and the channel layer is
# then unreachable. Refused before anything is installed; an existing .venv is checked too.
check-python:
	@$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -c 'import sys; v = sys.version_info[:3]; \
	sys.exit(0 if v >= (3, 11, 3) else "make: Python 3.11.3 or newer is needed (requirements.lock " \
	"pins redis-py without async-timeout); %s is %d.%d.%d. Use a newer one, e.g. make run " \
	"PYTHON=python3.12 (after rm -rf $(VENV) if it was made with this one)." % (sys.executable, *v))'

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)

# Stamps, so a second `make run` starts at once and a changed pyproject.toml reinstalls.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python check-python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python check-python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(VENV)/.runtime $@

migrate: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput

# Where the worker tells the server of delivery changes without Redis (README, "Live ticks"):
# the server itself, over loopback when it listens on every address.
NOTIFY_HOST = $(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(if $(filter ::,$(HOST)),[::1],$(HOST)))
NOTIFY_URL = http://$(NOTIFY_HOST):$(PORT)

# The server and one delivery worker (README, "Replies"), one Ctrl-C for both: the worker,
# a background job of this shell, ignores SIGINT, so the trap sends it SIGTERM; the server
# in the foreground takes the Ctrl-C itself.
run: migrate
	$(BIN)/python manage.py ensure_agent --login-url http://$(NOTIFY_HOST):$(PORT)/accounts/login/
	@# manage.py serve is daphne with a graceful SIGTERM (see inbox/management/commands/serve.py).
	@trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' INT TERM EXIT; \
	WORKER_NOTIFY_URL=$(NOTIFY_URL) $(BIN)/python manage.py worker & worker=$$!; \
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py serve -b $(HOST) -p $(PORT)

# The demo: the server and worker of `make run` plus the simulator posting to its webhook, signed with
# WEBHOOK_SECRET when it is set. All three are background jobs of this shell; Ctrl-C reaches
# the shell, whose trap stops the simulator first (so that it never posts to a server on its
# way out), then the server and the worker, and says so. A database of its own, demo.sqlite3
# (DATABASE_URL to choose another): beside `make run`'s db.sqlite3, the in-process channel
# layers of the two would not tell each other's pages of their events. About four minutes
# of traffic by default.
DEMO_CONVERSATIONS ?= 60
DEMO_RATE ?= 2
DEMO_CONCURRENCY ?= 6
# The simulator is also the provider the server sends replies to (devtools/simulator.py,
# DemoProvider), so an agent can answer a simulated customer.
DEMO_PROVIDER_PORT ?= 8099
demo: export PROVIDER_URL ?= http://$(HOST):$(DEMO_PROVIDER_PORT)/messages
demo: export PROVIDER_SECRET ?= demo-provider-secret
# `make demo DEMO_CHANNEL=whatsapp` plays Meta's envelopes to /webhook/whatsapp/ instead, and
# the simulator stands in for the Graph API on DEMO_GRAPH_PORT (README, "Connect WhatsApp").
DEMO_CHANNEL ?= generic
DEMO_GRAPH_PORT ?= 8098
demo: export WHATSAPP_VERIFY_TOKEN ?= demo-verify-token
demo: export WHATSAPP_APP_SECRET ?= demo-app-secret
demo: export WHATSAPP_ACCESS_TOKEN ?= demo-access-token
demo: export WHATSAPP_PHONE_NUMBER_ID ?= 106540352242922
demo: export WHATSAPP_GRAPH_URL ?= http://$(HOST):$(DEMO_GRAPH_PORT)
demo: export DATABASE_URL ?= sqlite:///$(CURDIR)/demo.sqlite3
demo: migrate
	@echo "Open http://$(NOTIFY_HOST):$(PORT)/ and log in; conversations arrive at $(DEMO_RATE) events/s."
	$(BIN)/python manage.py ensure_agent --login-url http://$(NOTIFY_HOST):$(PORT)/accounts/login/
	@trap 'kill $$sim 2>/dev/null; wait $$sim 2>/dev/null; kill $$server $$worker 2>/dev/null; \
		wait $$server $$worker 2>/dev/null; echo "make demo: stopped the simulator, the server and the worker."; \
		exit 0' INT TERM; \
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py serve -b $(HOST) -p $(PORT) & server=$$!; \
	WORKER_NOTIFY_URL=$(NOTIFY_URL) $(BIN)/python manage.py worker & worker=$$!; \
	$(BIN)/python manage.py simulate --url http://$(HOST):$(PORT) --wait 30 \
		--conversations $(DEMO_CONVERSATIONS) --rate $(DEMO_RATE) --concurrency $(DEMO_CONCURRENCY) \
		--channel $(DEMO_CHANNEL) & sim=$$!; \
	wait $$sim; \
	echo "The simulation is over; the server and the worker keep running until Ctrl-C."; \
	wait $$server

$(VENV)/.bench: pyproject.toml | $(BIN)/python check-python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[bench]'
	touch $(VENV)/.runtime $@

# Starts its own servers on ports BENCH_PORT.. (default 8400) and its own databases; see the
# README's Performance section for the settings. Under 10 minutes on 2 cores.
bench: $(VENV)/.bench
	$(BIN)/python -m bench.run --update-readme $(BENCH_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

# The container test (marker: container) builds the image and runs the compose stack, which
# takes minutes and an engine: `.ci/run` runs it once, after the suite (see the README's
# "How the image and the stack are tested").
test: lint
	$(BIN)/pytest -m "not container"

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The image installs exactly these versions, checked by hash. Run after changing the runtime
# dependencies in pyproject.toml; the pins are for Linux on Python 3.11, the image's.
lock: $(VENV)/.dev
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

# The stylesheet is committed, so only a change to the templates' classes needs this (and Node).
css:
	cd theme/static_src && npm ci --no-audit --no-fund && npm run build
