"""The REST API's production read against the ideal, on `promstack serve`'s own stack.

    python -m bench.bench_api [--seconds 6] [--clients 2] [--threads 8]

1. `GET /api/v1/prompts/{id}?label=production` against a bare Starlette endpoint returning a
   fixed JSON body, mounted in the same app (the same middleware: Origin, Host, token, body
   limit) under the same uvicorn settings: requests/s and p50. Goal: >= 0.7x the bare rate.
2. The same read with 2 uvicorn workers over one store against 1 worker. Goal: >= 1.6x.

The load is kept-alive raw HTTP/1.1 connections (a few microseconds of client CPU a request) on threads in `--clients` processes (so the client's
own GIL is not the ceiling), for `--seconds` a phase. On a 2-core machine the load and the
server share the cores: the worker ratio is a floor. Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BARE_BODY = {"prompt_id": 1, "name": "support/refund", "version": 1, "template": "Refund {{ order }}"}


def app_factory():  # uvicorn --factory: the served app, plus the bare endpoint
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from promstack.web.app import create_app

    async def bare(request):
        return JSONResponse(BARE_BODY)

    return create_app(os.environ["PROMSTACK_DB"], routes=[Route("/bare", bare, methods=["GET"])])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(db: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "PROMSTACK_DB": str(db),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                       os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bench_api:app_factory", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    import httpx

    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise SystemExit(proc.stderr.read().decode())
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return proc, base


def _get(sock: socket.socket, request: bytes, buf: bytearray) -> None:
    """One GET on a kept-alive connection: send, read the headers, then Content-Length bytes.
    A few microseconds of client CPU, so the load leaves the cores to the server."""
    sock.sendall(request)
    while (end := buf.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    head = bytes(buf[:end]).lower()
    if not head.startswith(b"http/1.1 200"):
        raise RuntimeError(head.decode(errors="replace"))
    at = head.index(b"content-length:") + 15
    length = int(head[at:head.index(b"\r\n", at) if b"\r\n" in head[at:] else None])
    total = end + 4 + length
    while len(buf) < total:
        buf += sock.recv(65536)
    del buf[:total]


def _load(url: str, seconds: float, threads: int) -> list[float]:
    """One client process: `threads` kept-alive connections for `seconds`; the latencies (s)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: */*\r\n\r\n".encode()
    stop = time.monotonic() + seconds
    out: list[list[float]] = [[] for _ in range(threads)]

    def worker(i: int) -> None:
        with socket.create_connection((parts.hostname, parts.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = bytearray()
            _get(sock, request, buf)  # connect and warm, not timed
            while time.monotonic() < stop:
                t = time.perf_counter()
                _get(sock, request, buf)
                out[i].append(time.perf_counter() - t)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return [x for xs in out for x in xs]


def phase(url: str, args: argparse.Namespace) -> tuple[float, float]:
    """(requests/s, p50 ms) of `url` under the load."""
    with concurrent.futures.ProcessPoolExecutor(args.clients) as pool:
        start = time.perf_counter()
        parts = list(pool.map(_load, [url] * args.clients, [args.seconds] * args.clients,
                              [args.threads] * args.clients))
        elapsed = time.perf_counter() - start
    latencies = [x for xs in parts for x in xs]
    return len(latencies) / max(elapsed - 0.0, 1e-9), statistics.median(latencies) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="2 s phases")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    if args.quick:
        args.seconds = 2
    from promstack import Client
    from store.workspace import init

    with tempfile.TemporaryDirectory() as tmp:
        db = init(Path(tmp) / "ws")
        with Client(db) as client:
            made = client.create_prompt("support/refund", "Refund {{ order }} for {{ name }}.",
                                        model_config={"model": "gpt-4o-mini"})
            client.set_label(made.prompt_id, "production", 1, force=True, reason="bench")
        path = f"/api/v1/prompts/{made.prompt_id}?label=production"
        figures = {}
        for workers in (1, 2):
            proc, base = _serve(db, workers)
            try:
                _load(base + path, 1.5, args.threads)  # every worker started and warm
                if workers == 1:
                    figures["bare"] = phase(base + "/bare", args)
                figures[f"api{workers}"] = phase(base + path, args)
            finally:
                proc.terminate()
                proc.wait(timeout=15)
    bare, api1, api2 = figures["bare"], figures["api1"], figures["api2"]
    print(f"bare Starlette endpoint, 1 worker: {bare[0]:,.0f} req/s, p50 {bare[1]:.2f} ms")
    print(f"GET {path}, 1 worker: {api1[0]:,.0f} req/s, p50 {api1[1]:.2f} ms")
    print(f"GET {path}, 2 workers: {api2[0]:,.0f} req/s, p50 {api2[1]:.2f} ms")
    ratio, scale = api1[0] / bare[0], api2[0] / api1[0]
    print(f"api / bare: {ratio:.2f}x the requests/s (goal >= 0.7x), p50 {api1[1] / bare[1]:.2f}x")
    print(f"2 workers / 1: {scale:.2f}x the requests/s (goal >= 1.6x) on {os.cpu_count()} cores, "
          f"{args.clients} load processes x {args.threads} connections, {args.seconds:g} s a phase")
    return 0 if ratio >= 0.7 and scale >= 1.6 else 1


if __name__ == "__main__":
    sys.exit(main())
