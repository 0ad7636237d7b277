"""Timestamps: UTC ISO 8601 with microseconds, so they sort as text and compare across processes.

Every timestamp the store writes comes from `now()`, which reads the time through `current`:
a test replaces `store.clock.current` to put events at instants of its choosing.
"""

from datetime import UTC, datetime


def current() -> datetime:
    """The time now, in UTC."""
    return datetime.now(UTC)


def now() -> str:
    return current().isoformat(timespec="microseconds").replace("+00:00", "Z")
