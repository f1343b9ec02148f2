"""The README's Mosquitto setup works: per-device credentials, and an ACL (docs/mosquitto/acl)
that lets a device publish only under its own topics while the gateways share the load."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import BrokerConfig
from gateway.topics import status_topic, telemetry_topic
from gateway.transport import PahoTransport, TransportError
from tests.support.brokers import mosquitto_path, unique_name

pytestmark = pytest.mark.broker

DOCS = Path(__file__).resolve().parents[2] / "docs" / "mosquitto"
ACCOUNTS = {"gateway": "gw-secret", "DEV-A": "a-secret", "DEV-B": "b-secret"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerConfig]:
    """Mosquitto with the documented ACL, a password file of ACCOUNTS, no anonymous clients."""
    passwd_tool = shutil.which("mosquitto_passwd")
    if mosquitto_path() is None or passwd_tool is None:
        pytest.skip("mosquitto (with mosquitto_passwd) is not installed")
    from gateway._mosquitto import MosquittoProcess

    passwd = tmp_path / "passwd"
    passwd.touch()
    for user, password in ACCOUNTS.items():
        subprocess.run([passwd_tool, "-b", str(passwd), user, password], check=True)
    acl = tmp_path / "acl"
    shutil.copy(DOCS / "acl", acl)
    process = MosquittoProcess(
        tmp_path / "broker",
        anonymous=False,
        settings=[f"password_file {passwd}", f"acl_file {acl}"],
    )
    process.start()
    try:
        yield BrokerConfig.from_url(f"{process.url}?share_group=waste-gateway")
    finally:
        process.stop()


def _device(config: BrokerConfig, user: str, password: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name(user))
    client.username_pw_set(user, password)
    connected = threading.Event()
    client.on_connect = lambda _c, _u, _f, rc, _p: connected.set() if not rc.is_failure else None
    client.will_set(status_topic(user), b'{"online": false}', qos=1, retain=True)
    client.connect(config.host, config.port, keepalive=10)
    client.loop_start()
    assert connected.wait(5), f"{user} was not let in"
    return client


def _gateway(config: BrokerConfig) -> PahoTransport:
    own = BrokerConfig.from_url(
        f"mqtt://gateway:{ACCOUNTS['gateway']}@{config.host}:{config.port}"
        f"?share_group=waste-gateway&client_id={unique_name('gw')}"
    )
    return PahoTransport(own, connect_timeout=5)


def test_devices_publish_only_under_their_own_topics(broker: BrokerConfig) -> None:
    with _gateway(broker) as gateway:
        assert gateway.subscriptions[0].startswith("$share/waste-gateway/")
        dev = _device(broker, "DEV-A", ACCOUNTS["DEV-A"])
        dev.publish(status_topic("DEV-A"), b'{"online": true}', qos=1, retain=True)
        dev.publish(telemetry_topic("DEV-B"), b"forged", qos=1).wait_for_publish(5)
        dev.publish(status_topic("DEV-B"), b'{"online": false}', qos=1).wait_for_publish(5)
        dev.publish(telemetry_topic("DEV-A"), b"own", qos=1).wait_for_publish(5)
        got = gateway.messages(timeout=5, limit=2)
        got += gateway.messages(timeout=1, limit=1) if len(got) < 2 else []
        # One connection's messages arrive in order: the refused ones would have come first.
        assert [(m.topic, m.payload) for m in got] == [
            (status_topic("DEV-A"), b'{"online": true}'),
            (telemetry_topic("DEV-A"), b"own"),
        ]
        assert all(gateway.ack(m) for m in got)
        dev.publish(status_topic("DEV-A"), b"", qos=1, retain=True).wait_for_publish(5)
        dev.disconnect()
        dev.loop_stop()


def test_wrong_passwords_and_anonymous_clients_are_refused(broker: BrokerConfig) -> None:
    bad = BrokerConfig.from_url(f"mqtt://gateway:wrong@{broker.host}:{broker.port}?client_id=x")
    with pytest.raises(TransportError, match="refused"):
        PahoTransport(bad, connect_timeout=5).start()
    anonymous = BrokerConfig(host=broker.host, port=broker.port, client_id=unique_name("anon"))
    with pytest.raises(TransportError, match="refused"):
        PahoTransport(anonymous, connect_timeout=5).start()


def test_the_readme_shows_the_tested_files() -> None:
    readme = (DOCS.parents[1] / "README.md").read_text()
    for name in ("acl", "waste.conf"):
        assert (DOCS / name).read_text().strip() in readme, f"README lacks docs/mosquitto/{name}"
