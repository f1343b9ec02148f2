"""Builders for valid registry records in tests."""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from waste.registry.domain import uscc_check_character

_serial = itertools.count(1)

SITE_AREA = {
    "type": "Polygon",
    "coordinates": [
        [[120.07, 29.30], [120.08, 29.30], [120.08, 29.31], [120.07, 29.31], [120.07, 29.30]]
    ],
}


def make_uscc(region: str = "330702") -> str:
    """A fresh, valid unified social credit code in ``region``."""
    body = f"91{region}MA{next(_serial):07d}"[:17]
    return body + uscc_check_character(body)


def public_b64(key: Ed25519PrivateKey) -> str:
    """b64 of the raw public key."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@dataclass
class Actor:
    """A registered party with a token and a signing key."""

    party: dict[str, Any]
    token: str
    key: Ed25519PrivateKey

    @property
    def id(self) -> str:
        """The party id."""
        return str(self.party["id"])

    @property
    def headers(self) -> dict[str, str]:
        """Authorization headers."""
        return {"Authorization": f"Bearer {self.token}"}


def register(
    client: TestClient,
    admin: dict[str, str],
    kind: str,
    *,
    region: str = "330702",
    name: str | None = None,
    with_key: bool = True,
    regions: list[str] | None = None,
    site: dict[str, Any] | None = None,
) -> Actor:
    """Register a party, issue it a token and (optionally) a key."""
    resp = client.post(
        "/v1/parties",
        json={
            "kind": kind,
            "name": name or f"{kind} {next(_serial)}",
            "uscc": make_uscc(region),
            "region_code": region,
            "site": site,
        },
        headers=admin,
    )
    assert resp.status_code == 201, resp.text
    party = resp.json()
    body: dict[str, Any] = {"role": kind, "party_id": party["id"]}
    if kind == "regulator":
        body["regions"] = regions or [region]
    tok = client.post("/v1/tokens", json=body, headers=admin)
    assert tok.status_code == 201, tok.text
    key = Ed25519PrivateKey.generate()
    actor = Actor(party, tok.json()["token"], key)
    if with_key:
        reg = client.post(
            f"/v1/parties/{party['id']}/keys",
            json={"public_key": public_b64(key)},
            headers=actor.headers,
        )
        assert reg.status_code == 201, reg.text
    return actor
