"""A signing Python client for parties: build, sign and post custody events.

    from waste.client import PartyClient
    producer = PartyClient.connect("https://custody.example", token, party_id, key)
    filed = producer.file(filing_data)
    hauler.pick_up(filed["manifest_id"], pickup_data, cosigners=[producer.key])

Every method returns the server's JSON. Errors arrive as ``ClientError`` with
the server's RFC 9457 problem body. A 409 (someone appended first) makes the
client fetch the new chain head, rebuild and re-sign the body with the same
keys, and try again, up to ``retries`` times.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from waste.clock import utcnow
from waste.ledger.envelope import GENESIS_PREV_HASH, event_hash, make_body, sign_body


class ClientError(Exception):
    """The server refused a request; ``problem`` is its problem-details body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status}: {problem.get('detail', problem)}")
        self.status = status
        self.problem = problem


class PartyClient:
    """One party's view of the API, holding its private key."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        token: str,
        party_id: str,
        key: Ed25519PrivateKey,
        retries: int = 3,
    ) -> None:
        self.http = http
        self.party_id = party_id
        self.key = key
        self.retries = retries
        self._headers = {"Authorization": f"Bearer {token}"}

    @classmethod
    def connect(
        cls, base_url: str, token: str, party_id: str, key: Ed25519PrivateKey, **kw: Any
    ) -> PartyClient:
        """A client talking to ``base_url`` over its own connection pool."""
        return cls(
            httpx.Client(base_url=base_url, timeout=30),
            token=token,
            party_id=party_id,
            key=key,
            **kw,
        )

    # -- plain HTTP ---------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON resource."""
        return self._json(self.http.get(path, params=params or None, headers=self._headers))

    def post(self, path: str, body: Any) -> Any:
        """POST a JSON body."""
        return self._json(self.http.post(path, json=body, headers=self._headers))

    # -- the custody lifecycle ---------------------------------------------------

    def file(
        self, data: Mapping[str, Any], *, at: datetime | None = None, manifest_id: str | None = None
    ) -> dict[str, Any]:
        """File a manifest (the producer's ``filed`` event); returns id, number, leaf index."""
        body = make_body(
            manifest_id=manifest_id or str(uuid.uuid4()),
            seq=0,
            prev_hash=GENESIS_PREV_HASH,
            type="filed",
            actor=self.party_id,
            at=at or utcnow(),
            data=data,
        )
        result: dict[str, Any] = self.post("/v1/manifests", sign_body(body, [self.key]))
        return result

    def cancel(self, manifest_id: str, reason: str, **kw: Any) -> dict[str, Any]:
        """Cancel a filed manifest (producer)."""
        return self.append(manifest_id, "cancelled", {"reason": reason}, **kw)

    def pick_up(self, manifest_id: str, data: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
        """Record the pickup; pass the producer's key in ``cosigners``."""
        return self.append(manifest_id, "picked_up", data, **kw)

    def hand_over(self, manifest_id: str, data: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
        """Record a handover; pass the other hauler's key in ``cosigners``."""
        return self.append(manifest_id, "handed_over", data, **kw)

    def receive(self, manifest_id: str, data: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
        """Record receipt at the site (weighed, accepted and refused masses)."""
        return self.append(manifest_id, "received", data, **kw)

    def reject(self, manifest_id: str, data: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
        """Refuse the load at the gate (return to producer, or redirect)."""
        return self.append(manifest_id, "rejected", data, **kw)

    def dispose(self, manifest_id: str, data: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
        """Confirm disposal (operation code and mass)."""
        return self.append(manifest_id, "disposed", data, **kw)

    def append(
        self,
        manifest_id: str,
        event_type: str,
        data: Mapping[str, Any],
        *,
        cosigners: Iterable[Ed25519PrivateKey] = (),
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Append an event signed by this party and ``cosigners``; rebuild and retry on 409."""
        keys = [self.key, *cosigners]
        moment = at or utcnow()
        for attempt in range(self.retries + 1):
            seq, prev = self.head(manifest_id)
            body = make_body(
                manifest_id=manifest_id,
                seq=seq,
                prev_hash=prev,
                type=event_type,
                actor=self.party_id,
                at=moment,
                data=data,
            )
            try:
                result: dict[str, Any] = self.post(
                    f"/v1/manifests/{manifest_id}/events", sign_body(body, keys)
                )
                return result
            except ClientError as exc:
                if exc.status != 409 or attempt == self.retries:
                    raise
        raise AssertionError("unreachable")

    def submit(self, manifest_id: str, envelope: Mapping[str, Any]) -> dict[str, Any]:
        """Post an envelope signed elsewhere (e.g. co-signed on two devices)."""
        result: dict[str, Any] = self.post(f"/v1/manifests/{manifest_id}/events", envelope)
        return result

    def head(self, manifest_id: str) -> tuple[int, str]:
        """The next (seq, prev_hash) of a manifest's chain."""
        events = self.events(manifest_id)
        if not events:
            return 0, GENESIS_PREV_HASH
        return len(events), event_hash(events[-1]["body"])

    def events(self, manifest_id: str) -> list[dict[str, Any]]:
        """The manifest's accepted envelopes."""
        result: list[dict[str, Any]] = self.get(f"/v1/manifests/{manifest_id}/events")
        return result

    def bundle(self, manifest_id: str) -> dict[str, Any]:
        """The manifest's offline audit bundle."""
        result: dict[str, Any] = self.get(f"/v1/manifests/{manifest_id}/bundle")
        return result

    def log_key(self) -> str:
        """The log's verifier key (fetch it once and pin it, out of band)."""
        return self.http.get("/v1/log/key").text.strip()

    @staticmethod
    def _json(resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            try:
                problem = resp.json()
            except ValueError:
                problem = {"detail": resp.text}
            raise ClientError(resp.status_code, problem)
        return resp.json()


def sign_envelope(body: Mapping[str, Any], keys: Sequence[Ed25519PrivateKey]) -> dict[str, Any]:
    """Sign a body with several keys (each party signing on its own device)."""
    return sign_body(body, keys)
