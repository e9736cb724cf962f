# The two commands: `make run` (the whole platform) and `make test` (the whole suite).
# Dependencies come in layers (README "Dependencies"): runtime for `make run`, + test for `make test`,
# + bench for `make bench`; each is a pinned, hashed lock compiled from its .in file by `make lock`.
SHELL := /bin/bash
PYTHON_VERSION := $(shell cat .python-version)
PYTHON ?= $(shell command -v python$(PYTHON_VERSION) || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
PORT ?= 8000
PIP_INSTALL := $(PY) -m pip install --require-hashes --no-deps --progress-bar on
# The same check for the interpreter that builds the venv and for the venv itself.
CHECK_PYTHON = $(1) -c 'import sys; want = "$(PYTHON_VERSION)"; have = "%d.%d" % sys.version_info[:2]; \
	sys.exit(0 if have == want else f"Python {want} is needed (.python-version); {sys.executable} is {have}")'

.PHONY: run test bench setup setup-test migrate static browser lock clean

setup: $(VENV)/.stamp-runtime node_modules/.stamp-npm
setup-test: setup $(VENV)/.stamp-test

$(VENV)/.stamp-python: .python-version
	@test -x $(PY) || { $(call CHECK_PYTHON,$(PYTHON)) && echo "Creating the virtual environment $(VENV) with $(PYTHON)" && $(PYTHON) -m venv $(VENV); }
	@$(call CHECK_PYTHON,$(PY))
	@touch $@

$(VENV)/.stamp-runtime: requirements/runtime.txt $(VENV)/.stamp-python
	@echo "Installing the runtime layer: $$(grep -c '^[A-Za-z]' $<) pinned, hashed packages from $<"
	$(PIP_INSTALL) -r $<
	@touch $@

$(VENV)/.stamp-test: requirements/test.txt $(VENV)/.stamp-runtime
	@echo "Installing the test layer: $$(grep -c '^[A-Za-z]' $<) pinned, hashed packages from $<"
	$(PIP_INSTALL) -r $<
	@touch $@

$(VENV)/.stamp-bench: requirements/bench.txt $(VENV)/.stamp-runtime
	@echo "Installing the bench layer: $$(grep -c '^[A-Za-z]' $<) pinned, hashed packages from $<"
	$(PIP_INSTALL) -r $<
	@touch $@

node_modules/.stamp-npm: package.json package-lock.json
	@echo "Installing the front-end packages (package-lock.json)"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

migrate: setup
	@echo "Bringing the database up to date (migrations)"
	$(MANAGE) migrate --noinput

# Hashed file names and a manifest (config/settings.py STORAGES), served by whitenoise; collected
# again when a static file, a front-end package or a Python package changed.
STATIC_MANIFEST := $(or $(PLATFORM_VAR_DIR),var)/staticfiles/staticfiles.json
static: setup $(STATIC_MANIFEST)
$(STATIC_MANIFEST): $(shell find static -type f) package-lock.json requirements/runtime.txt
	@echo "Collecting static files under hashed names into $(dir $@) (about a minute the first time)"
	$(MANAGE) collectstatic --noinput -v 1

# Each step says what it does; the serve command says "running" once the website answers.
run: migrate static
	@echo "Making sure the root account exists"
	$(MANAGE) ensure_root
	@echo "Loading the demo data (the first time only; later runs find it in place)"
	$(MANAGE) setup_demo
	PORT=$(PORT) $(MANAGE) serve

# Debian's Chromium drives the browser tests (Playwright, executable /usr/bin/chromium).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "chromium is missing: browser tests will be skipped (install Debian's chromium package)"; }

test: setup-test browser
	$(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)

bench: setup $(VENV)/.stamp-bench
	@set -e; for f in bench/*.py; do echo "=== $$f"; $(PY) $$f; done

# Recompile the locks after changing a requirements/*.in file. Existing pins are kept unless the .in
# file asks for another version; `make lock LOCK_ARGS=--upgrade` takes the newest releases.
LOCK_VENV := var/pip-tools
lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q pip-tools==7.6.2; }
	@set -e; cd requirements; for layer in runtime test bench; do \
	  echo "Compiling requirements/$$layer.txt"; \
	  CUSTOM_COMPILE_COMMAND="make lock" ../$(LOCK_VENV)/bin/pip-compile -q --generate-hashes --strip-extras \
	    --allow-unsafe --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) -o $$layer.txt $$layer.in; done

clean:
	rm -rf var/staticfiles var/test-*.sqlite3
