"""The readable per-manifest timeline."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.manifests.builders import (
    HAULER,
    PRODUCER,
    SITE,
    T0,
    disposal_data,
    filed_data,
    handover_data,
    picked_up,
    pickup_data,
    receipt_data,
    record,
    step,
)
from waste.manifests import EventType, ManifestState, timeline


def test_timeline_of_a_redirected_journey() -> None:
    c = picked_up()
    c = step(
        c,
        "handed_over",
        handover_data(HAULER, "H-2", location={"lat": 29.34, "lon": 120.15}),
        HAULER,
        (HAULER, "H-2"),
    )
    c = step(
        c,
        "rejected",
        {"reason": "Kiln down", "next": "redirect", "redirect_site": "S-2", "mass_kg": 1194.5},
        SITE,
    )
    c = step(c, "received", receipt_data(accepted_kg=1100, refused_kg=94, seal_id="SEAL-2"), "S-2")
    c = step(c, "disposed", disposal_data(), "S-2")
    entries = timeline(c)
    assert [e.event_type for e in entries] == [
        EventType.FILED,
        EventType.PICKED_UP,
        EventType.HANDED_OVER,
        EventType.REJECTED,
        EventType.RECEIVED,
        EventType.DISPOSED,
    ]
    assert [e.seq for e in entries] == list(range(6))
    assert entries[0].masses == {"declared": 1200.0}
    assert entries[0].what.startswith("Filed by producer P-1: 2 waste line(s)")
    assert entries[1].signers == (HAULER, PRODUCER)
    assert entries[1].delta_kg == -4.5
    assert "1,195.5 kg weighed (−4.5 kg vs previous)" in entries[1].what
    assert "at 29.34000, 120.15000 from hauler H-1 to H-2" in entries[2].what
    assert "Rejected at site S-1" in entries[3].what
    assert "redirected to site S-2" in entries[3].what
    assert entries[3].state is ManifestState.IN_TRANSIT
    assert entries[4].what.startswith("Received at site S-2: 1,194 kg weighed")
    assert entries[4].masses == {"weighed": 1194.0, "accepted": 1100.0, "refused": 94.0}
    assert entries[4].delta_kg == -0.5
    assert "seal SEAL-2 intact" in entries[4].what
    assert entries[5].what == "Disposed of by D10 (incineration on land): 1,100 kg"
    assert entries[5].delta_kg is None
    assert entries[5].state is ManifestState.DISPOSED


def test_timeline_from_events() -> None:
    records = [
        record("filed", filed_data(), PRODUCER, (PRODUCER,), T0),
        record("picked_up", pickup_data(), HAULER, (HAULER, PRODUCER), T0 + timedelta(hours=1)),
        record("received", receipt_data(seal_intact=False), SITE, (SITE,), T0 + timedelta(hours=2)),
    ]
    entries = timeline(records)
    assert [e.at for e in entries] == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert "seal SEAL-1 NOT intact" in entries[-1].what
    assert entries[-1].actor == SITE
