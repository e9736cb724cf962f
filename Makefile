# The two commands: `make run` (the whole platform) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
PORT ?= 8000

.PHONY: run test bench setup migrate browser clean

setup: $(VENV)/.stamp-deps node_modules/.stamp-npm

$(VENV)/.stamp-deps: requirements.txt $(wildcard requirements/*.txt)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

node_modules/.stamp-npm: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

migrate: setup
	$(MANAGE) migrate --noinput

run: migrate
	$(MANAGE) ensure_root
	$(MANAGE) setup_demo
	PORT=$(PORT) $(MANAGE) serve

# Debian's Chromium drives the browser tests (Playwright, executable /usr/bin/chromium).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "chromium is missing: browser tests will be skipped (install Debian's chromium package)"; }

test: setup browser
	$(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)

bench: setup
	$(PY) -m pip install -q -r requirements/bench.txt
	@set -e; for f in bench/*.py; do echo "=== $$f"; $(PY) $$f; done

clean:
	rm -rf var/staticfiles var/test-*.sqlite3
