"""Shared by the benchmark scripts: where the numbers came from, and writing them."""
import json
import os
import platform

import jax


def machine_info() -> dict:
    """Backend, device, versions and core count of the machine that measured."""
    return dict(backend=jax.default_backend(), device=f"{jax.devices()[0]} ({jax.devices()[0].device_kind})", jax=jax.__version__,
                machine=platform.machine(), cpus=os.cpu_count())


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
