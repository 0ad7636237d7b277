"""Retries for 429/5xx/timeouts/connection errors, bounded in attempts and in time, honouring a
provider's Retry-After; otherwise exponential backoff with full jitter. The first attempt is a
plain await: a call that succeeds (nearly all of them) pays for no retry machinery."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .errors import GatewayError

T = TypeVar("T")


def wait_seconds(attempt: int, exc: BaseException, initial: float, maximum: float) -> float:
    """How long to wait after failed attempt number `attempt` (1, 2, ...)."""
    after = getattr(exc, "retry_after", None)
    if after is not None:
        return min(after, maximum)
    return min(maximum, initial * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


async def with_retries(once: Callable[[], Awaitable[T]], settings: dict[str, Any],
                       on_retry: Callable[[GatewayError], None] | None = None) -> T:
    """`once()` until it succeeds, fails for good, or the [gateway] settings' attempts
    (`max_retries` + 1) or deadline (`retry_deadline` s from the start) run out; the GatewayError
    raised says how many attempts it took. `on_retry(exc)` hears of each failure retried."""
    attempts = 0
    most = int(settings["max_retries"]) + 1
    deadline = float(settings["retry_deadline"])
    started = time.monotonic()
    while True:
        attempts += 1
        try:
            return await once()
        except GatewayError as exc:
            if not exc.retryable or attempts >= most or time.monotonic() - started >= deadline:
                exc.attempts = attempts
                if attempts > 1:
                    exc.args = (f"{exc} (after {attempts} attempts)",)
                raise
            if on_retry is not None:
                on_retry(exc)
            await asyncio.sleep(wait_seconds(attempts, exc, float(settings["retry_initial"]),
                                             float(settings["retry_max_wait"])))
