"""The MQTT topic scheme of wire contract v1 (PROTOCOL.md §4), pure.

    waste/v1/devices/{device_id}/telemetry   device → server, signed position fixes
    waste/v1/devices/{device_id}/lock        device → server, signed e-lock events
    waste/v1/devices/{device_id}/status      device → server, retained, also the will
    waste/v1/alerts/{kind}                   server → subscribers

A device id becomes a topic level, so it must be 1-64 characters of
``[A-Za-z0-9_.-]`` (the registry's grammar): no ``/``, ``+``, ``#``, NUL or
leading ``$``. Alert kinds are 1-64 characters of ``[a-z0-9_]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ALERTS_FILTER",
    "DEVICES_FILTER",
    "DEVICE_ID_PATTERN",
    "PREFIX",
    "Channel",
    "DeviceTopic",
    "alert_topic",
    "device_filter",
    "device_topic",
    "is_valid_alert_kind",
    "is_valid_device_id",
    "lock_topic",
    "parse_alert_topic",
    "parse_device_topic",
    "shared",
    "split_shared",
    "status_topic",
    "telemetry_topic",
    "topic_matches",
]

PREFIX = "waste/v1"
DEVICE_ID_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
_ALERT_KIND = re.compile(r"[a-z0-9_]{1,64}")
# MQTT 5 §4.8.2: a share name is at least one character and has no "/", "+" or "#".
_SHARE_NAME = re.compile(r"[^/+#\x00]+")


class Channel(StrEnum):
    """The last level of a device topic: what the device publishes there."""

    TELEMETRY = "telemetry"
    LOCK = "lock"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A parsed device topic: which device, which channel."""

    device_id: str
    channel: Channel

    @property
    def topic(self) -> str:
        """The topic string this was parsed from."""
        return device_topic(self.device_id, self.channel)


def is_valid_device_id(device_id: object) -> bool:
    """Whether ``device_id`` is a string that may be a device id (and so a topic level)."""
    return isinstance(device_id, str) and _DEVICE_ID.fullmatch(device_id) is not None


def is_valid_alert_kind(kind: object) -> bool:
    """Whether ``kind`` is a string that may be an alert kind topic level."""
    return isinstance(kind, str) and _ALERT_KIND.fullmatch(kind) is not None


def _require_device_id(device_id: str) -> None:
    if not is_valid_device_id(device_id):
        raise ValueError(f"not a valid device id (1-64 of [A-Za-z0-9_.-]): {device_id[:80]!r}")


def device_topic(device_id: str, channel: Channel | str) -> str:
    """The topic ``waste/v1/devices/{device_id}/{channel}``; ``ValueError`` on a bad id."""
    _require_device_id(device_id)
    return f"{PREFIX}/devices/{device_id}/{Channel(channel).value}"


def telemetry_topic(device_id: str) -> str:
    """The telemetry topic of ``device_id``."""
    return device_topic(device_id, Channel.TELEMETRY)


def lock_topic(device_id: str) -> str:
    """The e-lock topic of ``device_id``."""
    return device_topic(device_id, Channel.LOCK)


def status_topic(device_id: str) -> str:
    """The retained status (and will) topic of ``device_id``."""
    return device_topic(device_id, Channel.STATUS)


def alert_topic(kind: str) -> str:
    """The topic ``waste/v1/alerts/{kind}``; ``ValueError`` on a bad kind."""
    if not is_valid_alert_kind(kind):
        raise ValueError(f"not a valid alert kind (1-64 of [a-z0-9_]): {kind[:80]!r}")
    return f"{PREFIX}/alerts/{kind}"


def parse_device_topic(topic: str) -> DeviceTopic | None:
    """The device and channel of a device topic, or None if ``topic`` is not one."""
    levels = topic.split("/")
    if len(levels) != 5 or levels[0] != "waste" or levels[1] != "v1" or levels[2] != "devices":
        return None
    device_id, channel = levels[3], levels[4]
    if not is_valid_device_id(device_id):
        return None
    try:
        return DeviceTopic(device_id, Channel(channel))
    except ValueError:
        return None


def parse_alert_topic(topic: str) -> str | None:
    """The alert kind of an alert topic, or None if ``topic`` is not one."""
    levels = topic.split("/")
    if len(levels) != 4 or levels[:3] != ["waste", "v1", "alerts"]:
        return None
    return levels[3] if is_valid_alert_kind(levels[3]) else None


DEVICES_FILTER = f"{PREFIX}/devices/+/+"
ALERTS_FILTER = f"{PREFIX}/alerts/+"


def device_filter(channel: Channel | str | None = None) -> str:
    """A filter for every device's ``channel`` (every channel when None)."""
    if channel is None:
        return DEVICES_FILTER
    return f"{PREFIX}/devices/+/{Channel(channel).value}"


def shared(topic_filter: str, group: str) -> str:
    """The MQTT 5 shared-subscription form ``$share/{group}/{topic_filter}``."""
    if _SHARE_NAME.fullmatch(group) is None:
        raise ValueError(f"not a valid share name (no '/', '+', '#'): {group[:80]!r}")
    if not topic_filter or topic_filter.startswith("$share/"):
        raise ValueError("topic filter must be a plain, non-empty filter")
    return f"$share/{group}/{topic_filter}"


def split_shared(subscription: str) -> tuple[str | None, str]:
    """``(group, filter)`` of a subscription; group is None when it is not shared."""
    if not subscription.startswith("$share/"):
        return None, subscription
    parts = subscription.split("/", 2)
    if len(parts) != 3 or _SHARE_NAME.fullmatch(parts[1]) is None or not parts[2]:
        raise ValueError(f"malformed shared subscription: {subscription[:120]!r}")
    return parts[1], parts[2]


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` under MQTT wildcard rules (§4.7)."""
    _, topic_filter = split_shared(topic_filter)
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    # §4.7.2: a filter starting with a wildcard does not match topics starting with "$".
    if topic.startswith("$") and f_levels[0] in ("+", "#"):
        return False
    for i, f in enumerate(f_levels):
        if f == "#":
            return i == len(f_levels) - 1
        if i >= len(t_levels):
            return False
        if f != "+" and f != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)
