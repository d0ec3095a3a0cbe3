"""Jupyter kernels that start by forking a process which has already imported JAX, NumPy,
matplotlib, IPython's kernel and truncflow, instead of importing them again in every kernel.

    python book/forkkernel.py serve SOCKET      the template process (book/nbexec.py starts it)
    python book/forkkernel.py -f CONNECTION     a kernel (the argv of the kernelspec nbexec writes)

Importing those libraries costs about 2 s of CPU per kernel, and `make test` starts one kernel per
notebook (about 40); forking instead saves about 1.4 s a notebook (book/nbexec.py says where that
was measured). The template imports them once
and then waits. A kernel launched through the kernelspec is a small proxy process (standard library
only): it asks the template to fork, and the forked child becomes an ordinary ipykernel with the
proxy's command line, environment and working directory. So each notebook still runs in a process
of its own, from a clean start: the only difference from a kernel started from scratch is that
these modules are in `sys.modules` before the first cell (as if a start-up file had imported them;
none of them is configured or used there: JAX has no backend yet, no figure exists).

The template forks only while it is safe to: one Python thread (OpenBLAS's pools handle fork
themselves), no JAX backend (checked before it serves; otherwise every kernel starts from scratch). A kernel whose environment differs from the
template's in a variable that may be read at import time (JAX_*, MPL*, the BLAS threads; XLA_FLAGS
is read later and may differ) also starts from scratch, by `exec` of `python -m ipykernel_launcher`.
The proxy stands for the kernel towards jupyter_client: it passes SIGINT and SIGTERM on, exits with
the kernel's exit status, and a proxy that is killed takes its kernel with it. When the template's
parent exits, the template and its kernels exit too. The CPU time of finished kernels is reported
on request (`{"cpu": true}`), since they are the template's children, not the caller's.
"""

import json
import os
import select
import signal
import socket
import sys

ENV = "TRUNCFLOW_FORK_KERNEL"  # path of the template's socket, in the proxy's environment
# What the chapters import (measured: jax 1.2 s of CPU, matplotlib.pyplot 0.8, scipy.integrate 1.2,
# ipykernel and IPython 0.5), and every module of truncflow (each light once JAX is in).
PRELOAD = [
    "numpy",
    "jax",
    "jax.numpy",
    "matplotlib",
    "matplotlib.pyplot",
    "IPython",
    "IPython.display",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipywidgets",
    "scipy.linalg",
    "scipy.integrate",
    "tqdm.auto",
    "fastcore.test",
    "truncflow",
]
INLINE = "module://matplotlib_inline.backend_inline"  # what ipykernel sets when MPLBACKEND is unset


IMPORT_TIME = ("JAX_", "MPL", "NPY_", "OPENBLAS_", "OMP_", "MKL_", "TRUNCFLOW_")


def _import_time_env(env):
    """The variables of `env` that the preloaded modules may read when imported (JAX's flags,
    matplotlib's backend and folders, the BLAS threads...)."""
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME) and k != ENV}


def _start_kernel(request, template_env, fresh):
    """In the forked child: become the kernel that `request` describes (never returns); `fresh`:
    by exec of a new interpreter, not in this one."""
    code = 1
    try:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(s, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        env = dict(request["env"])
        env.setdefault("MPLBACKEND", INLINE)
        os.chdir(request["cwd"])
        argv = [sys.executable, "-m", "ipykernel_launcher", *request["argv"]]
        if fresh or _import_time_env(env) != _import_time_env(template_env):
            os.execve(sys.executable, argv, env)
        # ipykernel exits when its parent (here the template) exits; it read JPY_PARENT_PID when
        # the template imported it, so the parent is given on the command line
        argv.append(f"--IPKernelApp.parent_handle={os.getppid()}")
        os.environ.clear()
        os.environ.update(env)
        import random

        import numpy as np

        random.seed()
        np.random.seed()
        sys.argv = argv[2:]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:  # exit as a normal interpreter would, but never back into serve()
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _safe_to_fork():
    """None if forking this process is safe, else why not."""
    import threading

    import jax._src.xla_bridge as xb

    if threading.active_count() != 1:
        return f"{threading.active_count()} threads"
    if xb._backends:
        return "a JAX backend was initialised at import"
    return None


def _cpu():
    """CPU seconds (user, system) of the template and of its finished children (the kernels)."""
    import resource

    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return {"user": me.ru_utime + kids.ru_utime, "sys": me.ru_stime + kids.ru_stime}


def serve(path):
    """The template: preload, then fork a kernel for each request on the Unix socket `path`."""
    os.environ.setdefault("MPLBACKEND", INLINE)
    import importlib

    import pkgutil

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    if "truncflow" in sys.modules:
        for m in pkgutil.iter_modules(sys.modules["truncflow"].__path__, "truncflow."):
            if not m.name.split(".")[-1].startswith("_"):
                importlib.import_module(m.name)
    why = _safe_to_fork()
    template_env, parent = dict(os.environ), os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print("ready" if why is None else f"ready, without forking: {why}", flush=True)
    kernels, readers = {}, {}  # pid -> connection; connection -> buffered bytes
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while os.getppid() == parent:
            ready, _, _ = select.select([listener, *readers], [], [], 0.1)
            for conn in ready:
                if conn is listener:
                    readers[listener.accept()[0]] = b""
                    continue
                data = conn.recv(65536)
                if not data:  # the proxy is gone: so is its kernel
                    for pid, c in list(kernels.items()):
                        if c is conn:
                            os.kill(pid, signal.SIGKILL)
                    readers.pop(conn)
                    conn.close()
                    continue
                readers[conn] += data
                if not readers[conn].endswith(b"\n"):
                    continue
                request = json.loads(readers[conn])
                readers[conn] = b""
                if request.get("cpu"):
                    conn.sendall(json.dumps(_cpu()).encode() + b"\n")
                    continue
                pid = os.fork()
                if pid == 0:
                    for s in (listener, *readers):
                        s.close()
                    _start_kernel(request, template_env, fresh=why is not None)
                kernels[pid] = conn
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            _reap(kernels, readers)
    finally:
        for pid in kernels:
            os.kill(pid, signal.SIGKILL)
        while kernels:
            pid, _ = os.waitpid(-1, 0)
            kernels.pop(pid, None)
        os.unlink(path)


def _reap(kernels, readers):
    """Collect finished kernels and tell each one's proxy its exit status."""
    while kernels:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        conn = kernels.pop(pid, None)
        if conn is not None and conn in readers:
            code = os.waitstatus_to_exitcode(status)
            try:
                conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
            except OSError:
                pass
            readers.pop(conn)
            conn.close()


def proxy(argv):
    """A kernel as jupyter_client sees it: asks the template for one, stands for it till it ends."""
    path = os.environ.get(ENV)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except (OSError, TypeError):  # no template: an ordinary kernel
        os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])
    request = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}
    conn.sendall(json.dumps(request).encode() + b"\n")
    lines = conn.makefile("rb")
    pid = json.loads(lines.readline())["pid"]
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(s, lambda sig, _: os.kill(pid, sig))
    line = lines.readline()
    code = json.loads(line)["exit"] if line else 1
    sys.exit(128 - code if code < 0 else code)


def cpu_of(path):
    """CPU seconds {"user", "sys"} used so far by the template at `path` and its ended kernels."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(b'{"cpu": true}\n')
        return json.loads(conn.makefile("rb").readline())


def kernelspec(folder):
    """Write the kernelspec "python3-forked" under `folder`/kernels; its name."""
    spec = os.path.join(folder, "kernels", "python3-forked")
    os.makedirs(spec, exist_ok=True)
    with open(os.path.join(spec, "kernel.json"), "w") as f:
        json.dump(
            {
                "argv": [sys.executable, os.path.abspath(__file__), "-f", "{connection_file}"],
                "display_name": "Python 3 (forked from a preloaded template)",
                "language": "python",
                "metadata": {"debugger": False},
            },
            f,
        )
    return "python3-forked"


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2])
    else:
        proxy(sys.argv[1:])
