"""Run every benchmark: `python -m bench` runs each bench/bench_*.py module's `main()`, one module
per subprocess (so one module's servers, threads or environment never skew the next), streams
its figures and ends with a table of what ran.

    python -m bench                 every module
    python -m bench store watch     only modules whose name contains 'store' or 'watch'
    python -m bench --quick         every module at small sizes (a minute or two; a smoke test,
                                    not the figures: bench/RESULTS.md holds those)
    python -m bench --list          the modules it would run

The machine is shared: the load average is printed with each module, since another process
on 2 cores moves the figures more than most changes do.

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
# --quick: each module's own knobs turned down (the modules parse sys.argv)
QUICK = {
    "bench_api": ["--quick"],
    "bench_gateway": ["--calls", "150", "--no-litellm"],
    "bench_ingest": ["--batches", "20", "--idle", "3"],
    "bench_mcp": ["--starts", "3", "--calls", "100"],
    "bench_mcp_context": ["--no-references"],
    "bench_remote": ["--calls", "100"],
    "bench_monitor": ["--rows", "100000"],
    "bench_runner": ["--quick"],
    "bench_check": ["--saves", "5", "--cli-saves", "1"],
    "bench_startup": ["--runs", "3"],
    "bench_store": ["--saves", "2000", "--full-saves", "200", "--runs", "1"],
    "bench_watch": ["--saves", "50", "--files", "200", "--idle", "1"],
}


def discover(filters: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if filters:
        names = [n for n in names if any(f in n for f in filters)]
    return names


def load() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # not on every platform
        return "n/a"


def run(name: str, extra: list[str] | None = None) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER.format(module=f"bench.{name}"), *(extra or [])], cwd=HERE.parent, env=env,
        check=False,
    )
    return proc.returncode, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run only modules whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of every module")
    args = parser.parse_args(argv)
    names = discover(args.only)
    if args.list or not names:
        print("\n".join(names) if names else f"no bench module matches {args.only}")
        return 0 if names else 2
    print(f"{len(names)} benchmark module{'s' if len(names) != 1 else ''} on {os.cpu_count()} cores, "
          f"Python {platform.python_version()} ({platform.system()} {platform.machine()})"
          f"{', --quick sizes' if args.quick else ''}; load average {load()}", flush=True)
    results = []
    for name in names:
        before = load()
        print(f"\n=== {name} (load average {before}) ===", flush=True)
        code, seconds = run(name, QUICK.get(name, []) if args.quick else [])
        results.append((name, code, seconds, before, load()))
    verdict = {0: "goals met", 1: "a goal MISSED"}
    width = max(len(n) for n in names)
    print(f"\n{'module':<{width}}  {'result':<16} {'time':>8}  load average (1/5/15 min) before -> after")
    for name, code, seconds, before, after in results:
        print(f"{name:<{width}}  {verdict.get(code, f'CRASHED (exit {code})'):<16} {seconds:7.1f}s  {before} -> {after}")
    return 1 if any(code not in (0, 1) for _, code, *_ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
