"""Retries for 429/5xx/timeouts/connection errors: tenacity's, bounded in attempts and in time,
honouring a provider's Retry-After."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .errors import GatewayError

T = TypeVar("T")

try:  # tenacity's wait protocol; imported here only for the base class
    from tenacity.wait import wait_base as _wait_base
except ImportError:  # pragma: no cover - tenacity is a dependency
    _wait_base = object


class RetryAfterWait(_wait_base):
    """Honour a provider's Retry-After; otherwise exponential backoff with full jitter."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum

    def __call__(self, retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return min(after, self.maximum)
        return min(self.maximum, self.initial * 2 ** (retry_state.attempt_number - 1)) * random.uniform(0.5, 1.0)


async def with_retries(once: Callable[[], Awaitable[T]], settings: dict[str, Any]) -> T:
    """`once()` until it succeeds, fails for good, or the [gateway] settings' attempts or
    deadline run out; the GatewayError raised says how many attempts it took."""
    import tenacity

    retrying = tenacity.AsyncRetrying(
        stop=(tenacity.stop_after_attempt(int(settings["max_retries"]) + 1)
              | tenacity.stop_after_delay(float(settings["retry_deadline"]))),
        wait=RetryAfterWait(float(settings["retry_initial"]), float(settings["retry_max_wait"])),
        retry=tenacity.retry_if_exception(lambda e: isinstance(e, GatewayError) and e.retryable),
        reraise=True,
    )
    attempts = 0
    try:
        async for attempt in retrying:
            with attempt:
                attempts += 1
                return await once()
    except GatewayError as exc:
        exc.attempts = attempts
        if attempts > 1:
            exc.args = (f"{exc} (after {attempts} attempts)",)
        raise
    raise AssertionError("unreachable")  # pragma: no cover
