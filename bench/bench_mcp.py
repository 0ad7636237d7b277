"""`promstack mcp` against the ideal: a bare SDK `MCPServer` with one trivial tool.

    python bench/bench_mcp.py [--starts 10] [--calls 300]

1. Cold start: spawn the process and time until the `initialize` result arrives, alternating
   the two servers so that both see the same machine state. Goal: within 1.2x of the bare one.
2. Round trip over stdio: `get_prompt` against the bare server's trivial tool, p50 and p95 from
   the client's side. Goal: p50 within 2x of the bare tool.

The client is raw JSON-RPC lines on pipes, so what is measured is the servers, not a client.
Prints figures and ratios; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = '''
from mcp.server.mcpserver import MCPServer

server = MCPServer("bare")


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text


server.run("stdio")
'''

# Where `promstack mcp`'s start-up goes, stage by stage, in a fresh interpreter.
STAGES = """
import json, sys, time
marks = [time.perf_counter()]
import mcp.server.mcpserver
marks.append(time.perf_counter())
import promstack.cli
marks.append(time.perf_counter())
import mcp_server.server
marks.append(time.perf_counter())
mcp_server.server.build_server()
marks.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(marks, marks[1:])]))
"""
STAGE_NAMES = ("import the SDK", "import promstack.cli (store, click)", "import mcp_server", "build the server")

INITIALIZE = {
    "jsonrpc": "2.0", "id": 0, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


class Server:
    def __init__(self, command: list[str], env: dict[str, str]):
        self.command, self.env = command, env
        self.proc: subprocess.Popen | None = None
        self.next_id = 1

    def start(self) -> float:
        """Spawn and initialize; returns seconds from spawn to the initialize result."""
        began = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=self.env, bufsize=0,
        )
        self._send(INITIALIZE)
        reply = self._receive(0)
        elapsed = time.perf_counter() - began
        if "result" not in reply:
            raise RuntimeError(f"{self.command}: initialize failed: {reply}")
        self._send(INITIALIZED)
        return elapsed

    def call(self, tool: str, arguments: dict) -> float:
        request_id = self.next_id
        self.next_id += 1
        began = time.perf_counter()
        self._send({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments}})
        reply = self._receive(request_id)
        elapsed = time.perf_counter() - began
        if reply.get("result", {}).get("isError") or "error" in reply:
            raise RuntimeError(f"{tool} failed: {reply}")
        return elapsed

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def _send(self, message: dict) -> None:
        self.proc.stdin.write((json.dumps(message) + "\n").encode())

    def _receive(self, request_id: int) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.command}: closed stdout")
            message = json.loads(line)
            if message.get("id") == request_id:
                return message


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def make_workspace(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from promstack import Client

    db = folder / ".promstack" / "promstack.db"
    with Client(db) as client:
        client.create_prompt("support/refund", "환불 절차를 안내하세요: {{ question }}",
                             model_config={"model": "gpt-4o-mini", "temperature": 0.2})
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=10, help="cold starts per server")
    parser.add_argument("--calls", type=int, default=300, help="measured round trips per server")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = make_workspace(folder)
        bare_script = folder / "bare_server.py"
        bare_script.write_text(BARE)
        env = {**os.environ, "PROMSTACK_DB": str(db), "PROMSTACK_USER": "bench"}
        promstack = str(Path(sys.executable).with_name("promstack"))
        servers = {
            "bare MCPServer": (Server([sys.executable, str(bare_script)], env), "echo", {"text": "hi"}),
            "promstack mcp": (Server([promstack, "mcp"], env), "get_prompt", {"prompt": "support/refund"}),
        }

        starts: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(options.starts):
            for name, (server, _, _) in servers.items():
                starts[name].append(server.start())
                server.stop()

        stages = [json.loads(subprocess.run([sys.executable, "-c", STAGES], env=env, check=True,
                                            capture_output=True, text=True).stdout)
                  for _ in range(5)]

        trips: dict[str, list[float]] = {}
        for name, (server, tool, arguments) in servers.items():
            server.start()
            for _ in range(20):  # warm: the engine loads on the first call
                server.call(tool, arguments)
            trips[name] = [server.call(tool, arguments) for _ in range(options.calls)]
            server.stop()

    bare, ours = "bare MCPServer", "promstack mcp"
    print(f"cold start to initialize result (median of {options.starts}, alternating):")
    for name in servers:
        print(f"  {name:16} {statistics.median(starts[name]) * 1000:8.1f} ms"
              f"   (min {min(starts[name]) * 1000:.1f}, max {max(starts[name]) * 1000:.1f})")
    ratio = statistics.median(starts[ours]) / statistics.median(starts[bare])
    print(f"  ratio to the ideal: {ratio:.2f}x (goal <= 1.2x)")
    print("  where promstack mcp's start-up goes (median of 5):")
    for i, name in enumerate(STAGE_NAMES):
        print(f"    {name:38} {statistics.median(s[i] for s in stages) * 1000:7.1f} ms")
    print(f"\nround trip over stdio ({options.calls} calls after 20 warm-up):")
    for name, (_, tool, _) in servers.items():
        print(f"  {name:16} {tool:11} p50 {percentile(trips[name], 0.5) * 1000:6.2f} ms"
              f"   p95 {percentile(trips[name], 0.95) * 1000:6.2f} ms")
    ratio = percentile(trips[ours], 0.5) / percentile(trips[bare], 0.5)
    print(f"  p50 ratio to the ideal: {ratio:.2f}x (goal <= 2x, and under 5 ms)")


if __name__ == "__main__":
    main()
