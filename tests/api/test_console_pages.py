"""The console over HTTP: sign-in and sessions, CSRF, the dashboard, manifest pages with the
verifier's badge, region scoping, parties' read-only views, and the public verification page."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.support.console import Trip, csrf_of, seed_trip, sign_in
from tests.support.parties import register
from tests.support.world import World, build_world
from waste.console.web import ConsoleRoute
from waste.ledger.audit import verify_bundle
from waste.manifests.printing import verification_url


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    return build_world(client, admin_headers, haulers=1, sites=1)


@pytest.fixture
def trip(world: World, engine: Engine) -> Trip:
    return seed_trip(world, engine)


def _map(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', html, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _layers(html: str) -> set[str]:
    return {f["properties"]["layer"] for f in _map(html)["features"]}


def test_pages_need_a_session_and_send_the_user_to_sign_in(client: TestClient) -> None:
    for path in ("/console/dashboard", "/console/alerts", "/console/manifests/x"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303
        assert resp.headers["location"].startswith("/console/login?next=")
    page = client.get("/console/login?next=/console/alerts")
    assert page.status_code == 200
    assert 'name="next" value="/console/alerts"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_sign_in_sets_a_strict_http_only_cookie_that_holds_no_token(
    client: TestClient, world: World
) -> None:
    resp = sign_in(client, world.regulator.token, next_path="/console/alerts")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/alerts"
    cookie = resp.headers["set-cookie"]
    assert "waste_console=v1." in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http here; https sets Secure (below)
    secret = world.regulator.token.split("_", 2)[2]
    assert secret not in cookie
    dash = client.get("/console/dashboard")
    assert dash.status_code == 200
    assert world.regulator.party["name"] in dash.text


def test_cookie_is_secure_when_the_public_url_is_https(
    client: TestClient, world: World
) -> None:
    client.app.state.settings.public_base_url = "https://console.example.org"  # type: ignore[attr-defined]
    resp = sign_in(client, world.regulator.token)
    assert "Secure" in resp.headers["set-cookie"]


def test_only_local_console_paths_are_followed_after_sign_in(
    client: TestClient, world: World
) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/v1/tokens", "/console\\x"):
        resp = sign_in(client, world.regulator.token, next_path=target)
        assert resp.headers["location"] == "/console/dashboard", target


def test_bad_tokens_are_refused_then_rate_limited(client: TestClient, world: World) -> None:
    bad = sign_in(client, "wst_0123456789abcdef_" + "A" * 43)
    assert bad.status_code == 401
    assert "not accepted" in bad.text
    assert "waste_console=" not in bad.headers.get("set-cookie", "")
    limit = client.app.state.settings.auth_max_failures  # type: ignore[attr-defined]
    statuses = [sign_in(client, "nonsense").status_code for _ in range(limit)]
    assert statuses[-1] == 429
    assert 401 in statuses
    locked = sign_in(client, world.regulator.token)  # right or wrong: locked out for now
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1


def test_sign_in_form_needs_its_own_csrf_pair(client: TestClient, world: World) -> None:
    no_cookie = TestClient(client.app)
    form = client.get("/console/login")
    resp = no_cookie.post(
        "/console/login",
        data={"token": world.regulator.token, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert resp.status_code == 403
    forged = client.post(
        "/console/login", data={"token": world.regulator.token, "csrf": "forged"}
    )
    assert forged.status_code == 403
    cross = client.post(
        "/console/login",
        data={"token": world.regulator.token, "csrf": csrf_of(client.get("/console/login").text)},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403


def test_a_tampered_or_revoked_session_ends(
    client: TestClient, world: World, admin_headers: dict[str, str]
) -> None:
    sign_in(client, world.regulator.token)
    good = client.cookies["waste_console"]
    head, body, mac = good.split(".")
    forged_body = body[:-2] + ("AA" if body[-2:] != "AA" else "BB")
    client.cookies.set("waste_console", f"{head}.{forged_body}.{mac}", path="/console")
    assert client.get("/console/dashboard", follow_redirects=False).status_code == 303
    client.cookies.set("waste_console", good, path="/console")
    assert client.get("/console/dashboard", follow_redirects=False).status_code == 200
    token_id = world.regulator.token.split("_")[1]
    assert client.post(f"/v1/tokens/{token_id}/revoke", headers=admin_headers).status_code == 200
    assert client.get("/console/dashboard", follow_redirects=False).status_code == 303


def test_logout_needs_the_session_csrf_token(client: TestClient, world: World) -> None:
    sign_in(client, world.regulator.token)
    page = client.get("/console/dashboard")
    refused = client.post("/console/logout", data={"csrf": "nope"})
    assert refused.status_code == 403
    assert client.get("/console/dashboard", follow_redirects=False).status_code == 200
    out = client.post("/console/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/console/dashboard", follow_redirects=False).status_code == 303


def test_admin_can_sign_in_with_the_bootstrap_token(
    client: TestClient, trip: Trip, admin_headers: dict[str, str]
) -> None:
    token = admin_headers["Authorization"].split(" ", 1)[1]
    assert sign_in(client, token).status_code == 303
    assert trip.number in client.get("/console/manifests").text


def test_dashboard_shows_states_overdue_alerts_regions_risk_and_the_log(
    client: TestClient, world: World, trip: Trip
) -> None:
    sign_in(client, world.regulator.token)
    page = client.get("/console/dashboard")
    assert page.status_code == 200
    html = page.text
    assert re.search(r'<span class="n">1</span>in transit', html)
    assert "<svg" in html
    assert 'data-kind="suspected_illegal_dumping"' in html  # the chart's bar of today
    assert "330702" in html  # the region row
    assert "risk-yellow" in html or "risk-red" in html  # a critical dumping alert counts
    size = client.get("/v1/log/checkpoint").text.splitlines()[1]
    assert re.search(r'id="log-size">\d+<', html)
    assert "Latest checkpoint" in html
    assert size.isdigit()


def test_manifest_page_is_verified_by_the_cli_verifier_and_maps_the_trip(
    client: TestClient, world: World, trip: Trip
) -> None:
    sign_in(client, world.regulator.token)
    page = client.get(f"/console/manifests/{trip.manifest_id}")
    assert page.status_code == 200
    html = page.text
    assert 'id="chain-verdict"' in html
    assert "✓ chain verified" in html
    assert html.count("✓ verified") == 2  # filed, picked up
    assert re.search(r"signed by <strong>producer \d+</strong>", html)
    assert re.search(r"signed by <strong>hauler \d+</strong>", html)
    layers = _layers(html)
    assert {"route", "corridor", "track", "seal", "stop", "site", "zone"} <= layers
    bundle = client.get(f"/console/manifests/{trip.manifest_id}/bundle.json")
    assert bundle.status_code == 200
    assert "attachment" in bundle.headers["content-disposition"]
    key = client.get("/v1/log/key").text.strip()
    report = verify_bundle(bundle.json(), key)
    assert report.ok, report.render()


def test_regulators_see_only_their_regions(
    client: TestClient, world: World, trip: Trip, admin_headers: dict[str, str]
) -> None:
    other = register(client, admin_headers, "regulator", region="110000")
    sign_in(client, other.token)
    assert client.get(f"/console/manifests/{trip.manifest_id}").status_code == 404
    assert client.get(f"/console/manifests/{trip.manifest_id}/bundle.json").status_code == 404
    for alert_id in trip.alerts.values():
        assert client.get(f"/console/alerts/{alert_id}").status_code == 404
    queue = client.get("/console/alerts")
    assert queue.status_code == 200
    assert not any(a in queue.text for a in trip.alerts.values())
    dash = client.get("/console/dashboard").text
    assert re.search(r'<span class="n">0</span>in transit', dash)
    assert trip.number not in client.get("/console/manifests").text


def test_parties_see_their_own_records_read_only(
    client: TestClient, world: World, trip: Trip, admin_headers: dict[str, str]
) -> None:
    token = world.haulers[0].client._headers["Authorization"].split(" ", 1)[1]
    sign_in(client, token)
    assert client.get(f"/console/manifests/{trip.manifest_id}").status_code == 200
    alert = client.get(f"/console/alerts/{trip.alerts['route_deviation']}")
    assert alert.status_code == 200
    assert 'action="/console/alerts/' not in alert.text  # no handling forms
    assert "Read-only" in alert.text
    refused = client.post(
        f"/console/alerts/{trip.alerts['route_deviation']}/act",
        data={"csrf": csrf_of(alert.text), "action": "acknowledge", "version": 1, "note": "x"},
    )
    assert refused.status_code == 403
    evidence = client.get(f"/console/alerts/{trip.alerts['route_deviation']}/evidence.json")
    assert evidence.status_code == 403
    stranger = register(client, admin_headers, "producer")
    outsider = TestClient(client.app)
    sign_in(outsider, stranger.token)
    assert outsider.get(f"/console/manifests/{trip.manifest_id}").status_code == 404
    assert outsider.get(f"/console/alerts/{trip.alerts['route_deviation']}").status_code == 404


def test_the_printed_qr_code_opens_the_public_page_without_private_details(
    client: TestClient, world: World, trip: Trip
) -> None:
    url = verification_url(client.app.state.settings.base_url, trip.number)  # type: ignore[attr-defined]
    path = url.split("8000", 1)[1]
    assert path == f"/verify/{trip.number}"
    anonymous = TestClient(client.app)
    page = anonymous.get(path)
    assert page.status_code == 200
    assert "✓ Exists, and its signed record verifies." in page.text
    assert "in transit" in page.text
    names = [
        client.get(f"/v1/parties/{pid}", headers=world.admin).json()["name"]
        for pid in (world.producer.party_id, world.sites[0].party_id)
    ]
    for private in (
        world.producer.party_id,
        world.haulers[0].plate,
        world.haulers[0].device_id,
        trip.manifest_id,
        world.sites[0].party_id,
        *names,
    ):
        assert private not in page.text
    missing = anonymous.get("/verify/20260000999999")
    assert missing.status_code == 404
    assert "No manifest has this number" in missing.text
    malformed = anonymous.get("/verify/12ab")
    assert malformed.status_code == 422
    assert "14 digits" in malformed.text
    spaced = f"{trip.number[:7]} {trip.number[7:]}"
    typed = anonymous.get(f"/verify?number={spaced}", follow_redirects=False)
    assert typed.status_code == 303
    assert typed.headers["location"] == path


def test_static_files_and_the_vendored_leaflet_are_served(client: TestClient) -> None:
    leaflet = ("vendor/leaflet/leaflet.js", "vendor/leaflet/leaflet.css")
    for path in (*leaflet, "map.js", "console.css"):
        resp = client.get(f"/console/static/{path}")
        assert resp.status_code == 200, path
    assert "BSD 2-Clause" in client.get("/console/static/vendor/leaflet/LICENSE").text


def test_console_routes_stay_out_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not any(p.startswith(("/console", "/verify")) for p in paths)


def _routes(routes: list[Any]) -> list[Any]:
    found: list[Any] = []
    for route in routes:
        found.append(route)
        if hasattr(route, "original_router"):  # FastAPI >= 0.16x wraps included routers
            found.extend(_routes(route.original_router.routes))
    return found


def test_every_console_route_but_sign_in_needs_a_session(client: TestClient) -> None:
    open_paths = {"/console", "/console/login", "/verify", "/verify/{number}"}
    checked = 0
    for route in _routes(client.app.routes):  # type: ignore[attr-defined]
        if not isinstance(route, ConsoleRoute) or route.path in open_paths:
            continue
        path = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", route.path)
        for method in route.methods:
            resp = client.request(method, path, follow_redirects=False)
            assert resp.status_code == 303, (method, route.path, resp.status_code)
            assert resp.headers["location"].startswith("/console/login"), route.path
            checked += 1
    assert checked >= 8


def test_a_party_dashboard_counts_only_its_own_manifests(
    client: TestClient, world: World, trip: Trip, admin_headers: dict[str, str]
) -> None:
    other = register(client, admin_headers, "producer")
    sign_in(client, other.token)
    html = client.get("/console/dashboard").text
    assert re.search(r'<span class="n">0</span>in transit', html)
    token = world.producer._headers["Authorization"].split(" ", 1)[1]
    sign_in(client, token)
    html = client.get("/console/dashboard").text
    assert re.search(r'<span class="n">1</span>in transit', html)
    assert 'id="risk"' in html
