"""Every /v1 route declares who may call it; walk every route × every role and check."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.support.parties import register
from waste.auth.deps import Allow, Public
from waste.registry.domain import Role


def _declarations(route: APIRoute) -> list[Allow | Public]:
    found: list[Allow | Public] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Allow | Public):
            found.append(dep.call)
        stack.extend(dep.dependencies)
    return found


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # FastAPI >= 0.16x wraps included routers
            found.extend(_api_routes(route.original_router.routes))
    return found


def _v1_routes(client: TestClient) -> list[APIRoute]:
    routes = _api_routes(client.app.routes)  # type: ignore[attr-defined]
    return [r for r in routes if r.path.startswith("/v1")]


def test_every_v1_route_declares_exactly_one_audience(client: TestClient) -> None:
    routes = _v1_routes(client)
    assert len(routes) >= 20
    for route in routes:
        assert len(_declarations(route)) == 1, f"{route.methods} {route.path}"


@pytest.fixture
def tokens(client: TestClient, admin_headers: dict[str, str]) -> dict[Role, dict[str, str]]:
    out = {Role.ADMIN: admin_headers}
    for role in (Role.PRODUCER, Role.HAULER, Role.DISPOSAL_SITE, Role.REGULATOR):
        out[role] = register(client, admin_headers, role.value, with_key=False).headers
    return out


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    concrete = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
    kwargs: dict[str, Any] = {"headers": headers}
    if method in {"POST", "PUT", "PATCH"}:
        kwargs["json"] = {}
    return client.request(method, concrete, **kwargs)


def test_route_by_role_answers_match_declarations(
    client: TestClient, tokens: dict[Role, dict[str, str]]
) -> None:
    checked = 0
    for route in _v1_routes(client):
        (decl,) = _declarations(route)
        for method in route.methods:
            anonymous = _call(client, method, route.path, {})
            if isinstance(decl, Public):
                assert anonymous.status_code not in (401, 403), (method, route.path)
            else:
                assert anonymous.status_code == 401, (method, route.path, anonymous.text)
            for role, headers in tokens.items():
                resp = _call(client, method, route.path, headers)
                if role in decl.roles:
                    assert resp.status_code not in (401, 403), (role, method, route.path, resp.text)
                else:
                    assert resp.status_code == 403, (role, method, route.path, resp.text)
                assert resp.status_code < 500, (role, method, route.path, resp.text)
                checked += 1
    assert checked >= 100
