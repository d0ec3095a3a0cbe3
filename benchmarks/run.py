"""Run every benchmark script (benchmarks/bench_*.py) in turn; each writes its JSON into benchmarks/results/.

Usage: python benchmarks/run.py [--quick] [NAME ...]   (NAME: e.g. separated, exact, general)
The book's chapter "Benchmarks" renders the JSON files; it never times anything itself.
"""
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv):
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("-")]
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    failed = []
    for s in scripts:
        t0 = time.perf_counter()
        print(f"== {s.name}", flush=True)
        args = [sys.executable, str(s)] + (["--quick"] if quick and "--quick" in s.read_text() else [])
        r = subprocess.run(args)
        print(f"== {s.name}: exit {r.returncode} after {time.perf_counter() - t0:.0f} s", flush=True)
        if r.returncode:
            failed.append(s.name)
    if failed:
        print("failed:", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
