"""The batch overdue sweep for the alert engine, and public mass rounding (pure)."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.manifests.builders import SITE, T0, filed, picked_up, receipt_data, step
from waste.manifests import OverdueKind
from waste.manifests.deadlines import overdue_batch
from waste.manifests.public import approx_kg

DELIVER_BY = T0 + timedelta(days=1)


def test_batch_returns_only_missed_deadlines_latest_first() -> None:
    on_time = filed()
    late = picked_up()
    received = step(picked_up(), "received", receipt_data(), SITE, at=T0 + timedelta(hours=3))
    now = T0 + timedelta(days=10)
    flags = overdue_batch([on_time, late, received], now)
    assert [f.kind for f in flags] == [
        OverdueKind.NOT_DELIVERED,
        OverdueKind.NOT_DELIVERED,
        OverdueKind.RECEIPT_NOT_CONFIRMED,
    ]
    assert flags[0].late_by >= flags[1].late_by >= flags[2].late_by
    assert overdue_batch([on_time, late], DELIVER_BY) == []
    assert overdue_batch([], now) == []


def test_public_masses_are_rounded_to_two_significant_figures() -> None:
    assert approx_kg(795.4) == 800
    assert approx_kg(12_345) == 12_000
    assert approx_kg(5.34) == 5.3
    assert approx_kg(0.0123) == 0.012
    assert approx_kg(None) is None
