# Two commands set everything up on a fresh Debian machine with Python 3.11: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the tests run for real: the MQTT broker, a server speaking InfluxDB's write API, and a
# browser (with its driver) for the caregiver page.
# Prometheus and InfluxDB 1.x run every dashboard query for real.
# openssl makes the CA and certificate of the broker's TLS listener in tests/broker/test_config.py.
# mosquitto-clients: mosquitto_pub overloads the hub in tests/reliability/test_faults.py (Python publishers cannot).
# postgresql: the store on PostgreSQL (HUB_STORE_URL), its initdb and postgres run by tests/real_servers.py.
TEST_DEBS := mosquitto victoria-metrics chromium chromium-driver prometheus influxdb openssl mosquitto-clients postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-fast test-slow test-deps bench bench-quality bench-real lint clean dashboards

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/hub demo $(DEMO_ARGS)

test-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test: $(VENV)/.installed-dev test-deps lint
	$(BIN)/pytest -m "not slow"

# The tests that start no server and no subprocess (no broker, no hub, no browser; tests/conftest.py
# refuses both to a test not marked `integration`): about a minute, and no Debian packages needed.
test-fast: $(VENV)/.installed-dev
	$(BIN)/pytest -m "not integration and not slow"

# The long variants (full fault-injection figures, the 1-hour soak). pytest exits 5 when it selects no
# test: that is a failure here too (a renamed marker must not turn this into a silent pass). `-s` prints
# the figures docs/operators/reliability.md quotes.
test-slow: $(VENV)/.installed-dev test-deps
	$(BIN)/pytest -m slow -s

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Regenerate dashboards/generated/*.json from the builders in dashboards/ (commit the result).
dashboards: $(VENV)/.installed-dev
	$(BIN)/python -m dashboards

# Ingest on SQLite and on PostgreSQL with 1, 2 and 3 hub nodes, SOS latency on both stores, the detector,
# start-up, and the take-over of a node killed with kill -9 (docs/developers/performance.md).
bench: $(VENV)/.installed-dev test-deps
	$(BIN)/python -m tests.benchmarks.ingest $(BENCH_ARGS)
	$(BIN)/python -m tests.benchmarks.sos_latency
	$(BIN)/python -m tests.benchmarks.detector
	$(BIN)/python -m tests.benchmarks.startup
	$(BIN)/python -m tests.benchmarks.takeover

# Then how much the simulated residents look like the four real homes, statistic by statistic.
bench-quality: $(VENV)/.installed-dev
	$(BIN)/python -m tests.benchmarks.detector_quality --households 100 --days 21 --collapses 40
	$(BIN)/python -m tests.benchmarks.realism

# The inactivity detector on four real homes with injected collapses (tests/benchmarks/realhomes/README.md).
bench-real: $(VENV)/.installed-dev
	$(BIN)/python -m tests.benchmarks.real_homes

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
