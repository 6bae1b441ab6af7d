"""How the source APIs write and read timestamps: UTC, second precision, ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime


def format_timestamp(moment: datetime) -> str:
    """Return ``moment`` as the API writes timestamps: UTC, second precision, ``Z`` suffix."""
    # isoformat is several times faster than strftime, which matters when formatting millions of events.
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def format_unix(seconds: int) -> str:
    """Return unix ``seconds`` as an API timestamp."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat() + "Z"


def parse_timestamp(text: str) -> datetime:
    """Parse an API timestamp such as ``2024-03-01T09:15:00Z`` into an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)
