"""How ``waste gateway`` reads its broker settings."""

from __future__ import annotations

import pytest

from gateway.service import EMBEDDED_PORT, broker_config
from waste.config import Settings


def _config(url: str, client_id: str | None = None) -> tuple[object, ...]:
    c = broker_config(Settings(mqtt_url=url), client_id=client_id)
    return (c.embedded, c.host, c.port, c.share_group, c.client_id)


def test_embedded_defaults_to_1884_not_a_system_mosquittos_1883() -> None:
    assert EMBEDDED_PORT == 1884
    assert _config("embedded://") == (True, "127.0.0.1", 1884, None, "waste-gateway")
    assert _config("embedded://127.0.0.1:5555")[2] == 5555


def test_a_plain_subscription_is_the_default_and_client_ids_are_per_process() -> None:
    # Plain, because Mosquitto < 2.0.12 drops a shared subscription's messages after
    # a restart (tests/faults/test_broker_restart.py): sharing is opt-in.
    assert _config("mqtt://broker:1883", "gw-2") == (False, "broker", 1883, None, "gw-2")
    assert _config("mqtt://broker?share_group=ops&client_id=gw-1")[3:] == ("ops", "gw-1")


def test_scale_out_opts_in_to_a_share_group_and_the_url_wins() -> None:
    shared = Settings(mqtt_url="mqtt://broker", gateway_share_group="waste-gateway")
    assert broker_config(shared).share_group == "waste-gateway"
    url = "mqtt://broker?share_group=ops"
    assert broker_config(Settings(mqtt_url=url, gateway_share_group="gw")).share_group == "ops"
    assert broker_config(Settings(mqtt_url=url, gateway_share_group="")).share_group == "ops"
    with pytest.raises(ValueError, match="share"):
        broker_config(Settings(mqtt_url="mqtt://broker", gateway_share_group="a/b"))


def test_a_bad_url_is_refused() -> None:
    with pytest.raises(ValueError, match="mqtt://"):
        broker_config(Settings(mqtt_url="http://broker"))
