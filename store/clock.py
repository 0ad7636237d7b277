"""Timestamps: UTC ISO 8601 with microseconds, so they sort as text and compare across processes."""

from datetime import UTC, datetime


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
