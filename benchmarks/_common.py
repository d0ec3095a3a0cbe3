"""Shared by the benchmark scripts: where the numbers came from, and writing them."""
import json
import os
import platform

import jax
import numpy as np


def cpu_model() -> str:
    """The CPU's model name as the operating system reports it (Linux: /proc/cpuinfo), else platform's guess: ratios
    between contenders move from one CPU to another (cache sizes decide which loops are bound by memory)."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            return names[0]
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    """Backend, device, versions, CPU model and core count of the machine that measured."""
    return dict(backend=jax.default_backend(), device=f"{jax.devices()[0]} ({jax.devices()[0].device_kind})", jax=jax.__version__,
                machine=platform.machine(), cpu=cpu_model(), cpus=os.cpu_count())


def write_result(out: dict, path: str, quiet: bool = False) -> None:
    """Write one benchmark's measurements as JSON (the book's Benchmarks chapter reads these files), atomically:
    a temporary file renamed over the old one, so a run killed mid-write leaves the previous complete file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, path)
    if not quiet:
        print("wrote", path)


def haar_orthogonal(rng: np.random.Generator, Q: int, batch: tuple = ()) -> np.ndarray:
    """Haar-random orthogonal matrices (*batch, Q, Q) drawn in NumPy (QR of a Gaussian matrix, signs fixed): the
    benchmarks' inputs cost no XLA compilation (truncflow.lie's sampler is the library's, for traced code)."""
    q, r = np.linalg.qr(rng.standard_normal(tuple(batch) + (Q, Q)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def interleaved_medians(fs: dict, reps: int) -> dict:
    """Median seconds per contender: one warm-up call each (compilation excluded), then `reps` rounds in which
    every contender (a function of no arguments) runs once, in turn, so that a change of load on a shared machine
    hits all of them alike."""
    return {k: float(np.median(v)) for k, v in interleaved_runs(fs, reps).items()}


def interleaved_runs(fs: dict, reps: int) -> dict:
    """The seconds of every round per contender (see interleaved_medians)."""
    import time

    for f in fs.values():
        jax.block_until_ready(f())
    runs = {k: [] for k in fs}
    for _ in range(reps):
        for k, f in fs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f())
            runs[k].append(time.perf_counter() - t0)
    return runs
