"""Deadlines of a manifest: delivery by ``deliver_by``, disposal confirmed within 5 working days.

Working days are Monday to Friday in local time (China Standard Time, UTC+8,
by default), minus public ``holidays``, plus ``extra_working_days`` — the
weekend days China declares working days to bridge its holidays (调休).
A receipt must be confirmed (``disposed``) by the end of the fifth working day
after the day it was received.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from enum import StrEnum

from waste.clock import ensure_utc
from waste.manifests.domain import Custody, ManifestState

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
CONFIRM_WITHIN_WORKING_DAYS = 5


class OverdueKind(StrEnum):
    """Which deadline a manifest has missed."""

    NOT_DELIVERED = "not_delivered"
    RECEIPT_NOT_CONFIRMED = "receipt_not_confirmed"


@dataclass(frozen=True)
class OverdueFlag:
    """A missed deadline: which, when it fell due, and by how much it is missed at ``now``."""

    kind: OverdueKind
    manifest_id: str
    due: datetime
    late_by: timedelta


def is_working_day(
    day: date,
    *,
    holidays: frozenset[date] = frozenset(),
    extra_working_days: frozenset[date] = frozenset(),
) -> bool:
    """Whether ``day`` is a working day."""
    if day in extra_working_days:
        return True
    return day.weekday() < 5 and day not in holidays


def add_working_days(
    day: date,
    n: int,
    *,
    holidays: frozenset[date] = frozenset(),
    extra_working_days: frozenset[date] = frozenset(),
) -> date:
    """The ``n``-th working day after ``day`` (``n`` ≥ 1)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    while n:
        day += timedelta(days=1)
        if is_working_day(day, holidays=holidays, extra_working_days=extra_working_days):
            n -= 1
    return day


def confirmation_due(
    received_at: datetime,
    *,
    holidays: frozenset[date] = frozenset(),
    extra_working_days: frozenset[date] = frozenset(),
    tz: tzinfo = CHINA_STANDARD_TIME,
) -> datetime:
    """When a receipt at ``received_at`` must be confirmed by: end of its 5th working day (UTC)."""
    local_day = ensure_utc(received_at).astimezone(tz).date()
    last = add_working_days(
        local_day,
        CONFIRM_WITHIN_WORKING_DAYS,
        holidays=holidays,
        extra_working_days=extra_working_days,
    )
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)
    return ensure_utc(end)


def overdue(
    custody: Custody,
    now: datetime,
    *,
    holidays: frozenset[date] = frozenset(),
    extra_working_days: frozenset[date] = frozenset(),
    tz: tzinfo = CHINA_STANDARD_TIME,
) -> OverdueFlag | None:
    """The deadline the manifest has missed at ``now``, if any."""
    now = ensure_utc(now)
    if custody.state in (ManifestState.FILED, ManifestState.IN_TRANSIT):
        due = custody.filing.deliver_by
        kind = OverdueKind.NOT_DELIVERED
    elif custody.state is ManifestState.RECEIVED and custody.received_at is not None:
        due = confirmation_due(
            custody.received_at, holidays=holidays, extra_working_days=extra_working_days, tz=tz
        )
        kind = OverdueKind.RECEIPT_NOT_CONFIRMED
    else:
        return None
    if now <= due:
        return None
    return OverdueFlag(kind, custody.manifest_id, due, now - due)


def overdue_batch(
    custodies: Iterable[Custody],
    now: datetime,
    *,
    holidays: frozenset[date] = frozenset(),
    extra_working_days: frozenset[date] = frozenset(),
    tz: tzinfo = CHINA_STANDARD_TIME,
) -> list[OverdueFlag]:
    """Every missed deadline among ``custodies`` at ``now``, the latest first (for alert sweeps)."""
    flags: list[OverdueFlag] = []
    for custody in custodies:
        flag = overdue(
            custody, now, holidays=holidays, extra_working_days=extra_working_days, tz=tz
        )
        if flag is not None:
            flags.append(flag)
    return sorted(flags, key=lambda f: (-f.late_by.total_seconds(), f.manifest_id))
