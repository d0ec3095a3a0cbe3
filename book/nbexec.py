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
test`, not once per notebook. For the same reason each worker's kernels are forked from a template
process that has imported JAX, matplotlib, IPython's kernel and truncflow once (book/forkkernel.py;
about 1.4 s of CPU less per notebook, measured on thirteen chapters: 56 -> 38 CPU-s); each notebook
still runs in a process of its own, from a clean start (`--fresh-kernels` starts them from
scratch). A failing cell stops both workers (a FAILED file in the claims folder) and prints the
notebook, the cell and the traceback."""

import argparse
import os
import resource
import shutil
import sys
import time
import traceback

import subprocess
import tempfile

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


class Template:
    """The preloaded template process of book/forkkernel.py, for this worker's kernels."""

    def __init__(self):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import forkkernel

        self.fk, self.dir = forkkernel, tempfile.mkdtemp(prefix="nbexec-")
        self.socket = os.path.join(self.dir, "template.sock")
        self.proc = subprocess.Popen([sys.executable, forkkernel.__file__, "serve", self.socket],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("ready"):
            raise RuntimeError(f"the kernel template did not start: {line!r}")
        if line != "ready":
            print(f"nbexec: {line} (every kernel starts from scratch)", flush=True)
        self.kernel_name = forkkernel.kernelspec(self.dir)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            [self.dir, *filter(None, [os.environ.get("JUPYTER_PATH")])])
        os.environ[forkkernel.ENV] = self.socket

    def cpu(self):
        """(user, system) CPU seconds of the template and of its finished kernels."""
        c = self.fk.cpu_of(self.socket)
        return c["user"], c["sys"]

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def execute(path, cache, kernel_name=None):
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
        **({"kernel_name": kernel_name} if kernel_name else {}),
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
    p.add_argument("--fresh-kernels", action="store_true",
                   help="start every kernel from scratch (default: fork a preloaded template)")
    a = p.parse_args(argv)
    cache = get_cache(a.cache)
    template = None
    if not a.fresh_kernels:
        try:
            template = Template()
        except Exception as e:  # e.g. a preloaded module fails to import: fresh kernels still work
            print(f"nbexec: no kernel template ({e}); every kernel starts from scratch", flush=True)
    try:
        run(a, cache, template)
    finally:
        if template is not None:
            template.close()


def run(a, cache, template):
    """Execute a.notebooks (those this worker claims) into `cache`, each in a kernel of its own."""
    def cpu():
        (u, s), (tu, ts) = cpu_seconds(), (template.cpu() if template else (0, 0))
        return u + tu, s + ts

    failed = os.path.join(a.claims, "FAILED") if a.claims else None
    for path in a.notebooks:
        if failed and os.path.exists(failed):
            sys.exit(f"stopping: {open(failed).read().strip()} failed in another worker")
        if not claim(a.claims, path):
            continue
        t0, (u0, s0) = time.perf_counter(), cpu()
        try:
            err = execute(path, cache, template and template.kernel_name)
        except Exception:  # the worker itself failed (the cache, a kernel that would not start)
            err = f"{traceback.format_exc()}\nERROR: {path}: the notebook worker failed."
        (u1, s1), wall = cpu(), time.perf_counter() - t0
        print(f"[time] {path}: {wall:.0f} s wall, {u1 - u0:.0f}+{s1 - s0:.0f} s CPU", flush=True)
        if err:
            if failed:
                with open(failed, "w") as f:
                    f.write(path)
            sys.exit(err)


if __name__ == "__main__":
    main()
