"""Webhooks: subscriptions, the outbox, signed delivery (Standard Webhooks), retries, disabling.

The worker is driven round by round with an injected ``httpx.MockTransport``
and clock; nothing here opens a network connection.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import ADMIN_TOKEN
from tests.support.manifests import picked_up
from tests.support.world import World, build_world
from waste.api import create_app
from waste.client import ClientError, PartyClient
from waste.clock import utcnow
from waste.config import Settings
from waste.webhooks.delivery import DeliveryPolicy
from waste.webhooks.worker import WebhookWorker

HOOK = "http://127.0.0.1:9/hooks/custody"  # never dialled: the transport is a mock


def receive_standard_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, now: int
) -> dict[str, Any]:
    """A receiver written from the Standard Webhooks spec, independent of waste.webhooks."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(now - int(timestamp)) > 5 * 60:
        raise ValueError("timestamp outside tolerance")
    key = base64.b64decode(secret.split("_", 1)[1])
    content = f"{msg_id}.{timestamp}.{body.decode()}".encode()
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for versioned in headers["webhook-signature"].split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return dict(json.loads(body))
    raise ValueError("no valid signature")


class Receiver:
    """A fake endpoint: records requests and answers with a programmable status."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answers: list[int | Exception] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 204
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    client.app.state.webhooks.stop()  # type: ignore[attr-defined]  # rounds are driven by hand
    return build_world(client, admin_headers)


def _subscribe(party: PartyClient, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = party.post("/v1/webhooks", {"url": HOOK, **body})
    return result


def _worker(world: World, receiver: Receiver, clock: Clock, **policy: Any) -> WebhookWorker:
    app: FastAPI = world.http.app  # type: ignore[assignment]
    return WebhookWorker(
        app.state.session_factory,
        transport=httpx.MockTransport(receiver),
        policy=DeliveryPolicy(**policy),
        clock=clock,
    )


def test_subscriptions_are_validated_owned_and_their_secret_shown_once(world: World) -> None:
    producer, other = world.producer, world.sites[0]
    created = _subscribe(producer, description="ERP")
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"][6:])) == 32
    assert created["topics"] == ["manifest.*"]
    listed = producer.get("/v1/webhooks")
    assert [s["id"] for s in listed] == [created["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in producer.get(f"/v1/webhooks/{created['id']}")
    for path in (f"/v1/webhooks/{created['id']}", f"/v1/webhooks/{created['id']}/deliveries"):
        with pytest.raises(ClientError) as err:
            other.get(path)
        assert err.value.status == 404
    assert other.get("/v1/webhooks") == []
    gone = world.http.delete(f"/v1/webhooks/{created['id']}", headers=other._headers)
    assert gone.status_code == 404

    bad = {
        "url": {"url": "ftp://example.com/x"},
        "url ": {"url": "javascript:alert(1)"},
        "url  ": {"url": "http:///nohost"},
        "url   ": {"url": "https://user:pw@example.com/x"},
        "url    ": {"url": "https://example.com/a b"},
        "topics[0]": {"url": HOOK, "topics": ["Manifest.*"]},
        "topics": {"url": HOOK, "topics": []},
        "body.colour": {"url": HOOK, "colour": "red"},
        "party_id": {"url": HOOK, "party_id": other.party_id},
    }
    for field, body in bad.items():
        resp = world.http.post("/v1/webhooks", json=body, headers=producer._headers)
        assert resp.status_code == 422, (field, resp.text)
        assert resp.json()["errors"][0]["field"] == field.strip(), resp.text
    assert len(producer.get("/v1/webhooks")) == 1

    admin = world.http.post("/v1/webhooks", json={"url": HOOK}, headers=world.admin)
    assert admin.status_code == 422
    assert admin.json()["errors"][0]["field"] == "party_id"
    for_site = world.http.post(
        "/v1/webhooks", json={"url": HOOK, "party_id": other.party_id}, headers=world.admin
    )
    assert for_site.status_code == 201
    assert for_site.json()["party_id"] == other.party_id

    for _ in range(9):
        _subscribe(producer)
    with pytest.raises(ClientError) as err:
        _subscribe(producer)
    assert err.value.status == 409
    deleted = world.http.delete(f"/v1/webhooks/{created['id']}", headers=producer._headers)
    assert deleted.status_code == 204
    assert created["id"] not in [s["id"] for s in producer.get("/v1/webhooks")]


def test_accepted_events_are_delivered_signed_per_standard_webhooks(world: World) -> None:
    producer, hauler = world.producer, world.haulers[0].client
    mine = _subscribe(producer)
    theirs = _subscribe(hauler, topics=["manifest.picked_up"])
    receiver, clock = Receiver(), Clock()
    worker = _worker(world, receiver, clock)
    mid = picked_up(world, producer)
    number = producer.get(f"/v1/manifests/{mid}")["number"]

    done = worker.run_once()
    assert (done.dispatched, done.attempted, done.delivered) == (6, 3, 3)  # 2 events × 3 parties
    now = int(clock.now.timestamp())
    secrets: dict[str, tuple[str, str]] = {}  # webhook-id → (subscription, secret)
    for sub, party in ((mine, producer), (theirs, hauler)):
        for d in party.get(f"/v1/webhooks/{sub['id']}/deliveries"):
            secrets[d["id"]] = (sub["id"], sub["secret"])
    got: dict[str, list[dict[str, Any]]] = {mine["id"]: [], theirs["id"]: []}
    for request in receiver.requests:
        assert request.headers["content-type"] == "application/json"
        sub_id, secret = secrets[request.headers["webhook-id"]]
        got[sub_id].append(receive_standard_webhook(secret, request.headers, request.content, now))
        with pytest.raises(ValueError):  # one byte changed: the receiver refuses it
            receive_standard_webhook(secret, request.headers, request.content + b" ", now)
        with pytest.raises(ValueError):  # replayed an hour later: refused
            receive_standard_webhook(secret, request.headers, request.content, now + 3600)
        other = theirs["secret"] if sub_id == mine["id"] else mine["secret"]
        with pytest.raises(ValueError):  # another subscription's secret does not verify it
            receive_standard_webhook(other, request.headers, request.content, now)
    assert [m["type"] for m in got[mine["id"]]] == ["manifest.filed", "manifest.picked_up"]
    assert [m["type"] for m in got[theirs["id"]]] == ["manifest.picked_up"]
    data = got[mine["id"]][1]["data"]
    assert (data["manifest_id"], data["number"], data["seq"], data["state"]) == (
        mid,
        number,
        1,
        "in_transit",
    )
    assert data["event_hash"] == producer.head(mid)[1]

    history = producer.get(f"/v1/webhooks/{mine['id']}/deliveries")
    assert [d["status"] for d in history] == ["delivered", "delivered"]
    assert history[0]["history"][0]["status_code"] == 204
    assert {d["id"] for d in history} <= {r.headers["webhook-id"] for r in receiver.requests}
    assert worker.run_once().attempted == 0  # nothing is sent twice


def test_failures_back_off_exponentially_then_disable_the_subscription(world: World) -> None:
    producer = world.producer
    sub = _subscribe(producer, topics=["manifest.filed"])
    receiver, clock = Receiver(), Clock()
    receiver.answers = [500] * 3 + [httpx.ConnectError("refused")] + [503] * 20
    worker = _worker(world, receiver, clock, base_delay_s=10, max_attempts=50, disable_after=10)
    producer.file(world.filing())

    start = clock.now
    assert worker.run_once().attempted == 1
    delays = []
    for _ in range(9):
        due = _next_attempt(producer, sub["id"])
        clock.now = due - timedelta(seconds=1)
        assert worker.run_once().attempted == 0  # not yet due
        clock.now = due
        assert worker.run_once().attempted == 1
        delays.append(due)
    gaps = [(b - a).total_seconds() for a, b in zip([start, *delays], delays, strict=False)]
    assert gaps[:5] == [10, 20, 40, 80, 160]

    state = producer.get(f"/v1/webhooks/{sub['id']}")
    assert state["active"] is False
    assert "10 consecutive failed attempts" in state["disabled_reason"]
    (delivery,) = producer.get(f"/v1/webhooks/{sub['id']}/deliveries")
    assert delivery["status"] == "abandoned"
    assert delivery["attempts"] == 10
    codes = [a["status_code"] for a in delivery["history"]]
    assert codes == [500, 500, 500, None] + [503] * 6
    assert delivery["history"][3]["error"].startswith("ConnectError")
    # once disabled, new events are not queued for it
    producer.file(world.filing())
    clock.now += timedelta(days=1)
    assert worker.run_once().attempted == 0
    assert len(producer.get(f"/v1/webhooks/{sub['id']}/deliveries")) == 1


def test_success_resets_the_failure_count_and_410_disables_at_once(world: World) -> None:
    producer = world.producer
    sub = _subscribe(producer)
    receiver, clock = Receiver(), Clock()
    receiver.answers = [500, 200]
    worker = _worker(world, receiver, clock, base_delay_s=1)
    producer.file(world.filing())
    worker.run_once()
    assert producer.get(f"/v1/webhooks/{sub['id']}")["consecutive_failures"] == 1
    clock.now += timedelta(seconds=1)
    worker.run_once()
    assert producer.get(f"/v1/webhooks/{sub['id']}")["consecutive_failures"] == 0

    receiver.answers = [410]
    producer.file(world.filing())
    worker.run_once()
    state = producer.get(f"/v1/webhooks/{sub['id']}")
    assert state["active"] is False
    assert "410" in state["disabled_reason"]


def _next_attempt(party: PartyClient, subscription_id: str) -> datetime:
    (delivery,) = party.get(f"/v1/webhooks/{subscription_id}/deliveries")
    return datetime.fromisoformat(delivery["next_attempt_at"].replace("Z", "+00:00"))


@pytest.fixture
def app_with_mock_transport(
    tmp_path: Path, engine: Engine
) -> Iterator[tuple[TestClient, Receiver]]:
    receiver = Receiver()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=engine.url.render_as_string(hide_password=False),
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        auto_migrate=False,
    )

    def inject(app: FastAPI) -> None:
        app.state.webhook_transport = httpx.MockTransport(receiver)

    with TestClient(create_app(settings, engine=engine, on_startup=inject)) as http:
        yield http, receiver


def test_the_api_process_runs_the_worker(
    app_with_mock_transport: tuple[TestClient, Receiver], admin_headers: dict[str, str]
) -> None:
    http, receiver = app_with_mock_transport
    world = build_world(http, admin_headers, haulers=1, sites=1)
    site = world.sites[0]
    sub = _subscribe(site, topics=["manifest.filed"])
    world.producer.file(world.filing())
    deadline = utcnow() + timedelta(seconds=15)
    while not receiver.requests and utcnow() < deadline:
        time.sleep(0.05)
    (request,) = receiver.requests
    message = receive_standard_webhook(
        sub["secret"], request.headers, request.content, int(utcnow().timestamp())
    )
    assert message["type"] == "manifest.filed"
