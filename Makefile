# Shuku: `make demo` builds a synthetic library's warehouse; `make test` runs the tests.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export DAGSTER_DISABLE_TELEMETRY := 1
export GX_ANALYTICS_ENABLED := false

.PHONY: demo test test-all install clean-home ui prism

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# PySpark (optional, for the Spark equivalence test) only where a JVM is: `make test` pulls it in then.
SPARK_STAMP := $(VENV)/.spark-installed
JAVA := $(shell command -v java 2>/dev/null)
$(SPARK_STAMP): requirements-spark.lock $(STAMP)
	$(PY) -m pip install --quiet -r requirements-spark.lock
	@touch $(SPARK_STAMP)

# datacontract-cli, the outside validator of the contracts (tests/test_datacontract_cli.py), in its own
# virtual environment: its pins (DuckDB 1.5, ODCS 3.2) differ from the pipeline's.
DC_VENV  := .venv-datacontract
DC_STAMP := $(DC_VENV)/.installed
$(DC_STAMP): requirements-datacontract.lock
	@test -x $(DC_VENV)/bin/python || $(PYTHON) -m venv $(DC_VENV)
	$(DC_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-datacontract.lock
	$(DC_VENV)/bin/python -m pip check --quiet
	@touch $(DC_STAMP)

# Prism (npm, in the ignored .prism/), which serves the official COUNTER_SUSHI API description on 127.0.0.1 for
# the harvester's tests (tests/test_harvest_prism.py). Install scripts off: one of its dependencies would call home.
PRISM_VERSION := 5.16.0
PRISM := .prism/node_modules/.bin/prism
NPM := $(shell command -v npm 2>/dev/null)
$(PRISM):
	@mkdir -p .prism
	SCARF_ANALYTICS=false npm install --prefix .prism --ignore-scripts --no-audit --no-fund --silent \
		@stoplight/prism-cli@$(PRISM_VERSION)

prism: $(PRISM)

# Generate a small synthetic library, run every asset on it, print where to look.
demo: $(STAMP)
	$(VENV)/bin/shuku demo

# The default suite (aim: under 4 minutes on 2 cores); CI also runs the slow tests.
test: $(STAMP) $(DC_STAMP) $(if $(JAVA),$(SPARK_STAMP)) $(if $(and $(CI),$(NPM)),$(PRISM))
	$(VENV)/bin/ruff check --quiet .
	$(PY) -m pytest -q $(if $(CI),,-m "not slow") $(PYTEST_ARGS)

test-all: $(STAMP) $(DC_STAMP) $(if $(JAVA),$(SPARK_STAMP)) $(if $(NPM),$(PRISM))
	$(VENV)/bin/ruff check --quiet .
	$(PY) -m pytest -q $(PYTEST_ARGS)

ui: $(STAMP)
	$(VENV)/bin/shuku ui
