"""Several producers, haulers and sites drive every path of the state machine with the signing
client alone; then every manifest's audit bundle is verified offline against the pinned log key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.support.manifests import (
    add_producer,
    backdated_filing,
    chain_length,
    filing_from,
    handover,
    receipt,
)
from tests.support.world import World, build_world
from waste.client import ClientError, PartyClient
from waste.clock import utcnow
from waste.ledger.audit import verify_bundle


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    return build_world(client, admin_headers, haulers=5, sites=3)


def test_every_path_then_every_bundle_verifies_offline(world: World) -> None:
    p1 = world.producer
    p2 = add_producer(world)
    h = [x.client for x in world.haulers]
    s0, s1, s2 = world.sites
    states: dict[str, str] = {}

    # normal: filed → picked up → received → disposed
    normal = p1.file(filing_from(world, p1))["manifest_id"]
    h[0].pick_up(normal, world.pickup(), cosigners=[p1.key])
    s0.receive(normal, receipt(world))
    states[normal] = s0.dispose(normal, {"operation": "D10", "mass_kg": 794.0})["state"]

    # multi-leg: five haulers (four handovers), each co-signed by the incoming hauler
    legs = p2.file(filing_from(world, p2))["manifest_id"]
    h[0].pick_up(legs, world.pickup(), cosigners=[p2.key])
    for i in range(4):
        h[i].hand_over(legs, handover(world, i, i + 1), cosigners=[h[i + 1].key])
    with pytest.raises(ClientError) as sixth:  # a sixth hauler is one too many
        h[4].hand_over(legs, handover(world, 4, 0), cosigners=[h[0].key])
    assert sixth.value.status == 422
    assert sixth.value.problem["type"].endswith("/transition")
    s0.receive(legs, receipt(world, hauler=4))
    states[legs] = s0.dispose(legs, {"operation": "R9", "mass_kg": 794.0})["state"]

    # partial refusal at the gate
    partial = p1.file(
        filing_from(
            world,
            p1,
            hauler=h[1].party_id,
            vehicle=world.haulers[1].plate,
            destination=s1.party_id,
            route=_to_site(1),
        )
    )
    partial_id = partial["manifest_id"]
    h[1].pick_up(partial_id, world.pickup(1), cosigners=[p1.key])
    got = s1.receive(partial_id, receipt(world, hauler=1, mass=800.0, refused=120.0))
    assert got["state"] == "received"
    states[partial_id] = s1.dispose(partial_id, {"operation": "D9", "mass_kg": 680.0})["state"]

    # rejection with redirect to another licensed site, which receives and disposes
    redirect = p2.file(filing_from(world, p2))["manifest_id"]
    h[0].pick_up(redirect, world.pickup(), cosigners=[p2.key])
    s0.reject(
        redirect,
        {"reason": "Drums leaking", "next": "redirect", "redirect_site": s2.party_id},
    )
    s2.receive(redirect, receipt(world))
    states[redirect] = s2.dispose(redirect, {"operation": "D10", "mass_kg": 794.0})["state"]

    # rejection with return to the producer
    back = p1.file(filing_from(world, p1))["manifest_id"]
    h[0].pick_up(back, world.pickup(), cosigners=[p1.key])
    rejected = s0.reject(back, {"reason": "Not as declared", "next": "return_to_producer"})
    states[back] = rejected["state"]

    # cancellation before pickup
    cancelled = p2.file(filing_from(world, p2))["manifest_id"]
    states[cancelled] = p2.cancel(cancelled, "Production stopped")["state"]

    # overdue: never delivered by deliver_by; received but not disposed within 5 working days
    now = utcnow()
    late = p1.file(
        backdated_filing(world, p1, now - timedelta(hours=4)), at=now - timedelta(hours=4)
    )
    states[late["manifest_id"]] = "filed"
    unconfirmed = p2.file(
        backdated_filing(world, p2, now - timedelta(days=12)), at=now - timedelta(days=12)
    )["manifest_id"]
    at = now - timedelta(days=11, hours=23)
    h[0].pick_up(unconfirmed, world.pickup(), cosigners=[p2.key], at=at)
    s0.receive(unconfirmed, receipt(world), at=now - timedelta(days=11))
    states[unconfirmed] = "received"

    assert sorted(states.values()) == sorted(
        ["disposed"] * 4 + ["rejected", "cancelled", "filed", "received"]
    )
    overdue = p1.get("/v1/manifests/overdue")["items"] + p2.get("/v1/manifests/overdue")["items"]
    assert {(m["id"], m["overdue"]["kind"]) for m in overdue} == {
        (late["manifest_id"], "not_delivered"),
        (unconfirmed, "receipt_not_confirmed"),
    }

    vkey = p1.log_key()  # pinned once, as an auditor would
    readers: dict[str, PartyClient] = {}
    for mid, state in states.items():
        reader = readers.setdefault(mid, p1 if _is_on(p1, mid) else p2)
        report = verify_bundle(reader.bundle(mid), vkey)
        assert report.ok, report.render()
        assert report.final_state == state
        assert report.events == chain_length(world, mid)
        detail = reader.get(f"/v1/manifests/{mid}")
        assert detail["state"] == state
        printed = reader.http.get(f"/v1/manifests/{mid}/print", headers=reader._headers)
        assert printed.status_code == 200
        assert detail["number"] in printed.text
        public = reader.http.get(f"/v1/public/manifests/{detail['number']}").json()
        assert public["state"] == state
        assert public["chain"]["verified"] is True


def _is_on(producer: PartyClient, manifest_id: str) -> bool:
    try:
        producer.get(f"/v1/manifests/{manifest_id}")
    except ClientError:
        return False
    return True


def _to_site(i: int) -> dict[str, object]:
    """The world's route, ending inside site ``i``'s licensed area."""
    from tests.support.world import ROUTE

    coords = [list(c) for c in ROUTE["coordinates"]]
    coords[-1] = [coords[-1][0] + 0.05 * i, coords[-1][1]]
    return {"type": "LineString", "coordinates": coords}
