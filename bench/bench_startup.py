"""Start-up: how long `promstack --help` takes, and which of the engine's modules it imports.

    python bench/bench_startup.py [--runs 15]

A CLI that answers `--help` should cost little more than Python plus click. Printed: the median
wall time of `promstack --help` in a fresh interpreter, the floor (`python -c "import click"`),
their ratio, and how many of PromStack's own modules the help imported. The goal: --help
imports none of the engine's packages but the pass mark (`evals.score`), within 2x the floor.
`promstack mcp`'s cold start is in bench_mcp.py.

Second figure: what `promstack test` loads before its first request (the CLI, the engine's
facade, the gateway, aiohttp, a local client opening a store), against `python -c pass`, and
the modules it has no use for (numpy, pydantic, httpx, the prompt file formats): goal none.
There is no goal for its time; it is part of the whole command's figure in bench_runner.
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
# The same through `cli` (main() ends the process once the command is done), then the names
# of PromStack's own modules it imported.
MODULES = HELP.replace("import main", "import cli").replace("main()", 'cli(prog_name="promstack")') + """
import json
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("promstack", "store", "mcp_server"))))
"""
# What `promstack test` imports before its first request, then opens a store (issue 22).
TEST_PATH = """
import os, sys, tempfile, json
import promstack.cli, promstack.cli.evals, promstack.evals.engine, promstack.gateway.transport, aiohttp
from promstack import Client
Client(os.path.join(tempfile.mkdtemp(), "promstack.db")).close()
if "--modules" in sys.argv:
    print(json.dumps(sorted(sys.modules)))
"""
TEST_UNUSED = ("numpy", "pandas", "pydantic", "httpx", "promstack.remote", "store.formats", "yaml", "ruamel.yaml",
               "litellm")
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
    bare = _median_run("pass", options.runs)
    tested = _median_run(TEST_PATH, options.runs)
    loaded = json.loads(subprocess.run([sys.executable, "-c", TEST_PATH, "--modules"], check=True,
                                       capture_output=True, text=True).stdout)
    unused = [m for m in TEST_UNUSED if m in loaded]
    print(f"{'python -c pass':<44} {bare * 1000:8.1f} ms")
    print(f"{'promstack test before its first request':<44} {tested * 1000:8.1f} ms   "
          f"+{(tested - bare) * 1000:.0f} ms over bare Python (imports, opening the store)")
    print(f"{'  modules it has no use for':<44} {len(unused):8d}      goal 0   {' '.join(unused)}")
    return 0 if ratio <= 2 and not engine and not unused else 1


if __name__ == "__main__":
    sys.exit(main())
