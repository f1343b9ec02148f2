"""How each accepted event changes a manifest's custody (the checks are in ``domain``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from waste.manifests.custody import (
    AppliedEvent,
    Custody,
    Leg,
    ManifestState,
    Masses,
    SealRecord,
    open_leg,
)
from waste.manifests.events import (
    Cancellation,
    Disposal,
    EventData,
    Filing,
    Handover,
    Pickup,
    Receipt,
    Rejection,
)
from waste.manifests.vocabulary import EventType, RejectionNext


def start(
    manifest_id: str, filing: Filing, actor: str, at: datetime, signers: Mapping[str, str]
) -> Custody:
    """The custody of a manifest just filed."""
    entry = AppliedEvent(
        0, EventType.FILED, actor, at, filing, tuple(sorted(signers)), ManifestState.FILED
    )
    return Custody(
        manifest_id=manifest_id,
        state=ManifestState.FILED,
        producer=filing.producer,
        destination=filing.destination,
        haulers=(),
        legs=(),
        filing=filing,
        filed_at=at,
        last_at=at,
        last_seq=0,
        masses=Masses(declared_kg=filing.declared_kg),
        seals=(),
        history=(entry,),
        destinations=(filing.destination,),
    )


def _close_leg(c: Custody, at: datetime, by: EventType) -> tuple[Leg, tuple[Leg, ...]]:
    leg = open_leg(c)
    assert leg is not None  # in_transit always has an open leg
    closed = replace(leg, closed_at=at, closed_by=by)
    return closed, (*c.legs[:-1], closed)


def _open(c: Custody, legs: tuple[Leg, ...], leg: Leg, *, sealed: bool = True) -> dict[str, Any]:
    haulers = c.haulers if c.haulers[-1:] == (leg.hauler,) else (*c.haulers, leg.hauler)
    seals = c.seals
    if sealed:
        applied = SealRecord(leg.opened_at, leg.opened_by, leg.index, leg.seal_id, "applied")
        seals = (*seals, applied)
    return {"legs": (*legs, leg), "haulers": haulers, "seals": seals}


def _new_leg(
    index: int,
    data: Pickup | Handover,
    hauler: str,
    at: datetime,
    by: EventType,
    route: dict[str, Any] | None,
    c: Custody,
) -> Leg:
    return Leg(
        index=index,
        hauler=hauler,
        vehicle=data.vehicle,
        device_id=data.device_id,
        seal_id=data.seal_id,
        opened_at=at,
        closed_at=None,
        opened_by=by,
        closed_by=None,
        route=route,
        destination=c.destination,
        mass_kg_at_open=data.mass_kg,
    )


def advance(c: Custody, data: EventData, at: datetime) -> Custody:
    """The custody after a non-filing event, before history and sequence are recorded."""
    state = ManifestState
    if isinstance(data, Cancellation):
        return replace(c, state=state.CANCELLED, cancellation=data)
    if isinstance(data, Pickup):
        leg = _new_leg(0, data, data.hauler, at, EventType.PICKED_UP, c.filing.route, c)
        masses = replace(c.masses, picked_up_kg=data.mass_kg)
        return replace(c, state=state.IN_TRANSIT, masses=masses, **_open(c, c.legs, leg))
    if isinstance(data, Handover):
        old, legs = _close_leg(c, at, EventType.HANDED_OVER)
        route = data.route or old.route
        leg = _new_leg(old.index + 1, data, data.to_hauler, at, EventType.HANDED_OVER, route, c)
        masses = replace(c.masses, handed_over_kg=(*c.masses.handed_over_kg, data.mass_kg))
        return replace(c, masses=masses, **_open(c, legs, leg))
    if isinstance(data, Receipt):
        old, legs = _close_leg(c, at, EventType.RECEIVED)
        found = SealRecord(
            at, EventType.RECEIVED, old.index, data.seal_id, "found", old.seal_id, data.seal_intact
        )
        masses = replace(
            c.masses,
            received_kg=data.mass_kg,
            accepted_kg=data.accepted_kg,
            refused_kg=data.refused_kg,
        )
        return replace(
            c,
            state=state.RECEIVED,
            legs=legs,
            masses=masses,
            seals=(*c.seals, found),
            receipt=data,
            received_by=c.destination,
            received_at=at,
        )
    if isinstance(data, Rejection):
        return _reject(c, data, at)
    if isinstance(data, Disposal):
        masses = replace(c.masses, disposed_kg=data.mass_kg)
        return replace(c, state=state.DISPOSED, masses=masses, disposal=data, disposed_at=at)
    raise AssertionError(f"unexpected event data {type(data).__name__}")  # pragma: no cover


def _reject(c: Custody, data: Rejection, at: datetime) -> Custody:
    old, legs = _close_leg(c, at, EventType.REJECTED)
    masses = c.masses
    if data.mass_kg is not None:
        masses = replace(masses, rejected_kg=(*masses.rejected_kg, data.mass_kg))
    c = replace(c, legs=legs, masses=masses, rejections=(*c.rejections, data))
    if data.next is RejectionNext.RETURN_TO_PRODUCER:
        return replace(c, state=ManifestState.REJECTED)
    assert data.redirect_site is not None
    leg = replace(
        old,
        index=old.index + 1,
        seal_id=data.seal_id or old.seal_id,
        opened_at=at,
        closed_at=None,
        opened_by=EventType.REJECTED,
        closed_by=None,
        route=data.route,
        destination=data.redirect_site,
        mass_kg_at_open=data.mass_kg or old.mass_kg_at_open,
    )
    return replace(
        c,
        destination=data.redirect_site,
        destinations=(*c.destinations, data.redirect_site),
        **_open(c, legs, leg, sealed=data.seal_id is not None),
    )
