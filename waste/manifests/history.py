"""A readable per-manifest timeline: when, what, who, and the masses weighed at each step."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from waste.clock import format_utc
from waste.manifests.domain import (
    AppliedEvent,
    Custody,
    EventRecord,
    ManifestState,
    replay,
)
from waste.manifests.events import (
    Cancellation,
    Disposal,
    Filing,
    Handover,
    Pickup,
    Receipt,
    Rejection,
)
from waste.manifests.vocabulary import DISPOSAL_OPERATIONS, EventType, RejectionNext


@dataclass(frozen=True)
class TimelineEntry:
    """One step of a manifest's history, ready to show."""

    seq: int
    at: datetime
    event_type: EventType
    what: str
    actor: str
    signers: tuple[str, ...]
    state: ManifestState  # after this event
    masses: dict[str, float]  # labelled masses in kg: declared, weighed, accepted, …
    delta_kg: float | None  # this weighing minus the previous one (the declared mass at pickup)


def timeline(custody_or_events: Custody | Iterable[EventRecord]) -> list[TimelineEntry]:
    """The timeline of a custody, or of the events it is replayed from."""
    custody = (
        custody_or_events if isinstance(custody_or_events, Custody) else replay(custody_or_events)
    )
    entries: list[TimelineEntry] = []
    destination = custody.filing.destination
    previous_kg = custody.filing.declared_kg
    for event in custody.history:
        what, masses = _describe(event, destination, previous_kg)
        weighed = masses.get("weighed")
        entries.append(
            TimelineEntry(
                seq=event.seq,
                at=event.at,
                event_type=event.event_type,
                what=what,
                actor=event.actor,
                signers=event.signers,
                state=event.state_after,
                masses=masses,
                delta_kg=None if weighed is None else round(weighed - previous_kg, 3),
            )
        )
        if weighed is not None:
            previous_kg = weighed
        data = event.data
        if isinstance(data, Rejection) and data.redirect_site is not None:
            destination = data.redirect_site
    return entries


def _kg(value: float) -> str:
    text = f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{text} kg"


def _delta(weighed: float, previous: float) -> str:
    diff = round(weighed - previous, 3)
    return "" if diff == 0 else f" ({'+' if diff > 0 else '−'}{_kg(abs(diff))} vs previous)"


def _describe(
    event: AppliedEvent, destination: str, previous_kg: float
) -> tuple[str, dict[str, float]]:
    d = event.data
    if isinstance(d, Filing):
        codes = ", ".join(d.waste_codes)
        return (
            f"Filed by producer {d.producer}: {len(d.wastes)} waste line(s) ({codes}), "
            f"{_kg(d.declared_kg)} declared, hauler {d.hauler} with {d.vehicle} to site "
            f"{d.destination}, pickup {format_utc(d.pickup_from)}–{format_utc(d.pickup_to)}, "
            f"deliver by {format_utc(d.deliver_by)}",
            {"declared": d.declared_kg},
        )
    if isinstance(d, Cancellation):
        return f"Cancelled by the producer: {d.reason}", {}
    if isinstance(d, Pickup):
        return (
            f"Picked up by hauler {d.hauler} on {d.vehicle} (device {d.device_id}, "
            f"seal {d.seal_id}): {_kg(d.mass_kg)} weighed{_delta(d.mass_kg, previous_kg)}",
            {"weighed": d.mass_kg},
        )
    if isinstance(d, Handover):
        where = "" if d.location is None else f" at {d.location[0]:.5f}, {d.location[1]:.5f}"
        return (
            f"Handed over{where} from hauler {d.from_hauler} to {d.to_hauler} on {d.vehicle} "
            f"(device {d.device_id}, seal {d.seal_id}): {_kg(d.mass_kg)} weighed"
            f"{_delta(d.mass_kg, previous_kg)}",
            {"weighed": d.mass_kg},
        )
    if isinstance(d, Receipt):
        seal = "intact" if d.seal_intact else "NOT intact"
        return (
            f"Received at site {destination}: {_kg(d.mass_kg)} weighed"
            f"{_delta(d.mass_kg, previous_kg)}, {_kg(d.accepted_kg)} accepted, "
            f"{_kg(d.refused_kg)} refused; seal {d.seal_id} {seal}",
            {"weighed": d.mass_kg, "accepted": d.accepted_kg, "refused": d.refused_kg},
        )
    if isinstance(d, Rejection):
        then = (
            "to be returned to the producer"
            if d.next is RejectionNext.RETURN_TO_PRODUCER
            else f"redirected to site {d.redirect_site}"
        )
        weighed = "" if d.mass_kg is None else f", {_kg(d.mass_kg)} weighed"
        masses = {} if d.mass_kg is None else {"weighed": d.mass_kg}
        return f"Rejected at site {destination}{weighed}: {d.reason}; {then}", masses
    if isinstance(d, Disposal):
        operation = DISPOSAL_OPERATIONS[d.operation]
        return (
            f"Disposed of by {d.operation} ({operation}): {_kg(d.mass_kg)}",
            {"disposed": d.mass_kg},
        )
    raise AssertionError(f"unexpected event data {type(d).__name__}")  # pragma: no cover
