"""The one JSON shape of an alert: the MQTT payload on ``waste/v1/alerts/{kind}`` and the
objects listed by ``GET /v1/alerts`` (PROTOCOL.md section 4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from waste.clock import format_utc


class AlertLike(Protocol):
    """What :func:`alert_payload` reads of an alert (the ``Alert`` row has it)."""

    id: str
    kind: str
    severity: str
    state: str
    manifest_id: str | None
    device_id: str | None
    vehicle: str | None
    at: datetime
    raised_at: datetime
    lat: float | None
    lon: float | None
    evidence: dict[str, Any]


def alert_payload(alert: AlertLike) -> dict[str, Any]:
    """The protocol object of ``alert``: exactly the members PROTOCOL.md section 4 lists."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "severity": alert.severity,
        "state": alert.state,
        "manifest_id": alert.manifest_id,
        "device_id": alert.device_id,
        "vehicle": alert.vehicle,
        "at": format_utc(alert.at),
        "raised_at": format_utc(alert.raised_at),
        "lat": alert.lat,
        "lon": alert.lon,
        "evidence": dict(alert.evidence or {}),
    }


def alert_topic(kind: str) -> str:
    """The MQTT topic an alert of ``kind`` is published on."""
    return f"waste/v1/alerts/{kind}"
