import os
import jax

jax.config.update("jax_enable_x64", True)

# One persistent compilation cache for this pytest process and the subprocesses its tests start
# (test_ensemble.subprocess_env): make test sets JAX_COMPILATION_CACHE_DIR (shared with the notebooks); a run of
# its own gets a fresh folder. A program compiled once (the tiny sweep's chunk function, say, in process and
# then in a subprocess) is then not compiled again; it only skips identical compiles, nothing else changes.
if not jax.config.jax_compilation_cache_dir:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="truncflow-tests-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

from hypothesis import settings

# The one place that sets how hard the property tests search (no test sets max_examples itself). The tests draw
# values, not shapes (or a few fixed shapes), so the jitted functions compile once per shape and an example
# costs milliseconds: max_examples is the cost knob. No deadline: the first example of a shape compiles.
#   ci        (default, make test): 25 examples per test, the same ones every run (derandomize)
#   dev       quick local runs: 10 random examples
#   thorough  a long search: HYPOTHESIS_PROFILE=thorough .venv/bin/python -m pytest tests/ (1000 random examples)
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=10, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ----------------------------------------------------------------------------------------------- time per file
# make test runs most test files in one pytest process (one import of JAX and truncflow instead of one per file);
# this prints what each file cost there, wall and CPU (this process and the subprocesses it waited for), so that
# the Makefile's account of where the time goes stays measurable.
import resource
import time
from collections import defaultdict

import pytest

_FILE_TIME = defaultdict(lambda: [0.0, 0.0])


def _cpu_now():
    own = time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    w, c = time.perf_counter(), _cpu_now()
    yield
    acc = _FILE_TIME[item.nodeid.split("::")[0]]
    acc[0] += time.perf_counter() - w
    acc[1] += _cpu_now() - c


def pytest_terminal_summary(terminalreporter):
    if len(_FILE_TIME) < 2:
        return
    terminalreporter.section("time per test file (wall s, CPU s incl. subprocesses)")
    for f, (w, c) in sorted(_FILE_TIME.items(), key=lambda kv: -kv[1][1]):
        terminalreporter.write_line(f"[time] {f}: {w:.0f} s wall, {c:.0f} s CPU")
