"""Alerts inserted straight through the models, for handling tests that need no detection."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.support.world import World
from waste.alerts.models import Alert
from waste.clock import utcnow

_serial = itertools.count(1)


def session_of(client: TestClient) -> Session:
    """A session on the app's database (close it after use)."""
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    session: Session = factory()
    return session


def insert_alert(
    client: TestClient,
    *,
    kind: str = "route_deviation",
    severity: str = "medium",
    region_code: str = "330702",
    manifest_id: str | None = None,
    producer_id: str | None = None,
    hauler_id: str | None = None,
    site_id: str | None = None,
    vehicle: str | None = None,
    device_id: str | None = None,
    at: datetime | None = None,
    raised_at: datetime | None = None,
    due_at: datetime | None = None,
    evidence: dict[str, Any] | None = None,
) -> str:
    """Insert an open alert as the detection engine would; return its id."""
    now = utcnow()
    raised = raised_at or now
    alert_id = str(uuid.uuid4())
    row = Alert(
        id=alert_id,
        dedupe_key=f"test:{next(_serial)}:{alert_id}",
        kind=kind,
        severity=severity,
        state="open",
        manifest_id=manifest_id,
        leg_index=0 if manifest_id else None,
        device_id=device_id,
        vehicle=vehicle,
        region_code=region_code,
        producer_id=producer_id,
        hauler_id=hauler_id,
        site_id=site_id,
        at=at or raised - timedelta(seconds=30),
        raised_at=raised,
        updated_at=raised,
        ended_at=None,
        lat=29.30,
        lon=120.12,
        evidence=evidence if evidence is not None else {"max_distance_m": 412.5, "fixes": 7},
        detect_rev=1,
        publish_pending=False,
        published_at=None,
        due_at=due_at,
        version=1,
    )
    with session_of(client) as session:
        session.add(row)
        session.commit()
    return alert_id


def manifest_alert(world: World, manifest_id: str, **over: Any) -> str:
    """An alert about ``manifest_id`` of the world's producer, hauler 0 and site 0."""
    fields: dict[str, Any] = {
        "manifest_id": manifest_id,
        "producer_id": world.producer.party_id,
        "hauler_id": world.haulers[0].client.party_id,
        "site_id": world.sites[0].party_id,
        "vehicle": world.haulers[0].plate,
        "device_id": world.haulers[0].device_id,
    }
    fields.update(over)
    return insert_alert(world.http, **fields)
