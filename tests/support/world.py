"""A small registry built through the API, with signing clients for each party."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from tests.support.parties import Actor, public_b64, register
from waste.client import PartyClient

_plates = itertools.count(1)

ROUTE = {
    "type": "LineString",
    "coordinates": [[120.0752, 29.3061], [120.1500, 29.3000], [120.1900, 29.2500]],
}


def box(lon: float, lat: float, half: float = 0.002) -> dict[str, Any]:
    """A small square polygon around a point."""
    return {
        "type": "Polygon",
        "coordinates": [
            [
                [lon - half, lat - half],
                [lon + half, lat - half],
                [lon + half, lat + half],
                [lon - half, lat + half],
                [lon - half, lat - half],
            ]
        ],
    }


@dataclass
class Hauler:
    """A hauler with its client, a vehicle and the device on it."""

    client: PartyClient
    plate: str
    vehicle_id: str
    device_id: str
    device_key: Ed25519PrivateKey


@dataclass
class World:
    """Parties of one county, ready to sign."""

    http: TestClient
    admin: dict[str, str]
    producer: PartyClient
    haulers: list[Hauler]
    sites: list[PartyClient]
    regulator: Actor
    extra: dict[str, Any] = field(default_factory=dict)

    def filing(self, **over: Any) -> dict[str, Any]:
        """Valid `filed` data from the producer to site 0 with hauler 0."""
        now = datetime.now(UTC).replace(microsecond=0)
        data: dict[str, Any] = {
            "producer": self.producer.party_id,
            "hauler": self.haulers[0].client.party_id,
            "vehicle": self.haulers[0].plate,
            "destination": self.sites[0].party_id,
            "wastes": [
                {
                    "code": "900-041-49",
                    "name": "Oily rags",
                    "hazards": ["T", "In"],
                    "form": "solid",
                    "packaging": "200 L drum",
                    "containers": 4,
                    "mass_kg": 800,
                }
            ],
            "route": ROUTE,
            "corridor_m": 50,
            "pickup_window": {
                "from": _ts(now - timedelta(hours=1)),
                "to": _ts(now + timedelta(hours=4)),
            },
            "deliver_by": _ts(now + timedelta(hours=8)),
        }
        data.update(over)
        return data

    def pickup(self, hauler: int = 0, mass_kg: float = 795.0) -> dict[str, Any]:
        """Valid `picked_up` data for hauler ``hauler``."""
        h = self.haulers[hauler]
        return {
            "hauler": h.client.party_id,
            "vehicle": h.plate,
            "device_id": h.device_id,
            "seal_id": f"SEAL-{h.device_id}",
            "mass_kg": mass_kg,
        }


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def client_for(http: TestClient, actor: Actor) -> PartyClient:
    """A signing client for a registered actor."""
    return PartyClient(http, token=actor.token, party_id=actor.id, key=actor.key)


def build_world(
    http: TestClient, admin: dict[str, str], *, haulers: int = 2, sites: int = 2
) -> World:
    """Register a producer, haulers with vehicles and devices, licensed sites and a regulator."""
    start = ROUTE["coordinates"][0]
    end = ROUTE["coordinates"][-1]
    producer = register(http, admin, "producer", site=box(start[0], start[1]))
    hauler_list = []
    for _ in range(haulers):
        actor = register(http, admin, "hauler")
        plate = f"浙G{next(_plates):05d}"
        veh = http.post(
            f"/v1/parties/{actor.id}/vehicles",
            json={"plate": plate, "capacity_kg": 18000},
            headers=actor.headers,
        )
        assert veh.status_code == 201, veh.text
        device_key = Ed25519PrivateKey.generate()
        device_id = f"DEV-{plate[-5:]}"
        dev = http.post(
            "/v1/devices",
            json={
                "device_id": device_id,
                "public_key": public_b64(device_key),
                "vehicle_id": veh.json()["id"],
            },
            headers=actor.headers,
        )
        assert dev.status_code == 201, dev.text
        hauler_list.append(
            Hauler(client_for(http, actor), plate, veh.json()["id"], device_id, device_key)
        )
    site_list = []
    for i in range(sites):
        actor = register(http, admin, "disposal_site")
        area = box(end[0] + 0.05 * i, end[1])
        permit = http.post(
            f"/v1/parties/{actor.id}/permits",
            json={
                "number": f"PERMIT-{actor.id[:8]}",
                "waste_codes": ["900-041-49", "900-249-08"],
                "annual_capacity_kg": 1_000_000,
                "valid_from": "2025-01-01",
                "valid_until": "2030-12-31",
                "area": area,
            },
            headers=admin,
        )
        assert permit.status_code == 201, permit.text
        site_list.append(client_for(http, actor))
    regulator = register(http, admin, "regulator", region="330700")
    return World(http, admin, client_for(http, producer), hauler_list, site_list, regulator)
