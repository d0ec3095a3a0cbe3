# truncflow: two commands do everything on a fresh machine (Python 3.11, git, make, package registries).
#   make book   build the HTML book into book/_build/html/, executing only the notebooks whose cached outputs are stale
#   make test   everything CI checks: every notebook executed exactly once, from scratch, and the tests/ that no
#               notebook can do; both cores kept busy (see "make test" below)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BOOK_HTML := book/_build/html
JB_BUILD := $(BIN)/jupyter-book build . --toc _toc.yml --config book/_config.yml --path-output book
# Executed notebooks are cached here by jupyter-cache (book/_config.yml: execute_notebooks: cache), keyed on each
# notebook's code cells. A notebook's outputs also depend on the library and on the recorded benchmark results:
# NB_INPUTS holds a hash of those, and when it changes `make book` empties the cache and re-reads every page.
NB_CACHE := book/_build/.jupyter_cache
NB_INPUTS := book/_build/.notebook-inputs
NB_REBUILD_ALL := book/_build/.rebuild-all
NB_INPUTS_HASH = $$(cat truncflow/*.py pyproject.toml benchmarks/results/* studies/results/* 2>/dev/null | sha256sum | cut -c1-16)
NB_CACHE_CHECK = h=$(NB_INPUTS_HASH); if [ "$$(cat $(NB_INPUTS) 2>/dev/null)" != "$$h" ]; then \
  echo "notebooks: the library or the recorded results changed since the cache was filled (or no cache): every notebook runs"; \
  rm -rf $(NB_CACHE); mkdir -p book/_build; echo "$$h" > $(NB_INPUTS); touch $(NB_REBUILD_ALL); fi
# XLA's compilation cache for one `make test` run, shared by the notebooks and the in-process tests (the
# subprocess tests set their own). It only skips recompiling identical programs: about 10-20 % less CPU.
TEST_JAX_CACHE := book/_build/.jax-cache
# The notebooks and tests compile several hundred small XLA programs, most of which then run for milliseconds: on
# this CPU, compiling costs more time than running. make test and make book therefore compile without LLVM's
# optimisation passes and with XLA's older CPU loop emitters instead of its fusion emitters (the last flag alone,
# measured on four chapters: 19_general 73 -> 40 CPU-s, 18_orbits 48 -> 34, 13_separated 45 -> 26, 17_integrate
# 26 -> 20); the values are the same to rounding. tests/test_ensemble.py,
# tests/test_fused.py and benchmarks/gpu.sh's dry run do the same. Benchmarks (make bench, benchmarks/*.py) and
# users' programs keep XLA's default.
CHEAP_XLA := XLA_FLAGS="$${XLA_FLAGS:+$$XLA_FLAGS }--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true \
  --xla_cpu_use_fusion_emitters=false"

.PHONY: book book-build lint test test-jobs book-render nbexec export sync-check nbtest pytest \
        pytest-browser pytest-subprocess pytest-main browser-deps bench floors clean help
.DEFAULT_GOAL := help

help:
	@echo "make book   - set up .venv, export the library, build the HTML book (executes stale notebooks only)"
	@echo "make test   - set up, lint, check library/notebook sync, execute every notebook once, build the book, run pytest"
	@echo "make nbtest - optional: nbdev-test, every notebook in nbdev's runner (make test does not use it)"
	@echo "make -j2 nbexec - optional: execute the stale notebooks two at a time into the book's cache, then make book"

# The venv is reinstalled only when pyproject.toml's content changes (nbdev-export rewrites the file, same text,
# on every export: comparing mtimes made every `make test` reinstall). The stamp is a copy of the installed file.
# uv installs (from PyPI, into the same venv, the same versions pip picks, pip itself included): about 7 s here
# against pip's 100 s. uv comes from PyPI into .venv/.uv (by the system's pip, so that the venv is made without
# pip: 0.1 s against 5); where that fails, pip does the same install.
UV := $(VENV)/.uv/bin/uv
UV_INSTALL = { test -x $(UV) || $(PYTHON) -m pip install --quiet --target $(VENV)/.uv uv; } && \
  $(UV) pip install --quiet --python $(BIN)/python -e ".[dev]" pip
PIP_INSTALL = $(BIN)/python -m ensurepip --default-pip >/dev/null && $(BIN)/python -m pip install --quiet -e ".[dev]"
$(STAMP): pyproject.toml
	@if [ -x $(BIN)/python ] && cmp -s pyproject.toml $(STAMP); then touch $(STAMP); else \
	  test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV); \
	  echo "installing truncflow[dev] into $(VENV) (uv pip install -e \".[dev]\")"; \
	  $(UV_INSTALL) || { echo "uv was not available: pip install instead"; $(PIP_INSTALL); }; \
	  cp pyproject.toml $(STAMP); fi

# Python writes each module's bytecode the first time a process imports it, and every later process reads it,
# also where PYTHONDONTWRITEBYTECODE is set in the environment (as on these machines): otherwise each notebook
# kernel and pytest process would compile JAX & co. from source again (about 5 s of CPU each). Compiling only what
# is imported, once, costs about 4 CPU-s in all, against 33 CPU-s (18 s of set-up) to byte-compile all 9000 files
# of the venv at install.
export PYTHONDONTWRITEBYTECODE :=

export: $(STAMP)
	$(BIN)/nbdev-export

# Code in the book fits its column: ruff over the notebooks' code cells, lines of at most 100 characters
# ([tool.ruff] in pyproject.toml; `.venv/bin/ruff format nbs/NN_topic.ipynb` formats one).
lint: $(STAMP)
	$(BIN)/ruff check

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

# Optional, for developers: nbdev's own runner (a third way to execute the notebooks; make test does not use it).
NBTEST_WORKERS ?= 2
nbtest: $(STAMP)
	$(BIN)/nbdev-test --n-workers $(NBTEST_WORKERS) --timing

book: export
	@$(MAKE) --no-print-directory book-build

# Incremental: Sphinx re-reads only changed pages, jupyter-cache re-executes only notebooks whose code changed.
# On an unchanged tree this takes seconds.
book-build: $(STAMP)
	@$(NB_CACHE_CHECK)
	$(CHEAP_XLA) $(JB_BUILD) $$(test -f $(NB_REBUILD_ALL) && echo --all)
	@rm -f $(NB_REBUILD_ALL)
	@echo "Book: $(BOOK_HTML)/index.html"

# ---------------------------------------------------------------------------------------------------- notebooks
# Notebooks are executed into the jupyter-cache by book/nbexec.py, with the same function (jupyter_cache's
# single_nb_execution, notebook folder as working directory, no errors allowed, the timeout of book/_config.yml)
# that the book build uses in its cache mode; the book build then finds every notebook cached. A notebook already
# cached is skipped. A failing cell fails the target and prints the notebook, the cell's source and the traceback.
# make test runs two workers (nbexec-worker-1/2) over one list, longest first: each takes the next notebook no
# worker has claimed, so each notebook runs once and both cores stay busy; one worker process serves many
# notebooks, so nbformat and jupyter-cache (about 2.3 s of CPU to import) are not imported once per notebook, and
# its kernels are forked from a template process that imported JAX, matplotlib, ipykernel and truncflow once
# (book/forkkernel.py: about 1.4 s of CPU less per notebook; each notebook still has a fresh process of its own).
NB_EXEC := $(BIN)/python book/nbexec.py $(NB_CACHE)
NB_CLAIMS := book/_build/.nb-claims
NB_WORKERS := nbexec-worker-1 nbexec-worker-2
.PHONY: $(NB_WORKERS)

NB_ALL := $(basename $(notdir $(wildcard nbs/*.ipynb)))
# Longest first (measured, see the timings below), so that two at a time finish together. Notebooks not measured
# yet (new chapters) go first, as if long: a long one started last would leave one core idle at the end.
NB_SLOW := 32_runs 19_general 23_training 99_errata 13_separated 18_orbits 21_standard 11_plot 30_widgets \
           17_integrate 50_practice 10_network 20_general_flow 38_stats 03_solvers 14_events 12_moments 31_fused \
           45_benchmarks 02_lie 37_sweep 41_cli 25_datasets 33_sharding 22_collapse 35_plan 39_report
NB_FAST := 95_equations 00_index 29_synthetic 16_adaptive 42_main 98_api 01_validation 24_preprocess 34_config \
           15_solution 36_store
NB_ORDER := $(filter-out $(NB_SLOW) $(NB_FAST),$(NB_ALL)) $(filter $(NB_ALL),$(NB_SLOW)) $(filter $(NB_ALL),$(NB_FAST))

NB_CACHE_INIT = $(BIN)/python -c "from jupyter_cache import get_cache; get_cache('$(NB_CACHE)').db"

# For developers: `make -j2 nbexec` executes the stale notebooks two at a time into the cache (then `make book`);
# `make nbexec-19_general` executes one.
nbexec: $(STAMP)
	@$(NB_CACHE_CHECK); $(NB_CACHE_INIT); rm -rf $(NB_CLAIMS); mkdir -p $(NB_CLAIMS)
	@$(CHEAP_XLA) $(MAKE) --no-print-directory $(NB_WORKERS)

# The cache's database is made before the jobs start (two jobs must not both create it).
$(NB_CACHE)/global.db: | $(STAMP)
	@$(NB_CACHE_CHECK); $(NB_CACHE_INIT)

$(NB_WORKERS): | $(NB_CACHE)/global.db
	@$(NB_EXEC) --claims $(NB_CLAIMS) $(NB_ORDER:%=nbs/%.ipynb)

nbexec-%: | $(NB_CACHE)/global.db
	@$(CHEAP_XLA) $(NB_EXEC) nbs/$*.ipynb

# The book from the cache that the nbexec workers filled: every page re-read (--all), no notebook executed again.
# A warning fails it (-W; --keep-going lists them all first): a link to a heading or target that does not exist,
# a missing figure or page.
book-render: $(NB_WORKERS)
	@TIMEFORMAT="[time] book build from the cache: %0R s wall, %0U+%0S s CPU"; \
	  time $(JB_BUILD) --all -W --keep-going
	@rm -f $(NB_REBUILD_ALL)

# -------------------------------------------------------------------------------------------------------- pytest
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (Debian package) for the browser checks"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

PYTEST := $(BIN)/python -m pytest -q
# Two pytest processes besides the browser check, so that JAX and truncflow are imported twice, not once per file
# (about 4.5 s of CPU each): pytest-subprocess, whose three files start subprocesses that share one persistent
# compilation cache (the session fixture jax_cache), and pytest-main, every other file. tests/conftest.py prints
# what each file cost inside its process ("[time] tests/...").
PY_ALL := $(filter-out test_book_browser,$(basename $(notdir $(wildcard tests/test_*.py))))
PY_SUBPROCESS := $(filter $(PY_ALL),test_ensemble test_cli test_sharding)
# pytest-late-1/2: files that make test starts only when every notebook has run, in two processes beside the book
# build and the browser check, so that the cores stay busy to the end (see test-jobs).
PY_LATE_1 := $(filter $(PY_ALL),test_bad_input)
PY_LATE_2 := $(filter $(PY_ALL),test_fused test_sweep_cli)
PY_LATE := $(PY_LATE_1) $(PY_LATE_2)
PY_MAIN := $(filter-out $(PY_SUBPROCESS) $(PY_LATE),$(PY_ALL))

# test_jupyterlab (in pytest-main) opens the live explorer in a real JupyterLab, in headless Chromium.
# Both run at a lower CPU priority (nice) than the notebooks, the book build and the browser check, which come one
# after another and so decide when make test ends: the pytest processes take what those leave of the two cores.
PYTEST_NICE := nice -n 5
pytest-main: $(STAMP) browser-deps
	@TIMEFORMAT="[time] pytest-main ($(words $(PY_MAIN)) files): %0R s wall, %0U+%0S s CPU"; \
	  time $(PYTEST_NICE) $(PYTEST) $(PY_MAIN:%=tests/%.py)

# In make test (LATE_AFTER set to the notebook workers) it waits for them; run alone it just runs.
LATE_AFTER :=
pytest-late-%: $(STAMP) | $(LATE_AFTER)
	@TIMEFORMAT="[time] pytest-late-$* ($(PY_LATE_$*)): %0R s wall, %0U+%0S s CPU"; \
	  time $(PYTEST_NICE) $(PYTEST) $(PY_LATE_$*:%=tests/%.py)

pytest-subprocess: $(STAMP)
	@TIMEFORMAT="[time] $(PY_SUBPROCESS:%=tests/%.py): %0R s wall, %0U+%0S s CPU"; \
	  time $(PYTEST_NICE) $(PYTEST) $(PY_SUBPROCESS:%=tests/%.py)

# The browser check reads the built book: after book-render. Two workers (pytest-xdist), one Chromium each.
pytest-browser: book-render browser-deps
	@TIMEFORMAT="[time] tests/test_book_browser.py: %0R s wall, %0U+%0S s CPU"; \
	  time $(PYTEST) -n 2 tests/test_book_browser.py

# All of tests/ in one run, for developers (the book must be built for the browser check).
pytest: $(STAMP) browser-deps
	$(PYTEST) -n 2 --dist loadfile

# ---------------------------------------------------------------------------------------------------------- test
# make test: set-up (venv, lint, sync-check) -> one queue of jobs on two cores (make -j5, see test-jobs):
# every notebook once (two workers, longest first), then the book from the cache (no notebook runs again), then the
# browser check; beside them the pytest files in two processes. A failing cell or test fails make test.
#
# Measured on this 2-core machine from a fresh clone of the committed tree (pip and uv caches warm, the machine
# otherwise idle). The machine's speed differs from one session to the next (the same tree, 5bf9da6: 434 s in the
# eighth session, 259 s in the ninth; the seventh's runs 578-679 s), so changes are judged by A/B in one sitting.
# Ninth session (2026-12-02): 238-292 s in all, six runs (4.0-4.9 min; chromium's install, about 20 s, included
# where the machine lacked it: it now runs beside the notebooks), of which set-up (venv, lint, sync-check, cache)
# 8-13 s and the jobs 228-283 s wall. Sampled every 5 s, both cores are busy from the 10th second to the last
# five: make test is bound by CPU, not by the order of its jobs. Machine-wide busy time 455-558 CPU-s; per process
# (a sampler reading /proc every 0.5 s, in one run):
#   notebooks (workers, kernel template and forked kernels) 288-313 (one worker alone, one notebook after another:
#     234, of which the worker's own 5); per notebook as nbexec prints it in make test: 32_runs 22,
#     18_orbits 18, 21_standard 16, 99_errata 15, 23_training 15, 19_general 14, 20_general_flow 13,
#     13_separated 13, 17_integrate 10, 50_practice 8, 30_widgets 8, 11_plot 8, 10_network 7, the other 25 0-6
#   headless Chromium 52-55 (the book's pages and test_jupyterlab's JupyterLab page), most of which `time` does
#     not count (pytest does not reap its renderer processes)
#   pytest-main (16 files, one process) about 34 and its subprocesses (per file, printed by tests/conftest.py:
#     test_jupyterlab 15, test_integrate 7, test_nbexec 7, test_nc 6, test_general 5, the other eleven 0-4)
#   pytest-subprocess 24-26 and its subprocesses (test_ensemble 19, test_sharding 11, test_cli 9, each subprocess
#     importing JAX); pytest-late: test_sweep_cli 15, test_fused 12-13 (the gpu.sh dry run), test_bad_input 12
#   the book build from the cache 12; the host's own kernel threads 24-33 (not ours)
#   The browser check in one tab per worker instead of one tab per page: 155 -> 94-102 CPU-s machine-wide and
#   82 -> 53-57 s wall (A/B in one sitting, eighth session). One worker instead of two: about the same CPU (52
#   against 55) and make test 280 s against 258-263 the same hour, its tail waiting on the check: two workers.
#   Tried and not kept (earlier sessions): MathJax's SVG output instead of CHTML (-6 % of the check), Chromium's
#   raster and compositing flags, XLA single-threaded Eigen (no change); this session: XLA's parallel codegen split,
#   thunk runtime and concurrency scheduler flags, a kernel pinned to one CPU (no change in CPU-s).
test: lint sync-check
	@rm -rf $(NB_CACHE) $(NB_INPUTS) $(TEST_JAX_CACHE) $(NB_CLAIMS)
	@$(NB_CACHE_CHECK); $(NB_CACHE_INIT); mkdir -p $(NB_CLAIMS)
	@TIMEFORMAT="[time] make test, the jobs: %0R s wall, %0U+%0S s CPU"; \
	  time $(CHEAP_XLA) JAX_COMPILATION_CACHE_DIR=$(CURDIR)/$(TEST_JAX_CACHE) JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
	  $(MAKE) --no-print-directory -j5 --output-sync=target test-jobs LATE_AFTER="$(NB_WORKERS)"

# Five job slots on two cores. At the start: both notebook workers, and beside them the two pytest processes at a
# lower priority (PYTEST_NICE), which use what the notebooks leave of the cores (the subprocess tests mostly wait
# for their subprocesses). When every notebook has run: the book build and then the browser check (the critical
# path: they decide when make test ends), and beside them pytest-late-1/2, also at the lower priority, so that
# both cores stay busy to the end.
test-jobs: pytest-subprocess $(NB_WORKERS) pytest-main pytest-late-1 pytest-late-2 pytest-browser

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The lowest declared dependency versions, in a fresh venv (.venv-floors): see .ci/floors.sh and CONTRIBUTING.md.
# CI (.ci/run) runs it after make test.
floors:
	bash .ci/floors.sh

clean:
	rm -rf book/_build .pytest_cache .hypothesis
