# Conveyor: `make run` starts everything on the embedded default; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test unit e2e postgres check lint chromium services clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m webapp.launcher

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL and redis-server, for the second pass of the tests (tests/services.py starts
# throw-away ones on 127.0.0.1 and stops them afterwards)
services:
	@{ command -v redis-server && ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 || { \
	  echo "Installing Debian's PostgreSQL and Redis for the scale-out tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null; }

# every test on the embedded default (SQLite, embedded Redis), then the unit and integration
# tests again on PostgreSQL with a real redis-server. The browser tests mostly wait (on the
# browser, the server, the worker), so they run alongside the PostgreSQL pass, whose output is
# shown once both have finished.
test: $(STAMP) chromium services check
	$(BIN)/pytest -q --ignore=tests/e2e
	@mkdir -p var; log=var/postgres-pass.log; \
	echo "Browser tests, with the PostgreSQL pass alongside (its output follows)..."; \
	$(BIN)/python tests/services.py -- $(BIN)/pytest -q --ignore=tests/e2e >$$log 2>&1 & pass=$$!; \
	$(BIN)/pytest -q tests/e2e; browser=$$?; \
	wait $$pass; postgres=$$?; \
	echo "--- PostgreSQL pass ---"; cat $$log; \
	test $$browser -eq 0 && test $$postgres -eq 0

unit: $(STAMP)
	$(BIN)/pytest -q --ignore=tests/e2e

e2e: $(STAMP) chromium
	$(BIN)/pytest -q tests/e2e

postgres: $(STAMP) services
	$(BIN)/python tests/services.py -- $(BIN)/pytest -q --ignore=tests/e2e

# the code's own rules: lint, format, types, and which module may import which (pyproject.toml)
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

lint: check

clean:
	rm -rf $(VENV) var .pytest_cache
