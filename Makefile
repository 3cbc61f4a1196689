# Pairsmith: `make run` serves a demo on http://127.0.0.1:8000, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install install-test run serve worker test lint check-deploy bench lock clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Pairsmith needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: requirements/base.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/base.lock
	@touch $@

$(VENV)/.installed-test: requirements/test.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/test.lock
	@touch $@ $(VENV)/.installed-base

install: $(VENV)/.installed-base
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@if [ -n "$$REDIS_URL" ]; then echo "REDIS_URL is set: start a worker too, in another terminal: make worker"; \
	  else echo "No REDIS_URL: background jobs run inline in the web process."; fi
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# -B: the worker also runs the 30-second sweep that re-sends lost jobs (docker compose runs a separate beat).
worker: install
	$(BIN)/celery -A pairsmith worker -B --schedule var/celerybeat-schedule --loglevel=INFO --concurrency=2

test: install-test
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Production settings must pass Django's deployment checklist.
check-deploy: install
	DEBUG=0 SECRET_KEY=check-deploy-$$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n') ALLOWED_HOSTS=pairsmith.example \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING

bench: install-test
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# Re-pin the transitive dependency set from pyproject.toml.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 -o requirements/base.lock
	$(BIN)/uv pip compile pyproject.toml --extra test --python-version 3.11 -o requirements/test.lock

clean:
	rm -rf $(VENV) var .pytest_cache
