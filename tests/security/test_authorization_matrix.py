# ruff: noqa: E501  (the tables below are wider than a line, and read best so)
"""Authorization matrix: every route × every role × own / other party's / other region's data.

The expected answers are the tables below, checked against the running app
with seeded data (``tests/security/_seed.py``): three groups of producer,
hauler and disposal site, each with a manifest in custody — the callers' own
(region 330702), another group in the same region, and a group in another
province (440305) — and a regulator scoped to 330700. Each request is a
realistic one (``tests/security/_requests.py``): a valid body and an existing
target, so the status shows what the caller may do.

Console pages (``/console…``) are called through a browser session signed in
with the caller's token; anonymous callers are redirected to the sign-in page
(303). Devices have no HTTP credentials (they speak MQTT only, with their own keys),
so over HTTP a device is the anonymous caller; what a device may do on the
broker is in ``test_device_impersonation.py``.

A route the app serves that is missing from ``MATRIX`` fails the test, and so
does a row for a route that no longer exists: add new routes here when you add
them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from tests.security._requests import BUILDERS, CALLERS, Ctx, subject
from tests.security._requests import _fresh_filed as _fresh
from tests.security._seed import SCOPES, Seeded, seed
from tests.support.reliability import Recorder
from waste.ledger.envelope import event_hash, make_body, sign_body

# Cells: the status for the caller's own group / another group in the region / another
# region ("200/404/404"), or one status for all three (and for routes without a target).
MATRIX = """
| route                                                | admin       | regulator   | producer    | hauler      | site        | anon |
|------------------------------------------------------|-------------|-------------|-------------|-------------|-------------|------|
| POST /v1/tokens                                      | 201         | 403         | 403         | 403         | 403         | 401  |
| GET /v1/tokens                                       | 200         | 403         | 403         | 403         | 403         | 401  |
| POST /v1/tokens/{token_id}/revoke                    | 200         | 403         | 403         | 403         | 403         | 401  |
| GET /v1/whoami                                       | 200         | 200         | 200         | 200         | 200         | 401  |
| POST /v1/parties                                     | 201         | 403         | 403         | 403         | 403         | 401  |
| GET /v1/parties                                      | 200         | 200         | 200         | 200         | 200         | 401  |
| GET /v1/parties/{party_id}                           | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| POST /v1/parties/{party_id}/keys                     | 201         | 403/403/404 | 201/404/404 | 201/404/404 | 201/404/404 | 401  |
| GET /v1/parties/{party_id}/keys                      | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| POST /v1/parties/{party_id}/keys/{key_id}/rotate     | 201         | 403/403/404 | 201/404/404 | 201/404/404 | 201/404/404 | 401  |
| POST /v1/parties/{party_id}/keys/{key_id}/revoke     | 200         | 403/403/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| GET /v1/keys/{key_id}                                | 200         | 200         | 200         | 200         | 200         | 401  |
| POST /v1/parties/{party_id}/vehicles                 | 201         | 403         | 403         | 201/404/404 | 403         | 401  |
| GET /v1/parties/{party_id}/vehicles                  | 200         | 200/200/404 | 404         | 200/404/404 | 404         | 401  |
| POST /v1/devices                                     | 201         | 403         | 403         | 201/404/404 | 403         | 401  |
| GET /v1/devices/{device_id}                          | 200         | 200/200/404 | 404         | 200/404/404 | 404         | 401  |
| POST /v1/parties/{party_id}/permits                  | 201         | 201/201/404 | 403         | 403         | 403         | 401  |
| GET /v1/parties/{party_id}/permits                   | 200         | 200/200/404 | 404         | 404         | 200/404/404 | 401  |
| POST /v1/zones                                       | 201         | 201/201/403 | 403         | 403         | 403         | 401  |
| GET /v1/zones                                        | 200         | 200         | 200         | 200         | 200         | 401  |
| GET /v1/waste-codes                                  | 200         | 200         | 200         | 200         | 200         | 401  |
| GET /v1/waste-codes/{code}                           | 200         | 200         | 200         | 200         | 200         | 401  |
| POST /v1/manifests                                   | 201         | 403         | 201/403/403 | 403         | 403         | 401  |
| POST /v1/manifests/{manifest_id}/events              | 201         | 403         | 201/403/403 | 403         | 403         | 401  |
| GET /v1/manifests/{manifest_id}/events               | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| GET /v1/manifests/{manifest_id}/bundle               | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| GET /v1/manifests                                    | 200         | 200         | 200         | 200         | 200         | 401  |
| GET /v1/manifests/overdue                            | 200         | 200         | 200         | 200         | 200         | 401  |
| GET /v1/manifests/export.csv                         | 200         | 200         | 200         | 200         | 200         | 401  |
| GET /v1/manifests/by-number/{number}                 | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| GET /v1/manifests/{manifest_id}                      | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| GET /v1/manifests/{manifest_id}/print                | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| GET /v1/parties/{party_id}/ledger                    | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| GET /v1/parties/{party_id}/ledger.csv                | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| GET /v1/public/manifests/{number}                    | 200         | 200         | 200         | 200         | 200         | 200  |
| POST /v1/webhooks                                    | 201         | 422         | 201/422/422 | 201/422/422 | 201/422/422 | 401  |
| GET /v1/webhooks                                     | 200         | 200         | 200         | 200         | 200         | 401  |
| GET /v1/webhooks/{subscription_id}                   | 200         | 404         | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| DELETE /v1/webhooks/{subscription_id}                | 204         | 404         | 204/404/404 | 204/404/404 | 204/404/404 | 401  |
| GET /v1/webhooks/{subscription_id}/deliveries        | 200         | 404         | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| GET /v1/log/checkpoint                               | 200         | 200         | 200         | 200         | 200         | 200  |
| GET /v1/log/key                                      | 200         | 200         | 200         | 200         | 200         | 200  |
| GET /v1/log/proof/inclusion                          | 200         | 200         | 200         | 200         | 200         | 200  |
| GET /v1/log/proof/consistency                        | 200         | 200         | 200         | 200         | 200         | 200  |
| GET /v1/log/entries                                  | 200         | 200         | 403         | 403         | 403         | 401  |
| POST /v1/log/witnesses                               | 201         | 201         | 403         | 403         | 403         | 401  |
| POST /v1/log/cosignatures                            | 201         | 201         | 403         | 403         | 403         | 401  |
| GET /v1/log/checkpoints/{size}                       | 200         | 200         | 200         | 200         | 200         | 200  |
| GET /v1/alerts                                       | 200         | 200         | 200         | 200         | 200         | 401  |
| GET /v1/alerts/summary                               | 200         | 200         | 403         | 403         | 403         | 401  |
| POST /v1/alerts/escalate-overdue                     | 200         | 403         | 403         | 403         | 403         | 401  |
| GET /v1/alerts/{alert_id}                            | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| GET /v1/alerts/{alert_id}/evidence                   | 200         | 200/200/404 | 403         | 403         | 403         | 401  |
| POST /v1/alerts/{alert_id}/transitions               | 403         | 201/201/404 | 403         | 403         | 403         | 401  |
| GET /v1/parties/{party_id}/risk                      | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 401  |
| GET /v1/risk/parties                                 | 200         | 200         | 403         | 403         | 403         | 401  |
| GET /console                                         | 303         | 303         | 303         | 303         | 303         | 303  |
| GET /console/login                                   | 200         | 200         | 200         | 200         | 200         | 200  |
| POST /console/login                                  | 303         | 303         | 303         | 303         | 303         | 401  |
| POST /console/logout                                 | 303         | 303         | 303         | 303         | 303         | 303  |
| GET /console/dashboard                               | 200         | 200         | 200         | 200         | 200         | 303  |
| GET /console/manifests                               | 200         | 200         | 200         | 200         | 200         | 303  |
| GET /console/manifests/{manifest_id}                 | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 303  |
| GET /console/manifests/{manifest_id}/bundle.json     | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 303  |
| GET /console/alerts                                  | 200         | 200         | 200         | 200         | 200         | 303  |
| GET /console/alerts/{alert_id}                       | 200         | 200/200/404 | 200/404/404 | 200/404/404 | 200/404/404 | 303  |
| GET /console/alerts/{alert_id}/evidence.json         | 200         | 200/200/404 | 403         | 403         | 403         | 303  |
| POST /console/alerts/{alert_id}/act                  | 403         | 303/303/404 | 403/404/404 | 403/404/404 | 403/404/404 | 303  |
| MOUNT /console/static                                | 200         | 200         | 200         | 200         | 200         | 200  |
| GET /verify                                          | 200         | 200         | 200         | 200         | 200         | 200  |
| GET /verify/{number}                                 | 200         | 200         | 200         | 200         | 200         | 200  |
| GET /healthz                                         | 200         | 200         | 200         | 200         | 200         | 200  |
| GET /readyz                                          | 200         | 200         | 200         | 200         | 200         | 200  |
"""

# Which groups' records a listing shows each caller: the manifest (by number), the
# party of the caller's kind (a producer for admins and regulators), or its webhook.
LISTS = """
| route                        | admin            | regulator | producer | hauler | site |
|------------------------------|------------------|-----------|----------|--------|------|
| GET /v1/manifests            | own,other,region | own,other | own      | own    | own  |
| GET /v1/manifests/export.csv | own,other,region | own,other | own      | own    | own  |
| GET /v1/parties              | own,other,region | own,other | own      | own    | own  |
| GET /v1/webhooks             | own,other,region | -         | own      | own    | own  |
| GET /v1/alerts               | own,other,region | own,other | own      | own    | own  |
| GET /console/manifests       | own,other,region | own,other | own      | own    | own  |
| GET /console/alerts          | own,other,region | own,other | own      | own    | own  |
"""


def parse_table(text: str) -> dict[str, dict[str, str]]:
    """``{route: {column: cell}}`` of a markdown-like table."""
    lines = [line.strip().strip("|") for line in text.strip().splitlines()]
    header = [h.strip() for h in lines[0].split("|")]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.split("|")]
        assert len(cells) == len(header), f"row has {len(cells)} cells: {line}"
        assert cells[0] not in rows, f"route listed twice: {cells[0]}"
        rows[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return rows


def expected_statuses(row: dict[str, str]) -> dict[tuple[str, str], int]:
    """``{(caller, scope): status}``; scope ``-`` for a route whose row has no ``a/b/c`` cell."""
    scoped = any("/" in cell for cell in row.values())
    out: dict[tuple[str, str], int] = {}
    for caller in CALLERS:
        parts = row[caller].split("/")
        if scoped:
            codes = parts if len(parts) == 3 else parts * 3
            assert len(codes) == 3, f"{caller}: {row[caller]}"
            out.update(
                {(caller, scope): int(code) for scope, code in zip(SCOPES, codes, strict=True)}
            )
        else:
            out[(caller, "-")] = int(row[caller])
    return out


def served_routes(routes: list[Any], prefix: str = "") -> Iterator[str]:
    """ "METHOD /path" of every route the app serves (mounted apps as "MOUNT /path")."""
    for route in routes:
        if isinstance(route, APIRoute | Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD" or "GET" not in (route.methods or ()):
                    yield f"{method} {prefix}{route.path}"
        elif isinstance(route, Mount):
            inner = getattr(route, "routes", None)
            if inner and not getattr(route, "app", None).__class__.__name__.endswith("Files"):
                yield from served_routes(list(inner), prefix + route.path)
            else:
                yield f"MOUNT {prefix}{route.path}"
        elif hasattr(route, "original_router"):  # FastAPI wraps included routers
            yield from served_routes(route.original_router.routes, prefix)


@pytest.fixture
def seeded(client: TestClient, admin_headers: dict[str, str]) -> Seeded:
    """Three groups with manifests in custody, and the regulators."""
    return seed(client, admin_headers)


def test_the_matrix_names_every_route_the_app_serves(client: TestClient) -> None:
    """Every route the app serves has a row in MATRIX (and a request builder), and every
    row names a route that exists: a new endpoint cannot ship without its authorization
    written down."""
    served = set(served_routes(client.app.routes))  # type: ignore[attr-defined]
    listed = set(parse_table(MATRIX))
    served -= {"GET /openapi.json", "GET /docs", "GET /docs/oauth2-redirect", "GET /redoc"}
    assert not sorted(served - listed), f"routes missing from MATRIX: {sorted(served - listed)}"
    assert not sorted(listed - served), f"MATRIX rows for no route: {sorted(listed - served)}"
    assert not sorted(listed - set(BUILDERS)), (
        f"no request builder: {sorted(listed - set(BUILDERS))}"
    )


def test_every_route_answers_every_role_as_the_matrix_says(
    seeded: Seeded, reliability: Recorder
) -> None:
    """Every route × admin, regulator, producer, hauler, disposal site, anonymous × the
    caller's own records, another party's in the same region, and another region's:
    the status is exactly the table's. Other parties' and other regions' records answer
    404 (their existence is not disclosed) or 403; no cell answers 5xx."""
    ctx = Ctx(seeded)
    table = parse_table(MATRIX)
    wrong: list[str] = []
    requests = 0
    for route, row in table.items():
        for (caller, scope), status in expected_statuses(row).items():
            call = BUILDERS[route](ctx, caller, scope if scope != "-" else "own")
            if call.browser is not None:  # the console: the session cookie, no bearer token
                resp = call.browser.request(
                    call.method, call.path, data=call.form, params=call.params or None
                )
            else:
                resp = seeded.http.request(
                    call.method,
                    call.path,
                    json=call.json,
                    params=call.params or None,
                    headers=ctx.headers(caller),
                )
            requests += 1
            if resp.status_code != status:
                title = re.search(r"<title>(.*?)</title>", resp.text)
                shown = title.group(1) if title else resp.text[:160]
                wrong.append(
                    f"{route} as {caller} on {scope}: {resp.status_code}, expected {status}"
                    f" ({shown})"
                )
    reliability(
        routes=len(table),
        roles=len(CALLERS),
        scopes=len(SCOPES),
        requests=requests,
        mismatches=len(wrong),
    )
    assert not wrong, "\n".join(wrong)


def test_listings_show_each_role_only_what_it_may_see(seeded: Seeded) -> None:
    """Listings and exports (manifests, CSV export, parties, webhooks, alerts, and the
    console's manifest and alert lists) include the records of exactly the groups the
    LISTS table names for each caller, and no others."""
    ctx = Ctx(seeded)
    for scope in SCOPES:  # each group's alert and webhook subscriptions
        ctx.alert(scope)
        for caller in ("producer", "hauler", "site"):
            BUILDERS["GET /v1/webhooks/{subscription_id}"](ctx, caller, scope)
    wrong: list[str] = []
    for route, row in parse_table(LISTS).items():
        for caller, cell in row.items():
            visible = set() if cell == "-" else set(cell.split(","))
            call = BUILDERS[route](ctx, caller, "own")
            http = call.browser or seeded.http
            resp = http.get(call.path, params=call.params or None, headers=ctx.headers(caller))
            assert resp.status_code == 200, (route, caller, resp.text)
            for scope in SCOPES:
                if "/manifests" in route:
                    probe = seeded.group(scope).number
                elif "/alerts" in route:
                    probe = ctx.alert(scope)
                elif route == "GET /v1/parties":
                    probe = subject(ctx, caller, scope).id
                else:
                    probe = ctx.cache.get(("hook", subject(ctx, caller, scope).id), "?")
                if (probe in resp.text) != (scope in visible):
                    wrong.append(f"{route} as {caller}: {scope} shown={probe in resp.text}")
    assert not wrong, "\n".join(wrong)


def test_signing_an_event_does_not_open_another_partys_manifest(seeded: Seeded) -> None:
    """A hauler that signs a `picked_up` for a manifest of another group (one it is not
    on) gets 404, as for any manifest it may not see: signing does not disclose the
    manifest, its state or what it lacks, and nothing is appended."""
    ctx = Ctx(seeded)
    other = seeded.group("other")
    manifest_id = _fresh(ctx, other)
    own = seeded.group("own")
    hauler = own.client(seeded.http, "hauler")
    events = seeded.http.get(f"/v1/manifests/{manifest_id}/events", headers=seeded.admin).json()
    body = make_body(
        manifest_id=manifest_id,
        seq=1,
        prev_hash=event_hash(events[-1]["body"]),
        type="picked_up",
        actor=own.hauler.id,
        at=datetime.now(UTC),
        data={
            "hauler": own.hauler.id,
            "vehicle": own.plate,
            "device_id": own.device_id,
            "seal_id": "SEAL-X",
            "mass_kg": 700.0,
        },
    )
    resp = seeded.http.post(
        f"/v1/manifests/{manifest_id}/events",
        json=sign_body(body, [hauler.key]),
        headers=own.hauler.headers,
    )
    assert resp.status_code == 404, resp.text
    after = seeded.http.get(f"/v1/manifests/{manifest_id}/events", headers=seeded.admin).json()
    assert len(after) == 1
