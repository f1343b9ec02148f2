"""Deadlines: delivery by ``deliver_by``; disposal confirmed within 5 working days of receipt."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.unit.manifests.builders import (
    SITE,
    T0,
    disposal_data,
    filed,
    picked_up,
    receipt_data,
    step,
)
from waste.manifests import Custody, OverdueKind, overdue
from waste.manifests.deadlines import add_working_days, confirmation_due, is_working_day

DELIVER_BY = T0 + timedelta(days=1)


def received_at(at: datetime) -> Custody:
    """A manifest received at ``at``."""
    return step(picked_up(), "received", receipt_data(), SITE, at=at)


def test_not_delivered_after_deliver_by() -> None:
    for c in (filed(), picked_up()):
        assert overdue(c, DELIVER_BY) is None
        flag = overdue(c, DELIVER_BY + timedelta(seconds=1))
        assert flag is not None
        assert (flag.kind, flag.due, flag.late_by) == (
            OverdueKind.NOT_DELIVERED,
            DELIVER_BY,
            timedelta(seconds=1),
        )
        assert flag.manifest_id == c.manifest_id


def test_cancelled_rejected_and_disposed_are_never_overdue() -> None:
    later = DELIVER_BY + timedelta(days=60)
    cancelled = step(filed(), "cancelled", {"reason": "Plant closed"}, "P-1")
    rejected = step(picked_up(), "rejected", {"reason": "x", "next": "return_to_producer"}, SITE)
    disposed = step(received_at(T0 + timedelta(hours=3)), "disposed", disposal_data(), SITE)
    assert [overdue(c, later) for c in (cancelled, rejected, disposed)] == [None, None, None]


def test_a_late_delivery_is_no_longer_flagged_once_received() -> None:
    c = received_at(DELIVER_BY + timedelta(hours=5))
    assert overdue(c, DELIVER_BY + timedelta(hours=6)) is None


def test_receipt_confirmation_counts_working_days_across_a_weekend() -> None:
    # Received Friday 27 Nov 2026, 10:00 in Beijing: Mon 30, Tue 1, Wed 2, Thu 3, Fri 4 Dec.
    c = received_at(datetime(2026, 11, 27, 2, 0, tzinfo=UTC))
    due = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # Sat 5 Dec 00:00 +08:00
    assert overdue(c, due) is None
    flag = overdue(c, due + timedelta(minutes=1))
    assert flag is not None
    assert flag.kind is OverdueKind.RECEIPT_NOT_CONFIRMED
    assert flag.due == due


def test_holidays_and_make_up_working_days() -> None:
    friday = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
    assert confirmation_due(friday, holidays=frozenset({date(2026, 12, 1)})) == datetime(
        2026, 12, 7, 16, 0, tzinfo=UTC
    )
    assert confirmation_due(friday, extra_working_days=frozenset({date(2026, 11, 28)})) == (
        datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    )
    c = received_at(friday)
    holiday = frozenset({date(2026, 12, 1)})
    assert overdue(c, datetime(2026, 12, 5, tzinfo=UTC), holidays=holiday) is None


def test_the_receipt_day_is_the_local_day() -> None:
    # Friday 20:00 UTC is already Saturday in Beijing: the count starts on Monday either way,
    # but in UTC it is still Friday.
    late_friday = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    assert confirmation_due(late_friday) == datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
    assert confirmation_due(late_friday, tz=UTC) == datetime(2026, 12, 5, 0, 0, tzinfo=UTC)
    thursday_night = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)  # Friday 01:00 in Beijing
    assert confirmation_due(thursday_night) == datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
    assert confirmation_due(thursday_night, tz=UTC) == datetime(2026, 12, 4, 0, 0, tzinfo=UTC)


def test_working_day_helpers() -> None:
    assert [is_working_day(date(2026, 11, d)) for d in range(23, 30)] == [True] * 5 + [False] * 2
    assert add_working_days(date(2026, 11, 27), 1) == date(2026, 11, 30)
    assert add_working_days(date(2026, 11, 28), 5) == date(2026, 12, 4)
    with pytest.raises(ValueError):
        add_working_days(date(2026, 11, 27), 0)
