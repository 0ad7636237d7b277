"""Timestamps: UTC ISO 8601 with microseconds, so they sort as text and compare across processes."""

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """A datetime in the call log's format: UTC ISO 8601 with microseconds and Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def now() -> str:
    return iso(datetime.now(UTC))
