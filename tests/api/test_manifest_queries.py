"""Reading manifests: who sees what, filters, cursor pages, detail, timeline, print, public."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.support.manifests import add_producer, chain_length, filing_from, picked_up, receipt
from tests.support.parties import register
from tests.support.world import World, build_world
from waste.client import ClientError
from waste.clock import utcnow
from waste.ledger.envelope import make_body, sign_body


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    return build_world(client, admin_headers)


def _ids(page: dict[str, Any]) -> list[str]:
    return [m["id"] for m in page["items"]]


def test_each_caller_lists_what_it_may_see_with_filters_and_stable_pages(world: World) -> None:
    p1, p2 = world.producer, add_producer(world)
    other_region = add_producer(world, region="340102")  # Hefei, Anhui: outside 3307
    mine = [p1.file(filing_from(world, p1))["manifest_id"] for _ in range(5)]
    theirs = picked_up(world, p2)
    far = other_region.file(filing_from(world, other_region))["manifest_id"]
    p1.cancel(mine[0], "Not needed")

    listed = p1.get("/v1/manifests", limit=200)
    assert set(_ids(listed)) == set(mine)
    assert listed["next_cursor"] is None
    assert _ids(listed) == list(reversed(mine))  # newest filing first
    assert set(_ids(p2.get("/v1/manifests"))) == {theirs}
    hauler = world.haulers[0].client  # on every manifest as the filed hauler
    assert set(_ids(hauler.get("/v1/manifests", limit=200))) == {*mine, theirs, far}
    site = world.sites[0]
    assert set(_ids(site.get("/v1/manifests", state="in_transit"))) == {theirs}

    # cursor pages: no gaps, no repeats, and a manifest filed meanwhile does not shift them
    seen: list[str] = []
    page = hauler.get("/v1/manifests", limit=3)
    seen += _ids(page)
    p1.file(filing_from(world, p1))
    while page["next_cursor"]:
        page = hauler.get("/v1/manifests", limit=3, cursor=page["next_cursor"])
        seen += _ids(page)
    assert seen == [*reversed([*mine, theirs, far])]

    # filters
    assert set(_ids(p1.get("/v1/manifests", state="cancelled"))) == {mine[0]}
    both = hauler.get("/v1/manifests", state=["cancelled", "in_transit"])
    assert set(_ids(both)) == {mine[0], theirs}
    assert _ids(p1.get("/v1/manifests", waste_code="900-249-08")) == []
    assert len(_ids(p1.get("/v1/manifests", waste_code="900-041-49"))) == 6
    assert set(_ids(hauler.get("/v1/manifests", counterparty=p2.party_id))) == {theirs}
    filed = p1.get(f"/v1/manifests/{mine[2]}")["filed_at"]
    window = p1.get("/v1/manifests", filed_from=filed, filed_to=filed.replace("Z", "Z"))
    assert _ids(window) == []  # [from, to) is empty when from == to
    assert mine[2] in _ids(p1.get("/v1/manifests", filed_from=filed))

    # regulators see manifests with any party in their regions; admins see all
    regulator = world.regulator.headers  # 3307: every manifest has a hauler and site there
    seen_by_regulator = world.http.get("/v1/manifests?limit=200", headers=regulator).json()
    assert len(_ids(seen_by_regulator)) == 8
    anhui = register(world.http, world.admin, "regulator", region="340100")
    assert _ids(world.http.get("/v1/manifests", headers=anhui.headers).json()) == [far]
    everything = world.http.get("/v1/manifests?limit=200", headers=world.admin).json()
    assert len(everything["items"]) == 8


def test_detail_by_number_and_readable_timeline(world: World) -> None:
    mid = picked_up(world, world.producer)
    world.sites[0].receive(mid, receipt(world, mass=790.0))
    detail = world.producer.get(f"/v1/manifests/{mid}")
    assert detail["state"] == "received"
    assert detail["producer"]["name"].startswith("producer")
    assert [e["type"] for e in detail["timeline"]] == ["filed", "picked_up", "received"]
    assert detail["timeline"][2]["masses"]["accepted"] == 790.0
    assert detail["timeline"][1]["signers"][0]["name"]
    assert "Received at site" in detail["timeline"][2]["what"]
    assert detail["masses"]["picked_up_kg"] == 795.0
    assert detail["legs"][0]["closed_by"] == "received"
    assert detail["overdue"] is None
    by_number = world.sites[0].get(f"/v1/manifests/by-number/{detail['number']}")
    assert by_number["id"] == mid
    with pytest.raises(ClientError) as err:
        world.producer.get("/v1/manifests/by-number/12345")
    assert err.value.status == 422
    assert err.value.problem["errors"][0]["field"] == "number"
    with pytest.raises(ClientError) as err:
        world.producer.get("/v1/manifests/by-number/20269999000001")
    assert err.value.status == 404


def test_a_party_cannot_read_sign_or_list_another_partys_manifests(world: World) -> None:
    mid = world.producer.file(world.filing())["manifest_id"]
    number = world.producer.get(f"/v1/manifests/{mid}")["number"]
    outsider = add_producer(world)
    for path in (
        f"/v1/manifests/{mid}",
        f"/v1/manifests/{mid}/events",
        f"/v1/manifests/{mid}/bundle",
        f"/v1/manifests/{mid}/print",
        f"/v1/manifests/by-number/{number}",
        f"/v1/parties/{world.producer.party_id}/ledger?from=2026-01-01&to=2026-12-31",
    ):
        resp = world.http.get(path, headers=outsider._headers)
        assert resp.status_code == 404, (path, resp.text)
        assert "Oily rags" not in resp.text
        assert "producer " not in resp.text
    assert outsider.get("/v1/manifests")["items"] == []
    assert outsider.get("/v1/manifests/overdue")["items"] == []
    csv_text = world.http.get(
        "/v1/manifests/export.csv?from=2000-01-01&to=2000-12-31", headers=outsider._headers
    ).text
    assert mid not in csv_text

    # signing: as itself (not a party that may sign) or pretending to be the producer
    body = make_body(
        manifest_id=mid,
        seq=1,
        prev_hash=world.producer.head(mid)[1],
        type="cancelled",
        actor=outsider.party_id,
        at=utcnow(),
        data={"reason": "hostile"},
    )
    resp = world.http.post(
        f"/v1/manifests/{mid}/events",
        json=sign_body(body, [outsider.key]),
        headers=outsider._headers,
    )
    assert resp.status_code == 404  # signing alone does not disclose the manifest
    assert resp.json()["type"].endswith("/not-found")
    body["actor"] = world.producer.party_id
    resp = world.http.post(
        f"/v1/manifests/{mid}/events",
        json=sign_body(body, [outsider.key]),
        headers=outsider._headers,
    )
    assert resp.status_code == 403
    assert chain_length(world, mid) == 1


def test_a_hauler_not_on_the_manifest_cannot_sign_its_pickup(world: World) -> None:
    producer, stranger = world.producer, world.haulers[1].client
    mid = producer.file(world.filing())["manifest_id"]
    seq, prev = producer.head(mid)  # the stranger cannot even read the chain head

    def post(data: dict[str, Any]) -> Any:
        body = make_body(
            manifest_id=mid,
            seq=seq,
            prev_hash=prev,
            type="picked_up",
            actor=stranger.party_id,
            at=utcnow(),
            data=data,
        )
        envelope = sign_body(body, [stranger.key, producer.key])
        return world.http.post(
            f"/v1/manifests/{mid}/events", json=envelope, headers=stranger._headers
        )

    resp = post(world.pickup(1))  # naming itself as the hauler
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "data.hauler"
    resp = post(world.pickup(0))  # the filed hauler's data, signed by the stranger
    assert resp.status_code == 422
    assert resp.json()["type"].endswith("/signer-not-allowed")
    assert chain_length(world, mid) == 1


BAD_LIST_QUERIES = {
    "limit=0": "query.limit",
    "limit=201": "query.limit",
    "state=lost": "query.state",
    "filed_from=yesterday": "query.filed_from",
    "filed_to=2026-11-23T08:00:00+08:00": "query.filed_to",
    "waste_code=900-041-41": "query.waste_code",
    "waste_code=DROP%20TABLE": "query.waste_code",
    "cursor=not-a-cursor": "query.cursor",
    "overdue=maybe": "query.overdue",
}


def test_bad_list_queries_name_the_field(world: World) -> None:
    for query, field in BAD_LIST_QUERIES.items():
        resp = world.http.get(f"/v1/manifests?{query}", headers=world.producer._headers)
        assert resp.status_code == 422, (query, resp.text)
        assert resp.json()["errors"][0]["field"].startswith(field), (query, resp.text)


def test_printable_manifest_has_details_signatures_and_a_qr_code(world: World) -> None:
    mid = picked_up(world, world.producer, notes="Forklift <needed> & gloves")
    resp = world.http.get(f"/v1/manifests/{mid}/print", headers=world.producer._headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    html = resp.text
    detail = world.producer.get(f"/v1/manifests/{mid}")
    number = detail["number"]
    assert number in html
    assert "900-041-49" in html
    assert "Oily rags" in html
    assert detail["producer"]["name"] in html
    assert world.haulers[0].plate in html
    assert "Forklift &lt;needed&gt; &amp; gloves" in html  # escaped
    for event in world.producer.events(mid):
        assert event["signatures"][0]["sig"] in html
    assert f"http://127.0.0.1:8000/verify/{number}" in html  # settings.base_url
    assert re.search(r"<svg[^>]*>.*<path", html, re.S)


def test_public_verification_hides_parties_and_rechecks_the_chain(
    world: World, engine: Engine
) -> None:
    mid = picked_up(world, world.producer)
    world.sites[0].receive(mid, receipt(world, mass=794.4))
    number = world.producer.get(f"/v1/manifests/{mid}")["number"]
    resp = world.http.get(f"/v1/public/manifests/{number}")  # no token
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["exists"] is True
    assert body["state"] == "received"
    assert body["chain"] == {
        "verified": True,
        "events": 3,
        "checkpoint_size": 3,
        "failed_checks": [],
    }
    assert body["waste_categories"][0]["category"] == "HW49"
    assert body["approx_masses_kg"]["declared"] == 800
    assert body["approx_masses_kg"]["received"] == 790
    raw = resp.text
    leaks = [mid, world.producer.party_id, world.haulers[0].plate, "Oily rags", "producer "]
    leaks += [world.sites[0].party_id, world.haulers[0].client.party_id, "120.0752"]
    assert not [x for x in leaks if x in raw]

    assert world.http.get("/v1/public/manifests/20260000999999").json()["exists"] is False
    assert world.http.get("/v1/public/manifests/abc").status_code == 422

    with engine.begin() as conn:  # tamper with a stored log entry behind the server's back
        conn.execute(
            text("UPDATE log_entries SET entry = :e WHERE leaf_index = 1"),
            {"e": b'{"kind":"custody_event"}'},
        )
    tampered = world.http.get(f"/v1/public/manifests/{number}").json()
    assert tampered["chain"]["verified"] is False
    assert tampered["chain"]["failed_checks"]
