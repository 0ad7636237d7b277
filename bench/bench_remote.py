"""The remote Client: a `get_prompt` round trip over a team server, against a bare HTTP GET of
the same route on a kept-alive connection to the same `promstack serve`.

Goal (issue 19): the remote `Client.get_prompt` p50 <= 2x the bare GET's p50 (what the SDK adds:
building the request, rebuilding the error-free answer into a PromptVersion).

    python -m bench.bench_remote [--calls 500]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(root: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PROMSTACK_URL", "PROMSTACK_TOKEN")}
    env["PROMSTACK_DB"] = str(root / ".promstack" / "promstack.db")
    proc = subprocess.Popen([sys.executable, "-c", "from promstack.cli import main; main()", "serve", "--port",
                             str(port), "--no-watch"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("promstack serve did not start")


def main(argv: list[str] | None = None) -> int:
    import httpx

    from promstack import Client
    from store.workspace import init

    parser = argparse.ArgumentParser(prog="bench_remote")
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = init(root)
        with Client(db) as local:
            local.create_prompt("support/refund", "Refund policy for {{ question }}. " * 20,
                                model_config={"model": "openai/gpt-4o-mini", "temperature": 0.2})
        proc, url = _serve(root)
        try:
            remote = Client(url=url)
            bare = httpx.Client(base_url=f"{url}/api/v1")
            path = "/prompts/support/refund"
            for _ in range(20):  # warm both connections and the server's caches
                remote.get_prompt("support/refund")
                bare.get(path, params={"branch": "main"}).json()
            sdk_times, bare_times = [], []
            for _ in range(args.calls):  # interleaved, so load moves both alike
                start = time.perf_counter()
                bare.get(path, params={"branch": "main"}).json()
                bare_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                remote.get_prompt("support/refund")
                sdk_times.append(time.perf_counter() - start)
            remote.close()
            bare.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    sdk_p50, bare_p50 = statistics.median(sdk_times) * 1000, statistics.median(bare_times) * 1000
    ratio = sdk_p50 / bare_p50
    verdict = "pass" if ratio <= GOAL else "MISS"
    print(f"remote Client.get_prompt p50 {sdk_p50:.2f} ms vs bare kept-alive GET p50 {bare_p50:.2f} ms: "
          f"{ratio:.2f}x (goal <= {GOAL:g}x) {verdict}  [{args.calls} calls each, interleaved]")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
