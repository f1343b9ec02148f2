"""A gateway's alert sweep judges by the clock it is given (a replay's), not the wall's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gateway.service import Gateway
from tests.support.alert_trips import alerts
from tests.support.brokers import free_port
from tests.support.brokers import unique_name as unique
from tests.support.world import build_world
from waste.clock import utcnow
from waste.config import Settings

pytestmark = pytest.mark.broker


def test_the_sweep_runs_on_the_alert_clock(
    client: TestClient, admin_headers: dict[str, str], engine: Engine, settings: Settings
) -> None:
    world = build_world(client, admin_headers, haulers=1, sites=1)
    mid = world.producer.file(world.filing(), at=utcnow())["manifest_id"]  # due in 8 h
    url = f"embedded://127.0.0.1:{free_port()}?client_id={unique('gw')}&broker=amqtt"
    gw_settings = settings.model_copy(update={"mqtt_url": url, "gateway_metrics_port": 0})
    gateway = Gateway(gw_settings, engine=engine, alert_clock=lambda: utcnow() + timedelta(days=2))
    gateway.start()
    try:
        assert gateway.alert_worker is not None
        gateway.alert_worker.run_once(force_sweep=True)
    finally:
        gateway.close()
    (late,) = alerts(engine, manifest_id=mid)
    assert late.kind == "overdue_delivery"
