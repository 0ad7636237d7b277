"""Rate limits, per model: how many requests go out at once and how fast.

- Up front, `[gateway] rpm` / `tpm` (or `[gateway.models."<model>"] rpm` / `tpm` for one model)
  space request starts so that no minute holds more than `rpm` requests or `tpm` tokens (input
  tokens estimated before the call, corrected by the usage the provider reports).
- Adaptively (AIMD, as TCP does it), on two knobs at once, since a provider may limit either:
  a 429 halves how many requests to that model may be in flight, and sets a pace just under the
  rate the provider was accepting over the last second (once per round of requests, not once
  per 429 of the same burst), and holds new requests until its Retry-After has passed; each
  success widens the window again by one request per window's worth of successes and raises the
  pace by half a request a second per second, until no limit is left. A run against a
  rate-limited provider then settles near the provider's limit instead of spending its retries
  on 429s.

The limiter is per gateway and per event loop (a batch run's gateway runs on one loop); the
portal's gateway shares one, like its HTTP pool.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from store.errors import InvalidInput

UNLIMITED = 1 << 30
MIN_WINDOW = 4.0  # a 429 narrows the window no further: the pace does the rest


class ModelLimiter:
    """One model's window (requests in flight) and pace (request starts over time)."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self.rpm = float(rpm) if rpm else None
        self.tpm = float(tpm) if tpm else None
        self.window = float(UNLIMITED)  # AIMD: how many may be in flight
        self.in_flight = 0
        self.peak = 0
        self.throttled = 0  # 429s heard
        self._next_start = 0.0  # monotonic time the next request may start (the pace)
        self._resume_at = 0.0  # held until then after a 429's Retry-After
        self._decreased_at = -1.0e9
        self.rate: float | None = None  # AIMD: requests a second, learned from 429s
        self._ok: deque[float] = deque()  # when the last second's successes came back
        self._waiters: list[asyncio.Future] = []

    def configure(self, rpm: float | None, tpm: float | None) -> None:
        self.rpm = float(rpm) if rpm else None
        self.tpm = float(tpm) if tpm else None

    # ---- taking and giving back a slot --------------------------------------------------

    async def acquire(self, tokens: int = 0) -> None:
        """Wait for room in the window, for the pace and for any Retry-After; then take a slot."""
        while True:
            if self.in_flight + 1 <= self.window:
                delay = max(self._resume_at, self._next_start) - time.monotonic()
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self._pace(1, tokens)

    def release(self, *, throttled: bool = False, retry_after: float | None = None,
                tokens_unestimated: int = 0) -> None:
        """Give the slot back: `throttled` when the provider answered 429; tokens the estimate
        missed count against the pace."""
        self.in_flight -= 1
        self._pace(0, tokens_unestimated)
        now = time.monotonic()
        ok = self._ok
        while ok and ok[0] < now - 1.0:
            ok.popleft()
        if throttled:
            self.throttled += 1
            if retry_after:
                self._resume_at = max(self._resume_at, now + min(float(retry_after), 60.0))
            # Once a round: the 429s of one burst are one signal, not one halving each.
            if now - self._decreased_at > max(float(retry_after or 0), 0.5):
                self.window = max(MIN_WINDOW, min(self.window, self.in_flight + 1) / 2)
                if ok:  # none back yet (the first burst): the window alone, until some are
                    self.rate = max(1.0 / 60, min(len(ok) * 0.9, self.rate or len(ok)))
                elif self.rate is not None:
                    self.rate = max(1.0 / 60, self.rate / 2)
                self._decreased_at = now
        else:
            ok.append(now)
            if self.window < UNLIMITED:
                self.window += 1.0 / self.window
                if self.window > 4 * max(self.peak, 1):
                    self.window = float(UNLIMITED)  # far past anything asked of it: no limit left
            if self.rate is not None:
                self.rate += 0.5 / self.rate
                if self.rate > 4 * max(len(ok), 1) and self.window >= UNLIMITED:
                    self.rate = None  # the provider takes far more than is asked: no pace left
        self._wake()

    def _pace(self, requests: int, tokens: int) -> None:
        step = 0.0
        if self.rpm and requests:
            step = max(step, 60.0 * requests / self.rpm)
        if self.rate and requests:
            step = max(step, requests / self.rate)
        if self.tpm and tokens:
            step = max(step, 60.0 * tokens / self.tpm)
        if step:
            self._next_start = max(self._next_start, time.monotonic()) + step

    def _wake(self) -> None:
        room = int(self.window) - self.in_flight
        while room > 0 and self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                room -= 1


class Limits:
    """The limiters of one gateway, one per model, made on first use."""

    def __init__(self) -> None:
        self._models: dict[str, ModelLimiter] = {}
        # Processes sharing the configured rates (`promstack test --workers N`): each takes its part.
        self.share = 1

    def get(self, model: str, settings: dict[str, Any]) -> ModelLimiter:
        rpm, tpm = (r / self.share if r else r for r in rates(model, settings))
        limiter = self._models.get(model)
        if limiter is None:
            limiter = self._models[model] = ModelLimiter(rpm, tpm)
        elif (limiter.rpm, limiter.tpm) != (float(rpm) if rpm else None, float(tpm) if tpm else None):
            limiter.configure(rpm, tpm)
        return limiter

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per model: the window now, the most in flight at once, the 429s heard."""
        return {m: {"window": None if lim.window >= UNLIMITED else round(lim.window, 1),
                    "rate": None if lim.rate is None else round(lim.rate, 2),
                    "peak": lim.peak, "throttled": lim.throttled} for m, lim in self._models.items()}


def rates(model: str, settings: dict[str, Any]) -> tuple[float | None, float | None]:
    """(rpm, tpm) for `model` from the [gateway] settings: `[gateway.models."<model>"]` over
    `[gateway]`; None where no cap is set."""
    specific = (settings.get("models") or {}).get(model) or {}
    found = specific.get("rpm", settings.get("rpm")), specific.get("tpm", settings.get("tpm"))
    for name, value in zip(("rpm", "tpm"), found, strict=True):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
            raise InvalidInput(f"[gateway] {name} for {model!r} must be a positive number (a minute's "
                               f"requests or tokens); got {value!r}")
    return found


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A cheap estimate of a request's input tokens (four characters a token), for the pace."""
    n = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            n += len(content)
        elif isinstance(content, list):
            n += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    return n // 4 + 4 * len(messages)
