"""Per-party risk codes over HTTP: scores from alerts, resolutions, attribution and scopes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.alerts import insert_alert, manifest_alert
from tests.support.manifests import picked_up
from tests.support.parties import register
from tests.support.world import World, build_world
from waste.clock import utcnow

FINDING = "Seal found cut at a lay-by; 300 kg of drums recovered from a ditch."


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    return build_world(client, admin_headers, haulers=2, sites=1)


def handle(world: World, alert_id: str, resolution: str) -> None:
    headers = world.regulator.headers
    for action, extra in (
        ("investigate", {}),
        ("resolve", {"resolution": resolution, "finding": FINDING}),
    ):
        version = world.http.get(f"/v1/alerts/{alert_id}", headers=headers).json()["handling"][
            "version"
        ]
        body = {"action": action, "note": "n", "version": version, **extra}
        resp = world.http.post(f"/v1/alerts/{alert_id}/transitions", json=body, headers=headers)
        assert resp.status_code == 201, resp.text


def risk_of(world: World, party_id: str, headers: dict[str, str] | None = None) -> Any:
    resp = world.http.get(f"/v1/parties/{party_id}/risk", headers=headers or world.admin)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_scores_and_codes_follow_alerts_and_their_resolution(world: World) -> None:
    mid = picked_up(world, world.producer)
    hauler, other_hauler = (h.client.party_id for h in world.haulers)
    site, producer = world.sites[0].party_id, world.producer.party_id
    assert risk_of(world, hauler)["code"] == "green"

    dumping = manifest_alert(world, mid, kind="suspected_illegal_dumping", severity="critical")
    first = risk_of(world, hauler)
    assert (first["score"], first["code"], first["alerts_counted"]) == (16.0, "yellow", 1)
    assert first["thresholds"] == {"yellow_from": 10.0, "red_from": 25.0}
    handle(world, dumping, "confirmed_violation")
    assert (risk_of(world, hauler)["score"], risk_of(world, hauler)["code"]) == (32.0, "red")

    # A false alarm weighs nothing; a stale alert (beyond three years) neither.
    alarm = insert_alert(
        world.http, kind="seal_tamper", severity="critical", hauler_id=other_hauler
    )
    assert risk_of(world, other_hauler)["code"] == "yellow"
    handle(world, alarm, "false_alarm")
    assert (risk_of(world, other_hauler)["score"], risk_of(world, other_hauler)["code"]) == (
        0.0,
        "green",
    )
    long_ago = utcnow() - timedelta(days=4 * 365)
    insert_alert(world.http, severity="critical", hauler_id=other_hauler, at=long_ago)
    assert risk_of(world, other_hauler)["score"] == 0.0

    # Receipt alerts count against the site; nothing here counts against the producer.
    manifest_alert(world, mid, kind="unlicensed_receipt", severity="high")
    assert risk_of(world, site)["score"] == 6.0
    assert risk_of(world, producer)["score"] == 0.0
    assert risk_of(world, hauler)["score"] == 32.0

    # Older alerts weigh less (half every 90 days).
    old = utcnow() - timedelta(days=90)
    insert_alert(
        world.http, kind="route_deviation", severity="high", hauler_id=other_hauler, at=old
    )
    assert risk_of(world, other_hauler)["score"] == pytest.approx(2.0, abs=0.02)

    listing = world.http.get(
        "/v1/risk/parties", params={"region": "3307"}, headers=world.regulator.headers
    ).json()
    assert [i["party_id"] for i in listing["items"]][:2] == [hauler, site]
    assert listing["total"] == 4  # producer, two haulers, site; the regulator left out
    reds = world.http.get(
        "/v1/risk/parties", params={"code": "red"}, headers=world.regulator.headers
    ).json()
    assert [i["party_id"] for i in reds["items"]] == [hauler]
    greens = world.http.get(
        "/v1/risk/parties", params={"code": "green", "limit": 2}, headers=world.admin
    ).json()
    assert greens["total"] == 3
    assert len(greens["items"]) == 2
    assert all(i["code"] == "green" for i in greens["items"])


def test_who_may_see_a_risk_code(world: World, admin_headers: dict[str, str]) -> None:
    hauler = world.haulers[0].client
    insert_alert(world.http, severity="high", hauler_id=hauler.party_id)
    beijing = register(world.http, admin_headers, "regulator", region="110000")
    assert risk_of(world, hauler.party_id, hauler._headers)["score"] == 4.0
    assert risk_of(world, hauler.party_id, world.regulator.headers)["code"] == "green"
    for headers in (beijing.headers, world.producer._headers):
        resp = world.http.get(f"/v1/parties/{hauler.party_id}/risk", headers=headers)
        assert resp.status_code == 404
    assert world.http.get("/v1/risk/parties", headers=beijing.headers).json()["items"] == []
    assert world.http.get("/v1/risk/parties", headers=hauler._headers).status_code == 403
    bad = world.http.get("/v1/risk/parties", params={"code": "purple"}, headers=admin_headers)
    assert bad.status_code == 422
