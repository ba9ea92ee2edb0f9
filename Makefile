# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap .venv when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench mosquitto venv clean js-deps

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ampmq needs Python >= 3.11")'
	@test -x $(PY) || { echo "creating $(VENV) (a virtualenv for ampmq)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing ampmq and its dependencies into $(VENV) (about a minute on a fresh machine; once)"
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test,demo]'
	@touch $(STAMP)

# Home Assistant itself, for checking discovery against its own schemas and template engine
# (tests/foundation/test_home_assistant_real.py). Its own virtualenv: HA pins its own versions of libraries
# ampmq uses. 2024.3.3 is the last release for Python 3.11. About two minutes, once.
HA_VENV ?= .venv-ha
HA_PYTHON ?= $(PYTHON)
HA_STAMP := $(HA_VENV)/.installed-stamp
HA_REQUIREMENTS := tests/foundation/home_assistant/requirements.txt

$(HA_STAMP): $(HA_REQUIREMENTS)
	@$(HA_PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else "Home Assistant 2024.3.3 needs Python 3.11 or 3.12: make test HA_PYTHON=python3.12")'
	@test -x $(HA_VENV)/bin/python || { echo "creating $(HA_VENV) (Home Assistant's own virtualenv)"; $(HA_PYTHON) -m venv $(HA_VENV); }
	@echo "installing Home Assistant into $(HA_VENV) for the discovery check (about two minutes; once)"
	@$(HA_VENV)/bin/python -m pip install -q --upgrade pip
	@$(HA_VENV)/bin/python -m pip install -q -r $(HA_REQUIREMENTS)
	@touch $(HA_STAMP)

# A Mosquitto binary for the test broker: Debian's package when it is missing and apt is usable.
mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || test -n "$$MQTT_URL" || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing mosquitto (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null; \
	  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null; \
	  else \
	    echo "make test needs mosquitto on PATH (or MQTT_URL): install your system's mosquitto package"; exit 1; \
	  fi; }

# The independent OCPP client (npm ocpp-rpc) the gateway tests drive: node >= 18 and npm are required.
JS_DEPS := tests/js/node_modules/.package-lock.json

$(JS_DEPS): tests/js/package.json tests/js/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make test needs node >= 18 and npm for the OCPP test client in tests/js"; exit 1; }
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	@touch $(JS_DEPS)

# A real Node-RED 4.x with Dashboard 2 (node >= 18.5), in which tests/node_red runs the example flow.
NODE_RED_DEPS := tests/node_red/node_modules/.package-lock.json

$(NODE_RED_DEPS): tests/node_red/package.json tests/node_red/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make test needs node >= 18.5 and npm for Node-RED in tests/node_red"; exit 1; }
	cd tests/node_red && npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_RED_DEPS)

js-deps: $(JS_DEPS) $(NODE_RED_DEPS)

test: $(STAMP) $(HA_STAMP) mosquitto $(JS_DEPS) $(NODE_RED_DEPS)
	$(PY) -m pytest

demo: $(STAMP)
	$(VENV)/bin/ampmq demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict shared services/allocator/core

bench: $(STAMP) mosquitto
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(HA_VENV) .pytest_cache .mypy_cache .ruff_cache
