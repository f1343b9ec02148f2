"""The registry API: parties, keys, vehicles, devices, permits, zones — and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from tests.support.parties import SITE_AREA, make_uscc, public_b64, register

BOWTIE = {  # self-intersecting ring: not a valid polygon
    "type": "Polygon",
    "coordinates": [[[120.0, 29.0], [120.1, 29.1], [120.1, 29.0], [120.0, 29.1], [120.0, 29.0]]],
}


def _party_count(client: TestClient, admin: dict[str, str]) -> int:
    return len(client.get("/v1/parties?limit=500", headers=admin).json())


def _problem_field(resp: Any) -> str:
    body = resp.json()
    assert resp.headers["content-type"].startswith("application/problem+json")
    return str(body["errors"][0]["field"])


def test_party_registered_and_read_back(client: TestClient, admin_headers: dict[str, str]) -> None:
    uscc = make_uscc("330702")
    resp = client.post(
        "/v1/parties",
        json={
            "kind": "producer",
            "name": "Jinhua Plating",
            "uscc": uscc,
            "region_code": "330702",
            "site": {"type": "Point", "coordinates": [120.07, 29.30]},
        },
        headers=admin_headers,
    )
    assert resp.status_code == 201, resp.text
    party = resp.json()
    got = client.get(f"/v1/parties/{party['id']}", headers=admin_headers).json()
    assert got["uscc"] == uscc
    assert got["kind"] == "producer"
    assert got["site"]["type"] == "Point"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"uscc": "91350100M000100Y44"}, "uscc"),  # wrong check character
        ({"uscc": "91350100M000100Y4"}, "uscc"),  # 17 characters
        ({"uscc": "91350100M000100I43"}, "uscc"),  # I is not in the alphabet
        ({"region_code": "990101"}, "region_code"),  # no province 99
        ({"region_code": "33070"}, "region_code"),
        ({"kind": "smuggler"}, "body.kind"),
        ({"name": ""}, "body.name"),
        ({"site": BOWTIE}, "site"),
        ({"site": {"type": "Point", "coordinates": [200.0, 29.0]}}, "site"),
        ({"surprise": 1}, "body.surprise"),
    ],
)
def test_bad_party_rejected_and_nothing_stored(
    client: TestClient, admin_headers: dict[str, str], patch: dict[str, Any], field: str
) -> None:
    before = _party_count(client, admin_headers)
    body = {"kind": "producer", "name": "X", "uscc": make_uscc(), "region_code": "330702"}
    body.update(patch)
    resp = client.post("/v1/parties", json=body, headers=admin_headers)
    assert resp.status_code == 422, resp.text
    assert _problem_field(resp).endswith(field) or _problem_field(resp) == field
    assert _party_count(client, admin_headers) == before


def test_duplicate_credit_code_conflicts(client: TestClient, admin_headers: dict[str, str]) -> None:
    body = {"kind": "hauler", "name": "A", "uscc": make_uscc(), "region_code": "330702"}
    assert client.post("/v1/parties", json=body, headers=admin_headers).status_code == 201
    again = client.post("/v1/parties", json=body, headers=admin_headers)
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "uscc"


def test_unknown_party_is_404(client: TestClient, admin_headers: dict[str, str]) -> None:
    resp = client.get("/v1/parties/00000000-0000-0000-0000-000000000000", headers=admin_headers)
    assert resp.status_code == 404
    assert resp.json()["status"] == 404


def test_key_register_rotate_revoke_windows(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    producer = register(client, admin_headers, "producer")
    keys = client.get(f"/v1/parties/{producer.id}/keys", headers=producer.headers).json()
    assert len(keys) == 1
    old = keys[0]
    assert old["valid_until"] is None
    assert old["status"] == "active"

    new_key = Ed25519PrivateKey.generate()
    rotated = client.post(
        f"/v1/parties/{producer.id}/keys/{old['key_id']}/rotate",
        json={"public_key": public_b64(new_key)},
        headers=producer.headers,
    )
    assert rotated.status_code == 201, rotated.text
    keys = {
        k["key_id"]: k
        for k in client.get(f"/v1/parties/{producer.id}/keys", headers=producer.headers).json()
    }
    assert keys[old["key_id"]]["status"] == "rotated"
    assert keys[old["key_id"]]["valid_until"] == rotated.json()["valid_from"]
    assert keys[old["key_id"]]["replaced_by"] == rotated.json()["key_id"]

    # rotating an ended key again is a conflict
    again = client.post(
        f"/v1/parties/{producer.id}/keys/{old['key_id']}/rotate",
        json={"public_key": public_b64(Ed25519PrivateKey.generate())},
        headers=producer.headers,
    )
    assert again.status_code == 409

    compromised = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    revoked = client.post(
        f"/v1/parties/{producer.id}/keys/{rotated.json()['key_id']}/revoke",
        json={"compromised_at": compromised, "reason": "laptop stolen"},
        headers=producer.headers,
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["valid_until"] is not None


@pytest.mark.parametrize(
    "public_key",
    ["not base64!", "AAAA", "A" * 43 + "=", "", "////" * 11],
)
def test_malformed_public_key_rejected(
    client: TestClient, admin_headers: dict[str, str], public_key: str
) -> None:
    producer = register(client, admin_headers, "producer", with_key=False)
    resp = client.post(
        f"/v1/parties/{producer.id}/keys", json={"public_key": public_key}, headers=producer.headers
    )
    assert resp.status_code == 422, resp.text
    assert _problem_field(resp).endswith("public_key")
    assert client.get(f"/v1/parties/{producer.id}/keys", headers=producer.headers).json() == []


def test_party_cannot_touch_another_partys_keys(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    a = register(client, admin_headers, "producer")
    b = register(client, admin_headers, "producer")
    resp = client.post(
        f"/v1/parties/{b.id}/keys",
        json={"public_key": public_b64(Ed25519PrivateKey.generate())},
        headers=a.headers,
    )
    assert resp.status_code == 404
    assert client.get(f"/v1/parties/{b.id}", headers=a.headers).status_code == 404


def test_vehicle_and_device(client: TestClient, admin_headers: dict[str, str]) -> None:
    hauler = register(client, admin_headers, "hauler")
    other = register(client, admin_headers, "hauler")
    veh = client.post(
        f"/v1/parties/{hauler.id}/vehicles",
        json={"plate": "浙G12345", "capacity_kg": 18000},
        headers=hauler.headers,
    )
    assert veh.status_code == 201, veh.text
    dup = client.post(
        f"/v1/parties/{hauler.id}/vehicles",
        json={"plate": "浙G12345", "capacity_kg": 9000},
        headers=hauler.headers,
    )
    assert dup.status_code == 409
    device_key = Ed25519PrivateKey.generate()
    body = {
        "device_id": "DEV-0001",
        "public_key": public_b64(device_key),
        "vehicle_id": veh.json()["id"],
    }
    stolen = client.post("/v1/devices", json=body, headers=other.headers)
    assert stolen.status_code == 404  # another hauler's vehicle is not visible
    dev = client.post("/v1/devices", json=body, headers=hauler.headers)
    assert dev.status_code == 201, dev.text
    assert dev.json()["vehicle_id"] == veh.json()["id"]
    assert len(dev.json()["key_id"]) == 16
    bad = client.post("/v1/devices", json={**body, "device_id": "DEV/1#"}, headers=hauler.headers)
    assert bad.status_code == 422
    producer = register(client, admin_headers, "producer")
    not_hauler = client.post(
        f"/v1/parties/{producer.id}/vehicles",
        json={"plate": "浙G99999", "capacity_kg": 1},
        headers=admin_headers,
    )
    assert not_hauler.status_code == 422


def _permit(**patch: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "number": f"P-{make_uscc()[-6:]}",
        "waste_codes": ["900-041-49", "900-249-08"],
        "annual_capacity_kg": 5_000_000,
        "valid_from": "2026-01-01",
        "valid_until": "2030-12-31",
        "area": SITE_AREA,
    }
    body.update(patch)
    return body


def test_permit_by_regulator_of_region(client: TestClient, admin_headers: dict[str, str]) -> None:
    site = register(client, admin_headers, "disposal_site", region="330702")
    local = register(client, admin_headers, "regulator", region="330700")
    far = register(client, admin_headers, "regulator", region="110000")
    assert (
        client.post(
            f"/v1/parties/{site.id}/permits", json=_permit(), headers=far.headers
        ).status_code
        == 404
    )
    ok = client.post(f"/v1/parties/{site.id}/permits", json=_permit(), headers=local.headers)
    assert ok.status_code == 201, ok.text
    assert client.get(f"/v1/parties/{site.id}/permits", headers=site.headers).json()[0][
        "waste_codes"
    ] == ["900-041-49", "900-249-08"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"waste_codes": ["900-041-99"]}, "waste_codes[0]"),
        ({"waste_codes": ["900-041-41"]}, "waste_codes[0]"),  # retired category
        ({"waste_codes": ["HW49"]}, "waste_codes[0]"),
        ({"area": BOWTIE}, "area"),
        ({"area": {"type": "LineString", "coordinates": [[120, 29], [121, 29]]}}, "area"),
        ({"valid_until": "2025-01-01"}, "valid_until"),
        ({"annual_capacity_kg": -5}, "body.annual_capacity_kg"),
    ],
)
def test_bad_permit_rejected(
    client: TestClient, admin_headers: dict[str, str], patch: dict[str, Any], field: str
) -> None:
    site = register(client, admin_headers, "disposal_site")
    resp = client.post(
        f"/v1/parties/{site.id}/permits", json=_permit(**patch), headers=admin_headers
    )
    assert resp.status_code == 422, resp.text
    assert _problem_field(resp) == field
    assert client.get(f"/v1/parties/{site.id}/permits", headers=admin_headers).json() == []


def test_restricted_zone(client: TestClient, admin_headers: dict[str, str]) -> None:
    reg = register(client, admin_headers, "regulator", region="330700")
    body = {"name": "Source protection", "region_code": "330702", "area": SITE_AREA}
    assert client.post("/v1/zones", json=body, headers=reg.headers).status_code == 201
    other = client.post("/v1/zones", json={**body, "region_code": "110101"}, headers=reg.headers)
    assert other.status_code == 403
    bad = client.post("/v1/zones", json={**body, "area": BOWTIE}, headers=reg.headers)
    assert bad.status_code == 422
    zones = client.get("/v1/zones?region=3307", headers=reg.headers).json()
    assert [z["name"] for z in zones] == ["Source protection"]


def test_waste_codes(client: TestClient, admin_headers: dict[str, str]) -> None:
    cats = client.get("/v1/waste-codes", headers=admin_headers).json()
    codes = {c["code"] for c in cats}
    assert {"HW01", "HW49", "HW50", "SW07"} <= codes
    assert client.get("/v1/waste-codes/900-041-49", headers=admin_headers).json()["code"] == "HW49"
    bad = client.get("/v1/waste-codes/123-456-77", headers=admin_headers)
    assert bad.status_code == 422


def test_tokens_expire_and_revoke(client: TestClient, admin_headers: dict[str, str]) -> None:
    hauler = register(client, admin_headers, "hauler", with_key=False)
    assert client.get("/v1/whoami", headers=hauler.headers).json()["role"] == "hauler"
    token_id = hauler.token.split("_")[1]
    assert client.post(f"/v1/tokens/{token_id}/revoke", headers=admin_headers).status_code == 200
    resp = client.get("/v1/whoami", headers=hauler.headers)
    assert resp.status_code == 401
    assert resp.json()["detail"] == "token revoked"
    assert (
        client.get(
            "/v1/whoami", headers={"Authorization": "Bearer wst_0123456789abcdef_" + "x" * 43}
        ).status_code
        == 401
    )
    assert client.get("/v1/whoami").status_code == 401
    past = client.post(
        "/v1/tokens",
        json={"role": "hauler", "party_id": hauler.id, "expires_at": "2020-01-01T00:00:00Z"},
        headers=admin_headers,
    )
    assert past.status_code == 422
    wrong_role = client.post(
        "/v1/tokens", json={"role": "producer", "party_id": hauler.id}, headers=admin_headers
    )
    assert wrong_role.status_code == 422
    listed = client.get("/v1/tokens", headers=admin_headers).json()
    assert all("token" not in t and "secret_sha256" not in t for t in listed)
