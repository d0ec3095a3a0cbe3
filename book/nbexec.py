"""Execute notebooks into the book's jupyter-cache, as `jupyter-book build` does in its cache mode.

    python book/nbexec.py CACHE_DIR [--claims DIR] NOTEBOOK ...

Each notebook runs in a fresh kernel by jupyter-cache's own `single_nb_execution` (the notebook's
folder as working directory, no errors allowed, the timeout of book/_config.yml), and its outputs go
into the cache; the book build then finds every notebook cached and executes none. A notebook
already cached is skipped.

`make test` starts two of these workers on the same list (longest notebook first) and one claims
folder: a worker takes the next notebook that no worker has claimed (the claim is a file created
with O_EXCL), so the two cores stay busy until the list is done and each notebook executes exactly
once. One worker process serves many notebooks, so the libraries that read and cache notebooks
(nbformat's schema validation alone takes about 2 s of CPU to import) are imported twice per `make
test`, not once per notebook. A failing cell stops both workers (a FAILED file in the claims folder)
and prints the notebook, the cell and the traceback."""

import argparse
import os
import resource
import sys
import time
import traceback

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

TIMEOUT = 900  # seconds per notebook, as `execute.timeout` in book/_config.yml


def claim(claims, path):
    """True if this worker may execute `path`: no claims folder, or no claim on it yet."""
    if claims is None:
        return True
    try:
        os.close(
            os.open(
                os.path.join(claims, os.path.basename(path)), os.O_CREAT | os.O_EXCL | os.O_WRONLY
            )
        )
        return True
    except FileExistsError:
        return False


def cpu_seconds():
    """(user, system) CPU seconds of this process and its finished children (the kernels)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime


def execute(path, cache):
    """Execute one notebook into `cache`; an error message if a cell failed, else None."""
    nb = nbformat.read(path, as_version=4)
    try:
        cache.match_cache_notebook(nb)
        print(f"{path}: outputs already cached", flush=True)
        return None
    except KeyError:
        pass
    res = single_nb_execution(
        nb,
        cwd=os.path.dirname(os.path.abspath(path)),
        timeout=TIMEOUT,
        allow_errors=False,
        meta_override=True,
    )
    if res.err is not None:
        bad = [
            i
            for i, c in enumerate(nb.cells)
            if any(o.get("output_type") == "error" for o in c.get("outputs", []))
        ]
        cell = f"cell {bad[0]} (id {nb.cells[bad[0]].get('id')})" if bad else "a cell"
        return f"{res.exc_string}\nERROR: {path}: {cell} failed (a check of this chapter fails)."
    record = cache.add_nb_to_project(path)
    cache.cache_notebook_bundle(
        CacheBundleIn(nb, record.uri, data={"execution_seconds": res.time}),
        check_validity=False,
        overwrite=True,
    )
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cache", help="the jupyter-cache folder (book/_build/.jupyter_cache)")
    p.add_argument("notebooks", nargs="+", help="notebooks, in the order to execute them")
    p.add_argument("--claims", help="a folder shared by workers that split the list between them")
    a = p.parse_args(argv)
    cache = get_cache(a.cache)
    failed = os.path.join(a.claims, "FAILED") if a.claims else None
    for path in a.notebooks:
        if failed and os.path.exists(failed):
            sys.exit(f"stopping: {open(failed).read().strip()} failed in another worker")
        if not claim(a.claims, path):
            continue
        t0, (u0, s0) = time.perf_counter(), cpu_seconds()
        try:
            err = execute(path, cache)
        except Exception:  # the worker itself failed (the cache, a kernel that would not start)
            err = f"{traceback.format_exc()}\nERROR: {path}: the notebook worker failed."
        (u1, s1), wall = cpu_seconds(), time.perf_counter() - t0
        print(f"[time] {path}: {wall:.0f} s wall, {u1 - u0:.0f}+{s1 - s0:.0f} s CPU", flush=True)
        if err:
            if failed:
                with open(failed, "w") as f:
                    f.write(path)
            sys.exit(err)


if __name__ == "__main__":
    main()
