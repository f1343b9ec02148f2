"""Put a simulated county into a running server through its HTTP API, and post custody steps.

``register_county`` creates every party (with its key and token), the haulers'
vehicles and devices, the sites' permits, the restricted zones and a regulator,
as an operator would, with the bootstrap admin token. ``Registry.post`` signs a
scenario's ``CustodyStep`` with the parties' keys and posts it (``waste.client``).
``http`` is anything with httpx's ``get``/``post`` (an ``httpx.Client`` with a
``base_url``, or FastAPI's ``TestClient``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.scenario_model import CustodyStep
from devices.world import County
from waste.client import PartyClient
from waste.ledger.keys import public_key_b64
from waste.registry.domain import uscc_check_character

__all__ = ["RegistrationError", "Registry", "register_county"]


class RegistrationError(RuntimeError):
    """The server refused a registration request."""


def _uscc(region: str, serial: int) -> str:
    body = f"91{region}MA3{serial:06d}"[:17]
    return body + uscc_check_character(body)


@dataclass
class Registry:
    """What the server assigned to the county's parties, and how to act as them."""

    http: Any
    county: County
    ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)
    vehicles: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, str] = field(default_factory=dict)
    """Scenario manifest key -> manifest id (a UUID derived from the key)."""

    def client(self, party: str) -> PartyClient:
        """A signing client acting as ``party`` (a county key)."""
        return PartyClient(
            self.http, token=self.tokens[party], party_id=self.ids[party], key=self.keys[party]
        )

    def manifest_id(self, key: str) -> str:
        """The id a scenario manifest is filed under (stable for a county and key)."""
        return self.manifests.setdefault(
            key, str(uuid.uuid5(uuid.NAMESPACE_URL, f"waste-sim:{self.county.name}:{key}"))
        )

    def post(self, step: CustodyStep) -> dict[str, Any]:
        """Sign ``step`` (actor and cosigners) and post it; the server's answer."""
        actor = self.client(step.actor)
        data = step.data_for(self.ids)
        if step.type == "filed":
            return actor.file(data, at=step.at, manifest_id=self.manifest_id(step.manifest))
        cosigners = [self.keys[c] for c in step.cosigners]
        return actor.append(
            self.manifest_id(step.manifest), step.type, data, cosigners=cosigners, at=step.at
        )


def _ok(resp: Any, what: str) -> dict[str, Any]:
    if resp.status_code >= 400:
        raise RegistrationError(f"{what}: {resp.status_code} {resp.text[:500]}")
    result: dict[str, Any] = resp.json()
    return result


def register_county(http: Any, admin_token: str, county: County, *, serial: int = 1) -> Registry:
    """Register everything in ``county`` through the API; ``serial`` keeps USCCs unique
    when several counties share a database."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    reg = Registry(http, county)
    region = county.region_code
    parties: list[tuple[str, str, str, dict[str, Any] | None, bytes]] = [
        (p.key, "producer", p.name, p.area, p.key_seed) for p in county.producers
    ]
    parties += [(h.key, "hauler", h.name, None, h.key_seed) for h in county.haulers]
    parties += [(s.key, "disposal_site", s.name, s.area, s.key_seed) for s in county.sites]
    parties.append(
        ("regulator", "regulator", f"{county.name} ecology bureau", None, county.regulator_seed)
    )
    for n, (key, kind, name, premises, seed) in enumerate(parties):
        body: dict[str, Any] = {
            "kind": kind,
            "name": name,
            "uscc": _uscc(region, serial * 1000 + n),
            "region_code": region,
        }
        if premises is not None:
            body["site"] = premises
        party = _ok(http.post("/v1/parties", json=body, headers=admin), f"party {key}")
        reg.ids[key] = party["id"]
        token_body: dict[str, Any] = {"role": kind, "party_id": party["id"], "label": "simulator"}
        if kind == "regulator":
            token_body["regions"] = [region]
        reg.tokens[key] = _ok(http.post("/v1/tokens", json=token_body, headers=admin), "token")[
            "token"
        ]
        reg.keys[key] = Ed25519PrivateKey.from_private_bytes(seed)
        headers = {"Authorization": f"Bearer {reg.tokens[key]}"}
        public = public_key_b64(reg.keys[key])[0]
        _ok(
            http.post(
                f"/v1/parties/{party['id']}/keys", json={"public_key": public}, headers=headers
            ),
            f"key of {key}",
        )
    for site in county.sites:
        permit = {
            "number": f"SIM-{site.key}-{serial}",
            "waste_codes": list(site.waste_codes),
            "annual_capacity_kg": 1e9,
            "valid_from": "2000-01-01",
            "valid_until": "2099-12-31",
            "area": site.area,
        }
        _ok(
            http.post(f"/v1/parties/{reg.ids[site.key]}/permits", json=permit, headers=admin),
            f"permit of {site.key}",
        )
    for zone in county.zones:
        zone_body = {"name": zone.name, "region_code": region, "area": zone.area}
        _ok(http.post("/v1/zones", json=zone_body, headers=admin), f"zone {zone.key}")
    for truck in county.trucks:
        headers = {"Authorization": f"Bearer {reg.tokens[truck.hauler]}"}
        vehicle = _ok(
            http.post(
                f"/v1/parties/{reg.ids[truck.hauler]}/vehicles",
                json={"plate": truck.plate, "capacity_kg": truck.capacity_kg},
                headers=headers,
            ),
            f"vehicle {truck.plate}",
        )
        reg.vehicles[truck.key] = vehicle["id"]
        device = {
            "device_id": truck.device_id,
            "public_key": truck.public_key,
            "vehicle_id": vehicle["id"],
        }
        _ok(http.post("/v1/devices", json=device, headers=headers), f"device {truck.device_id}")
    return reg
