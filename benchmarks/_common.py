"""Shared by the benchmark scripts: where the numbers came from, and writing them."""
import json
import os
import platform

import jax


def machine_info() -> dict:
    """Backend, device, versions and core count of the machine that measured."""
    return dict(backend=jax.default_backend(), device=f"{jax.devices()[0]} ({jax.devices()[0].device_kind})", jax=jax.__version__,
                machine=platform.machine(), cpus=os.cpu_count())


def write_result(out: dict, path: str) -> None:
    """Write one benchmark's measurements as JSON (the book's Benchmarks chapter reads these files)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print("wrote", path)
