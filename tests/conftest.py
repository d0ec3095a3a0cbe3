import os
import jax

jax.config.update("jax_enable_x64", True)

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
