"""A real `promstack serve` subprocess over a workspace of the test's, for the remote client's
tests (the SDK contract, the CLI with PROMSTACK_URL, CI as a script): `serve(spawn, root)`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(spawn, root: Path, *, token: str | None = None, env: dict[str, str] | None = None,
          port: int | None = None, args: tuple[str, ...] = ()) -> str:
    """Start `promstack serve` on the store of workspace `root` (made by `promstack init`);
    return its URL once it answers (on `port` when given: a server restarted where it was;
    `args`: more options, such as ("--workers", "2"))."""
    port = port or free_port()
    child = {k: v for k, v in os.environ.items() if k not in ("PROMSTACK_URL", "PROMSTACK_TOKEN")}
    child.update({"PROMSTACK_DB": str(root / ".promstack" / "promstack.db"), **(env or {})})
    if token:
        child["PROMSTACK_TOKEN"] = token
    proc = spawn([sys.executable, "-c", "from promstack.cli import main; main()", "serve", "--port", str(port),
                  "--no-watch", *args], cwd=root, env=child, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the server did not start"
        try:
            # 401: up, and asking for one of the store's tokens
            if httpx.get(f"{url}/healthz", timeout=1, headers=headers).status_code in (200, 401):
                return url
        except httpx.HTTPError:
            time.sleep(0.05)
