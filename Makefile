# The two commands of the README: `make run` sets everything up and runs the stack,
# `make test` sets everything up and runs every test. Both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint test-postgres test-pg-faults setup browser clean vendor contract bench-sampler

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install-torch scripts/ensure-venv
	scripts/ensure-venv $(PYTHON) $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	scripts/install-torch $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/perfmon up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

browser:
	scripts/ensure-chromium

test: $(STAMP) browser lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The sampler's CPU per value beside node_exporter's (docs/operations.md, "Sampler cost"); ~7 minutes.
bench-sampler: $(STAMP)
	scripts/ensure-node-exporter
	$(BIN)/python bench/sampler_cost.py --seconds 120 --demo-gpus 0 8 $(ARGS)

# schemathesis against a live server: every check on every API operation (also part of `make test`).
contract: $(STAMP)
	$(BIN)/python -m pytest tests/contract -s $(PYTEST_ARGS)

# The database-touching tests again, on PostgreSQL (the production database).
test-postgres: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
		$(BIN)/python -m pytest tests/dashboard $(PYTEST_ARGS)

# Refreshes static/vendor/ from the npm registry at the versions pinned in package.json.
vendor:
	npm ci --ignore-scripts
	cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/chart.umd.min.js
	cp node_modules/chartjs-plugin-zoom/dist/chartjs-plugin-zoom.min.js static/vendor/
	cp node_modules/hammerjs/hammer.min.js static/vendor/
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css static/vendor/

clean:
	rm -rf $(VENV) node_modules

# The fault suite's PostgreSQL case: stops and starts the PostgreSQL server of DATABASE_URL (as root,
# pg_ctlcluster); the stack uses a database of its own there. A step of .ci/run.
test-pg-faults: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} PERFMON_PG_FAULTS=1 \
		$(BIN)/python -m pytest tests/e2e/test_faults_postgres.py -s $(PYTEST_ARGS)
