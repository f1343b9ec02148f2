"""Custody-derived alert kinds, unmanifested movement and thresholds: scenario and near miss."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.unit.alerts._trips import START, at
from tests.unit.manifests.builders import (
    HAULER,
    HAULERS,
    MANIFEST_ID,
    PRODUCER,
    SITE,
    T0,
    handover_data,
    picked_up,
    receipt_data,
    received,
    step,
)
from tests.unit.tracking._routes import offset
from waste.alerts import custody_rules as cr
from waste.alerts.engine import LockIn
from waste.alerts.movement import VehicleWatcher
from waste.alerts.thresholds import AlertThresholds, ThresholdBook
from waste.errors import Invalid
from waste.tracking import Fix

TH = AlertThresholds()
PERMIT = cr.PermitView(
    "P-1", ("900-041-49", "900-249-08"), 1_000_000.0, date(2025, 1, 1), date(2030, 12, 31), False
)


# --- quantity_discrepancy ---------------------------------------------------------------


def test_received_mass_short_beyond_the_tolerance() -> None:
    short = received(mass_kg=1000.0, accepted_kg=1000.0)  # 1,195.5 picked up: 16% lost
    found = cr.quantity(short, TH)
    assert found is not None
    assert found.candidate.severity == "high"
    assert found.weighing["basis"] == "leg_start"
    assert found.leg_index == 0
    assert found.candidate.key == f"quantity_discrepancy:{MANIFEST_ID}/2"


def test_received_mass_within_the_tolerance() -> None:
    assert cr.quantity(received(mass_kg=1100.0, accepted_kg=1100.0), TH) is None  # 8%
    assert cr.quantity(received(), TH) is None


def test_a_form_can_have_a_stricter_tolerance() -> None:
    strict = AlertThresholds(mass_tolerance_by_form={"liquid": 0.05})
    assert cr.quantity(received(mass_kg=1100.0, accepted_kg=1100.0), strict) is not None


def test_each_handover_is_weighed_and_losses_add_up_at_receipt() -> None:
    c = picked_up()
    lost = step(
        c,
        "handed_over",
        handover_data(HAULER, HAULERS[1], mass_kg=1000.0),
        HAULER,
        (HAULER, HAULERS[1]),
    )
    assert cr.quantity(lost, TH) is not None
    c = step(
        c,
        "handed_over",
        handover_data(HAULER, HAULERS[1], mass_kg=1120.0),
        HAULER,
        (HAULER, HAULERS[1]),
    )
    assert cr.quantity(c, TH) is None  # 6% on this leg
    c = step(
        c, "received", receipt_data(mass_kg=1050.0, accepted_kg=1050.0, seal_id="SEAL-2"), SITE
    )
    found = cr.quantity(c, TH)  # 6% on the last leg, 12% since pickup
    assert found is not None
    assert found.weighing["basis"] == "picked_up"
    assert found.leg_index == 1


# --- seal_tamper at the gate ----------------------------------------------------------------


def test_a_seal_found_at_the_gate_that_is_not_the_one_applied() -> None:
    other = cr.seal_mismatch(received(seal_id="SEAL-99"))
    assert other is not None
    assert other.severity == "critical"
    assert other.evidence["expected_seal_id"] == "SEAL-1"
    broken = cr.seal_mismatch(received(seal_intact=False))
    assert broken is not None


def test_the_seal_applied_found_intact() -> None:
    assert cr.seal_mismatch(received()) is None
    assert cr.seal_mismatch(picked_up()) is None


# --- unlicensed_receipt ----------------------------------------------------------------------


def test_a_receipt_the_permit_does_not_cover() -> None:
    narrow = cr.PermitView("P-2", ("900-041-49",), 1e6, date(2025, 1, 1), date(2030, 1, 1), False)
    found = cr.unlicensed(received(), site_id=SITE, permits=[narrow], used_kg=0.0)
    assert found is not None
    assert found.evidence["unlicensed_codes"] == ["900-249-08"]
    expired = cr.PermitView(
        "P-3", PERMIT.waste_codes, 1e6, date(2020, 1, 1), date(2021, 1, 1), False
    )
    assert cr.unlicensed(received(), site_id=SITE, permits=[expired], used_kg=0.0) is not None
    full = cr.unlicensed(received(), site_id=SITE, permits=[PERMIT], used_kg=999_500.0)
    assert full is not None
    assert full.evidence["reasons"] == ["annual_capacity_exceeded"]


def test_a_licensed_receipt_within_capacity() -> None:
    assert cr.unlicensed(received(), site_id=SITE, permits=[PERMIT], used_kg=10_000.0) is None


# --- overdue_delivery ------------------------------------------------------------------------


def test_overdue_when_not_received_by_the_deadline() -> None:
    due = T0 + timedelta(days=1)
    found = cr.overdue(manifest_id=MANIFEST_ID, due=due, now=due + timedelta(minutes=1), th=TH)
    assert found is not None
    assert found.severity == "medium"
    assert found.ended_at is None
    late = cr.overdue(
        manifest_id=MANIFEST_ID, due=due, now=due, th=TH, done_at=due + timedelta(hours=2)
    )
    assert late is not None
    assert late.ended_at == due + timedelta(hours=2)


def test_not_overdue_in_time_or_within_the_grace() -> None:
    due = T0 + timedelta(days=1)
    assert (
        cr.overdue(manifest_id=MANIFEST_ID, due=due, now=due - timedelta(minutes=1), th=TH) is None
    )
    graceful = AlertThresholds(overdue_grace_s=3600)
    later = due + timedelta(minutes=30)
    assert cr.overdue(manifest_id=MANIFEST_ID, due=due, now=later, th=graceful) is None


# --- unmanifested_movement -------------------------------------------------------------------


def _fixes(*points: tuple[float, float, float]) -> list[Fix]:
    """Fixes at (seconds, metres east of the start, hdop)."""
    out = []
    for seconds, east, hdop in points:
        lat, lon = offset(*START, 90.0, east)
        out.append(Fix(at(seconds), lat, lon, hdop=hdop))
    return out


def _sealed(seconds: float = 0.0) -> LockIn:
    return LockIn("DEV-1", 1, at(seconds), "sealed", "SEAL-1")


def test_a_sealed_vehicle_driving_without_a_leg() -> None:
    w = VehicleWatcher("浙G00001", "DEV-1", TH)
    w.locks([_sealed()])
    moves = w.fixes(_fixes(*[(10.0 * i, 150.0 * i, 0.9) for i in range(20)]))
    assert {c.key for c in moves} == {f"unmanifested_movement:浙G00001/{'2026-11-23T08:00:00Z'}"}
    assert moves[-1].severity == "high"
    assert moves[-1].evidence["max_distance_m"] > 2_000


def test_no_movement_alert_when_unsealed_parked_or_one_outlier() -> None:
    unsealed = VehicleWatcher("V", "DEV-1", TH)
    unsealed.locks([_sealed(), LockIn("DEV-1", 2, at(5), "unsealed", "SEAL-1")])
    assert unsealed.fixes(_fixes(*[(10.0 * i, 150.0 * i, 0.9) for i in range(20)])) == []
    parked = VehicleWatcher("V", "DEV-1", TH)
    parked.locks([_sealed()])
    assert parked.fixes(_fixes(*[(10.0 * i, (i % 3) * 20.0, 0.9) for i in range(60)])) == []
    outlier = VehicleWatcher("V", "DEV-1", TH)
    outlier.locks([_sealed()])
    points = [(0.0, 0.0, 0.9), (10.0, 2_500.0, 0.9), (20.0, 10.0, 0.9), (30.0, 3_000.0, 9.0)]
    assert outlier.fixes(_fixes(*points)) == []


# --- thresholds ------------------------------------------------------------------------------


def test_region_overrides_apply_most_specific_last() -> None:
    book = ThresholdBook.parse(
        '{"": {"signal_lost_s": 900}, "33": {"unscheduled_stop_s": 1200},'
        ' "330782": {"unscheduled_stop_s": 300, "mass_tolerance_by_form": {"liquid": 0.02}}}'
    )
    assert book.for_region("110101").signal_lost_s == 900
    assert book.for_region("330100").unscheduled_stop_s == 1200
    county = book.for_region("330782")
    assert county.unscheduled_stop_s == 300
    assert county.signal_lost_s == 900
    assert county.tolerance(("solid", "liquid")) == 0.02


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"33": 5}',
        '{"3x": {}}',
        '{"33": {"no_such": 1}}',
        '{"33": {"mass_tolerance": 1.5}}',
        '{"33": {"signal_lost_s": -1}}',
        '{"33": {"mass_tolerance_by_form": {"plasma": 0.1}}}',
    ],
)
def test_bad_threshold_settings_are_refused(text: str) -> None:
    with pytest.raises(Invalid):
        ThresholdBook.parse(text)


def test_builders_are_consistent() -> None:
    assert received().producer == PRODUCER
