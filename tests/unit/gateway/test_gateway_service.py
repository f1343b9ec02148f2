"""How ``waste gateway`` reads its broker settings."""

from __future__ import annotations

import pytest

from gateway.service import EMBEDDED_PORT, SHARE_GROUP, broker_config
from waste.config import Settings


def _config(url: str, client_id: str | None = None) -> tuple[object, ...]:
    c = broker_config(Settings(mqtt_url=url), client_id=client_id)
    return (c.embedded, c.host, c.port, c.share_group, c.client_id)


def test_embedded_defaults_to_1884_not_a_system_mosquittos_1883() -> None:
    assert EMBEDDED_PORT == 1884
    # Shared like a real broker (more gateways may join an embedded Mosquitto);
    # EmbeddedBroker.fit drops the group when amqtt runs.
    assert _config("embedded://") == (True, "127.0.0.1", 1884, SHARE_GROUP, "waste-gateway")
    assert _config("embedded://127.0.0.1:5555")[2] == 5555


def test_a_real_broker_is_shared_by_default_and_client_ids_are_per_process() -> None:
    assert _config("mqtt://broker:1883", "gw-2") == (False, "broker", 1883, SHARE_GROUP, "gw-2")
    assert _config("mqtt://broker?share_group=ops&client_id=gw-1")[3:] == ("ops", "gw-1")


def test_an_empty_share_group_setting_means_a_plain_subscription() -> None:
    plain = broker_config(Settings(mqtt_url="mqtt://broker", gateway_share_group=""))
    assert plain.share_group is None
    url = "mqtt://broker?share_group=ops"
    assert broker_config(Settings(mqtt_url=url, gateway_share_group="")).share_group == "ops"
    with pytest.raises(ValueError, match="share"):
        broker_config(Settings(mqtt_url="mqtt://broker", gateway_share_group="a/b"))


def test_a_bad_url_is_refused() -> None:
    with pytest.raises(ValueError, match="mqtt://"):
        broker_config(Settings(mqtt_url="http://broker"))
