"""Run every benchmark: `python -m bench` runs each bench/bench_*.py module's `main()`, one module
per subprocess (so one module's servers, threads or environment never skew the next), streams
its figures and ends with a table of what ran.

    python -m bench                 every module
    python -m bench store watch     only modules whose name contains 'store' or 'watch'
    python -m bench --list          the modules it would run

A module's `main()` returns 0 when its figures meet their goals and 1 when one misses; any
other exit is a crash. The goals are printed, never asserted: this exits 0 unless a module
crashed.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER = "import sys, {module} as m; sys.exit(m.main() or 0)"


def discover(filters: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if filters:
        names = [n for n in names if any(f in n for f in filters)]
    return names


def run(name: str) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER.format(module=f"bench.{name}")], cwd=HERE.parent, env=env, check=False,
    )
    return proc.returncode, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run only modules whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    args = parser.parse_args(argv)
    names = discover(args.only)
    if args.list or not names:
        print("\n".join(names) if names else f"no bench module matches {args.only}")
        return 0 if names else 2
    print(f"{len(names)} benchmark module{'s' if len(names) != 1 else ''} on {os.cpu_count()} cores, "
          f"Python {platform.python_version()} ({platform.system()} {platform.machine()})", flush=True)
    results = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        code, seconds = run(name)
        results.append((name, code, seconds))
    verdict = {0: "goals met", 1: "a goal MISSED"}
    width = max(len(n) for n in names)
    print(f"\n{'module':<{width}}  {'result':<16} {'time':>8}")
    for name, code, seconds in results:
        print(f"{name:<{width}}  {verdict.get(code, f'CRASHED (exit {code})'):<16} {seconds:7.1f}s")
    return 1 if any(code not in (0, 1) for _, code, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
