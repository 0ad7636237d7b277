"""Start-up: how long `promstack --help` takes, and which of the engine's modules it imports.

    python bench/bench_startup.py [--runs 15]

A CLI that answers `--help` should cost little more than Python plus click. Printed: the median
wall time of `promstack --help` in a fresh interpreter, the floor (`python -c "import click"`),
their ratio, and how many of PromStack's own modules the help imported. The goal: --help
imports none of the engine's packages but the pass mark (`evals.score`), within 2x the floor.
`promstack mcp`'s cold start is in bench_mcp.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

HELP = """
import contextlib, io, sys
sys.argv = ["promstack", "--help"]
from promstack.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main()
"""
# The same, then the names of PromStack's own modules it imported.
MODULES = HELP + """
import json
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("promstack", "store", "mcp_server"))))
"""
# The engine packages --help has no use for (the help text reads only evals.score's pass mark).
ENGINE = ("promstack.gateway", "promstack.deploy", "promstack.monitoring", "promstack.evals.")
LIGHT = ("promstack.evals.score",)


def _median_run(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args()
    floor = _median_run("import click", options.runs)
    helped = _median_run(HELP, options.runs)
    imported = json.loads(subprocess.run([sys.executable, "-c", MODULES], check=True, capture_output=True,
                                         text=True).stdout)
    engine = [m for m in imported if m.startswith(ENGINE) and m not in LIGHT]
    ratio = helped / floor
    print(f"{'import click (the floor)':<44} {floor * 1000:8.1f} ms")
    print(f"{'promstack --help':<44} {helped * 1000:8.1f} ms   {ratio:.2f}x the floor   goal <= 2x")
    print(f"{'PromStack modules --help imports':<44} {len(imported):8d}      engine packages: {len(engine)}   goal 0")
    for name in engine:
        print(f"  {name}")
    return 0 if ratio <= 2 and not engine else 1


if __name__ == "__main__":
    sys.exit(main())
