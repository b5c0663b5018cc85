"""Kubernetes timestamps: RFC 3339 in UTC with a `Z`, as the API server writes them."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`; sub-second digits only when present (trailing zeros dropped)."""
    value = as_utc(value)
    text = f"{value.year:04d}-" + value.strftime("%m-%dT%H:%M:%S")  # %Y does not pad years before 1000
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp as the API server writes it (`Z` or an offset)."""
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def read_time(value: object) -> datetime | None:
    """A timestamp read from an object that was not validated: None when it is absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None
