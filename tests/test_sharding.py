"""The ensemble axis sharded over 8 (forced host) CPU devices gives the single-device results.

Runs in a subprocess: XLA_FLAGS=--xla_force_host_platform_device_count=8 must be set before JAX is imported,
and this pytest process has already imported JAX with one device."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from test_ensemble import TINY, subprocess_env, jax_cache  # noqa: F401  (fixture)

SCRIPT = textwrap.dedent("""
    import json, os, shutil, sys
    import numpy as np
    import jax
    jax.config.update("jax_enable_x64", True)
    from truncflow.sharding import ensemble_mesh, _device_indices
    from truncflow.sweep import run_sweep, load_sweep
    from truncflow.plan import sweep_chunk_function
    from truncflow.store import read_manifest, atomic_write
    from truncflow.config import validate_config
    out, config = sys.argv[1], json.loads(sys.argv[2])
    report = {"n_devices": len(jax.devices())}
    one, eight = ensemble_mesh(jax.devices()[:1]), ensemble_mesh()
    run_sweep(config, out + "/one", mesh=one, progress=False)
    run_sweep(config, out + "/eight", mesh=eight, progress=False)
    a, _ = load_sweep(out + "/one")
    b, man = load_sweep(out + "/eight")
    report["chunk_size"] = man["chunk_size"]
    report["devices_in_manifest"] = len(man["devices"])
    report["allclose"] = all(np.allclose(a[k], b[k], rtol=1e-12, atol=1e-14, equal_nan=True) for k in a)
    report["bitwise"] = all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    # the output of one chunk really is spread over the 8 devices, one slice each
    cfg = validate_config(config)
    f, sharding = sweep_chunk_function(cfg, eight)
    idx = np.arange(man["chunk_size"], dtype=np.int32)
    o = f(_device_indices(idx, sharding))
    report["out_devices"] = len(o["s1"].sharding.device_set)
    report["shard_shapes"] = sorted({tuple(s.data.shape) for s in o["btilde"].addressable_shards})
    report["n_shards"] = len(o["btilde"].addressable_shards)
    report["chunk_matches"] = bool(np.allclose(np.asarray(o["gap"])[:8], b["gap"][:8], rtol=1e-12, atol=1e-14))
    # a sweep begun on one device resumes on eight (a copy of the one-device sweep, two chunks lost)
    shutil.copytree(out + "/one", out + "/mixed")
    m = read_manifest(out + "/mixed")
    for k in ("1", "2"):
        os.remove(out + "/mixed/" + m["chunks"].pop(k)["file"])
    m["complete"] = False
    atomic_write(out + "/mixed/manifest.json", lambda fh: fh.write(json.dumps(m).encode()))
    run_sweep(config, out + "/mixed", mesh=eight, progress=False)
    c, _ = load_sweep(out + "/mixed")
    report["resumed_allclose"] = all(np.allclose(a[k], c[k], rtol=1e-12, atol=1e-14, equal_nan=True) for k in a)
    # the fused Pallas velocity (interpret mode here) under shard_map on eight devices: the closed form's results
    fused = dict(config, flow=dict(config.get("flow", {}), velocity="fused"))
    run_sweep(fused, out + "/fused", mesh=eight, progress=False)
    d, _ = load_sweep(out + "/fused")
    report["fused_maxdiff"] = max(float(np.nanmax(np.abs(np.asarray(a[k], float) - np.asarray(d[k], float))))
                                  for k in a if np.asarray(a[k]).dtype.kind in "fib")
    report["fused_same_nans"] = all(np.array_equal(np.isnan(np.asarray(a[k], float)), np.isnan(np.asarray(d[k], float)))
                                    for k in a if np.asarray(a[k]).dtype.kind in "fib")
    print("REPORT" + json.dumps(report))
""")


# one configuration for the 8-device process and the two-process run: the one-device sweep that the first
# compares with is also the reference of the second (one JAX process less)
CONFIG = dict(TINY, ensemble={"size": 20, "seed": 5, "chunk_size": 8})


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory, jax_cache):
    """Run SCRIPT once on 8 forced host devices; returns (its report, its output directory)."""
    out = tmp_path_factory.mktemp("eight")
    env = subprocess_env(jax_cache)
    env["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(out), json.dumps(CONFIG)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.split("REPORT", 1)[1]), out


def test_sharded_sweep_equals_single_device(eight_devices):
    rep, _ = eight_devices
    assert rep["n_devices"] == 8 and rep["devices_in_manifest"] == 8 and rep["chunk_size"] == 8
    assert rep["out_devices"] == 8 and rep["n_shards"] == 8 and rep["shard_shapes"] == [[1, 13, 2]]
    assert rep["allclose"] and rep["chunk_matches"] and rep["resumed_allclose"]
    assert rep["fused_same_nans"] and rep["fused_maxdiff"] < 1e-9, rep
    print("sharded == single device bitwise:", rep["bitwise"], "; fused vs closed form max |diff|:", rep["fused_maxdiff"])


WORKER = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")   # CPU collectives across processes
    pid, port, out, config = int(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2, process_id=pid)
    assert jax.process_count() == 2 and len(jax.devices()) == 2 and len(jax.local_devices()) == 1
    from truncflow.sweep import run_sweep
    run_sweep(config, out, progress=False)
""")


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_with_jax_distributed(tmp_path, jax_cache, eight_devices):
    """Multi-host in miniature: two processes on this machine, one CPU device each, coordinated by
    jax.distributed.initialize; only process 0 writes; results equal a one-device sweep (that of the 8-device
    process, on its first device)."""
    from truncflow.sweep import load_sweep
    env = subprocess_env(jax_cache)
    config = json.dumps(CONFIG)
    port, out = str(_free_port()), str(tmp_path / "two")
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), port, out, config], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    try:
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), [r[1][-2000:] for r in results]
    a, _ = load_sweep(str(eight_devices[1] / "one"))
    b, man = load_sweep(out)
    assert len(man["devices"]) == 2 and man["complete"]
    assert all(np.allclose(a[k], b[k], rtol=1e-12, atol=1e-14, equal_nan=True) for k in a)
