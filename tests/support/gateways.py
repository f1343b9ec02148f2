"""A gateway run in-process on a thread, as the integration and end-to-end tests use it."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from gateway.service import Gateway
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
