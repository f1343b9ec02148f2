"""Short-hands for driving manifests through the signing client in API tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.support.parties import register
from tests.support.world import ROUTE, World, box, client_for
from waste.client import PartyClient


def ts(moment: datetime) -> str:
    """A protocol timestamp (second precision)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def add_producer(world: World, **kw: Any) -> PartyClient:
    """Register another producer at the route's start, with its own token and key."""
    start = ROUTE["coordinates"][0]
    actor = register(world.http, world.admin, "producer", site=box(start[0], start[1]), **kw)
    return client_for(world.http, actor)


def filing_from(world: World, producer: PartyClient, **over: Any) -> dict[str, Any]:
    """Valid filing data for ``producer`` (world.filing with the producer swapped in)."""
    return world.filing(producer=producer.party_id, **over)


def backdated_filing(world: World, producer: PartyClient, filed_at: datetime) -> dict[str, Any]:
    """Filing data whose windows lie around ``filed_at`` (deliver by 2 hours later)."""
    return filing_from(
        world,
        producer,
        pickup_window={"from": ts(filed_at), "to": ts(filed_at + timedelta(hours=1))},
        deliver_by=ts(filed_at + timedelta(hours=2)),
    )


def handover(world: World, frm: int, to: int, mass_kg: float = 795.0) -> dict[str, Any]:
    """Valid `handed_over` data from hauler ``frm`` to hauler ``to``."""
    h = world.haulers[to]
    return {
        "from_hauler": world.haulers[frm].client.party_id,
        "to_hauler": h.client.party_id,
        "vehicle": h.plate,
        "device_id": h.device_id,
        "seal_id": f"SEAL-{h.device_id}",
        "mass_kg": mass_kg,
        "location": {"lat": 29.30, "lon": 120.15},
    }


def receipt(
    world: World, hauler: int = 0, mass: float = 794.0, refused: float = 0.0
) -> dict[str, Any]:
    """Valid `received` data for a load carried last by hauler ``hauler``."""
    return {
        "mass_kg": mass,
        "accepted_kg": round(mass - refused, 3),
        "refused_kg": refused,
        "seal_id": f"SEAL-{world.haulers[hauler].device_id}",
        "seal_intact": True,
    }


def picked_up(world: World, producer: PartyClient, **over: Any) -> str:
    """File a manifest for ``producer`` and have hauler 0 pick it up; return its id."""
    mid = str(producer.file(filing_from(world, producer, **over))["manifest_id"])
    world.haulers[0].client.pick_up(mid, world.pickup(), cosigners=[producer.key])
    return mid


def chain_length(world: World, manifest_id: str) -> int:
    """How many events the manifest's chain holds (read as admin)."""
    resp = world.http.get(f"/v1/manifests/{manifest_id}/events", headers=world.admin)
    return len(resp.json())


def log_size(world: World) -> int:
    """The transparency log's size from the latest checkpoint."""
    return int(world.http.get("/v1/log/checkpoint").text.splitlines()[1])
