"""Console test helpers: sign in through the form, read CSRF tokens, seed a trip with a track.

``seed_trip`` files a manifest, has it picked up, then streams signed telemetry along
the declared route through the real ingest path (with an excursion off the corridor
and the seal opened out there) and inserts alerts about it as the engine would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from devices.signing import encode_lock, encode_telemetry
from gateway.payloads import Fix, LockEvent, LockEventKind
from gateway.topics import lock_topic, telemetry_topic
from tests.support.alerts import manifest_alert, session_of
from tests.support.telemetry import make_rig
from tests.support.world import ROUTE, World, box
from waste.alerts.models import Alert
from waste.clock import utcnow

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
OFF_ROUTE_DEG = 0.006  # about 670 m north of the route
FIXES = 60
STEP_S = 30
EXCURSION = range(24, 34)
STOP = range(25, 33)  # parked off the route for 3.5 minutes
SEAL_OPENED_AT = 28


def csrf_of(html: str) -> str:
    """The first CSRF token in a page's forms."""
    m = _CSRF.search(html)
    assert m is not None, "no CSRF token on the page"
    return m.group(1)


def sign_in(http: TestClient, token: str, *, next_path: str = "") -> Any:
    """Sign in through the console's form (as a browser would); returns the POST response."""
    form = http.get("/console/login")
    assert form.status_code == 200, form.text
    data = {"token": token, "csrf": csrf_of(form.text), "next": next_path}
    return http.post("/console/login", data=data, follow_redirects=False)


def along_route(fraction: float) -> tuple[float, float]:
    """``(lat, lon)`` at ``fraction`` (0 to 1) of the way along the world's route."""
    coords = ROUTE["coordinates"]
    legs = len(coords) - 1
    x = min(max(fraction, 0.0), 1.0) * legs
    i = min(int(x), legs - 1)
    k = x - i
    (lon0, lat0), (lon1, lat1) = coords[i], coords[i + 1]
    return lat0 + (lat1 - lat0) * k, lon0 + (lon1 - lon0) * k


@dataclass
class Trip:
    """A seeded trip: its manifest, the times used, and the alerts raised about it."""

    manifest_id: str
    number: str
    picked_up_at: datetime
    fixes: list[Fix]
    seal_opened: LockEvent
    alerts: dict[str, str] = field(default_factory=dict)


def route_fixes(start: datetime) -> list[Fix]:
    """``FIXES`` fixes every ``STEP_S`` s along the route, north of it during ``EXCURSION``,
    standing still during ``STOP``."""
    fixes = []
    for i in range(FIXES):
        lat, lon = along_route((STOP.start if i in STOP else i) / (FIXES - 1))
        if i in EXCURSION:
            lat += OFF_ROUTE_DEG
        speed = 0.0 if i in STOP else 45.0 + (i % 5) * 6
        fixes.append(Fix(start + timedelta(seconds=STEP_S * i), lat, lon, speed, 90.0, 0.9))
    return fixes


def seed_trip(world: World, engine: Engine, *, hauler: int = 0) -> Trip:
    """A manifest picked up 40 min ago, its track along the route with an excursion and the
    seal opened off the route, and three alerts about it (dumping, deviation, stop)."""
    now = utcnow().replace(microsecond=0)
    filed = world.producer.file(world.filing(), at=now - timedelta(minutes=50))
    mid = str(filed["manifest_id"])
    picked = now - timedelta(minutes=40)
    world.haulers[hauler].client.pick_up(
        mid, world.pickup(hauler), cosigners=[world.producer.key], at=picked
    )
    h = world.haulers[hauler]
    lat, lon = along_route(EXCURSION.start / (FIXES - 1))
    zone = world.http.post(  # a water protection area just where the truck strays
        "/v1/zones",
        json={"name": "Meixi reservoir protection area", "region_code": "330702",
              "area": box(lon, lat + OFF_ROUTE_DEG, 0.002)},
        headers=world.admin,
    )  # fmt: skip
    assert zone.status_code == 201, zone.text
    fixes = route_fixes(picked + timedelta(seconds=10))
    f = fixes[SEAL_OPENED_AT]
    opened = LockEvent(f.t, f"SEAL-{h.device_id}", LockEventKind.UNSEALED, f.lat, f.lon)
    sealed = LockEvent(
        fixes[0].t - timedelta(seconds=5), opened.lock_id, LockEventKind.SEALED,
        fixes[0].lat, fixes[0].lon,
    )  # fmt: skip
    rig = make_rig(engine)
    rig.send((lock_topic(h.device_id), encode_lock(h.device_id, 1, sealed, h.device_key)))
    for n, start in enumerate(range(0, FIXES, 20)):
        payload = encode_telemetry(h.device_id, 2 + n, fixes[start : start + 20], h.device_key)
        rig.send((telemetry_topic(h.device_id), payload))
    rig.send((lock_topic(h.device_id), encode_lock(h.device_id, 10, opened, h.device_key)))
    rig.pump()
    rig.transport.stop()
    number = str(filed["number"]) if "number" in filed else _number(world, mid)
    trip = Trip(mid, number, picked, fixes, opened)
    path = [[f"{x.t:%Y-%m-%dT%H:%M:%SZ}", x.lat, x.lon, 640.0] for x in fixes[24:34]]
    trip.alerts["suspected_illegal_dumping"] = manifest_alert(
        world, mid, kind="suspected_illegal_dumping", severity="critical", at=opened.t,
        device_id=h.device_id, vehicle=h.plate,
        evidence={"reasons": ["seal_opened"], "seal_events": [{"event": "unsealed"}]},
    )  # fmt: skip
    trip.alerts["route_deviation"] = manifest_alert(
        world, mid, kind="route_deviation", severity="high", at=fixes[24].t,
        device_id=h.device_id, vehicle=h.plate,
        evidence={"max_distance_m": 667.0, "duration_s": 270.0, "corridor_m": 50, "path": path},
    )  # fmt: skip
    trip.alerts["unscheduled_stop"] = manifest_alert(
        world, mid, kind="unscheduled_stop", severity="medium", at=fixes[26].t,
        device_id=h.device_id, vehicle=h.plate, evidence={"duration_s": 120.0},
    )  # fmt: skip
    with session_of(world.http) as session:  # put each alert where it happened
        for kind, fix in (("suspected_illegal_dumping", f), ("route_deviation", fixes[29]),
                          ("unscheduled_stop", fixes[27])):  # fmt: skip
            row = session.get(Alert, trip.alerts[kind])
            assert row is not None
            row.lat, row.lon = fix.lat, fix.lon
        session.commit()
    return trip


def _number(world: World, manifest_id: str) -> str:
    resp = world.http.get(f"/v1/manifests/{manifest_id}", headers=world.admin)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["number"])
