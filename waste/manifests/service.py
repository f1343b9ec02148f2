"""Manifest use cases: file, append custody events, read the chain, build audit bundles.

Appending is the system's trust path. Signatures are verified before the log
lock is taken (they are the expensive part); the chain head, the state machine
and the leaf index are decided under the lock, in one transaction, so an
envelope is either wholly accepted (event row, log leaf, manifest head) or not
at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from waste.auth.tokens import Principal
from waste.clock import format_utc, utcnow
from waste.errors import ChainConflict, Conflict, Forbidden, NotFound
from waste.ledger.envelope import Envelope, check_link, check_signatures, parse_envelope
from waste.ledger.models import CustodyEvent
from waste.ledger.store import LogStore
from waste.manifests import access, filing
from waste.manifests.domain import Custody, apply_event
from waste.manifests.models import Manifest, ManifestParty, ManifestSerial
from waste.registry.domain import Role
from waste.registry.models import Party
from waste.registry.service import key_records
from waste.telemetry.legs import sync_legs
from waste.uow import UnitOfWork
from waste.webhooks import outbox

GENESIS = "0" * 64


@dataclass(frozen=True)
class Accepted:
    """What the server answers for an accepted envelope."""

    manifest_id: str
    number: str
    seq: int
    event_hash: str
    leaf_index: int
    state: str


def file_manifest(
    *, uow: UnitOfWork, principal: Principal, envelope: object, now: datetime | None = None
) -> Accepted:
    """File a new manifest: the ``filed`` envelope with seq 0."""
    env = parse_envelope(envelope)
    if env.body.type != "filed" or env.body.seq != 0:
        raise ChainConflict("a manifest is filed with a seq-0 `filed` envelope", field="body.seq")
    return _accept(uow=uow, principal=principal, env=env, now=now or utcnow(), new=True)


def append_event(
    *,
    uow: UnitOfWork,
    principal: Principal,
    manifest_id: str,
    envelope: object,
    now: datetime | None = None,
) -> Accepted:
    """Append a custody event to an existing manifest's chain."""
    env = parse_envelope(envelope)
    if env.body.manifest_id != manifest_id:
        raise Conflict("the envelope names another manifest", field="body.manifest_id")
    if env.body.type == "filed":
        raise ChainConflict("`filed` opens a chain; POST it to /v1/manifests", field="body.type")
    return _accept(uow=uow, principal=principal, env=env, now=now or utcnow(), new=False)


def _accept(
    *, uow: UnitOfWork, principal: Principal, env: Envelope, now: datetime, new: bool
) -> Accepted:
    body = env.body
    if principal.role is not Role.ADMIN and principal.party_id != body.actor:
        raise Forbidden("post envelopes in which your own party is the actor")
    keys = key_records(uow=uow, key_ids=[s.key_id for s in env.signatures])
    signers = check_signatures(env, keys.get, now)

    store = LogStore(uow.session)
    store.lock()
    manifest = uow.session.get(Manifest, body.manifest_id)
    if new:
        if manifest is not None:
            raise ChainConflict(f"manifest {body.manifest_id} is already filed")
        check_link(body, 0, GENESIS)
        custody = None
    else:
        if manifest is None:
            raise NotFound(f"no manifest {body.manifest_id}")
        if principal.party_id not in signers:
            access.ensure_visible(uow=uow, principal=principal, manifest=manifest)
        check_link(body, manifest.head_seq + 1, manifest.head_hash)
        custody = replay(uow=uow, manifest_id=body.manifest_id)

    updated = apply_event(
        custody,
        event_type=body.type,
        actor=body.actor,
        at=body.at,
        data=body.data,
        signers=signers,
        manifest_id=body.manifest_id,
    )
    filing.check_event(uow=uow, custody=custody, updated=updated, body=body, now=now)

    envelope_json = env.to_json()
    leaf_index, _ = store.append(
        kind="custody_event",
        subject=body.manifest_id,
        entry={"kind": "custody_event", "accepted_at": format_utc(now), "payload": envelope_json},
    )
    event_hash = env.event_hash()
    uow.session.add(
        CustodyEvent(
            manifest_id=body.manifest_id,
            seq=body.seq,
            event_hash=event_hash,
            prev_hash=body.prev_hash,
            type=body.type,
            actor=body.actor,
            at=body.at,
            accepted_at=now,
            envelope=envelope_json,
            signers=dict(signers),
            leaf_index=leaf_index,
        )
    )
    if manifest is None:
        manifest = _new_manifest(uow=uow, custody=updated, now=now)
    _update_manifest(
        uow=uow, manifest=manifest, custody=updated, seq=body.seq, head=event_hash, now=now
    )
    sync_legs(uow=uow, custody=updated, now=now)  # same transaction: trip legs and bindings
    outbox.enqueue_custody_event(  # same transaction: webhooks for exactly the accepted events
        uow=uow,
        custody=updated,
        number=manifest.number,
        event_hash=event_hash,
        leaf_index=leaf_index,
        now=now,
    )
    uow.flush()
    uow.commit()
    return Accepted(
        manifest_id=body.manifest_id,
        number=manifest.number,
        seq=body.seq,
        event_hash=event_hash,
        leaf_index=leaf_index,
        state=str(updated.state),
    )


def replay(*, uow: UnitOfWork, manifest_id: str) -> Custody:
    """The manifest's derived custody state, replayed from its accepted events."""
    custody: Custody | None = None
    for row in events_of(uow=uow, manifest_id=manifest_id):
        body = row.envelope["body"]
        custody = apply_event(
            custody,
            event_type=row.type,
            actor=row.actor,
            at=row.at,
            data=body["data"],
            signers=row.signers,
            manifest_id=manifest_id,
        )
    if custody is None:
        raise NotFound(f"no manifest {manifest_id}")
    return custody


def events_of(*, uow: UnitOfWork, manifest_id: str) -> list[CustodyEvent]:
    """A manifest's accepted events in seq order."""
    query = (
        select(CustodyEvent)
        .where(CustodyEvent.manifest_id == manifest_id)
        .order_by(CustodyEvent.seq)
    )
    return list(uow.session.scalars(query))


def chain(*, uow: UnitOfWork, principal: Principal, manifest_id: str) -> list[dict[str, Any]]:
    """Every accepted envelope of a manifest, in seq order."""
    manifest = get_manifest(uow=uow, principal=principal, manifest_id=manifest_id)
    return [row.envelope for row in events_of(uow=uow, manifest_id=manifest.id)]


def get_manifest(*, uow: UnitOfWork, principal: Principal, manifest_id: str) -> Manifest:
    """A manifest the caller may see."""
    manifest = uow.session.get(Manifest, manifest_id)
    if manifest is None:
        raise NotFound(f"no manifest {manifest_id}")
    access.ensure_visible(uow=uow, principal=principal, manifest=manifest)
    return manifest


def _new_manifest(*, uow: UnitOfWork, custody: Custody, now: datetime) -> Manifest:
    producer = uow.session.get(Party, custody.producer)
    if producer is None:  # filing checks guarantee it; keep the invariant explicit
        raise NotFound(f"no party {custody.producer}")
    filed = custody.filing
    manifest = Manifest(
        id=custody.manifest_id,
        number=_next_number(uow=uow, region_code=producer.region_code, year=now.year),
        producer_id=producer.id,
        region_code=producer.region_code,
        state=str(custody.state),
        head_seq=-1,
        head_hash=GENESIS,
        hauler_id=filed.hauler,
        destination_id=filed.destination,
        vehicle_plate=filed.vehicle,
        waste_codes=[w.code for w in filed.wastes],
        declared_kg=sum(w.mass_kg for w in filed.wastes),
        received_kg=None,
        filed_at=now,
        deliver_by=filed.deliver_by,
        updated_at=now,
        summary={},
    )
    uow.session.add(manifest)
    return manifest


def _update_manifest(
    *, uow: UnitOfWork, manifest: Manifest, custody: Custody, seq: int, head: str, now: datetime
) -> None:
    manifest.head_seq = seq
    manifest.head_hash = head
    manifest.state = str(custody.state)
    manifest.updated_at = now
    manifest.destination_id = custody.destination
    if custody.haulers:
        manifest.hauler_id = custody.haulers[-1]
    if custody.masses.received_kg is not None:
        manifest.received_kg = custody.masses.received_kg
    roles = {("producer", custody.producer), ("destination", custody.destination)}
    roles |= {("hauler", h) for h in (custody.filing.hauler, *custody.haulers)}
    roles |= {("destination", leg.destination) for leg in custody.legs}
    existing = {
        (r.role, r.party_id)
        for r in uow.session.scalars(
            select(ManifestParty).where(ManifestParty.manifest_id == manifest.id)
        )
    }
    for role, party_id in sorted(roles - existing):
        uow.session.add(ManifestParty(manifest_id=manifest.id, party_id=party_id, role=role))


def _next_number(*, uow: UnitOfWork, region_code: str, year: int) -> str:
    region4 = region_code[:4]
    serial = uow.session.get(ManifestSerial, (region4, year), with_for_update=True)
    if serial is None:
        serial = ManifestSerial(region4=region4, year=year, last=0)
        uow.session.add(serial)
    if serial.last >= 999_999:
        raise Conflict(f"region {region4} has used every manifest serial of {year}")
    serial.last += 1
    return f"{year:04d}{region4}{serial.last:06d}"
