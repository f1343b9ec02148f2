"""No secret reaches a log: tokens, the admin token, database and broker passwords."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from gateway.broker import BrokerConfig
from tests.conftest import ADMIN_TOKEN
from tests.support.brokers import free_port
from tests.support.parties import register
from tests.support.reliability import Recorder
from waste.api import create_app
from waste.cli import app as cli
from waste.config import Settings
from waste.db import make_engine, make_session_factory

DB_PASSWORD = "Db-Pa55word-never-logged"
MQTT_PASSWORD = "Mqtt-Pa55word-never-logged"


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of every logger, at DEBUG."""
    with caplog.at_level(logging.DEBUG):
        yield caplog


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, secret in secrets.items() if secret and secret in text]


def _dead_database_url() -> str:
    return f"postgresql+psycopg://waste:{DB_PASSWORD}@127.0.0.1:{free_port()}/waste"


def test_no_secret_in_logs_of_the_token_lifecycle(
    client: TestClient,
    admin_headers: dict[str, str],
    engine: Engine,
    everything_logged: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    reliability: Recorder,
) -> None:
    """While tokens are issued, used, refused (wrong, malformed, revoked), the rate limit
    is hit, and the database is unreachable (a URL with a password), every log record at
    DEBUG and everything printed contains neither a token secret, nor the admin token,
    nor the database password."""
    actor = register(client, admin_headers, "producer", with_key=False)
    issued = client.post(
        "/v1/tokens", json={"role": "producer", "party_id": actor.id}, headers=admin_headers
    ).json()
    token = issued["token"]
    secret = token.rsplit("_", 1)[1]
    for bearer in (token, actor.token, token[:-3] + "xyz", "garbage", ADMIN_TOKEN + "x"):
        client.get("/v1/whoami", headers={"Authorization": f"Bearer {bearer}"})
    client.post(f"/v1/tokens/{issued['id']}/revoke", headers=admin_headers)
    for _ in range(12):  # past the limit: 429s
        client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    dead = make_engine(_dead_database_url())
    client.app.state.session_factory = make_session_factory(dead)  # type: ignore[attr-defined]
    elsewhere = TestClient(client.app, client=("192.0.2.1", 1))
    unavailable = elsewhere.get("/v1/whoami", headers=actor.headers)
    assert unavailable.status_code == 503
    dead.dispose()

    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in everything_logged.records
    )
    printed = "".join(capfd.readouterr()) + unavailable.text
    secrets = {
        "issued token secret": secret,
        "registered party's token": actor.token.rsplit("_", 1)[1],
        "admin token": ADMIN_TOKEN,
        "database password": DB_PASSWORD,
    }
    assert "authentication failed from testclient" in logged  # the failures are logged...
    assert not _leaks(logged, secrets), _leaks(logged, secrets)  # ...without their secrets
    assert not _leaks(printed, secrets), _leaks(printed, secrets)
    reliability(log_records=len(everything_logged.records), secrets_checked=len(secrets), leaks=0)


def test_no_password_when_the_app_or_cli_cannot_reach_the_database(
    tmp_path: pytest.TempPathFactory, everything_logged: pytest.LogCaptureFixture
) -> None:
    """``Settings``' repr hides URL passwords and the admin token; start-up against an
    unreachable PostgreSQL, and ``waste db current`` on it, fail with messages and logs
    that name no password and no admin token."""
    url = _dead_database_url()
    settings = Settings(
        data_dir=tmp_path,  # type: ignore[arg-type]
        database_url=url,
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
    )
    assert DB_PASSWORD not in repr(settings)
    assert ADMIN_TOKEN not in repr(settings)
    with pytest.raises(Exception) as failed, TestClient(create_app(settings)):
        pass
    result = CliRunner().invoke(
        cli, ["db", "current"], env={"WASTE_DATABASE_URL": url, "WASTE_DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code != 0
    texts = [str(failed.value), result.output, str(result.exception or "")]
    texts += [f"{r.getMessage()} {r.exc_text or ''}" for r in everything_logged.records]
    for text in texts:
        assert DB_PASSWORD not in text
        assert ADMIN_TOKEN not in text


def test_the_gateway_logs_broker_urls_without_the_password() -> None:
    """The gateway names its broker in logs through ``redacted()``, which hides the
    password of ``WASTE_MQTT_URL``."""
    config = BrokerConfig.from_url(f"mqtt://gateway:{MQTT_PASSWORD}@127.0.0.1:1883")
    assert MQTT_PASSWORD not in config.redacted()
    assert "gateway:***@" in config.redacted()
