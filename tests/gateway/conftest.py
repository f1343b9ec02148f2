"""A registry with vehicles and devices (through the API), and an ingest rig on its database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.support.telemetry import Rig, Vehicle, make_rig
from tests.support.world import World, build_world


@pytest.fixture
def world(client: TestClient, admin_headers: dict[str, str]) -> World:
    """Parties, two haulers with a vehicle and a device each, two sites."""
    return build_world(client, admin_headers)


@pytest.fixture
def rig(engine: Engine, world: World) -> Rig:
    """An ingestor on a fake transport and the world's database."""
    return make_rig(engine)


@pytest.fixture
def truck(world: World) -> Vehicle:
    """Hauler 0's device."""
    return Vehicle.of(world.haulers[0])


@pytest.fixture
def other_truck(world: World) -> Vehicle:
    """Hauler 1's device."""
    return Vehicle.of(world.haulers[1])
