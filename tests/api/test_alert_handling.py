"""Closed-loop alert handling over HTTP: lifecycle, region scopes, party visibility, the log,
optimistic concurrency, overdue handling, listing, summary, webhooks and evidence bundles."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.support.alerts import insert_alert, manifest_alert, session_of
from tests.support.manifests import add_producer, log_size, picked_up, ts
from tests.support.parties import Actor, register
from tests.support.world import World, build_world
from waste.alerts import handling
from waste.alerts.bundle import verify_evidence
from waste.alerts.lifecycle import Action, Command
from waste.alerts.models import Alert
from waste.clock import utcnow
from waste.errors import Conflict
from waste.ledger.canonical import canonical_bytes
from waste.ledger.keys import b64decode
from waste.ledger.merkle import verify_inclusion
from waste.uow import UnitOfWork
from waste.webhooks.models import OutboxMessage
from waste.webhooks.worker import WebhookWorker

FINDING = "Site visit: the driver took a detour around road works; load intact."


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    client.app.state.webhooks.stop()  # type: ignore[attr-defined]  # rounds driven by hand
    return build_world(client, admin_headers, haulers=1, sites=1)


@pytest.fixture
def manifest(world: World) -> str:
    return picked_up(world, world.producer)


def act(
    world: World, actor: Actor | dict[str, str], alert_id: str, action: str, **body: Any
) -> httpx.Response:
    headers = actor.headers if isinstance(actor, Actor) else actor
    payload: dict[str, Any] = {"action": action, "note": f"{action}: duty officer", **body}
    if "version" not in payload and "if_match" not in body:
        payload["version"] = world.http.get(f"/v1/alerts/{alert_id}", headers=headers).json()[
            "handling"
        ]["version"]
    return world.http.post(f"/v1/alerts/{alert_id}/transitions", json=payload, headers=headers)


def ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_full_lifecycle_is_logged_and_the_evidence_verifies(world: World, manifest: str) -> None:
    reg = world.regulator
    alert_id = manifest_alert(world, manifest)
    size0 = log_size(world)
    due = ts(utcnow() + timedelta(days=2))
    steps = [
        ("acknowledge", {}),
        ("assign", {"assignee": "Wang Li", "department": "Jinhua brigade 2", "due_at": due}),
        ("investigate", {}),
        ("escalate", {"severity": "high"}),
        ("resolve", {"resolution": "confirmed_violation", "finding": FINDING}),
        ("close", {}),
    ]
    for action, extra in steps:
        ok(act(world, reg, alert_id, action, **extra))
    detail = world.http.get(f"/v1/alerts/{alert_id}", headers=reg.headers)
    assert detail.headers["etag"] == '"7"'
    body = detail.json()
    assert (body["state"], body["severity"]) == ("closed", "high")
    h = body["handling"]
    assert (h["resolution"], h["finding"], h["assignee"], h["department"], h["due_at"]) == (
        "confirmed_violation",
        FINDING,
        "Wang Li",
        "Jinhua brigade 2",
        due,
    )
    assert h["closed_at"] is not None
    assert h["overdue"] is False
    assert body["allowed_actions"] == []
    trans = body["transitions"]
    assert [t["action"] for t in trans] == [a for a, _ in steps]
    assert [t["to_state"] for t in trans] == [
        "acknowledged",
        "acknowledged",
        "investigating",
        "investigating",
        "resolved",
        "closed",
    ]
    assert all(t["actor"] == reg.id and t["note"] for t in trans)
    indices = [t["log_index"] for t in trans]
    assert indices == sorted(indices)
    assert indices[0] >= size0
    assert log_size(world) >= size0 + len(steps)

    # Each step is the log entry at its index (read back as a regulator) …
    got = world.http.get(
        "/v1/log/entries",
        params={"start": indices[0], "end": indices[-1] + 1},
        headers=reg.headers,
    ).json()["entries"]
    logged = {e["leaf_index"]: e["entry"] for e in got}
    entry = logged[indices[-1]]
    assert entry["kind"] == "alert_transition"
    payload = entry["payload"]
    assert (payload["alert_id"], payload["action"], payload["from_state"], payload["to_state"]) == (
        alert_id,
        "close",
        "resolved",
        "closed",
    )
    assert payload["actor"] == reg.id
    assert payload["prev_leaf_index"] == indices[-2]
    evidence = {"max_distance_m": 412.5, "fixes": 7}
    assert payload["evidence_sha256"] == hashlib.sha256(canonical_bytes(evidence)).hexdigest()

    # … and the evidence bundle proves all of them against a signed checkpoint.
    resp = world.http.get(f"/v1/alerts/{alert_id}/evidence", headers=reg.headers)
    assert resp.status_code == 200
    assert "attachment" in resp.headers["content-disposition"]
    bundle = resp.json()
    vkey = world.http.get("/v1/log/key").text.strip()
    report = verify_evidence(bundle, vkey)
    assert report.ok, report.failures
    assert report.transitions == len(steps)
    assert bundle["alert"]["evidence"] == evidence
    # Independently of the verifier: the last proof against the checkpoint's root.
    lines = bundle["checkpoint"].split("\n")
    size, root = int(lines[1]), b64decode(lines[2])
    last = bundle["transitions"][-1]
    leaf = hashlib.sha256(b"\x00" + canonical_bytes(last["entry"])).digest()
    proof = [b64decode(p) for p in last["inclusion_proof"]]
    assert verify_inclusion(leaf, last["leaf_index"], size, proof, root)
    served = world.http.get(
        "/v1/log/proof/inclusion", params={"index": last["leaf_index"], "size": size}
    ).json()
    assert served["hashes"] == last["inclusion_proof"]

    # A tampered bundle does not verify.
    last["entry"]["payload"]["note"] = "nothing to see"
    assert not verify_evidence(bundle, vkey).ok
    bundle["alert"]["state"] = "open"
    assert any("state" in f for f in verify_evidence(bundle, vkey).failures)


def test_reopen_then_resolve_again(world: World, manifest: str) -> None:
    reg = world.regulator
    alert_id = manifest_alert(world, manifest)
    ok(act(world, reg, alert_id, "investigate"))
    ok(act(world, reg, alert_id, "resolve", resolution="false_alarm", finding=FINDING))
    reopened = ok(act(world, reg, alert_id, "reopen"))["alert"]
    assert reopened["state"] == "investigating"
    assert reopened["handling"]["resolution"] is None
    ok(act(world, reg, alert_id, "resolve", resolution="other", finding=FINDING + " Again."))
    bundle = world.http.get(f"/v1/alerts/{alert_id}/evidence", headers=reg.headers).json()
    assert verify_evidence(bundle, world.http.get("/v1/log/key").text.strip()).ok


def test_invalid_transitions_are_refused_and_leave_no_trace(world: World, manifest: str) -> None:
    reg = world.regulator
    alert_id = manifest_alert(world, manifest)
    size = log_size(world)
    closed = act(world, reg, alert_id, "close")
    assert closed.status_code == 409, closed.text
    problem = closed.json()
    assert problem["type"].endswith("/alert-transition")
    assert (problem["state"], problem["action"]) == ("open", "close")
    assert closed.headers["content-type"].startswith("application/problem+json")
    ok(act(world, reg, alert_id, "investigate"))
    for extra, field in [
        ({"resolution": "confirmed_violation"}, "finding"),
        ({"resolution": "confirmed_violation", "finding": "short"}, "finding"),
        ({"finding": FINDING}, "resolution"),
    ]:
        resp = act(world, reg, alert_id, "resolve", **extra)
        assert resp.status_code == 422, resp.text
        assert resp.json()["errors"][0]["field"] == field
    for body, field in [
        (
            {"action": "resolve", "note": "x", "version": 2, "resolution": "maybe"},
            "body.resolution",
        ),
        ({"action": "explode", "note": "x", "version": 2}, "body.action"),
        ({"action": "acknowledge", "version": 2}, "body.note"),
        ({"action": "assign", "note": "x", "version": 2, "due_at": "tomorrow"}, "due_at"),
        ({"action": "escalate", "note": "x", "version": 2, "severity": "low"}, "severity"),
        ({"action": "investigate", "note": "x"}, "version"),
        ({"action": "investigate", "note": "x", "version": 2, "extra": 1}, "body.extra"),
    ]:
        resp = world.http.post(f"/v1/alerts/{alert_id}/transitions", json=body, headers=reg.headers)
        assert resp.status_code == 422, resp.text
        assert resp.json()["errors"][0]["field"] == field, resp.text
    assert log_size(world) == size + 1
    assert (
        world.http.get(f"/v1/alerts/{alert_id}", headers=reg.headers).json()["handling"]["version"]
        == 2
    )


def test_stale_version_is_refused(
    world: World, manifest: str, admin_headers: dict[str, str]
) -> None:
    reg = world.regulator
    colleague = register(world.http, admin_headers, "regulator", region="330702")
    alert_id = manifest_alert(world, manifest)
    ok(act(world, reg, alert_id, "acknowledge", version=1))
    late = act(world, colleague, alert_id, "investigate", version=1)
    assert late.status_code == 409
    assert (late.json()["current_version"], late.json()["state"]) == (2, "acknowledged")
    # If-Match carries the ETag instead of a body version.
    etag = world.http.get(f"/v1/alerts/{alert_id}", headers=colleague.headers).headers["etag"]
    resp = world.http.post(
        f"/v1/alerts/{alert_id}/transitions",
        json={"action": "investigate", "note": "taking it"},
        headers={**colleague.headers, "If-Match": etag},
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["etag"] == '"3"'
    assert resp.json()["transition"]["actor"] == colleague.id
    stale = world.http.post(
        f"/v1/alerts/{alert_id}/transitions",
        json={"action": "escalate", "note": "n", "severity": "high"},
        headers={**colleague.headers, "If-Match": etag},
    )
    assert stale.status_code == 409
    mismatch = world.http.post(
        f"/v1/alerts/{alert_id}/transitions",
        json={"action": "escalate", "note": "n", "severity": "high", "version": 3},
        headers={**colleague.headers, "If-Match": '"2"'},
    )
    assert mismatch.status_code == 422


def test_detection_changes_survive_handling(world: World, manifest: str) -> None:
    """Detection raises severity without touching the handling version: a step keeps it, and
    an escalation read before it is refused rather than lowering it."""
    reg = world.regulator
    alert_id = manifest_alert(world, manifest, severity="medium")
    with session_of(world.http) as session:
        row = session.get(Alert, alert_id)
        assert row is not None
        row.severity = "critical"
        row.evidence = {"max_distance_m": 900.0}
        session.commit()
    stale_escalation = act(world, reg, alert_id, "escalate", version=1, severity="high")
    assert stale_escalation.status_code == 422  # high is not above critical
    body = ok(act(world, reg, alert_id, "acknowledge", version=1))["alert"]
    assert (body["severity"], body["evidence"]) == ("critical", {"max_distance_m": 900.0})


def test_concurrent_transitions_one_wins(world: World, manifest: str) -> None:
    """Two regulators act on the same version at once: exactly one step is recorded."""
    alert_id = manifest_alert(world, manifest)
    app: FastAPI = world.http.app  # type: ignore[assignment]
    principal = _principal(world)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def attempt(action: Action) -> None:
        with UnitOfWork(app.state.session_factory) as uow:
            barrier.wait()
            try:
                handling.transition(
                    uow=uow,
                    principal=principal,
                    alert_id=alert_id,
                    command=Command(action, note="race"),
                    expected_version=1,
                    now=utcnow(),
                )
                outcomes.append("won")
            except Conflict:
                outcomes.append("conflict")

    actions = [Action.ACKNOWLEDGE, Action.INVESTIGATE, Action.ACKNOWLEDGE, Action.INVESTIGATE]
    threads = [threading.Thread(target=attempt, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "won"]
    body = world.http.get(f"/v1/alerts/{alert_id}", headers=world.regulator.headers).json()
    assert body["handling"]["version"] == 2
    assert len(body["transitions"]) == 1


def _principal(world: World) -> Any:
    from waste.auth.service import authenticate

    with UnitOfWork(world.http.app.state.session_factory) as uow:  # type: ignore[attr-defined]
        return authenticate(uow=uow, bearer=world.regulator.token, admin_token=None)


def test_regions_and_roles_decide_who_sees_and_handles(
    world: World, manifest: str, admin_headers: dict[str, str]
) -> None:
    alert_id = manifest_alert(world, manifest)
    beijing = register(world.http, admin_headers, "regulator", region="110000")
    province = register(world.http, admin_headers, "regulator", region="330000")
    other_producer = add_producer(world)
    for headers in (beijing.headers, other_producer._headers):
        assert world.http.get(f"/v1/alerts/{alert_id}", headers=headers).status_code == 404
        listed = world.http.get("/v1/alerts", headers=headers).json()["items"]
        assert alert_id not in [a["id"] for a in listed]
    refused = act(world, beijing, alert_id, "acknowledge", version=1)
    assert refused.status_code == 404
    # The province's regulator covers the county; admins and parties may not handle.
    assert act(world, admin_headers, alert_id, "acknowledge", version=1).status_code == 403
    for party in (world.producer, world.haulers[0].client, world.sites[0]):
        seen = world.http.get(f"/v1/alerts/{alert_id}", headers=party._headers)
        assert seen.status_code == 200, seen.text
        assert seen.json()["allowed_actions"] == []
        assert act(world, party._headers, alert_id, "acknowledge", version=1).status_code == 403
    ok(act(world, province, alert_id, "acknowledge", version=1))
    # Parties read the step but not the note, the account or who is assigned.
    seen = world.http.get(f"/v1/alerts/{alert_id}", headers=world.producer._headers).json()
    assert seen["transitions"][0]["to_state"] == "acknowledged"
    assert "note" not in seen["transitions"][0]
    assert "assignee" not in seen["handling"]
    evidence = world.http.get(f"/v1/alerts/{alert_id}/evidence", headers=world.producer._headers)
    assert evidence.status_code == 403
    mine = world.http.get("/v1/alerts", headers=world.producer._headers).json()["items"]
    assert [a["id"] for a in mine] == [alert_id]


def test_overdue_listing_summary_and_escalation(
    world: World, manifest: str, admin_headers: dict[str, str]
) -> None:
    reg = world.regulator
    now = utcnow()
    late_critical = manifest_alert(
        world, manifest, kind="seal_tamper", severity="critical", raised_at=now - timedelta(days=2)
    )
    late_medium = manifest_alert(world, manifest, raised_at=now - timedelta(days=8))
    past_due = manifest_alert(
        world, manifest, raised_at=now - timedelta(hours=5), due_at=now - timedelta(hours=1)
    )
    fresh = manifest_alert(world, manifest, kind="signal_lost", severity="high")
    elsewhere = insert_alert(world.http, region_code="330110", raised_at=now - timedelta(days=30))

    overdue = world.http.get("/v1/alerts", params={"overdue": "true"}, headers=reg.headers).json()
    assert {a["id"] for a in overdue["items"]} == {late_critical, late_medium, past_due}
    assert all(a["handling"]["overdue"] for a in overdue["items"])
    on_time = world.http.get("/v1/alerts", params={"overdue": "false"}, headers=reg.headers)
    assert [a["id"] for a in on_time.json()["items"]] == [fresh]

    # A due date in the future takes the alert off the overdue list.
    ok(
        act(
            world,
            reg,
            late_medium,
            "assign",
            assignee="Li Na",
            department="Brigade 1",
            due_at=ts(now + timedelta(days=1)),
        )
    )
    summary = world.http.get("/v1/alerts/summary", headers=reg.headers).json()
    assert (summary["total"], summary["open"], summary["overdue"]) == (4, 4, 2)
    assert summary["by_severity"] == {"critical": 1, "high": 1, "medium": 2}
    assert summary["by_kind"]["route_deviation"] == 2
    assert [r["region_code"] for r in summary["regions"]] == ["330702"]
    everything = world.http.get("/v1/alerts/summary", headers=admin_headers).json()
    assert [r["region_code"] for r in everything["regions"]] == ["330110", "330702"]
    assert everything["overdue"] == 3
    assert world.http.get("/v1/alerts/summary", headers=world.producer._headers).status_code == 403

    # The sweep escalates overdue alerts one step, once per due time, as "system".
    swept = world.http.post("/v1/alerts/escalate-overdue", headers=admin_headers)
    assert swept.status_code == 200, swept.text
    escalated = {e["alert_id"]: e for e in swept.json()["escalated"]}
    assert set(escalated) == {past_due, elsewhere}  # critical cannot go higher
    assert escalated[past_due]["actor"] == "system"
    assert escalated[past_due]["severity"] == "high"
    again = world.http.post("/v1/alerts/escalate-overdue", headers=admin_headers).json()
    assert again["escalated"] == []
    detail = world.http.get(f"/v1/alerts/{past_due}", headers=reg.headers).json()
    assert detail["severity"] == "high"
    assert detail["transitions"][0]["log_index"] is not None


def test_list_filters_sorting_and_pagination(world: World, manifest: str) -> None:
    reg = world.regulator
    now = utcnow()
    kinds = ["route_deviation", "seal_tamper", "signal_lost", "unscheduled_stop", "seal_tamper"]
    severities = ["medium", "critical", "high", "medium", "critical"]
    ids = [
        manifest_alert(
            world, manifest, kind=k, severity=s, at=now - timedelta(hours=i), raised_at=now
        )
        for i, (k, s) in enumerate(zip(kinds, severities, strict=True))
    ]
    other = insert_alert(world.http, vehicle="浙G99999", at=now - timedelta(days=3))

    def listed(**params: Any) -> list[str]:
        resp = world.http.get("/v1/alerts", params=params, headers=reg.headers)
        assert resp.status_code == 200, resp.text
        return [a["id"] for a in resp.json()["items"]]

    assert set(listed(kind="seal_tamper")) == {ids[1], ids[4]}
    assert set(listed(kind=["seal_tamper", "signal_lost"])) == {ids[1], ids[2], ids[4]}
    assert set(listed(severity="medium")) == {ids[0], ids[3], other}
    assert set(listed(manifest_id=manifest)) == set(ids)
    assert listed(vehicle="浙G99999") == [other]
    assert set(listed(party=world.haulers[0].client.party_id)) == set(ids)
    assert set(listed(region="330702")) == {*ids, other}
    assert listed(region="3301") == []
    assert listed(**{"from": ts(now - timedelta(days=2))}) == listed(manifest_id=manifest)
    assert listed(to=ts(now - timedelta(days=2))) == [other]
    ok(act(world, reg, ids[2], "acknowledge"))
    assert listed(state="acknowledged") == [ids[2]]
    assert set(listed(state="open")) == {*ids, other} - {ids[2]}

    # Pages by cursor cover every alert once, in order, for each sort.
    for sort in ("-severity", "severity", "-at", "at", "raised_at", "-raised_at"):
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"sort": sort, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = world.http.get("/v1/alerts", params=params, headers=reg.headers).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(a["id"] for a in seen) == sorted([*ids, other]), sort
        if sort == "-severity":
            assert [a["severity"] for a in seen][:2] == ["critical", "critical"]
        if sort == "at":
            assert seen[0]["id"] == other
    for params, field in [
        ({"sort": "name"}, "query.sort"),
        ({"cursor": "garbage"}, "query.cursor"),
        ({"from": "2026-13-40"}, "query.from"),
        ({"severity": "urgent"}, "severity[0]"),
        ({"kind": "Robert'); DROP TABLE alerts;--"}, "kind[0]"),
    ]:
        resp = world.http.get("/v1/alerts", params=params, headers=reg.headers)
        assert resp.status_code == 422, (params, resp.text)
        assert resp.json()["errors"][0]["field"] == field
    # A cursor of one sort is refused by another.
    page = world.http.get("/v1/alerts", params={"limit": 1}, headers=reg.headers).json()
    resp = world.http.get(
        "/v1/alerts",
        params={"sort": "at", "cursor": page["next_cursor"]},
        headers=reg.headers,
    )
    assert resp.status_code == 422


def test_transitions_reach_subscribed_webhooks(world: World, manifest: str) -> None:
    producer = world.producer
    sub = producer.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hooks", "topics": ["alert.*"]})
    alert_id = manifest_alert(world, manifest)
    ok(act(world, world.regulator, alert_id, "acknowledge"))
    with session_of(world.http) as session:
        rows = list(
            session.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == "alert.transitioned")
            )
        )
        pending = session.get(Alert, alert_id)
        assert pending is not None
        assert pending.publish_pending
    parties = {r.party_id for r in rows}
    assert {producer.party_id, world.haulers[0].client.party_id, world.sites[0].party_id} <= parties
    assert world.regulator.id in parties
    data = rows[0].payload
    assert data["alert"]["id"] == alert_id
    assert data["alert"]["state"] == "acknowledged"
    assert data["transition"]["action"] == "acknowledge"
    assert "note" not in data["transition"]

    requests: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(204)

    app: FastAPI = world.http.app  # type: ignore[assignment]
    worker = WebhookWorker(app.state.session_factory, transport=httpx.MockTransport(receive))
    worker.run_once()
    assert len(requests) == 1
    assert requests[0].headers["webhook-signature"].startswith("v1,")
    delivered = producer.get(f"/v1/webhooks/{sub['id']}/deliveries")
    assert [d["topic"] for d in delivered] == ["alert.transitioned"]
    assert delivered[0]["status"] == "delivered"

    ok(act(world, world.regulator, alert_id, "escalate", severity="critical"))
    with session_of(world.http) as session:
        topics = session.scalars(
            select(OutboxMessage.topic).where(
                OutboxMessage.subject == alert_id, OutboxMessage.party_id == producer.party_id
            )
        )
        assert sorted(topics) == ["alert.escalated", "alert.transitioned", "alert.transitioned"]
