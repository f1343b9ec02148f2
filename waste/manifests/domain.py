"""The manifest lifecycle: a pure state machine over signed custody events.

A manifest's ``Custody`` is the fold of its events (``apply_event``, ``replay``).
Each event is checked, in this order: a known type the current state allows
(``TransitionNotAllowed``), strict ``data`` (see ``waste.manifests.events``),
time not going backwards, agreement with the manifest (the pickup hauler and
vehicle are the filed ones, the outgoing hauler is the current one, …), then
signers: exactly the parties the manifest makes responsible, with the party
kinds that fit, the actor among them (``SignatureError`` / ``SignerNotAllowed``).

    filed ──cancelled──▶ cancelled
      │
      └─picked_up─▶ in_transit ──handed_over (≤ 4, so ≤ 5 haulers)──▶ in_transit
                       │   └──rejected(next=redirect: new leg, new site)──▶ in_transit
                       ├──rejected(next=return_to_producer)──▶ rejected
                       └──received──▶ received ──disposed──▶ disposed

A manifest allows at most ``MAX_REDIRECTS`` (3) redirects; the limits raise
``TransitionNotAllowed`` like the table does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from waste.clock import ensure_utc, parse_utc
from waste.errors import Invalid, SignatureError, SignerNotAllowed, TransitionNotAllowed
from waste.manifests import _fields
from waste.manifests._transitions import advance, start
from waste.manifests.custody import (
    TERMINAL_STATES,
    AppliedEvent,
    Custody,
    Leg,
    ManifestState,
    Masses,
    SealRecord,
    active_leg_at,
    open_leg,
)
from waste.manifests.events import (
    DATA_TYPES,
    MASS_TOLERANCE_KG,
    Disposal,
    EventData,
    Filing,
    Handover,
    Pickup,
    Rejection,
    parse_event_data,
)
from waste.manifests.vocabulary import EventType, RejectionNext, event_type_of
from waste.registry.domain import PartyKind

__all__ = [
    "ALLOWED_FROM",
    "MAX_HAULERS",
    "MAX_REDIRECTS",
    "TERMINAL_STATES",
    "AppliedEvent",
    "Custody",
    "EventRecord",
    "Leg",
    "ManifestState",
    "Masses",
    "SealRecord",
    "active_leg_at",
    "apply_event",
    "open_leg",
    "replay",
    "required_signers",
]

MAX_HAULERS = 5
MAX_HANDOVERS = MAX_HAULERS - 1
MAX_REDIRECTS = 3
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# The protocol's table; ``filed`` only starts a manifest.
ALLOWED_FROM: Mapping[EventType, frozenset[ManifestState]] = {
    EventType.FILED: frozenset(),
    EventType.CANCELLED: frozenset({ManifestState.FILED}),
    EventType.PICKED_UP: frozenset({ManifestState.FILED}),
    EventType.HANDED_OVER: frozenset({ManifestState.IN_TRANSIT}),
    EventType.RECEIVED: frozenset({ManifestState.IN_TRANSIT}),
    EventType.REJECTED: frozenset({ManifestState.IN_TRANSIT}),
    EventType.DISPOSED: frozenset({ManifestState.RECEIVED}),
}


@dataclass(frozen=True)
class EventRecord:
    """A stored event ready to replay: the body's members plus the kinds of the signing parties."""

    event_type: str
    actor: str
    at: datetime
    data: Mapping[str, Any]
    signers: Mapping[str, str]
    manifest_id: str | None = None
    seq: int | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any], signers: Mapping[str, str]) -> EventRecord:
        """Build a record from an envelope body (``type``, ``actor``, ``at``, ``data``, …)."""
        data, manifest_id, seq = body.get("data"), body.get("manifest_id"), body.get("seq")
        if not isinstance(data, Mapping):
            raise Invalid("data must be a JSON object", field="data")
        if manifest_id is not None and not isinstance(manifest_id, str):
            raise Invalid("manifest_id must be a string", field="manifest_id")
        return cls(
            event_type=str(body.get("type")),
            actor=_fields.ident(body.get("actor"), "actor"),
            at=parse_utc(body.get("at"), field="at"),
            data=data,
            signers=signers,
            manifest_id=manifest_id,
            seq=None if seq is None else _fields.integer(seq, "seq", ge=0, le=2**53),
        )


def required_signers(custody: Custody | None, event_type: str, data: EventData) -> frozenset[str]:
    """The parties that must sign (and only they may sign) this event on this manifest."""
    kind = event_type_of(event_type)
    if not isinstance(data, DATA_TYPES[kind]):
        raise TypeError(f"'{kind}' data must be a {DATA_TYPES[kind].__name__}")
    return frozenset(_required(custody, kind, data))


def _required(custody: Custody | None, kind: EventType, data: EventData) -> dict[str, PartyKind]:
    if kind is EventType.FILED:
        assert isinstance(data, Filing)
        return {data.producer: PartyKind.PRODUCER}
    c = _existing(custody, kind)
    if kind is EventType.CANCELLED:
        return {c.producer: PartyKind.PRODUCER}
    if kind is EventType.PICKED_UP:
        return {c.filing.hauler: PartyKind.HAULER, c.producer: PartyKind.PRODUCER}
    if kind is EventType.HANDED_OVER:
        assert isinstance(data, Handover)
        current = c.current_hauler
        if current is None:
            raise TransitionNotAllowed("no hauler has custody to hand over", field="type")
        return {current: PartyKind.HAULER, data.to_hauler: PartyKind.HAULER}
    if kind is EventType.DISPOSED:
        return {c.received_by or c.destination: PartyKind.DISPOSAL_SITE}
    return {c.destination: PartyKind.DISPOSAL_SITE}


def _existing(custody: Custody | None, kind: EventType) -> Custody:
    if custody is None:
        raise TransitionNotAllowed(f"a manifest starts with 'filed', not {kind!r}", field="type")
    return custody


def _check_transition(custody: Custody | None, kind: EventType) -> None:
    if kind is EventType.FILED:
        if custody is not None:
            raise TransitionNotAllowed("this manifest has already been filed", field="type")
        return
    c = _existing(custody, kind)
    if c.state not in ALLOWED_FROM[kind]:
        allowed = " or ".join(sorted(ALLOWED_FROM[kind]))
        raise TransitionNotAllowed(
            f"'{kind}' is allowed when the manifest is {allowed}, but it is {c.state}",
            field="type",
            state=str(c.state),
        )


def _check_signers(
    kind: EventType, required: Mapping[str, PartyKind], actor: str, signers: Mapping[str, str]
) -> None:
    for party, party_kind in signers.items():
        if party not in required:
            raise SignerNotAllowed(
                f"party {party} may not sign this '{kind}' event", field="signatures", party=party
            )
        if party_kind != required[party]:
            raise SignerNotAllowed(
                f"party {party} must sign this '{kind}' event as a {required[party]}, "
                f"but it is a {party_kind}",
                field="signatures",
                party=party,
            )
    missing = sorted(set(required) - set(signers))
    if missing:
        raise SignatureError(
            f"'{kind}' must also be signed by {', '.join(missing)}",
            field="signatures",
            missing=missing,
        )
    if actor not in required:
        raise SignerNotAllowed(
            f"actor {actor} is not one of the parties that sign this '{kind}' event",
            field="actor",
        )


def apply_event(
    custody: Custody | None,
    *,
    event_type: str,
    actor: str,
    at: datetime,
    data: Mapping[str, Any],
    signers: Mapping[str, str],
    manifest_id: str | None = None,
) -> Custody:
    """Check one event against the manifest and return the custody after it."""
    kind = event_type_of(event_type)
    _check_transition(custody, kind)
    parsed = parse_event_data(kind, data)
    actor = _fields.ident(actor, "actor")
    at = ensure_utc(at)
    if custody is None:
        assert isinstance(parsed, Filing)
        if not isinstance(manifest_id, str) or not _UUID.match(manifest_id):
            raise Invalid("manifest_id must be a lowercase UUID", field="manifest_id")
        _check_filing(parsed, actor, at)
        _check_signers(kind, _required(None, kind, parsed), actor, signers)
        return start(manifest_id, parsed, actor, at, signers)
    if manifest_id is not None and manifest_id != custody.manifest_id:
        raise Invalid(f"this event is for manifest {manifest_id}", field="manifest_id")
    if at < custody.last_at:
        raise Invalid(
            f"at is earlier than the previous event ({custody.last_at.isoformat()})", field="at"
        )
    _check_against(custody, parsed)
    _check_signers(kind, _required(custody, kind, parsed), actor, signers)
    after = advance(custody, parsed, at)
    entry = AppliedEvent(
        custody.last_seq + 1, kind, actor, at, parsed, tuple(sorted(signers)), after.state
    )
    return replace(after, last_at=at, last_seq=entry.seq, history=(*custody.history, entry))


def replay(events: Iterable[EventRecord]) -> Custody:
    """Fold a manifest's events, in ``seq`` order, into its custody."""
    custody: Custody | None = None
    for record in events:
        expected = 0 if custody is None else custody.last_seq + 1
        if record.seq is not None and record.seq != expected:
            raise Invalid(f"seq {record.seq} where {expected} was due", field="seq")
        custody = apply_event(
            custody,
            event_type=record.event_type,
            actor=record.actor,
            at=record.at,
            data=record.data,
            signers=record.signers,
            manifest_id=record.manifest_id,
        )
    if custody is None:
        raise Invalid("a manifest needs at least its 'filed' event", field="events")
    return custody


def _check_filing(filing: Filing, actor: str, at: datetime) -> None:
    if filing.producer != actor:
        raise Invalid("data.producer must be the actor filing", field="data.producer")
    if filing.pickup_to <= at:
        raise Invalid(
            "data.pickup_window.to is already past when filing", field="data.pickup_window.to"
        )
    if filing.deliver_by <= at:
        raise Invalid("data.deliver_by is already past when filing", field="data.deliver_by")


def _check_against(c: Custody, data: EventData) -> None:
    if isinstance(data, Pickup):
        if data.hauler != c.filing.hauler:
            raise Invalid(
                f"data.hauler must be the filed hauler {c.filing.hauler}", field="data.hauler"
            )
        if data.vehicle != c.filing.vehicle:
            raise Invalid(
                f"data.vehicle must be the filed vehicle {c.filing.vehicle}", field="data.vehicle"
            )
    elif isinstance(data, Handover):
        if data.from_hauler != c.current_hauler:
            raise Invalid(
                f"data.from_hauler must be the hauler in custody, {c.current_hauler}",
                field="data.from_hauler",
            )
        if c.handovers >= MAX_HANDOVERS:
            raise TransitionNotAllowed(
                f"a manifest allows at most {MAX_HAULERS} haulers", field="type"
            )
    elif isinstance(data, Rejection) and data.next is RejectionNext.REDIRECT:
        if data.redirect_site in (c.producer, *c.destinations, *c.haulers, c.filing.hauler):
            raise Invalid(
                "data.redirect_site must be another disposal site, not one already on the manifest",
                field="data.redirect_site",
            )
        if len(c.destinations) > MAX_REDIRECTS:
            raise TransitionNotAllowed(
                f"a manifest allows at most {MAX_REDIRECTS} redirects", field="type"
            )
    elif isinstance(data, Disposal):
        accepted = c.masses.accepted_kg or 0.0
        if data.mass_kg > accepted + MASS_TOLERANCE_KG:
            raise Invalid(
                f"data.mass_kg exceeds the accepted mass ({accepted:g} kg)", field="data.mass_kg"
            )
