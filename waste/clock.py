"""RFC 3339 UTC timestamps as the wire contract fixes them, and the clock.

The protocol accepts ``YYYY-MM-DDTHH:MM:SSZ`` or ``YYYY-MM-DDTHH:MM:SS.mmmZ``
only: UTC, a ``Z`` suffix, second or millisecond precision.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from waste.errors import Invalid

_RFC3339_UTC = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?Z$")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to milliseconds."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def parse_utc(value: object, *, field: str = "t") -> datetime:
    """Parse a protocol timestamp; raise ``Invalid`` naming ``field`` if it is not one."""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be an RFC 3339 UTC timestamp string", field=field)
    m = _RFC3339_UTC.match(value)
    if m is None:
        raise Invalid(
            f"{field} must look like 2026-11-23T08:00:00Z or 2026-11-23T08:00:00.250Z",
            field=field,
        )
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    millis = int(m.group(7) or 0)
    try:
        return datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=UTC)
    except ValueError as exc:
        raise Invalid(f"{field} is not a real date and time: {exc}", field=field) from exc


def parse_day_or_utc(value: str, *, field: str, end: bool) -> datetime:
    """A query bound: ``YYYY-MM-DD`` (a whole UTC day; with ``end``, up to the next day's
    start, so the day is included) or a protocol timestamp; ``Invalid`` naming ``field``."""
    if _DATE.match(value):
        try:
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError as exc:
            raise Invalid(f"{field} is not a real date", field=field) from exc
        return day + timedelta(days=1) if end else day
    return parse_utc(value, field=field)


def format_utc(moment: datetime) -> str:
    """Format an aware datetime as a protocol timestamp (milliseconds only when non-zero)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the protocol only speaks UTC")
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    millis = moment.microsecond // 1000
    return f"{base}.{millis:03d}Z" if millis else f"{base}Z"


def ensure_utc(moment: datetime) -> datetime:
    """Return ``moment`` as aware UTC; naive values (as SQLite returns them) are taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
