"""Manifest use cases: file, append custody events, read the chain, build audit bundles.

Appending is the system's trust path, in one transaction, so an envelope is
either wholly accepted (event row, log leaf, manifest head) or not at all.
Locks are taken in one order, each held to commit:

1. the manifest's own lock (its row, ``FOR NO KEY UPDATE``; for a filing, an
   advisory lock on the new id and one on the destination, whose licensed
   capacity the filing checks): the chain position is decided once, and a
   manifest's events reach the log in chain order;
2. the rows the use case writes (serial number, trip legs, vehicles' locks);
3. last, the log's append lock, only for the writes that need the leaf index
   (log leaf and nodes, event row, outbox) and the commit.

Signature checks, replay, registry checks and leg sync run before the log lock,
so concurrent appends to different manifests share only that last section.
SQLite serialises whole write transactions (``BEGIN IMMEDIATE``) instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text

from waste.alerts import custody_hook
from waste.auth.tokens import Principal
from waste.clock import format_utc, utcnow
from waste.errors import ChainConflict, Conflict, Forbidden, NotFound, WasteError
from waste.ledger.envelope import (
    Envelope,
    EventBody,
    check_link,
    check_signatures,
    parse_envelope,
)
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

    manifest: Manifest | None
    if new:
        check_link(body, 0, GENESIS)
        custody = None
        updated = _applied(custody, body, signers)
        _lock_filing(uow=uow, manifest_id=body.manifest_id, destination=updated.destination)
        if uow.session.get(Manifest, body.manifest_id) is not None:
            raise ChainConflict(f"manifest {body.manifest_id} is already filed")
        manifest = None
    else:
        manifest = _locked_manifest(uow=uow, manifest_id=body.manifest_id)
        if manifest is None:
            raise NotFound(f"no manifest {body.manifest_id}")
        if principal.party_id not in signers:
            access.ensure_visible(uow=uow, principal=principal, manifest=manifest)
        # A signer not on the manifest (an incoming hauler, say) learns nothing from a
        # refusal unless a party on it co-signed, that is, showed it the manifest.
        on_it = access.party_ids_of(uow=uow, manifest_id=manifest.id) | {manifest.producer_id}
        hidden = not on_it & signers.keys() and not access.can_see(
            uow=uow, principal=principal, manifest=manifest
        )
        try:
            check_link(body, manifest.head_seq + 1, manifest.head_hash)
            custody = replay(uow=uow, manifest_id=body.manifest_id)
            updated = _applied(custody, body, signers)
        except WasteError:
            if hidden:
                raise NotFound(f"no manifest {body.manifest_id}") from None
            raise
    filing.check_event(uow=uow, custody=custody, updated=updated, body=body, now=now)

    event_hash = env.event_hash()
    if manifest is None:
        manifest = _new_manifest(uow=uow, custody=updated, now=now)
    _update_manifest(
        uow=uow,
        manifest=manifest,
        before=custody,
        custody=updated,
        seq=body.seq,
        head=event_hash,
        now=now,
    )
    sync_legs(uow=uow, custody=updated, now=now)  # same transaction: trip legs and bindings
    custody_hook.on_custody_event(uow=uow, custody=updated, now=now)  # alerts, same tx
    uow.flush()  # constraint races surface here, before the log lock

    envelope_json = env.to_json()
    event_row = {
        "manifest_id": body.manifest_id,
        "seq": body.seq,
        "event_hash": event_hash,
        "prev_hash": body.prev_hash,
        "type": body.type,
        "actor": body.actor,
        "at": body.at,
        "accepted_at": now,
        "envelope": envelope_json,
        "signers": dict(signers),
    }
    # From here to commit this transaction holds the log's append lock: the leaf
    # and the event row go in one statement, the outbox rows in one more.
    leaf_index, _ = LogStore(uow.session).append(
        kind="custody_event",
        subject=body.manifest_id,
        entry={"kind": "custody_event", "accepted_at": format_utc(now), "payload": envelope_json},
        rows=lambda index: [insert(CustodyEvent).values(**event_row, leaf_index=index)],
    )
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


def _applied(custody: Custody | None, body: EventBody, signers: Mapping[str, str]) -> Custody:
    return apply_event(
        custody,
        event_type=body.type,
        actor=body.actor,
        at=body.at,
        data=body.data,
        signers=signers,
        manifest_id=body.manifest_id,
    )


def _locked_manifest(*, uow: UnitOfWork, manifest_id: str) -> Manifest | None:
    """The manifest row, locked to commit (``FOR NO KEY UPDATE``: foreign keys still resolve)."""
    query = (
        select(Manifest)
        .where(Manifest.id == manifest_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return uow.session.scalar(query)


def _lock_filing(*, uow: UnitOfWork, manifest_id: str, destination: str) -> None:
    """Serialise filings of one manifest id, and filings to one destination (capacity check)."""
    session = uow.session
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE already serialises every writer
    keys = sorted({_advisory_key("manifest", manifest_id), _advisory_key("site", destination)})
    session.execute(_ADVISORY_LOCKS, {"keys": keys})


def _advisory_key(kind: str, name: str) -> int:
    digest = hashlib.sha256(f"waste-custody:{kind}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_ADVISORY_LOCKS = text(
    "SELECT pg_advisory_xact_lock(k) FROM "
    "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS sorted_keys"
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
    *,
    uow: UnitOfWork,
    manifest: Manifest,
    before: Custody | None,
    custody: Custody,
    seq: int,
    head: str,
    now: datetime,
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
    roles = _roles(custody)
    if before is not None and roles <= _roles(before):
        return  # every earlier append stored its custody's roles: nothing new to look up
    existing = {
        (r.role, r.party_id)
        for r in uow.session.scalars(
            select(ManifestParty).where(ManifestParty.manifest_id == manifest.id)
        )
    }
    for role, party_id in sorted(roles - existing):
        uow.session.add(ManifestParty(manifest_id=manifest.id, party_id=party_id, role=role))


def _roles(custody: Custody) -> set[tuple[str, str]]:
    roles = {("producer", custody.producer), ("destination", custody.destination)}
    roles |= {("hauler", h) for h in (custody.filing.hauler, *custody.haulers)}
    roles |= {("destination", leg.destination) for leg in custody.legs}
    return roles


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
