"""The console's alert pages over HTTP: the filtered queue, the detail with its map and
timeline, working an alert through its lifecycle with forms, refusals, and evidence."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.support.alerts import insert_alert, session_of
from tests.support.console import Trip, csrf_of, seed_trip, sign_in
from tests.support.parties import register
from tests.support.world import World, build_world
from waste.alerts.bundle import verify_evidence
from waste.alerts.models import Alert, AlertTransition
from waste.clock import utcnow


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    return build_world(client, admin_headers, haulers=1, sites=1)


@pytest.fixture
def trip(world: World, engine: Engine) -> Trip:
    return seed_trip(world, engine)


@pytest.fixture
def regulator(client: TestClient, world: World) -> TestClient:
    assert sign_in(client, world.regulator.token).status_code == 303
    return client


def _ids_in_queue(html: str) -> list[str]:
    return re.findall(r'<tr data-alert="([^"]+)"', html)


def _state(client: TestClient, alert_id: str) -> str:
    with session_of(client) as session:
        row = session.get(Alert, alert_id)
        assert row is not None
        return row.state


def _act(client: TestClient, alert_id: str, action: str, **fields: object) -> object:
    page = client.get(f"/console/alerts/{alert_id}")
    version = re.search(r'name="version" value="(\d+)"', page.text)
    data = {
        "csrf": csrf_of(page.text),
        "action": action,
        "version": version.group(1) if version else "1",
        "note": f"{action}: checked on the console",
        **fields,
    }
    return client.post(f"/console/alerts/{alert_id}/act", data=data, follow_redirects=False)


def test_the_queue_filters_and_sorts(regulator: TestClient, world: World, trip: Trip) -> None:
    old = insert_alert(
        regulator, kind="overdue_delivery", severity="low", region_code="330702",
        at=utcnow() - timedelta(days=20), raised_at=utcnow() - timedelta(days=20),
    )  # fmt: skip
    elsewhere = insert_alert(regulator, kind="route_deviation", region_code="110101")
    everything = _ids_in_queue(regulator.get("/console/alerts").text)
    assert set(everything) == {*trip.alerts.values(), old}  # not the other region's
    assert elsewhere not in everything
    only = _ids_in_queue(regulator.get("/console/alerts?kind=route_deviation").text)
    assert only == [trip.alerts["route_deviation"]]
    critical = _ids_in_queue(regulator.get("/console/alerts?severity=critical").text)
    assert critical == [trip.alerts["suspected_illegal_dumping"]]
    by_severity = _ids_in_queue(regulator.get("/console/alerts?sort=-severity").text)
    assert by_severity[0] == trip.alerts["suspected_illegal_dumping"]
    assert by_severity[-1] == old
    since = (utcnow() - timedelta(days=2)).strftime("%Y-%m-%d")
    recent = _ids_in_queue(regulator.get(f"/console/alerts?from={since}").text)
    assert old not in recent
    assert len(recent) == 3
    until = (utcnow() - timedelta(days=10)).strftime("%Y-%m-%d")
    assert _ids_in_queue(regulator.get(f"/console/alerts?to={until}").text) == [old]
    party = world.haulers[0].client.party_id
    assert set(_ids_in_queue(regulator.get(f"/console/alerts?party={party}").text)) == set(
        trip.alerts.values()
    )
    assert _ids_in_queue(regulator.get("/console/alerts?region=1101").text) == []
    assert _ids_in_queue(regulator.get("/console/alerts?state=closed").text) == []
    assert regulator.get("/console/alerts?severity=dire").status_code == 422
    assert regulator.get("/console/alerts?sort=random").status_code == 422


def test_alert_page_maps_route_corridor_track_and_where_the_seal_opened(
    regulator: TestClient, trip: Trip
) -> None:
    page = regulator.get(f"/console/alerts/{trip.alerts['route_deviation']}")
    assert page.status_code == 200
    m = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', page.text, re.S)
    assert m is not None
    layers = {f["properties"]["layer"] for f in json.loads(m.group(1))["features"]}
    assert {"route", "corridor", "track", "excursion", "seal", "stop", "alert", "site", "zone"} <= (
        layers
    )
    kinds = set(re.findall(r'<tr(?: class="highlight")? data-kind="(\w+)"', page.text))
    assert {"fix", "lock", "custody", "alert"} <= kinds
    assert "e-lock unsealed" in page.text
    assert "max distance m" in page.text  # the evidence, readable


def test_a_regulator_works_an_alert_to_closure_with_a_finding(
    regulator: TestClient, trip: Trip
) -> None:
    alert_id = trip.alerts["suspected_illegal_dumping"]
    steps = [
        ("acknowledge", {}, "acknowledged"),
        ("assign", {"department": "Enforcement", "assignee": "Li Wei",
                    "due_at": (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")},
         "acknowledged"),
        ("investigate", {}, "investigating"),
        ("resolve", {"resolution": "confirmed_violation",
                     "finding": "Seal opened 600 m off the route; 12 drums found in a ditch."},
         "resolved"),
        ("close", {}, "closed"),
    ]  # fmt: skip
    for action, fields, state in steps:
        resp = _act(regulator, alert_id, action, **fields)
        assert resp.status_code == 303, (action, resp.text[:2000])  # type: ignore[attr-defined]
        assert resp.headers["location"].endswith(f"?done={action}")  # type: ignore[attr-defined]
        assert _state(regulator, alert_id) == state
    page = regulator.get(f"/console/alerts/{alert_id}?done=close").text
    assert 'id="alert-state">closed<' in page
    assert "12 drums found in a ditch" in page
    assert "Closed: nothing more to do." in page
    with session_of(regulator) as session:
        rows = session.query(AlertTransition).filter_by(alert_id=alert_id).all()
        assert [r.to_state for r in rows] == [s for _, _, s in steps]
        assert all(r.log_index is not None for r in rows)  # every step is in the log


def test_refused_steps_show_why_and_change_nothing(regulator: TestClient, trip: Trip) -> None:
    alert_id = trip.alerts["route_deviation"]
    close_open = _act(regulator, alert_id, "close")
    assert close_open.status_code == 409  # type: ignore[attr-defined]
    assert "cannot close an alert that is open" in close_open.text  # type: ignore[attr-defined]
    assert _act(regulator, alert_id, "investigate").status_code == 303  # type: ignore[attr-defined]
    short = _act(regulator, alert_id, "resolve", resolution="false_alarm", finding="ok")
    assert short.status_code == 422  # type: ignore[attr-defined]
    assert "finding" in short.text  # type: ignore[attr-defined]
    assert _state(regulator, alert_id) == "investigating"
    page = regulator.get(f"/console/alerts/{alert_id}")
    stale = regulator.post(
        f"/console/alerts/{alert_id}/act",
        data={"csrf": csrf_of(page.text), "action": "resolve", "version": "1",
              "note": "n", "resolution": "false_alarm", "finding": "a long enough finding"},
    )  # fmt: skip
    assert stale.status_code == 409
    assert "changed meanwhile" in stale.text
    no_csrf = regulator.post(
        f"/console/alerts/{alert_id}/act",
        data={"action": "resolve", "version": "3", "note": "n", "resolution": "false_alarm",
              "finding": "a long enough finding"},
    )  # fmt: skip
    assert no_csrf.status_code == 403
    assert _state(regulator, alert_id) == "investigating"


def test_another_regions_regulator_cannot_act(
    client: TestClient, world: World, trip: Trip, admin_headers: dict[str, str]
) -> None:
    other = register(client, admin_headers, "regulator", region="110000")
    sign_in(client, other.token)
    page = client.get("/console/dashboard")
    resp = client.post(
        f"/console/alerts/{trip.alerts['route_deviation']}/act",
        data={"csrf": csrf_of(page.text), "action": "acknowledge", "version": "1", "note": "x"},
    )
    assert resp.status_code == 404
    assert _state(client, trip.alerts["route_deviation"]) == "open"


def test_the_evidence_bundle_downloads_and_verifies_offline(
    regulator: TestClient, trip: Trip
) -> None:
    alert_id = trip.alerts["unscheduled_stop"]
    assert _act(regulator, alert_id, "acknowledge").status_code == 303  # type: ignore[attr-defined]
    resp = regulator.get(f"/console/alerts/{alert_id}/evidence.json")
    assert resp.status_code == 200
    assert "attachment" in resp.headers["content-disposition"]
    report = verify_evidence(resp.json(), regulator.get("/v1/log/key").text.strip())
    assert report.ok, report.failures
    assert report.transitions == 1


def test_alerts_without_a_leg_still_show_what_is_known(
    regulator: TestClient, world: World, trip: Trip
) -> None:
    moving = insert_alert(
        regulator, kind="unmanifested_movement", severity="high",
        device_id=world.haulers[0].device_id, vehicle=world.haulers[0].plate,
        at=trip.fixes[10].t,
    )  # fmt: skip
    page = regulator.get(f"/console/alerts/{moving}")
    assert page.status_code == 200
    m = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', page.text, re.S)
    assert m is not None
    layers = {f["properties"]["layer"] for f in json.loads(m.group(1))["features"]}
    assert {"track", "alert"} <= layers  # the device's fixes around the alert
    assert "route" not in layers  # no manifest: no declared route
    bare = insert_alert(regulator, kind="overdue_delivery", severity="medium", evidence={})
    assert regulator.get(f"/console/alerts/{bare}").status_code == 200
