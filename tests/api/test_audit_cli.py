"""``waste audit``: bundles verified offline, the log verified in place, usage errors exit 2."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from tests.support.world import build_world
from waste.cli import app
from waste.config import Settings
from waste.ledger.checkpoint import NoteSigner
from waste.ledger.keys import generate_private_key
from waste.ledger.models import LogEntry

runner = CliRunner()
OTHER_KEY = NoteSigner("waste-custody.local/log", generate_private_key()).vkey()


@pytest.fixture
def bundle(client: TestClient, admin_headers: dict[str, str]) -> tuple[dict[str, Any], str]:
    """A downloaded bundle of a disposed manifest, and the log key pinned beforehand."""
    world = build_world(client, admin_headers)
    producer, hauler, site = world.producer, world.haulers[0], world.sites[0]
    vkey = producer.log_key()
    mid = producer.file(world.filing())["manifest_id"]
    hauler.client.pick_up(mid, world.pickup(), cosigners=[producer.key])
    receipt = {
        "mass_kg": 794.0,
        "accepted_kg": 794.0,
        "refused_kg": 0,
        "seal_id": f"SEAL-{hauler.device_id}",
        "seal_intact": True,
    }
    site.receive(mid, receipt)
    site.dispose(mid, {"operation": "D10", "mass_kg": 794.0})
    return site.bundle(mid), vkey


def _write(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value) if not isinstance(value, str) else value, "utf-8")
    return str(path)


def test_a_downloaded_bundle_verifies(bundle: tuple[dict[str, Any], str], tmp_path: Path) -> None:
    data, vkey = bundle
    path = _write(tmp_path, "bundle.json", data)
    result = runner.invoke(app, ["audit", "verify", path, "--log-key", vkey])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("VERIFIED: manifest ")
    key_file = _write(tmp_path, "log.vkey", vkey + "\n")  # the key as GET /v1/log/key serves it
    assert runner.invoke(app, ["audit", "verify", path, "--log-key", key_file]).exit_code == 0


def test_an_edited_bundle_fails_at_the_edited_event(
    bundle: tuple[dict[str, Any], str], tmp_path: Path
) -> None:
    data, vkey = bundle
    edited = copy.deepcopy(data)
    edited["entries"][2]["entry"]["payload"]["body"]["data"]["accepted_kg"] = 900.0
    path = _write(tmp_path, "edited.json", edited)
    result = runner.invoke(app, ["audit", "verify", path, "--log-key", vkey])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("FAILED: event seq 2 (leaf 2): ")


def test_a_bundle_checked_against_another_key_fails(
    bundle: tuple[dict[str, Any], str], tmp_path: Path
) -> None:
    data, _ = bundle
    path = _write(tmp_path, "b.json", data)
    result = runner.invoke(app, ["audit", "verify", path, "--log-key", OTHER_KEY])
    assert result.exit_code == 1, result.output
    assert "FAILED: checkpoint" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("\x00\x01 not json at all", "is not JSON"),
        ('{"format": "waste-custody-audit-bundle/v1", "a": 1, "a": 2}', "duplicate object key"),
        ("[1, 2, 3]", "is not an audit bundle"),
    ],
)
def test_garbage_exits_2_with_a_clear_message(tmp_path: Path, content: str, message: str) -> None:
    path = _write(tmp_path, "garbage.json", content)
    result = runner.invoke(app, ["audit", "verify", path, "--log-key", OTHER_KEY])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["audit", "verify", str(tmp_path / "nope.json"), "--log-key", "x"])
    assert missing.exit_code == 2
    assert "cannot read" in missing.output
    path = _write(tmp_path, "b.json", {"format": "waste-custody-audit-bundle/v1"})
    bad_key = runner.invoke(app, ["audit", "verify", path, "--log-key", "not-a-key"])
    assert bad_key.exit_code == 2
    assert "neither a verifier key nor a readable file" in bad_key.output


def test_verify_log_uses_the_environment(
    bundle: tuple[dict[str, Any], str], settings: Settings, engine: Engine
) -> None:
    env = {
        "WASTE_DATA_DIR": str(settings.data_dir),
        "WASTE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "WASTE_LOG_ORIGIN": settings.log_origin,
    }
    clean = runner.invoke(app, ["audit", "verify-log", "--workers", "1"], env=env)
    assert clean.exit_code == 0, clean.output
    assert clean.output.startswith("VERIFIED: log of 4 leaves (custody_event 4)")
    with engine.begin() as conn:
        conn.execute(update(LogEntry).where(LogEntry.leaf_index == 1).values(entry=b"{}"))
    tampered = runner.invoke(app, ["audit", "verify-log", "--workers", "1"], env=env)
    assert tampered.exit_code == 1, tampered.output
    assert "leaf 1: entry bytes changed" in tampered.output
    nowhere = runner.invoke(app, ["audit", "verify-log"], env={**env, "WASTE_LOG_KEY_PATH": "/x"})
    assert nowhere.exit_code == 2
    assert "there is no log key at /x" in nowhere.output
