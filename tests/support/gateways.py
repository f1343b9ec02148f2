"""A gateway run in-process on a thread, and the brokers it is tested against.

Test modules take the parametrized ``mqtt_url`` fixture by importing ``gateway_mqtt_url``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.service import Gateway
from tests.support.brokers import (
    broker_url_for_tests,
    free_port,
    mosquitto_path,
    running_mosquitto,
    unique_name,
)
from waste.config import Settings
from waste.telemetry.domain import TrackUpdate


class RunningGateway:
    """A started gateway, run on a thread, with the track updates it handed on."""

    def __init__(self, settings: Settings, engine: Engine, url: str) -> None:
        self.updates: list[TrackUpdate] = []
        gw_settings = settings.model_copy(
            update={"mqtt_url": url, "gateway_metrics_port": 0, "gateway_batch_interval_s": 0.05}
        )
        self.gateway = Gateway(gw_settings, engine=engine, consumers=[self.updates.extend])
        self.stop = threading.Event()
        self.gateway.start()
        self.thread = threading.Thread(target=self.gateway.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop the run loop, wait for its thread, close the gateway."""
        self.stop.set()
        self.thread.join(10)
        self.gateway.close()


@pytest.fixture(name="mqtt_url", params=["embedded", "amqtt", "mosquitto"])
def gateway_mqtt_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A broker URL for a gateway with its own client id (and share group on a real broker)."""
    own = f"client_id={unique_name('gw')}"
    if request.param == "embedded":  # Mosquitto as the gateway's child, if installed
        yield f"embedded://127.0.0.1:{free_port()}?{own}"
        return
    if request.param == "amqtt":  # the fallback when Mosquitto is not installed
        yield f"embedded://127.0.0.1:{free_port()}?{own}&broker=amqtt"
        return
    if url := broker_url_for_tests():
        yield f"{url}?{own}&share_group={unique_name('g')}&session_expiry=60"
        return
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed and WASTE_TEST_MQTT_URL is not set")
    with running_mosquitto(tmp_path / "mq") as broker:
        yield f"{broker.url}?{own}&session_expiry=60"
