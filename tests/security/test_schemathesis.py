"""schemathesis against the OpenAPI schema, in process, authenticated, on every operation.

The app runs on this test's database (SQLite, or PostgreSQL in CI) with a small
registry and a manifest in custody, so that a share of the generated cases use
real ids and reach past the 404s. Every operation gets schema-conforming cases
as an admin and as a regulator, and schema-violating ones as an admin; every
response must not be a 5xx, must carry a documented status code and content
type, and must match its documented schema (problem responses included: they
are declared on every operation by ``waste/problems.py``).

``WASTE_SCHEMATHESIS_EXAMPLES`` (default 10) bounds the valid examples per
operation as an admin (half as many as a regulator, and invalid ones); raise it
for a longer hunt.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.parties import register
from tests.support.reliability import Recorder
from tests.support.world import World, build_world
from waste.config import Settings

EXAMPLES = int(os.environ.get("WASTE_SCHEMATHESIS_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
_SENT = ("method", "url", "headers", "params", "json", "content", "data", "files", "cookies")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No auth rate limit: generated cases may present the same token many times."""
    settings.auth_max_failures = 1_000_000
    settings.checkpoint_interval_s = 3600
    return settings


def _real_ids(world: World, admin: dict[str, str]) -> dict[str, list[str]]:
    """Existing ids by path parameter name, to put into some generated cases."""
    http = world.http
    producer = world.producer
    manifest = producer.file(world.filing())
    hauler = world.haulers[0]
    hauler.client.pick_up(manifest["manifest_id"], world.pickup(), cosigners=[producer.key])
    keys = http.get(f"/v1/parties/{producer.party_id}/keys", headers=admin).json()
    hook = http.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "party_id": producer.party_id},
        headers=admin,
    ).json()
    alerts = http.get("/v1/alerts", headers=admin)
    alert_ids = re.findall(r'"id":\s*"([^"]+)"', alerts.text) if alerts.status_code == 200 else []
    return {
        "party_id": [producer.party_id, hauler.client.party_id, world.sites[0].party_id],
        "key_id": [k["key_id"] for k in keys],
        "device_id": [hauler.device_id],
        "manifest_id": [manifest["manifest_id"]],
        "number": [manifest["number"]],
        "subscription_id": [hook["id"]],
        "size": ["1", "2"],
        "code": ["900-041-49", "HW08"],
        "alert_id": alert_ids[:2],
    }


def _run_operation(
    operation: Any,
    mode: GenerationMode,
    examples: int,
    headers: dict[str, str],
    http: TestClient,
    ids: dict[str, list[str]],
    tally: Counter[str],
    failures: list[str],
) -> None:
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        for name in list(case.path_parameters or {}):
            if ids.get(name) and data.draw(st.booleans(), label=f"real {name}"):
                case.path_parameters[name] = data.draw(st.sampled_from(ids[name]))
        sent = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
        if isinstance(sent.get("data"), bytes | str):
            sent["content"] = sent.pop("data")
        resp = http.request(**{k: v for k, v in sent.items() if k in _SENT and v})
        tally["cases"] += 1
        tally[f"{resp.status_code // 100}xx"] += 1
        try:
            case.validate_response(resp, checks=CHECKS)
        except BaseException as exc:  # schemathesis raises a group of check failures
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(
                f"{operation.label} [{mode}] ({resp.status_code}): {str(exc).strip()[:600]}"
            )

    try:
        run()
    except Unsatisfiable:  # nothing to get wrong (no parameters, no body): no invalid cases
        tally["operations_without_invalid_cases"] += 1


def test_no_server_error_or_schema_violation_on_any_operation(
    client: TestClient, admin_headers: dict[str, str], reliability: Recorder
) -> None:
    """Generated requests to every operation of the OpenAPI schema — valid ones as an admin
    and as a regulator, invalid ones as an admin — never get a 5xx, an undocumented status
    code or content type, or a response that violates its documented schema."""
    world = build_world(client, admin_headers, haulers=1, sites=1)
    regulator = register(client, admin_headers, "regulator", region="330702", regions=["330000"])
    ids = _real_ids(world, admin_headers)
    http = TestClient(client.app, raise_server_exceptions=False)  # 500s are answers to check
    schema = schemathesis.openapi.from_dict(client.app.openapi())  # type: ignore[attr-defined]
    runs: list[tuple[GenerationMode, int, dict[str, str]]] = [
        (GenerationMode.POSITIVE, EXAMPLES, admin_headers),
        (GenerationMode.POSITIVE, max(1, EXAMPLES // 2), regulator.headers),
        (GenerationMode.NEGATIVE, max(1, EXAMPLES // 2), admin_headers),
    ]
    tally: Counter[str] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode, examples, headers in runs:
            _run_operation(operation, mode, examples, headers, http, ids, tally, failures)
    reliability(
        operations=len(operations),
        cases=tally["cases"],
        statuses={k: v for k, v in sorted(tally.items()) if k.endswith("xx")},
        operations_without_invalid_cases=tally["operations_without_invalid_cases"],
        examples_as_admin=EXAMPLES,
        failures=len(failures),
    )
    assert not failures, "\n\n".join(failures[:20])


NUL_REQUESTS = [
    ("GET", "/v1/webhooks?party_id=%00"),
    ("GET", "/v1/tokens?party_id=%00"),
    ("GET", "/v1/parties/%00"),
    ("GET", "/v1/parties/%00/risk"),
    ("GET", "/v1/manifests/%00"),
    ("GET", "/v1/manifests?counterparty=%00"),
    ("GET", "/v1/keys/%00"),
    ("GET", "/v1/devices/%00"),
    ("GET", "/v1/alerts/%00"),
    ("GET", "/v1/webhooks/%00"),
    ("GET", "/console/manifests/%00"),
    ("POST", "/v1/parties"),
]


def test_nul_characters_are_refused_with_422_not_500(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    """NUL characters in path, query or body — which PostgreSQL text can neither hold nor
    match (found by the run above on PostgreSQL) — never get a 5xx: 422 where the database
    refuses them, else the answer any other unknown value gets (SQLite stores them)."""
    http = TestClient(client.app, raise_server_exceptions=False, follow_redirects=False)
    body = {"kind": "producer", "name": "a\u0000b", "uscc": "\u0000", "region_code": "330702"}
    for method, path in NUL_REQUESTS:
        resp = http.request(
            method, path, headers=admin_headers, json=body if method == "POST" else None
        )
        assert resp.status_code < 500, (method, path, resp.status_code, resp.text)
