"""Alert rows: upsert by dedupe key, retraction, webhooks, and claiming alerts to publish.

``upsert`` is the one way detection writes an alert. The first candidate of a key
creates the row (its ``id`` is a UUIDv5 of the key, so every process and every
replay names it alike) and enqueues ``alert.raised`` for the parties concerned and
the regulators of the region; later candidates update it in place (``detect_rev``
+1) only if something changed, enqueuing ``alert.escalated`` when the severity
rises. Every change sets ``publish_pending``: the gateway's publisher sends the
alert again on ``waste/v1/alerts/{kind}`` and clears it (``claim_pending``).
Detection never lowers a severity, except when a replay retracts the alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from waste.alerts.models import Alert
from waste.alerts.payload import alert_payload
from waste.alerts.rules import SEVERITY_RANK, Candidate, max_severity, ts
from waste.uow import UnitOfWork
from waste.webhooks import outbox

__all__ = [
    "TOPIC_ESCALATED",
    "TOPIC_RAISED",
    "TOPIC_UPDATED",
    "Concerned",
    "alert_id_for",
    "claim_pending",
    "mark_changed",
    "notify",
    "retract",
    "upsert",
]

TOPIC_RAISED = "alert.raised"
TOPIC_ESCALATED = "alert.escalated"
TOPIC_UPDATED = "alert.updated"
_NAMESPACE = uuid.UUID("6f1c7d1e-4b7a-5c43-9a39-2f0f8f6b5a11")


@dataclass(frozen=True)
class Concerned:
    """Who and what an alert is about, besides its candidate."""

    region_code: str
    manifest_id: str | None = None
    leg_index: int | None = None
    device_id: str | None = None
    vehicle: str | None = None
    producer_id: str | None = None
    hauler_id: str | None = None
    site_id: str | None = None


def alert_id_for(key: str) -> str:
    """The alert id of a dedupe key (UUIDv5): replays and processes agree on it."""
    return str(uuid.uuid5(_NAMESPACE, key))


def _locked(session: Session, key: str) -> Alert | None:
    return session.scalar(select(Alert).where(Alert.dedupe_key == key).with_for_update())


def upsert(
    *,
    uow: UnitOfWork,
    candidate: Candidate,
    concerned: Concerned,
    now: datetime,
    key: str | None = None,
) -> Alert | None:
    """Create or update the alert of ``key`` (default: the candidate's); the row if changed."""
    session = uow.session
    key = key or candidate.key
    alert = _locked(session, key)
    if alert is None:
        alert = _create(session, candidate, concerned, key, now)
        if alert is not None:
            notify(uow=uow, alert=alert, topic=TOPIC_RAISED, now=now)
            return alert
        alert = _locked(session, key)  # created meanwhile by another process
        if alert is None:
            raise RuntimeError(f"alert {key} neither created nor found")
    before = alert.severity
    if not _apply(alert, candidate):
        return None
    alert.detect_rev += 1
    alert.updated_at = now
    alert.publish_pending = True
    if SEVERITY_RANK[alert.severity] > SEVERITY_RANK.get(before, 0):
        notify(uow=uow, alert=alert, topic=TOPIC_ESCALATED, now=now)
    return alert


def _create(
    session: Session, c: Candidate, who: Concerned, key: str, now: datetime
) -> Alert | None:
    alert = Alert(
        id=alert_id_for(key),
        dedupe_key=key,
        kind=c.kind,
        severity=c.severity,
        state="open",
        manifest_id=c.manifest_id or who.manifest_id,
        leg_index=c.leg_index if c.leg_index is not None else who.leg_index,
        device_id=who.device_id,
        vehicle=who.vehicle,
        region_code=who.region_code,
        producer_id=who.producer_id,
        hauler_id=who.hauler_id,
        site_id=who.site_id,
        at=c.at,
        raised_at=now,
        updated_at=now,
        ended_at=c.ended_at,
        lat=c.lat,
        lon=c.lon,
        evidence=dict(c.evidence),
        detect_rev=1,
        publish_pending=True,
        published_at=None,
        version=1,
    )
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        return None
    return alert


def _apply(alert: Alert, c: Candidate) -> bool:
    """Update ``alert`` from ``c``; whether anything changed."""
    retracted = bool((alert.evidence or {}).get("retracted"))
    values: dict[str, Any] = {
        "severity": c.severity if retracted else max_severity(alert.severity, c.severity),
        "at": c.at,
        "ended_at": c.ended_at,
        "lat": c.lat if c.lat is not None else alert.lat,
        "lon": c.lon if c.lon is not None else alert.lon,
        "evidence": dict(c.evidence),
    }
    changed = False
    for name, value in values.items():
        if getattr(alert, name) != value:
            setattr(alert, name, value)
            changed = True
    return changed


def retract(*, uow: UnitOfWork, alert: Alert, now: datetime, reason: str) -> Alert | None:
    """Mark an alert the data no longer supports (e.g. a backlog filled a gap); None if it was."""
    evidence = dict(alert.evidence or {})
    if evidence.get("retracted"):
        return None
    evidence.update({"retracted": True, "retracted_at": ts(now), "retraction": reason})
    alert.evidence = evidence
    alert.severity = "low"
    alert.ended_at = alert.ended_at or alert.at
    alert.detect_rev += 1
    alert.updated_at = now
    alert.publish_pending = True
    notify(uow=uow, alert=alert, topic=TOPIC_UPDATED, now=now)
    return alert


def mark_changed(*, uow: UnitOfWork, alert: Alert, now: datetime, topic: str | None = None) -> None:
    """Any other change to an alert: publish it again (and send ``topic`` to webhooks if given)."""
    alert.updated_at = now
    alert.publish_pending = True
    if topic is not None:
        notify(uow=uow, alert=alert, topic=topic, now=now)


def notify(*, uow: UnitOfWork, alert: Alert, topic: str, now: datetime) -> None:
    """Enqueue ``topic`` with the alert's payload for every party that may see it."""
    from waste.alerts.handling import recipients  # the one definition of who sees an alert

    outbox.enqueue_for(
        uow=uow,
        topic=topic,
        party_ids=recipients(uow=uow, alert=alert),
        payload={"alert": alert_payload(alert)},
        now=now,
        subject=alert.id,
    )


def claim_pending(*, uow: UnitOfWork, now: datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Take alerts waiting to be published (skipping rows others hold) and commit; payloads."""
    session = uow.session
    query = (
        select(Alert)
        .where(Alert.publish_pending.is_(True))
        .order_by(Alert.updated_at, Alert.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    payloads = [alert_payload(a) for a in rows]
    for a in rows:
        a.publish_pending = False
        a.published_at = now
    uow.commit()
    return payloads


def alerts_by_key(session: Session, keys: Iterable[str]) -> dict[str, Alert]:
    """The alerts of these dedupe keys that exist."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = session.scalars(select(Alert).where(Alert.dedupe_key.in_(wanted)))
    return {a.dedupe_key: a for a in rows}
