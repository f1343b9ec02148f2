"""The example registry that `waste demo` loads: complete, usable, and loaded once."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from waste.api import create_app
from waste.config import Settings
from waste.registry.example import load_into_app


def test_example_registry_loads_once_and_its_tokens_work(
    settings: Settings, engine: Engine
) -> None:
    app = create_app(settings, on_startup=load_into_app)
    with TestClient(app) as client:
        tokens_file = settings.data_dir / "example-keys" / "tokens.txt"
        lines = tokens_file.read_text().splitlines()
        assert len(lines) == 8
        assert oct(tokens_file.stat().st_mode & 0o777) == "0o600"
        regulator_token = next(line.split()[-1] for line in lines if line.startswith("regulator"))
        headers = {"Authorization": f"Bearer {regulator_token}"}
        parties = client.get("/v1/parties", headers=headers).json()
        assert len(parties) == 8
        sites = [p for p in parties if p["kind"] == "disposal_site"]
        permits = client.get(f"/v1/parties/{sites[0]['id']}/permits", headers=headers).json()
        assert permits[0]["waste_codes"]
        assert client.get("/v1/zones", headers=headers).json()
    with TestClient(create_app(settings, on_startup=load_into_app)) as again:
        assert len(again.get("/v1/parties", headers=headers).json()) == 8
