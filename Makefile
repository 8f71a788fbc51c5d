# The two commands: `make run` (the app with demo data) and `make test` (lint + the suite).
# Both start from nothing: they create .venv, install the pinned requirements, check that
# PostgreSQL and Redis answer and create the database when it is missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install: pip runs again only when a requirements file changes.
INSTALLED := $(VENV)/.installed

.PHONY: help run test lint bench setup services database browser

help:
	@echo "make run    migrate, load the demo tenant and start web + Celery worker + beat"
	@echo "make test   lint, makemigrations --check and the test suite on PostgreSQL and Redis"
	@echo "make lint   ruff check, ruff format --check, mypy, makemigrations --check and lint_migrations only"
	@echo "make bench  every benchmark in bench/ (BENCH_SMALL=1 for a quick run)"

$(INSTALLED): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || { echo "Creating $(VENV) with $$(command -v $(PYTHON))"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

services: $(INSTALLED)
	@$(BIN)/python -m scripts.check_services

database: services
	@$(BIN)/python -m scripts.ensure_database

setup: database

# celery -A crm (the worker and beat) defaults to the production settings: honcho starts
# the Procfile with the development ones unless DJANGO_SETTINGS_MODULE says otherwise.
# seed_demo migrates too: on a new database it writes the demo as the old system held it and
# upgrades it with migrate (the organizations merge included); on one an earlier `make run`
# built, it applies the new migrations and adds the demo rows of the apps added since.
# seed_demo runs as the tables' owner (DATABASE_URL, or MIGRATE_DATABASE_URL when set); the web,
# the worker and beat connect as the application's role (DATABASE_APP_ROLE, created by `make
# setup`), under row-level security (docs/operations.md, "Database roles").
run: setup
	$(BIN)/python manage.py seed_demo
	@echo
	@echo "Admin:     http://localhost:$(PORT)/admin/"
	@echo "API docs:  http://localhost:$(PORT)/api/v1/docs/"
	@echo "Health:    http://localhost:$(PORT)/healthz"
	@echo
	@mkdir -p var
	DJANGO_SETTINGS_MODULE="$${DJANGO_SETTINGS_MODULE:-crm.settings.base}" PATH="$(CURDIR)/$(BIN):$$PATH" \
		env $$($(BIN)/python -m scripts.ensure_database --run-env) $(BIN)/honcho start --port $(PORT)

# The browser tests (tests/browser/) drive Debian's chromium with Playwright (pytest-playwright);
# Playwright's own browser download is never used.
browser:
	@command -v chromium >/dev/null || { echo "Installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py lint_migrations

test: setup browser lint
	$(BIN)/pytest

bench: setup
	@set -- bench/*.py; test -e "$$1" || { echo "No benchmarks in bench/."; exit 0; }; \
	for script in "$$@"; do \
		echo "== $$script"; \
		$(BIN)/python "$$script" $(if $(filter 1,$(BENCH_SMALL)),--small); \
	done
