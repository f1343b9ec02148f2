"""`waste manifest …` on top of the client: file, prepare, co-sign, submit, show, bundle, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.support.manifests import chain_length
from tests.support.world import World, build_world
from waste.cli import app
from waste.ledger.audit import verify_bundle
from waste.ledger.keys import save_private_key
from waste.manifests import cli as manifest_cli


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str], monkeypatch: Any) -> World:
    monkeypatch.setattr(manifest_cli, "_http", lambda url: client)
    return build_world(client, admin_headers, haulers=1, sites=1)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _as(party: Any, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Environment and key file of a party client."""
    key = tmp_path / f"{party.party_id}.pem"
    if not key.exists():
        save_private_key(party.key, key)
    token = party._headers["Authorization"].removeprefix("Bearer ")
    env = {"WASTE_URL": "http://testserver", "WASTE_TOKEN": token, "WASTE_PARTY": party.party_id}
    return env, key


def _write(tmp_path: Path, name: str, value: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(value, ensure_ascii=False))
    return path


def test_file_cosign_on_two_devices_show_and_bundle(
    world: World, runner: CliRunner, tmp_path: Path
) -> None:
    producer, hauler = world.producer, world.haulers[0].client
    p_env, p_key = _as(producer, tmp_path)
    h_env, h_key = _as(hauler, tmp_path)

    filed = runner.invoke(
        app,
        ["manifest", "file", str(_write(tmp_path, "f.json", world.filing())), "--key", str(p_key)],
        env=p_env,
    )
    assert filed.exit_code == 0, filed.output
    mid = json.loads(filed.stdout)["manifest_id"]

    body = tmp_path / "body.json"
    data = _write(tmp_path, "pickup.json", world.pickup())
    prepared = runner.invoke(
        app, ["manifest", "prepare", mid, "picked_up", str(data), "-o", str(body)], env=h_env
    )
    assert prepared.exit_code == 0, prepared.output
    sigs = []
    for key, name in ((h_key, "h.sig"), (p_key, "p.sig")):  # each on its own device
        signed = runner.invoke(app, ["manifest", "sign", str(body), "--key", str(key)])
        assert signed.exit_code == 0, signed.output
        sigs.append(_write(tmp_path, name, json.loads(signed.stdout)))
    sent = runner.invoke(
        app,
        ["manifest", "submit", str(body), "-s", str(sigs[0]), "-s", str(sigs[1])],
        env=h_env,
    )
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["state"] == "in_transit"

    number = producer.get(f"/v1/manifests/{mid}")["number"]
    shown = runner.invoke(app, ["manifest", "show", number], env=p_env)
    assert shown.exit_code == 0, shown.output
    assert f"Manifest {number}" in shown.stdout
    assert "Picked up by hauler" in shown.stdout
    as_json = runner.invoke(app, ["manifest", "show", mid, "--json"], env=p_env)
    assert json.loads(as_json.stdout)["state"] == "in_transit"

    out = tmp_path / "bundle.json"
    saved = runner.invoke(app, ["manifest", "bundle", mid, "-o", str(out)], env=p_env)
    assert saved.exit_code == 0, saved.output
    report = verify_bundle(json.loads(out.read_text()), producer.log_key())
    assert report.ok, report.render()


def test_sign_adds_to_an_envelope(world: World, runner: CliRunner, tmp_path: Path) -> None:
    env, key = _as(world.producer, tmp_path)
    mid = world.producer.file(world.filing())["manifest_id"]
    body = tmp_path / "cancel.json"
    data = _write(tmp_path, "reason.json", {"reason": "Plant closed"})
    runner.invoke(
        app, ["manifest", "prepare", mid, "cancelled", str(data), "-o", str(body)], env=env
    )
    signed = runner.invoke(app, ["manifest", "sign", str(body), "--key", str(key)])
    envelope = {"body": json.loads(body.read_text()), "signatures": []}
    envelope_file = _write(tmp_path, "env.json", envelope)
    again = runner.invoke(app, ["manifest", "sign", str(envelope_file), "--key", str(key)])
    assert json.loads(again.stdout)["signatures"] == [json.loads(signed.stdout)]
    sent = runner.invoke(
        app,
        ["manifest", "submit", str(_write(tmp_path, "e2.json", json.loads(again.stdout)))],
        env=env,
    )
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["state"] == "cancelled"


def test_bad_input_gives_a_message_and_an_exit_code_not_a_traceback(
    world: World, runner: CliRunner, tmp_path: Path, monkeypatch: Any
) -> None:
    env, key = _as(world.producer, tmp_path)
    good = _write(tmp_path, "good.json", world.filing())
    not_json = tmp_path / "bad.json"
    not_json.write_text('{"a": 1, "a": 2}')
    not_a_key = _write(tmp_path, "key.pem", {"no": "key"})
    refused = _write(tmp_path, "refused.json", world.filing(corridor_m=1))
    cases: list[tuple[list[str], int, str]] = [
        (["file", str(tmp_path / "missing.json"), "--key", str(key)], 2, "cannot read"),
        (["file", str(not_json), "--key", str(key)], 2, "not valid JSON"),
        (["file", str(good), "--key", str(not_a_key)], 2, "not an Ed25519 private key"),
        (["file", str(good), "--key", str(key), "--at", "noon"], 2, "--at"),
        (["file", str(refused), "--key", str(key)], 1, "data.corridor_m"),
        (["sign", str(good), "--key", str(key)], 2, "body."),
        (["submit", str(good)], 2, "body."),
        (["show", "00000000-0000-0000-0000-000000000000"], 1, "refused (404)"),
        (["bundle", "nope", "-o", str(tmp_path / "no" / "dir.json")], 1, "refused (404)"),
    ]
    for args, code, message in cases:
        result = runner.invoke(app, ["manifest", *args], env=env)
        assert result.exit_code == code, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        ), (args, result.exception)
    missing_token = runner.invoke(app, ["manifest", "show", "x"], env={"WASTE_TOKEN": ""})
    assert missing_token.exit_code != 0
    assert chain_length(world, world.producer.file(world.filing())["manifest_id"]) == 1

    def unreachable(url: str) -> httpx.Client:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        return httpx.Client(base_url=url, transport=httpx.MockTransport(refuse))

    monkeypatch.setattr(manifest_cli, "_http", unreachable)
    down = runner.invoke(app, ["manifest", "show", "x"], env=env)
    assert down.exit_code == 3
    assert "cannot reach the server" in down.stderr
