"""The custody chain over HTTP (PROTOCOL.md §2–3): file, append, chain, bundle, refusals."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.world import World, build_world
from waste.client import ClientError
from waste.clock import utcnow
from waste.ledger.audit import verify_bundle
from waste.ledger.canonical import canonical_bytes
from waste.ledger.envelope import GENESIS_PREV_HASH, event_hash, make_body, sign_body


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    return build_world(client, admin_headers)


def _chain_len(world: World, manifest_id: str) -> int:
    return len(world.http.get(f"/v1/manifests/{manifest_id}/events", headers=world.admin).json())


def test_full_lifecycle_and_offline_bundle(world: World) -> None:
    producer, hauler, site = world.producer, world.haulers[0], world.sites[0]
    filed = producer.file(world.filing())
    assert len(filed["number"]) == 14
    assert filed["number"][4:8] == "3307"
    assert filed["leaf_index"] == 0
    mid = filed["manifest_id"]
    picked = hauler.client.pick_up(mid, world.pickup(), cosigners=[producer.key])
    assert picked["state"] == "in_transit"
    site.receive(
        mid,
        {
            "mass_kg": 794.0,
            "accepted_kg": 794.0,
            "refused_kg": 0,
            "seal_id": f"SEAL-{hauler.device_id}",
            "seal_intact": True,
        },
    )
    done = site.dispose(mid, {"operation": "D10", "mass_kg": 794.0})
    assert done["state"] == "disposed"
    assert done["leaf_index"] == 3

    chain = producer.events(mid)
    assert [e["body"]["type"] for e in chain] == ["filed", "picked_up", "received", "disposed"]
    assert chain[1]["body"]["prev_hash"] == event_hash(chain[0]["body"])

    bundle = site.bundle(mid)
    vkey = producer.log_key()
    report = verify_bundle(json.loads(json.dumps(bundle)), vkey)
    assert report.ok, report.render()
    assert "VERIFIED" in report.render()

    tampered = copy.deepcopy(bundle)
    tampered["entries"][2]["entry"]["payload"]["body"]["data"]["accepted_kg"] = 900.0
    bad = verify_bundle(tampered, vkey)
    assert not bad.ok
    assert bad.failures[0].seq == 2


def test_stale_head_conflicts_and_stores_nothing(world: World) -> None:
    mid = world.producer.file(world.filing())["manifest_id"]
    stale = make_body(
        manifest_id=mid,
        seq=0,
        prev_hash=GENESIS_PREV_HASH,
        type="cancelled",
        actor=world.producer.party_id,
        at=utcnow(),
        data={"reason": "x"},
    )
    with pytest.raises(ClientError) as err:
        world.producer.submit(mid, sign_body(stale, [world.producer.key]))
    assert err.value.status == 409
    assert _chain_len(world, mid) == 1


def _envelope(
    world: World,
    mid: str,
    event_type: str,
    data: dict[str, Any],
    keys: list[Any],
    actor: str | None = None,
) -> dict[str, Any]:
    seq, prev = world.producer.head(mid)
    body = make_body(
        manifest_id=mid,
        seq=seq,
        prev_hash=prev,
        type=event_type,
        actor=actor or world.producer.party_id,
        at=utcnow(),
        data=data,
    )
    return sign_body(body, keys)


def test_refusals_name_the_problem_and_store_nothing(world: World) -> None:
    producer = world.producer
    mid = producer.file(world.filing())["manifest_id"]
    post = lambda env, who=producer: world.http.post(  # noqa: E731
        f"/v1/manifests/{mid}/events", json=env, headers=who._headers
    )

    # pickup signed by the producer alone: the hauler's signature is missing
    env = _envelope(world, mid, "picked_up", world.pickup(), [producer.key])
    resp = post(env)
    assert resp.status_code == 422, resp.text
    # a hauler not on the manifest cannot sign its pickup
    other = world.haulers[1]
    env = _envelope(
        world,
        mid,
        "picked_up",
        world.pickup(1),
        [other.client.key, producer.key],
        actor=other.client.party_id,
    )
    resp = post(env, other.client)
    assert resp.status_code == 422, resp.text
    # one byte changed after signing
    env = _envelope(world, mid, "cancelled", {"reason": "changed plans"}, [producer.key])
    env["body"]["data"]["reason"] = "changed plans!"
    resp = post(env)
    assert resp.status_code == 422
    assert resp.json()["type"].endswith("/signature")
    # swapped signature from another party's key id
    env = _envelope(world, mid, "cancelled", {"reason": "x"}, [producer.key])
    env["signatures"][0]["key_id"] = "0123456789abcdef"
    assert post(env).status_code == 422
    # disposal straight from filed: not an allowed transition
    env = _envelope(
        world,
        mid,
        "disposed",
        {"operation": "D10", "mass_kg": 1.0},
        [world.sites[0].key],
        actor=world.sites[0].party_id,
    )
    resp = post(env, world.sites[0])
    assert resp.status_code in (404, 422), resp.text
    assert _chain_len(world, mid) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b'{"body": {}, "signatures": []',  # truncated JSON
        b'{"body": {"seq": NaN}, "signatures": []}',
        b'{"body": {"seq": 9007199254740993}, "signatures": []}',
        b'{"body": 1, "body": 2, "signatures": []}',
        b"\xff\xfe garbage",
    ],
)
def test_hostile_bodies_are_422(world: World, raw: bytes) -> None:
    resp = world.http.post(
        "/v1/manifests",
        content=raw,
        headers={**world.producer._headers, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["status"] == 422


def test_big_integers_refused_even_if_signed_by_a_lax_client(world: World) -> None:
    body = make_body(
        manifest_id="6d0f3c9e-1a0b-4c55-9a3e-5b7d2c1e0f11",
        seq=0,
        prev_hash=GENESIS_PREV_HASH,
        type="filed",
        actor=world.producer.party_id,
        at=utcnow(),
        data=world.filing(),
    )
    envelope = sign_body(body, [world.producer.key])
    raw = json.dumps(envelope).replace('"containers": 4', '"containers": 9007199254740993')
    resp = world.http.post(
        "/v1/manifests",
        content=raw.encode(),
        headers={**world.producer._headers, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422, resp.text
    assert "9007199254740993" in resp.json()["detail"]
    assert world.http.get("/v1/log/checkpoint").text.splitlines()[1] == "0"


def test_filing_checks(world: World) -> None:
    f = world.filing
    cases = {
        "data.vehicle": f(vehicle=world.haulers[1].plate),
        "data.destination": f(wastes=[{**f()["wastes"][0], "code": "336-064-17"}]),
        "data.route": f(
            route={"type": "LineString", "coordinates": [[121.0, 30.0], [120.19, 29.25]]}
        ),
    }
    for field, data in cases.items():
        with pytest.raises(ClientError) as err:
            world.producer.file(data)
        assert err.value.status == 422, field
        assert err.value.problem["errors"][0]["field"] == field, err.value.problem
    listed = world.http.get("/v1/log/checkpoint").text
    assert listed.splitlines()[1] == "0"  # nothing reached the log


def test_log_endpoints(world: World) -> None:
    mid = world.producer.file(world.filing())["manifest_id"]
    world.producer.cancel(mid, "no longer needed")
    note = world.http.get("/v1/log/checkpoint").text
    origin, size = note.splitlines()[:2]
    assert origin == "waste-custody.local/log"
    assert int(size) >= 2
    proof = world.http.get("/v1/log/proof/inclusion", params={"index": 0, "size": 2}).json()
    assert len(proof["hashes"]) == 1
    cons = world.http.get("/v1/log/proof/consistency", params={"old": 1, "new": 2}).json()
    assert len(cons["hashes"]) == 1
    bad = world.http.get("/v1/log/proof/inclusion", params={"index": 5, "size": 2})
    assert bad.status_code == 422
    entries = world.http.get(
        "/v1/log/entries", params={"start": 0, "end": 2}, headers=world.regulator.headers
    ).json()["entries"]
    assert [e["entry"]["kind"] for e in entries] == ["custody_event", "custody_event"]
    assert canonical_bytes(entries[0]["entry"])  # entries are canonicalisable JSON
    assert (
        world.http.get(
            "/v1/log/entries", params={"start": 0, "end": 2}, headers=world.producer._headers
        ).status_code
        == 403
    )
