# wabulk: `make run` to start, `make test` to check. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
PY       := $(VENV)/bin/python
PIP      := $(VENV)/bin/pip
WABULK   := $(VENV)/bin/wabulk
PYTHON   ?= python3
VENDOR   := src/wabulk/web/static/vendor
STAMP    := $(VENV)/.stamp
DEVSTAMP := $(VENV)/.stamp-dev
# fonts-noto-core: Devanagari (Hindi pages) and other scripts for the browsers' screenshots.
APT_PKGS := chromium chromium-driver fonts-noto-core
# Page translations: each language's .po is compiled to the .mo Flask-Babel reads (not in git).
I18N     := src/wabulk/translations
MO_FILES := $(patsubst %.po,%.mo,$(wildcard $(I18N)/*/LC_MESSAGES/messages.po))
# Test processes: the suite mostly waits on browsers, servers and PostgreSQL, so three workers
# keep a 2-core machine busy (two left it a third idle). `make test TEST_WORKERS=0` runs it in
# one process.
TEST_WORKERS ?= 3

.PHONY: help install run test test-slow lint bench vendor browsers lock clean translations

help: ## Show this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "wabulk needs Python 3.11 or newer; $(PYTHON) is older. Set PYTHON=python3.12 (for example)."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e .
	touch $@

$(DEVSTAMP): $(STAMP)
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Only a changed .po is compiled again.
$(I18N)/%/LC_MESSAGES/messages.mo: $(I18N)/%/LC_MESSAGES/messages.po | $(STAMP)
	$(VENV)/bin/pybabel compile -l $* -i $< -o $@

translations: $(STAMP) ## For developers: gather marked strings into messages.pot, update every language's .po
	cd src/wabulk && ../../$(VENV)/bin/pybabel extract -F translations/babel.cfg \
	  -k lazy_gettext -k _l -k wabulkText -k N_ -k said -k said_n:1,2 --add-location=file --sort-by-file \
	  --project=wabulk --copyright-holder="wabulk contributors" -o translations/messages.pot .
	$(VENV)/bin/pybabel update -i $(I18N)/messages.pot -d $(I18N) --no-fuzzy-matching --ignore-obsolete

$(VENDOR)/.stamp: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed once to fetch Bootstrap, Chart.js and the emoji picker (apt-get install npm)."; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/bootstrap $(VENDOR)/bootstrap-icons/font $(VENDOR)/chart.js
	cp -r node_modules/bootstrap/dist/css node_modules/bootstrap/dist/js $(VENDOR)/bootstrap/
	cp -r node_modules/bootstrap-icons/font/bootstrap-icons.min.css node_modules/bootstrap-icons/font/fonts $(VENDOR)/bootstrap-icons/font/
	cp node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/chart.js/
	mkdir -p $(VENDOR)/emoji-picker-element
	cp node_modules/emoji-picker-element/index.js node_modules/emoji-picker-element/picker.js \
	  node_modules/emoji-picker-element/database.js $(VENDOR)/emoji-picker-element/
	cp node_modules/emoji-picker-element-data/en/emojibase/data.json $(VENDOR)/emoji-picker-element/data-en.json
	touch $@

vendor: $(VENDOR)/.stamp ## Install front-end libraries into the app's static folder

install: $(STAMP) $(MO_FILES) vendor ## Install into .venv with the front-end libraries and the PostgreSQL driver, without starting anything (servers)
	$(PIP) install --quiet -c constraints.txt -e '.[postgres]'

run: $(STAMP) $(MO_FILES) vendor ## Install, migrate the SQLite database in instance/ and serve on :5000
	$(WABULK) db upgrade
	$(WABULK) serve

browsers: ## Install Chromium, ChromeDriver and the fonts pages need from Debian when missing
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
	  { ! command -v fc-list >/dev/null || fc-list | grep -qi devanagari; }; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing $(APT_PKGS) from Debian..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	else \
	  echo "Browser tests need Chromium and ChromeDriver: sudo apt-get install $(APT_PKGS)"; exit 1; \
	fi

lint: $(DEVSTAMP) ## Check style and common bugs with ruff
	$(VENV)/bin/ruff check src tests $(wildcard bench/*.py)
	$(VENV)/bin/ruff format --check src tests $(wildcard bench/*.py)

test: $(DEVSTAMP) $(MO_FILES) vendor browsers lint ## Install what tests need, then lint and run every test
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "not slow"

test-slow: $(DEVSTAMP) $(MO_FILES) vendor browsers ## The long suites (fuzzing, soak)
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m slow

bench: $(DEVSTAMP) ## Run every benchmark in bench/ (each prints product vs baseline)
	@set -e; shopt -s nullglob; files=(bench/*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "No benchmarks yet."; fi; \
	for f in "$${files[@]}"; do echo "== $$f"; $(PY) "$$f"; done

lock: ## Re-pin every Python dependency into constraints.txt (after changing pyproject.toml)
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e '.[dev]'
	.venv-lock/bin/pip freeze --exclude-editable | grep -v '^wabulk' > constraints.txt
	rm -rf .venv-lock

clean: ## Remove the virtual environment, node_modules and vendored files (keeps instance/)
	rm -rf $(VENV) node_modules $(VENDOR) .pytest_cache .ruff_cache $(MO_FILES)
