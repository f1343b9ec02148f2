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
        hauler = self.haulers[0]
        data = filing_data(
            self.producer.party_id, hauler.client.party_id, hauler.plate, self.sites[0].party_id
        )
        data.update(over)
        return data

    def pickup(self, hauler: int = 0, mass_kg: float = 795.0) -> dict[str, Any]:
        """Valid `picked_up` data for hauler ``hauler``."""
        h = self.haulers[hauler]
        return pickup_data(h.client.party_id, h.plate, h.device_id, mass_kg)


def ts(moment: datetime) -> str:
    """A protocol timestamp (second precision)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def filing_data(producer: str, hauler: str, plate: str, destination: str) -> dict[str, Any]:
    """Valid `filed` data: a lot of oily rags along ROUTE, picked up within hours from now."""
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "producer": producer,
        "hauler": hauler,
        "vehicle": plate,
        "destination": destination,
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
            "from": ts(now - timedelta(hours=1)),
            "to": ts(now + timedelta(hours=4)),
        },
        "deliver_by": ts(now + timedelta(hours=8)),
    }


def pickup_data(hauler: str, plate: str, device_id: str, mass_kg: float) -> dict[str, Any]:
    """Valid `picked_up` data for a hauler's vehicle and the device (and seal) on it."""
    return {
        "hauler": hauler,
        "vehicle": plate,
        "device_id": device_id,
        "seal_id": f"SEAL-{device_id}",
        "mass_kg": mass_kg,
    }


def add_vehicle_with_device(
    http: TestClient, hauler: Actor, plate: str, device_id: str, device_key: Ed25519PrivateKey
) -> str:
    """Register a hauler's vehicle and the device on it through the API; the vehicle's id."""
    veh = http.post(
        f"/v1/parties/{hauler.id}/vehicles",
        json={"plate": plate, "capacity_kg": 18000},
        headers=hauler.headers,
    )
    assert veh.status_code == 201, veh.text
    vehicle_id: str = veh.json()["id"]
    dev = http.post(
        "/v1/devices",
        json={
            "device_id": device_id,
            "public_key": public_b64(device_key),
            "vehicle_id": vehicle_id,
        },
        headers=hauler.headers,
    )
    assert dev.status_code == 201, dev.text
    return vehicle_id


def license_site(
    http: TestClient,
    admin: dict[str, str],
    number: str,
    waste_codes: list[str],
    area: dict[str, Any],
    site: Actor,
) -> None:
    """Grant a disposal site a permit through the API."""
    permit = http.post(
        f"/v1/parties/{site.id}/permits",
        json={
            "number": number,
            "waste_codes": waste_codes,
            "annual_capacity_kg": 1_000_000,
            "valid_from": "2025-01-01",
            "valid_until": "2030-12-31",
            "area": area,
        },
        headers=admin,
    )
    assert permit.status_code == 201, permit.text


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
        device_key = Ed25519PrivateKey.generate()
        device_id = f"DEV-{plate[-5:]}"
        vehicle_id = add_vehicle_with_device(http, actor, plate, device_id, device_key)
        client = client_for(http, actor)
        hauler_list.append(Hauler(client, plate, vehicle_id, device_id, device_key))
    site_list = []
    for i in range(sites):
        actor = register(http, admin, "disposal_site")
        area = box(end[0] + 0.05 * i, end[1])
        codes = ["900-041-49", "900-249-08"]
        license_site(http, admin, f"PERMIT-{actor.id[:8]}", codes, area, actor)
        site_list.append(client_for(http, actor))
    regulator = register(http, admin, "regulator", region="330700")
    return World(http, admin, client_for(http, producer), hauler_list, site_list, regulator)
