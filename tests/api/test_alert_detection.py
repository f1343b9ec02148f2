"""Alerts raised by custody events over HTTP: recorded with the event, listed per the protocol."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.support.alert_trips import picked_up, receipt
from tests.support.telemetry import Vehicle
from tests.support.world import World, build_world
from waste.alerts.models import Alert
from waste.alerts.payload import alert_payload
from waste.client import ClientError
from waste.clock import utcnow
from waste.uow import UnitOfWork

PROTOCOL_MEMBERS = {
    "id", "kind", "severity", "state", "manifest_id", "device_id", "vehicle",
    "at", "raised_at", "lat", "lon", "evidence",
}  # fmt: skip


def _alerts(client: TestClient, **where: Any) -> list[Alert]:
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with UnitOfWork(factory) as uow:
        rows = list(uow.session.scalars(select(Alert).filter_by(**where)))
        uow.session.expunge_all()
        return rows


def _short_receipt(world: World) -> str:
    now = utcnow()
    mid = picked_up(world, now, minutes_ago=40)
    truck = Vehicle.of(world.haulers[0])
    world.sites[0].receive(mid, receipt(truck, 500.0), at=now - timedelta(minutes=5))
    return mid


def test_a_short_receipt_is_an_alert_the_manifest_parties_see(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    world = build_world(client, admin_headers)
    mid = _short_receipt(world)
    (alert,) = _alerts(client, manifest_id=mid)
    assert alert.kind == "quantity_discrepancy"
    assert alert.evidence["weighed_kg"] == 500.0
    assert alert.site_id == world.sites[0].party_id
    listed = world.producer.get("/v1/alerts", manifest_id=mid)["items"]
    assert [a["id"] for a in listed] == [alert.id]
    assert {k: listed[0][k] for k in PROTOCOL_MEMBERS} == alert_payload(alert)
    other = world.haulers[1].client.get("/v1/alerts", manifest_id=mid)["items"]
    assert other == []


def test_a_refused_event_raises_no_alert(client: TestClient, admin_headers: dict[str, str]) -> None:
    world = build_world(client, admin_headers)
    now = utcnow()
    mid = picked_up(world, now, minutes_ago=40)
    truck = Vehicle.of(world.haulers[0])
    bad = receipt(truck, 500.0, accepted_kg=400.0)  # accepted + refused ≠ weighed: refused
    with pytest.raises(ClientError):
        world.sites[0].receive(mid, bad, at=now - timedelta(minutes=5))
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with UnitOfWork(factory) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Alert)) == 0
