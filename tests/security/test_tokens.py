"""Bearer tokens: stored hashed, compared in constant time, expirable, revocable, and
failed attempts rate-limited per client address (``waste/auth/ratelimit.py``)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

import waste.auth.service as auth_service
import waste.auth.tokens as tokens_module
from tests.support.parties import register
from tests.support.reliability import Recorder
from waste.auth.ratelimit import FailureLimiter
from waste.clock import utcnow
from waste.config import Settings
from waste.errors import RateLimited
from waste.registry.models import ApiToken

WRONG = "wst_0123456789abcdef_" + "A" * 43  # well formed, stands for no one


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A small limit, so that the tests reach it."""
    settings.auth_max_failures = 5
    settings.auth_failure_window_s = 60.0
    return settings


def _issue(client: TestClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    producer = register(client, admin, "producer", with_key=False)
    resp = client.post("/v1/tokens", json={"role": "producer", "party_id": producer.id, **body},
                       headers=admin)  # fmt: skip
    assert resp.status_code == 201, resp.text
    issued: dict[str, Any] = resp.json()
    return issued


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_only_the_sha256_of_the_secret_is_stored(
    client: TestClient, admin_headers: dict[str, str], engine: Engine
) -> None:
    """The token table holds the SHA-256 of the secret and nothing from which the token
    could be rebuilt; listing tokens never shows a secret or its hash."""
    issued = _issue(client, admin_headers)
    token = issued["token"]
    token_id, secret = tokens_module.split(token) or ("", "")
    with engine.connect() as conn:
        row = conn.execute(select(ApiToken.__table__).where(ApiToken.id == token_id)).one()
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    for value in row:
        assert secret not in str(value)
        assert token not in str(value)
    listed = client.get("/v1/tokens", headers=admin_headers).text
    assert secret not in listed
    assert row.secret_sha256 not in listed


def test_secrets_are_compared_in_constant_time(
    client: TestClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every presented secret (right, wrong, or for an unknown token id) and the bootstrap
    admin token are compared with ``hmac.compare_digest`` on equal-length values, so the
    time taken does not reveal how much of a guess was right, nor whether an id exists."""
    issued = _issue(client, admin_headers)
    compared: list[tuple[int, int]] = []
    original = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((len(a), len(b)))
        return original(a, b)

    monkeypatch.setattr(tokens_module.hmac, "compare_digest", spy)
    right = client.get("/v1/whoami", headers=_bearer(issued["token"]))
    wrong_secret = issued["token"][:-4] + "AAAA"
    wrong = client.get("/v1/whoami", headers=_bearer(wrong_secret))
    unknown = client.get("/v1/whoami", headers=_bearer(WRONG))
    admin = client.get("/v1/whoami", headers=admin_headers)
    assert (right.status_code, wrong.status_code, unknown.status_code) == (200, 401, 401)
    assert admin.status_code == 200
    # each call compares SHA-256 digests with the admin token's (32 bytes each), and each
    # non-admin call then the secret's hash with the stored one (64 hex digits each)
    assert compared.count((32, 32)) == 4
    assert compared.count((64, 64)) == 3
    assert len(compared) == 7


def test_an_expired_token_answers_401(
    client: TestClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token with ``expires_at`` works until then and answers 401 "token expired" from
    then on (the clock is moved, not waited for); one cannot issue an already expired one."""
    expires = utcnow() + timedelta(hours=1)
    issued = _issue(client, admin_headers, expires_at=expires.isoformat())
    assert client.get("/v1/whoami", headers=_bearer(issued["token"])).status_code == 200
    monkeypatch.setattr(auth_service, "utcnow", lambda: expires + timedelta(seconds=1))
    resp = client.get("/v1/whoami", headers=_bearer(issued["token"]))
    assert resp.status_code == 401
    assert resp.json()["detail"] == "token expired"
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    monkeypatch.undo()
    producer = register(client, admin_headers, "producer", with_key=False)
    past = client.post(
        "/v1/tokens",
        json={
            "role": "producer",
            "party_id": producer.id,
            "expires_at": (utcnow() - timedelta(seconds=1)).isoformat(),
        },
        headers=admin_headers,
    )
    assert past.status_code == 422
    assert past.json()["errors"][0]["field"] == "expires_at"


def test_a_revoked_token_answers_401_at_once(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    """Revoking takes effect on the next request; revoking twice keeps the first time."""
    issued = _issue(client, admin_headers)
    assert client.get("/v1/whoami", headers=_bearer(issued["token"])).status_code == 200
    first = client.post(f"/v1/tokens/{issued['id']}/revoke", headers=admin_headers).json()
    resp = client.get("/v1/whoami", headers=_bearer(issued["token"]))
    assert resp.status_code == 401
    assert resp.json()["detail"] == "token revoked"
    again = client.post(f"/v1/tokens/{issued['id']}/revoke", headers=admin_headers).json()
    assert again["revoked_at"] == first["revoked_at"]


def test_failed_authentication_is_rate_limited_per_address(
    client: TestClient, admin_headers: dict[str, str], reliability: Recorder
) -> None:
    """After ``WASTE_AUTH_MAX_FAILURES`` wrong tokens from one address within
    ``WASTE_AUTH_FAILURE_WINDOW_S``, every attempt from it (a right token too) answers 429
    with ``Retry-After`` and a problem body, until the window has passed; other addresses,
    and requests with no token at all, are not affected."""
    now = [1000.0]
    limiter = FailureLimiter(max_failures=5, window_s=60, clock=lambda: now[0])
    client.app.state.auth_limiter = limiter  # type: ignore[attr-defined]
    issued = _issue(client, admin_headers)
    statuses = [client.get("/v1/whoami", headers=_bearer(WRONG)).status_code for _ in range(5)]
    assert statuses == [401] * 5
    assert client.get("/v1/whoami").status_code == 401  # no token: not counted
    blocked = client.get("/v1/whoami", headers=_bearer(issued["token"]))
    assert blocked.status_code == 429
    assert blocked.headers["content-type"] == "application/problem+json"
    problem = blocked.json()
    assert problem["type"] == "https://waste-custody.org/problems/rate-limited"
    assert blocked.headers["Retry-After"] == str(problem["retry_after"]) == "60"
    now[0] += 30
    assert client.get("/v1/whoami", headers=admin_headers).headers["Retry-After"] == "30"
    elsewhere = TestClient(client.app, client=("203.0.113.9", 40000))
    assert elsewhere.get("/v1/whoami", headers=_bearer(issued["token"])).status_code == 200
    now[0] += 30.5
    assert client.get("/v1/whoami", headers=_bearer(issued["token"])).status_code == 200
    reliability(max_failures=5, window_s=60, answered_401=5, then=429, retry_after_s=60)


def test_the_limit_comes_from_the_settings_and_guards_any_login(client: TestClient) -> None:
    """The app's limiter is built from the settings on first use, and
    ``authenticate_request`` (what the console's login form calls) counts and refuses."""
    from starlette.requests import Request

    from waste.auth.deps import auth_limiter, authenticate_request

    scope = {"type": "http", "app": client.app, "client": ("198.51.100.7", 1), "headers": []}
    request = Request(scope)
    limiter = auth_limiter(request)
    assert (limiter.max_failures, limiter.window_s) == (5, 60.0)
    for _ in range(5):
        with pytest.raises(auth_service.Unauthenticated):
            authenticate_request(request, WRONG)
    with pytest.raises(RateLimited) as refused:
        authenticate_request(request, WRONG)
    assert refused.value.extra["retry_after"] >= 1


def test_the_limiter_forgets_old_failures_and_bounds_its_memory() -> None:
    """Failures leave the sliding window after ``window_s``; at most ``max_clients``
    addresses are tracked, the longest quiet forgotten first."""
    now = [0.0]
    limiter = FailureLimiter(max_failures=2, window_s=10, max_clients=3, clock=lambda: now[0])
    limiter.failed("a")
    now[0] = 5
    limiter.failed("a")
    assert limiter.retry_after("a") == 5
    now[0] = 10.5
    assert limiter.retry_after("a") == 0
    assert limiter.failures("a") == 1
    for client in ("b", "c", "d", "e"):
        limiter.failed(client)
    assert limiter.failures("a") == 0  # evicted
    assert [limiter.failures(c) for c in "bcde"] == [0, 1, 1, 1]
    with pytest.raises(ValueError):
        FailureLimiter(max_failures=0, window_s=1)
