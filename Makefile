PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install migrate run test test-fast lint format clean bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(INSTALLED) ## Create .venv and install the dependencies

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: migrate ## Set up, then run web (127.0.0.1:8000), a worker, and recovery with beat until Ctrl-C
	$(BIN)/python manage.py ensure_admin --quiet
	@echo "Genvault on http://127.0.0.1:8000/ (admin: /admin/, health: /healthz). Ctrl-C stops everything."
	@trap 'trap - INT TERM EXIT; kill 0' INT TERM EXIT; \
	$(BIN)/celery -A config worker --loglevel INFO --concurrency 2 -n work@%h & \
	$(BIN)/celery -A config worker --beat --pool solo -Q genvault.recovery --loglevel INFO -n recovery@%h & \
	$(BIN)/python manage.py runserver 127.0.0.1:8000 & \
	wait

test: install ## Set up, then run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install ## Unit and integration tests only: no worker processes, browser or slow tests
	$(BIN)/python -m pytest -m "not e2e and not browser and not slow" $(PYTEST_ARGS)

SCALE ?= 1
bench: install ## Benchmark against naive baselines (PostgreSQL; SCALE=0.01 for 10k generations)
	$(BIN)/python -m tests.bench --scale $(SCALE)

lint: install ## ruff, ruff format --check, mypy, the import contracts, djlint and the migrations check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/djlint templates --lint
	$(BIN)/python manage.py makemigrations --check --dry-run

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove .venv and var/ (the local database, media and broker)
	rm -rf $(VENV) var
