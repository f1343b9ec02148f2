"""The transactional outbox: record a message in the same transaction as the change it reports.

Any feature enqueues with ``enqueue`` (a topic such as ``manifest.received`` or
``alert.raised``, the party it is for, and a JSON payload); nothing leaves the
process here. The webhook worker later fans each message out to the party's
subscriptions whose topic patterns match, and delivers it. Because the row
commits or rolls back with the change, a message is sent only for a change
that happened, and every change that happened gets its message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from waste.clock import format_utc
from waste.manifests.custody import Custody
from waste.uow import UnitOfWork
from waste.webhooks.models import OutboxMessage

CUSTODY_TOPIC_PREFIX = "manifest."


def enqueue(
    *,
    uow: UnitOfWork,
    topic: str,
    party_id: str,
    payload: Mapping[str, Any],
    now: datetime,
    subject: str | None = None,
) -> OutboxMessage:
    """Record one message for ``party_id`` in the current transaction (not committed here)."""
    row = OutboxMessage(
        topic=topic,
        party_id=party_id,
        subject=subject,
        payload=dict(payload),
        created_at=now,
        dispatched_at=None,
    )
    uow.session.add(row)
    return row


def enqueue_for(
    *,
    uow: UnitOfWork,
    topic: str,
    party_ids: Iterable[str],
    payload: Mapping[str, Any],
    now: datetime,
    subject: str | None = None,
) -> list[OutboxMessage]:
    """Record the same message for each of several parties (each party once)."""
    return [
        enqueue(uow=uow, topic=topic, party_id=p, payload=payload, now=now, subject=subject)
        for p in sorted(set(party_ids))
    ]


def custody_parties(custody: Custody) -> set[str]:
    """Every party with a role on the manifest: producer, haulers, every destination."""
    return {custody.producer, custody.filing.hauler, *custody.haulers, *custody.destinations}


def enqueue_custody_event(
    *,
    uow: UnitOfWork,
    custody: Custody,
    number: str,
    event_hash: str,
    leaf_index: int,
    now: datetime,
) -> list[OutboxMessage]:
    """Record ``manifest.<type>`` for every party on the manifest after an accepted event."""
    event = custody.history[-1]
    payload = {
        "manifest_id": custody.manifest_id,
        "number": number,
        "seq": event.seq,
        "type": str(event.event_type),
        "state": str(custody.state),
        "actor": event.actor,
        "at": format_utc(event.at),
        "accepted_at": format_utc(now),
        "event_hash": event_hash,
        "leaf_index": leaf_index,
    }
    return enqueue_for(
        uow=uow,
        topic=CUSTODY_TOPIC_PREFIX + str(event.event_type),
        party_ids=custody_parties(custody),
        payload=payload,
        now=now,
        subject=custody.manifest_id,
    )
