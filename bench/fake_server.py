"""tests/fake_llm.py in a process of its own, for the benchmarks that call a model: the server's
CPU then never counts as PromStack's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_server(latency: float, *, rpm: int = 0) -> tuple[subprocess.Popen, str]:
    """Start the fake server with `latency` seconds per answer (and a requests-a-minute limit, if
    `rpm`); (process, its /v1 base URL)."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_llm.py"), "--port", "0", "--latency", str(latency),
         "--usage", "150,200", *(["--rpm", str(rpm)] if rpm else [])],
        stdout=subprocess.PIPE, text=True,
    )
    first = proc.stdout.readline().strip()
    if not first.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"fake server did not start: {first!r}")
    return proc, f"http://127.0.0.1:{first.split()[1]}/v1"


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
