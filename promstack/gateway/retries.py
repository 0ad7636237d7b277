"""Retries for 429/5xx/timeouts/connection errors: tenacity's, bounded in attempts and in time,
honouring a provider's Retry-After; otherwise exponential backoff with full jitter.

The first attempt is a plain await: a call that succeeds (nearly all of them) pays for no retry
machinery (bench_runner: tenacity's set-up cost more than the rest of a call's retry path). Only
a failure builds tenacity's loop, which replays that failure as its first attempt, so the waits,
the attempt count and the deadline are tenacity's alone."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tenacity
from tenacity.wait import wait_base

from .errors import GatewayError

T = TypeVar("T")


def wait_seconds(attempt: int, exc: BaseException | None, initial: float, maximum: float) -> float:
    """How long to wait after failed attempt number `attempt` (1, 2, ...)."""
    after = getattr(exc, "retry_after", None)
    if after is not None:
        return min(after, maximum)
    return min(maximum, initial * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class RetryAfterWait(wait_base):
    """tenacity's wait: a provider's Retry-After, else `wait_seconds`' backoff."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return wait_seconds(retry_state.attempt_number, exc, self.initial, self.maximum)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, GatewayError) and exc.retryable


async def with_retries(once: Callable[[], Awaitable[T]], settings: dict[str, Any],
                       on_retry: Callable[[GatewayError], None] | None = None) -> T:
    """`once()` until it succeeds, fails for good, or the [gateway] settings' attempts
    (`max_retries` + 1) or deadline (`retry_deadline` s from the start) run out; the GatewayError
    raised says how many attempts it took. `on_retry(exc)` hears of each failure retried."""
    started = time.monotonic()
    try:
        return await once()
    except GatewayError as exc:
        if not exc.retryable or int(settings["max_retries"]) < 1:
            exc.attempts = 1
            raise
        failed: GatewayError | None = exc
    retrying = tenacity.AsyncRetrying(
        stop=(tenacity.stop_after_attempt(int(settings["max_retries"]) + 1)
              | tenacity.stop_after_delay(max(0.0, float(settings["retry_deadline"]) - (time.monotonic() - started)))),
        wait=RetryAfterWait(float(settings["retry_initial"]), float(settings["retry_max_wait"])),
        retry=tenacity.retry_if_exception(_retryable),
        before_sleep=(lambda state: on_retry(state.outcome.exception())) if on_retry else None,
        reraise=True,
    )
    attempts = 0
    try:
        async for attempt in retrying:
            with attempt:
                attempts += 1
                if failed is not None:  # the first attempt, already made above
                    replay, failed = failed, None
                    raise replay
                return await once()
    except GatewayError as exc:
        exc.attempts = attempts
        if attempts > 1:
            exc.args = (f"{exc} (after {attempts} attempts)",)
        raise
    raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises
