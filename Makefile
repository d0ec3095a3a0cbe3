# truncflow: two commands do everything on a fresh machine (Python 3.11, git, make, package registries).
#   make book   build and execute the whole book into book/_build/html/
#   make test   everything CI checks
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BOOK_HTML := book/_build/html

.PHONY: book book-build test export sync-check nbtest pytest browser-deps bench clean help
.DEFAULT_GOAL := help

help:
	@echo "make book   - set up .venv, export the library, execute the notebooks, build the HTML book"
	@echo "make test   - set up, check library/notebook sync, run nbdev-test, build the book, run pytest"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

export: $(STAMP)
	$(BIN)/nbdev-export

# The library must be exactly what the notebooks export.
sync-check: $(STAMP)
	@rm -rf .sync-check && mkdir -p .sync-check && cp truncflow/*.py .sync-check/
	$(BIN)/nbdev-export
	@if ! diff -r -q .sync-check truncflow --exclude=__pycache__ --exclude='*.egg-info'; then \
	  echo "ERROR: truncflow/ is not what nbs/ exports. Edit the notebooks, run nbdev-export, commit both."; \
	  rm -rf .sync-check; exit 1; fi
	@rm -rf .sync-check
	@if [ "$${CI:-}" = "true" ] && [ -n "$$(git status --porcelain -- truncflow nbs)" ]; then \
	  git status --porcelain -- truncflow nbs; echo "ERROR: nbdev-export changed tracked files"; exit 1; fi
	@echo "sync-check: truncflow/ matches the notebooks"

NBTEST_WORKERS ?= 2
nbtest: $(STAMP)
	$(BIN)/nbdev-test --n-workers $(NBTEST_WORKERS) --timing

book: export
	@$(MAKE) --no-print-directory book-build

book-build: $(STAMP)
	$(BIN)/jupyter-book build . --toc _toc.yml --config book/_config.yml --path-output book
	@echo "Book: $(BOOK_HTML)/index.html"

browser-deps:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (Debian package) for the browser checks"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

pytest: $(STAMP) browser-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# nbdev-test and the book build each execute every notebook, each mostly on one core: run them side by side.
test: sync-check
	$(MAKE) --no-print-directory -j2 --output-sync=target nbtest book-build NBTEST_WORKERS=1
	$(MAKE) --no-print-directory pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf book/_build .pytest_cache .hypothesis
