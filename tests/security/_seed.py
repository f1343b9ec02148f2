"""Three groups of parties, each with a manifest in custody, and two regulators.

``own``: the callers' own group (region 330702); ``other``: another producer,
hauler and site in the same region; ``region``: a group in another province
(440305). The regulator under test is scoped to 330700 (covers ``own`` and
``other``); a second regulator is scoped to 440300.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from tests.support.parties import Actor, register
from tests.support.world import (
    ROUTE,
    add_vehicle_with_device,
    box,
    filing_data,
    license_site,
    pickup_data,
)
from waste.client import PartyClient
from waste.ledger.envelope import GENESIS_PREV_HASH, make_body, sign_body

SCOPES = ("own", "other", "region")
REGIONS = {"own": "330702", "other": "330702", "region": "440305"}
_serial = itertools.count(1)


@dataclass
class Group:
    """A producer, a hauler with a vehicle and device, a licensed site, and their manifest."""

    scope: str
    producer: Actor
    hauler: Actor
    site: Actor
    vehicle_id: str
    plate: str
    device_id: str
    manifest_id: str = ""
    number: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def party(self, kind: str) -> Actor:
        """The group's producer, hauler or site (``disposal_site`` also names the site)."""
        return {"producer": self.producer, "hauler": self.hauler}.get(kind, self.site)

    def filing(self) -> dict[str, Any]:
        """Valid `filed` data from this group's producer to its site with its hauler."""
        return filing_data(self.producer.id, self.hauler.id, self.plate, self.site.id)

    def filed_envelope(self) -> dict[str, Any]:
        """A new manifest's `filed` envelope, signed by this group's producer."""
        body = make_body(
            manifest_id=str(uuid.uuid4()),
            seq=0,
            prev_hash=GENESIS_PREV_HASH,
            type="filed",
            actor=self.producer.id,
            at=datetime.now(UTC),
            data=self.filing(),
        )
        return sign_body(body, [self.producer.key])

    def client(self, http: TestClient, kind: str) -> PartyClient:
        """A signing client of one of the group's parties."""
        actor = self.party(kind)
        return PartyClient(http, token=actor.token, party_id=actor.id, key=actor.key)


def build_group(http: TestClient, admin: dict[str, str], scope: str) -> Group:
    """Register a group's parties through the API and put a manifest in custody."""
    region = REGIONS[scope]
    start, end = ROUTE["coordinates"][0], ROUTE["coordinates"][-1]
    producer = register(http, admin, "producer", region=region, site=box(start[0], start[1]))
    hauler = register(http, admin, "hauler", region=region)
    site = register(http, admin, "disposal_site", region=region)
    plate = f"浙S{next(_serial):05d}"
    device_id = f"DEV-SEC-{scope}-{next(_serial)}"
    vehicle_id = add_vehicle_with_device(
        http, hauler, plate, device_id, Ed25519PrivateKey.generate()
    )
    number = f"PERMIT-SEC-{site.id[:8]}"
    license_site(http, admin, number, ["900-041-49"], box(end[0], end[1]), site)
    group = Group(scope, producer, hauler, site, vehicle_id, plate, device_id)
    filed = group.client(http, "producer").file(group.filing())
    group.manifest_id, group.number = filed["manifest_id"], filed["number"]
    pickup = pickup_data(hauler.id, plate, device_id, 795.0)
    group.client(http, "hauler").pick_up(group.manifest_id, pickup, cosigners=[producer.key])
    return group


@dataclass
class Seeded:
    """Everything the matrix runs against."""

    http: TestClient
    admin: dict[str, str]
    groups: dict[str, Group]
    regulator: Actor
    far_regulator: Actor

    def group(self, scope: str) -> Group:
        """The group of ``own``, ``other`` or ``region``."""
        return self.groups[scope]


def seed(http: TestClient, admin: dict[str, str]) -> Seeded:
    """Three groups and two regulators."""
    groups = {scope: build_group(http, admin, scope) for scope in SCOPES}
    regulator = register(http, admin, "regulator", region="330702", regions=["330700"])
    far = register(http, admin, "regulator", region="440305", regions=["440300"])
    return Seeded(http, admin, groups, regulator, far)
