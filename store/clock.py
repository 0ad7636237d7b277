"""Timestamps: UTC ISO 8601 with microseconds, so they sort as text and compare across processes.

Every timestamp the store writes comes from `now()`, which reads the time through `current`:
a test replaces `store.clock.current` to put events at instants of its choosing.
"""

from datetime import UTC, datetime


def current() -> datetime:
    """The time now, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """A datetime in the call log's format: UTC ISO 8601 with microseconds and Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.tzinfo is not UTC:  # most are UTC already: astimezone is a tenth of a reported row's cost
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def now() -> str:
    return iso(current())
