"""Fixtures of the fault-injection tests: real services only, the figures recorder, a broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.brokers import Mosquitto
from tests.support.faults import require_real_services
from tests.support.reliability import reliability  # noqa: F401  (the figures recorder)


@pytest.fixture(autouse=True)
def _real_services() -> None:
    """Skip (with the reason) unless PostgreSQL and a real broker are configured."""
    require_real_services()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """This test's own Mosquitto on a free port, persisting sessions across its restarts."""
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    broker = Mosquitto(workdir, persistence=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
