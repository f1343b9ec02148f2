"""The topic scheme: builders, parsing, filters and MQTT matching."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.topics import (
    ALERTS_FILTER,
    DEVICES_FILTER,
    Channel,
    DeviceTopic,
    alert_topic,
    device_filter,
    device_topic,
    is_valid_device_id,
    lock_topic,
    parse_alert_topic,
    parse_device_topic,
    shared,
    split_shared,
    status_topic,
    telemetry_topic,
    topic_matches,
)


def test_builders_follow_the_protocol() -> None:
    assert telemetry_topic("DEV-0001") == "waste/v1/devices/DEV-0001/telemetry"
    assert lock_topic("DEV-0001") == "waste/v1/devices/DEV-0001/lock"
    assert status_topic("DEV-0001") == "waste/v1/devices/DEV-0001/status"
    assert alert_topic("seal_opened_off_site") == "waste/v1/alerts/seal_opened_off_site"


@pytest.mark.parametrize("channel", list(Channel))
def test_parse_inverts_build(channel: Channel) -> None:
    topic = device_topic("dev_1.a-B", channel)
    parsed = parse_device_topic(topic)
    assert parsed == DeviceTopic("dev_1.a-B", channel)
    assert parsed.topic == topic


@pytest.mark.parametrize(
    "topic",
    [
        "waste/v1/devices/DEV-0001",
        "waste/v1/devices/DEV-0001/telemetry/extra",
        "waste/v1/devices//telemetry",
        "waste/v1/devices/+/telemetry",
        "waste/v1/devices/#/telemetry",
        "waste/v1/devices/DEV 1/telemetry",
        "waste/v1/devices/DEV\x001/telemetry",
        "waste/v1/devices/ДЕВ/telemetry",
        f"waste/v1/devices/{'A' * 65}/telemetry",
        "waste/v1/devices/DEV-0001/Telemetry",
        "waste/v2/devices/DEV-0001/telemetry",
        "/waste/v1/devices/DEV-0001/telemetry",
        "waste/v1/alerts/route_deviation",
        "$share/g/waste/v1/devices/DEV-0001/telemetry",
        "",
    ],
)
def test_parse_rejects(topic: str) -> None:
    assert parse_device_topic(topic) is None


@pytest.mark.parametrize(
    "device_id", ["", "A/B", "A+B", "A#B", "$SYS", "A\x00", "A\n", "A" * 65, "é", "A B"]
)
def test_unsafe_device_ids(device_id: str) -> None:
    assert not is_valid_device_id(device_id)
    with pytest.raises(ValueError, match="device id"):
        telemetry_topic(device_id)


def test_device_id_grammar_bounds() -> None:
    assert is_valid_device_id("A" * 64)
    assert is_valid_device_id("a")
    assert is_valid_device_id("A1_.-z")
    assert not is_valid_device_id("A" * 63 + "\n")  # a regex ``$`` would let this through
    assert not is_valid_device_id(42)


def test_alert_topics() -> None:
    assert parse_alert_topic("waste/v1/alerts/signal_lost") == "signal_lost"
    assert parse_alert_topic("waste/v1/alerts/Signal") is None
    assert parse_alert_topic("waste/v1/alerts/a/b") is None
    with pytest.raises(ValueError, match="alert kind"):
        alert_topic("a/b")


def test_filters() -> None:
    assert DEVICES_FILTER == "waste/v1/devices/+/+"
    assert ALERTS_FILTER == "waste/v1/alerts/+"
    assert device_filter(Channel.TELEMETRY) == "waste/v1/devices/+/telemetry"
    assert device_filter("status") == "waste/v1/devices/+/status"
    assert device_filter() == DEVICES_FILTER
    with pytest.raises(ValueError):
        device_filter("gps")


def test_shared_subscription() -> None:
    sub = shared(device_filter(Channel.TELEMETRY), "ingest")
    assert sub == "$share/ingest/waste/v1/devices/+/telemetry"
    assert split_shared(sub) == ("ingest", "waste/v1/devices/+/telemetry")
    assert split_shared(DEVICES_FILTER) == (None, DEVICES_FILTER)
    for group in ("", "a/b", "a+", "#"):
        with pytest.raises(ValueError, match="share name"):
            shared(DEVICES_FILTER, group)
    with pytest.raises(ValueError):
        shared(sub, "again")
    with pytest.raises(ValueError, match="malformed"):
        split_shared("$share/onlygroup")


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("waste/v1/devices/+/telemetry", "waste/v1/devices/DEV-1/telemetry", True),
        ("waste/v1/devices/+/telemetry", "waste/v1/devices/DEV-1/lock", False),
        ("waste/v1/devices/+/+", "waste/v1/devices/DEV-1/status", True),
        ("waste/v1/devices/+/+", "waste/v1/devices/DEV-1", False),
        ("waste/v1/devices/#", "waste/v1/devices", True),
        ("waste/v1/devices/#", "waste/v1/devices/a/b/c", True),
        ("#", "waste/v1/alerts/x", True),
        ("#", "$SYS/broker/uptime", False),
        ("+/v1/alerts/x", "$waste/v1/alerts/x", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("$share/g/waste/v1/alerts/+", "waste/v1/alerts/signal_lost", True),
        ("waste/v1/alerts/+", "waste/v1/alerts/", True),
        ("waste/#/x", "waste/v1/x", False),
    ],
)
def test_topic_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


@settings(max_examples=200, deadline=None)
@given(topic=st.text(max_size=80))
def test_parse_never_raises(topic: str) -> None:
    parsed = parse_device_topic(topic)
    if parsed is not None:
        assert parsed.topic == topic
        assert topic_matches(DEVICES_FILTER, topic)
