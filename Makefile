# rasa-rpa: `make run` starts the reference bot, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RASA_BIN := .venv-rasa/bin
MODEL := models/reference.tar.gz
export RASA_TOKEN ?= rasa-rpa-dev-token

.PHONY: run test lint unit bench docs setup clean

setup: $(VENV)/.installed .venv-rasa/.installed $(MODEL) web/build/rasa-webchat.js

# rasa-rpa depends on rasa-rpa-robot, which is not on PyPI: naming its folder
# in the same command lets pip resolve the dependency from there.
$(VENV)/.installed: pyproject.toml robot-client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ./robot-client -e '.[dev,reference-bot]'
	touch $@

.venv-rasa/.installed: rasa-server/rasa-3.6.21-py310.lock.txt devtools/install-rasa.sh
	devtools/install-rasa.sh

$(MODEL): .venv-rasa/.installed domain.yml config.yml $(wildcard data/*.yml)
	$(RASA_BIN)/rasa train --config config.yml --domain domain.yml --data data \
		--out models --fixed-model-name reference

# npm's postinstall (web/build-widget.mjs) writes the widget the page loads:
# rasa-webchat without its Google Fonts import; Inter comes from @fontsource.
web/build/rasa-webchat.js: web/package.json web/package-lock.json web/build-widget.mjs
	cd web && npm install --no-audit --no-fund
	touch $@

## the main job: Rasa on :5005, the action server with rasa-rpa on :5055, the chat page on :8080
run: setup
	$(BIN)/python -m devtools.runner

## every test: lint, types, unit, integration, end to end with real Rasa, browser,
## and the documentation site built with --strict (tests/test_docs.py)
test: setup lint
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check rasa_rpa robot-client tests devtools actions benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(VENV)/.installed
	$(BIN)/python -m pytest -q -m "not e2e and not browser and not pypi"

## benchmarks: every figure next to its baseline (table + bench-results/latest.json)
bench: setup
	$(BIN)/python -m benchmarks

## the documentation site on http://127.0.0.1:8000, rebuilt as docs/ changes
docs: $(VENV)/.installed
	$(BIN)/python -m mkdocs serve

clean:
	rm -rf .rasa-rpa models .pytest_cache .mypy_cache site
