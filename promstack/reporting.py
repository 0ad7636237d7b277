"""Calls an app reports to a team server (`client.log_call(...)` on a remote client), sent in the
background so the app never waits on the network.

`log_call` puts the row on a bounded in-memory queue and returns; a thread sends the queue in
batches to `POST /api/v1/calls`, retrying a batch with exponential backoff (tenacity) while the
server is away. Memory stays bounded: a full queue drops the new row, and a batch still unsent
after `give_up` seconds is dropped; both are counted (`dropped`) and logged once per outage, never
raised at the app. Every row carries its own call id, so a batch resent after a lost answer is
stored once. `flush()` waits for the queue to drain; `close()` drains, then stops the thread.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_when_event_set,
    wait_exponential,
)

log = logging.getLogger("promstack.reporting")

BATCH = 100
QUEUE = 10_000


class Transient(Exception):
    """A batch the server may take later (unreachable, 5xx, 429): retried."""


def call_fields(model: str, *, prompt_id: int | str | None = None, prompt_version: int | None = None,
                input_tokens: int = 0, output_tokens: int = 0, latency_ms: float = 0.0,
                user_id: str | None = None, status: str | None = None, error: str | None = None,
                timestamp: datetime | str | float | None = None, cost_usd: float | None = None,
                provider: str | None = None, operation: str | None = None, environment: str | None = None,
                call_id: str | None = None) -> dict[str, Any]:
    """A reported call as `POST /api/v1/calls` takes it (checked by the server, or by the local
    store: promstack.monitoring.reported); a call id is made when none is given."""
    if isinstance(timestamp, datetime):
        timestamp = timestamp.isoformat()
    row = {"model": model, "prompt_id": prompt_id, "prompt_version": prompt_version, "input_tokens": input_tokens,
           "output_tokens": output_tokens, "latency_ms": latency_ms, "user_id": user_id, "status": status,
           "error": error, "timestamp": timestamp if timestamp is not None else time.time(), "cost_usd": cost_usd,
           "provider": provider, "operation": operation, "environment": environment,
           "call_id": call_id or secrets.token_hex(12)}
    return {k: v for k, v in row.items() if v is not None}


class CallReporter:
    """A bounded queue of reported calls and the thread that sends it; see the module's docstring.

    `send(batch)` posts one batch and returns the server's answer, raising `Transient` for a
    failure worth retrying (anything else drops the batch, counted)."""

    def __init__(self, send: Callable[[list[dict[str, Any]]], dict[str, Any]], *, max_queue: int = QUEUE,
                 batch: int = BATCH, interval: float = 0.2, give_up: float = 60.0, backoff: float = 0.1,
                 max_backoff: float = 5.0) -> None:
        self._send = send
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(max_queue)
        self._batch, self._interval, self._give_up = batch, interval, give_up
        self._backoff, self._max_backoff = backoff, max_backoff
        self._stop = threading.Event()  # close(): no more waiting between retries
        self._idle = threading.Condition()
        self._unfinished = 0  # rows queued or in flight
        self.sent = 0  # stored by the server (duplicates of a resent batch included)
        self.dropped = 0  # never stored: the queue was full, or the server stayed away
        self.rejected = 0  # refused by the server (a bad row), each logged with its sentence
        self._warned = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, row: dict[str, Any]) -> bool:
        """Queue a row without blocking; False (and counted) when the queue is full or closed."""
        if self._stop.is_set():
            self._drop(1, "the reporter is closed")
            return False
        with self._idle:
            self._unfinished += 1
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self._done(1)
            self._drop(1, f"the queue of {self._queue.maxsize} calls is full (the server is away or slow)")
            return False
        self._start()
        return True

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="promstack-call-reporter", daemon=True)
                    self._thread.start()

    def _drop(self, count: int, why: str) -> None:
        with self._lock:
            self.dropped += count
            warn, self._warned = not self._warned, True
        if warn:
            log.warning("promstack: dropped %d reported call(s): %s; `dropped` counts them", count, why)

    def _done(self, count: int) -> None:
        with self._idle:
            self._unfinished -= count
            if self._unfinished == 0:
                self._idle.notify_all()

    def _loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._interval)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            batch = [first]
            while len(batch) < self._batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._deliver(batch)
            finally:
                self._done(len(batch))

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        retrying = Retrying(
            retry=retry_if_exception_type(Transient), reraise=True, sleep=self._stop.wait,
            stop=stop_after_delay(self._give_up) | stop_when_event_set(self._stop),
            wait=wait_exponential(multiplier=self._backoff, max=self._max_backoff))
        try:
            answer = retrying(self._send, batch)
        except Transient as exc:
            self._drop(len(batch), f"the server stayed away: {exc}")
            return
        except Exception as exc:  # a refusal of the whole batch (a token without the role, ...)
            self._drop(len(batch), f"the server refused the batch: {exc}")
            return
        with self._lock:
            self.sent += len(batch) - len(answer.get("rejected", []))
            self.rejected += len(answer.get("rejected", []))
            self._warned = False  # the server is back: the next outage is logged again
        for item in answer.get("rejected", []):
            log.warning("promstack: the server refused reported call %s: %s",
                        batch[item["index"]].get("call_id"), item["reason"])

    def pending(self) -> int:
        """Rows queued or in flight."""
        with self._idle:
            return self._unfinished

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued row is sent (or dropped); False if `timeout` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Drain (up to `timeout` s), then stop: a batch still retrying is dropped, counted."""
        drained = self.flush(timeout)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=None if drained else 5.0)
        left = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            left += 1
        if left:
            self._done(left)
            self._drop(left, "the client closed before the server took them")
