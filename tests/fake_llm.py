"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

`POST /v1/chat/completions` answers like OpenAI's chat-completions API with usage counts, and
can be told to misbehave: latency, a random error rate, 429 with Retry-After, 500s, malformed
bodies, empty choices, logprobs. Three ways to steer it:

- attributes on the server (`fake.latency = 0.1`, `fake.error_rate = 0.2`, `fake.usage = (150, 200)`);
- a script of behaviours consumed one per request (`fake.script("429", "500", "ok")`);
- the model name (`fake-429`, `fake-500`, `fake-malformed`, `fake-empty`, `fake-slow-250`), which
  works through any client, litellm included, and under concurrency.

`fake.rate_limit = (n, seconds)` accepts at most n chat requests in any such window and answers
the rest 429 with the Retry-After of the next free place (`fake.throttled` counts them;
`fake.arrivals` and `fake.max_in_window(s)` say how fast requests came; `GET /v1/stats` says it
over HTTP).

`fake.peak` is the most chat requests it was answering at once (`fake.peak_by_model`, per model);
`fake.hold = n` keeps each one waiting until n are in flight (or HOLD_TIMEOUT passed), so a test
can see that calls overlap without measuring time.

It runs on its own thread and event loop (`FakeLLM().start()`), or as a process for benchmarks:
`python tests/fake_llm.py --port 0 --latency 0.1` prints `PORT <n>` and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import threading
import time
from collections import deque
from typing import Any

HOLD_TIMEOUT = 10.0  # seconds a held request waits for the others before all are let go
BEHAVIOURS = ("ok", "429", "500", "503", "malformed", "empty", "timeout", "401", "400")


class FakeLLM:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self.latency = 0.0
        self.error_rate = 0.0  # fraction of requests answered with a 500
        self.retry_after = "0"  # seconds, sent with every 429
        self.usage: tuple[int, int] | None = None  # fixed (prompt, completion) tokens
        self.reply: str | None = None  # fixed answer; default echoes the last user message
        self.logprobs = False
        self.require_key: str | None = None  # expected bearer token, if any
        self.requests: list[dict[str, Any]] = []
        self.record = True
        self.hold = 0  # hold each chat request until this many are in flight at once
        self.in_flight = 0
        self.peak = 0
        # (n, seconds): at most n chat requests accepted in any `seconds` window, 429 with the
        # Retry-After of the next free place beyond (a provider's requests-a-minute limit)
        self.rate_limit: tuple[int, float] | None = None
        self.accepted: deque[float] = deque()  # when the rate-limited window's requests came
        self.arrivals: list[float] = []  # time.monotonic() of every chat request
        self.throttled = 0  # 429s the rate limit answered
        self.peak_by_model: dict[str, int] = {}
        self._flight: dict[str, int] = {}  # in flight, per model
        self._released: asyncio.Event | None = None
        self._generation = 0  # bumped by reset(): a request a past test gave up on is not counted
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._rng = random.Random(1234)

    # ---- steering -------------------------------------------------------------------------

    def script(self, *behaviours: str) -> None:
        for b in behaviours:
            if b not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {b!r}; use one of {BEHAVIOURS}")
        with self._lock:
            self._script.extend(behaviours)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
        self.latency = 0.0
        self.error_rate = 0.0
        self.retry_after = "0"
        self.usage = None
        self.reply = None
        self.logprobs = False
        self.require_key = None
        self.hold = 0
        self._generation += 1
        self.in_flight = self.peak = 0
        self.peak_by_model, self._flight = {}, {}
        self.rate_limit, self.throttled = None, 0
        self.accepted, self.arrivals = deque(), []
        self._released = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeLLM:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._server.close()
            pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-llm", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake LLM server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- HTTP -----------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                status, extra, payload = await self._respond(method, path, headers, body)
                keep = headers.get("connection", "").lower() != "close"
                out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}",
                       "content-type: application/json", f"content-length: {len(payload)}",
                       "connection: " + ("keep-alive" if keep else "close")]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + payload)
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass  # a client hung up, or the server is stopping
        finally:
            writer.close()

    def _next_behaviour(self, model: str) -> tuple[str, float]:
        latency = self.latency
        slow = re.search(r"slow-(\d+)", model)
        if slow:
            latency = int(slow.group(1)) / 1000
        for b in ("429", "500", "503", "malformed", "empty", "401", "400", "timeout"):
            if f"fake-{b}" in model:
                return b, latency
        with self._lock:
            if self._script:
                return self._script.popleft(), latency
        if self.error_rate and self._rng.random() < self.error_rate:
            return "500", latency
        return "ok", latency

    async def _respond(self, method: str, path: str, headers: dict[str, str], body: bytes):
        if method == "GET" and path.rstrip("/").endswith("/stats"):
            return 200, {}, json.dumps({"requests": len(self.arrivals), "throttled": self.throttled,
                                        "peak": self.peak}).encode()
        if method == "GET" and path.rstrip("/").endswith("/models"):
            return 200, {}, json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode()
        if method == "POST" and path.rstrip("/").endswith("/embeddings"):
            return self._embeddings(body)
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            return 404, {}, _error("not found", "invalid_request_error")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, {}, _error("body is not JSON", "invalid_request_error")
        if self.record:
            with self._lock:
                self.requests.append({"path": path, "headers": headers, "json": request})
        if self.require_key is not None and headers.get("authorization") != f"Bearer {self.require_key}":
            return 401, {}, _error("Incorrect API key provided", "invalid_api_key")
        model = str(request.get("model", ""))
        self.arrivals.append(time.monotonic())
        limited = self._over_the_rate()
        if limited is not None:
            self.throttled += 1
            return 429, {"retry-after": limited}, _error("Rate limit reached for requests", "rate_limit_exceeded")
        behaviour, latency = self._next_behaviour(model)
        if behaviour == "timeout":
            latency = max(latency, 30.0)
        generation = self._generation  # only the server's own loop counts
        self.in_flight += 1
        self._flight[model] = self._flight.get(model, 0) + 1
        self.peak = max(self.peak, self.in_flight)
        self.peak_by_model[model] = max(self.peak_by_model.get(model, 0), self._flight[model])
        try:
            await self._wait_for_the_others()
            if latency:
                await asyncio.sleep(latency)
        finally:
            if generation == self._generation:
                self.in_flight -= 1
                self._flight[model] -= 1
        if behaviour == "429":
            return 429, {"retry-after": self.retry_after}, _error("Rate limit reached", "rate_limit_exceeded")
        if behaviour in ("500", "503"):
            return int(behaviour), {}, _error("The server had an error", "server_error")
        if behaviour == "401":
            return 401, {}, _error("Incorrect API key provided", "invalid_api_key")
        if behaviour == "400":
            return 400, {}, _error("Bad request", "invalid_request_error")
        if behaviour == "malformed":
            return 200, {}, b'{"id": "chatcmpl-broken", "choices": [{"message": '
        messages = request.get("messages") or []
        last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
        text = self.reply if self.reply is not None else f"echo: {last}"
        prompt_tokens, completion_tokens = self.usage or (
            sum(len(str(m.get("content", "")).split()) + 4 for m in messages) + 3,
            max(1, len(text.split())),
        )
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }
        if self.logprobs or request.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": t, "logprob": -0.01, "bytes": list(t.encode()), "top_logprobs": []}
                for t in text.split()
            ]}
        data = {
            "id": f"chatcmpl-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [] if behaviour == "empty" else [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return 200, {}, json.dumps(data, ensure_ascii=False).encode()

    def _over_the_rate(self) -> str | None:
        """None when the rate limit (if any) lets this request in; else its Retry-After."""
        if self.rate_limit is None:
            return None
        n, seconds = self.rate_limit
        now = time.monotonic()
        while self.accepted and self.accepted[0] <= now - seconds:
            self.accepted.popleft()
        if len(self.accepted) < n:
            self.accepted.append(now)
            return None
        return f"{max(0.001, self.accepted[0] + seconds - now):.3f}"

    def max_in_window(self, seconds: float) -> int:
        """The most chat requests that arrived within any `seconds` window."""
        times, most, start = sorted(self.arrivals), 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= seconds:
                start += 1
            most = max(most, end - start + 1)
        return most

    async def _wait_for_the_others(self) -> None:
        if not self.hold:
            return
        if self._released is None:
            self._released = asyncio.Event()
        if self.in_flight >= self.hold:
            self._released.set()
        try:
            await asyncio.wait_for(self._released.wait(), HOLD_TIMEOUT)
        except TimeoutError:
            self._released.set()  # the others are not coming: let everyone go

    def _embeddings(self, body: bytes):
        """Deterministic 8-dimensional vectors from each text's sha256."""
        import hashlib

        request = json.loads(body or b"{}")
        if self.record:
            with self._lock:
                self.requests.append({"path": "/v1/embeddings", "headers": {}, "json": request})
        texts = request.get("input") or []
        texts = [texts] if isinstance(texts, str) else texts
        data = []
        for i, text in enumerate(texts):
            digest = hashlib.sha256(str(text).encode()).digest()
            data.append({"object": "embedding", "index": i,
                         "embedding": [round(b / 255 - 0.5, 4) for b in digest[:8]]})
        tokens = sum(len(str(t).split()) for t in texts)
        payload = {"object": "list", "data": data, "model": request.get("model"),
                   "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return 200, {}, json.dumps(payload).encode()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def _error(message: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": code, "code": code}}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--usage", default=None, help="fixed prompt,completion tokens, e.g. 150,200")
    parser.add_argument("--rpm", type=int, default=0,
                        help="accept at most this many requests a minute, enforced a second at a time "
                             "(rpm/60 in any second, as providers smooth it); 429 beyond")
    args = parser.parse_args()
    fake = FakeLLM(port=args.port)
    fake.latency = args.latency
    if args.rpm:
        fake.rate_limit = (max(1, args.rpm // 60), 1.0)
    fake.record = False
    if args.usage:
        a, b = args.usage.split(",")
        fake.usage = (int(a), int(b))
    fake.start()
    print(f"PORT {fake.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()


def start_redis():
    """Start redis-server on a free 127.0.0.1 port with no persistence; wait until it answers."""
    import shutil
    import socket
    import subprocess

    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if binary is None:
        return None, "redis-server is not installed (scripts/ensure-redis.sh installs it)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    return None, "redis-server did not start within 10 s"
