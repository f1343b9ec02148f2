"""Figures printed by the reliability and security tests, kept for ``docs/reliability.md``.

A test asks for the ``reliability`` fixture and calls it with what it measured:

    def test_no_500(reliability: Recorder) -> None:
        \"\"\"What the test proves, in a paragraph (docs/reliability.md shows it).\"\"\"
        ...
        reliability(endpoints=49, cases=1200, failures=0)

Each call prints the figures (``pytest -s`` shows them) and writes
``test-artifacts/reliability/<test id>.<backend>.json``; the latest call of a
test on a backend wins. ``python3 -m tests.support.reliability_report`` renders
the page from those files and the tests' docstrings.

To use it from another test directory, import the fixture in that directory's
``conftest.py``: ``from tests.support.reliability import reliability  # noqa: F401``,
and add the directory to ``SOURCES`` in ``tests/support/reliability_report.py``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "reliability"

Recorder = Callable[..., None]
"""``record(**figures)``: numbers, short strings, booleans, or small dicts/lists of them."""


def backend() -> str:
    """The database the tests run on: ``postgresql`` or ``sqlite``."""
    return "postgresql" if os.environ.get("WASTE_TEST_DATABASE_URL") else "sqlite"


def broker() -> str:
    """The broker the tests run against: ``external`` (``WASTE_TEST_MQTT_URL``) or ``own``."""
    return "external" if os.environ.get("WASTE_TEST_MQTT_URL") else "own"


def artifact_path(nodeid: str, on: str) -> Path:
    """Where the figures of test ``nodeid`` on backend ``on`` are kept."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.replace("::", "__")).strip("_")
    return ARTIFACTS / f"{slug[:180]}.{on}.json"


def write_figures(nodeid: str, figures: dict[str, Any], *, on: str | None = None) -> Path:
    """Write one test's figures; returns the file written."""
    on = on or backend()
    path_part, _, name = nodeid.partition("::")
    record = {
        "test": nodeid,
        "file": path_part,
        "function": re.sub(r"\[.*$", "", name),
        "backend": on,
        "broker": broker(),
        "python": ".".join(map(str, sys.version_info[:3])),
        "recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "figures": figures,
    }
    path = artifact_path(nodeid, on)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    tmp.replace(path)
    return path


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Recorder:
    """Record this test's figures for docs/reliability.md (see the module docstring)."""
    nodeid = request.node.nodeid
    collected: dict[str, Any] = {}

    def record(**figures: Any) -> None:
        collected.update(figures)
        shown = ", ".join(f"{k}={v}" for k, v in collected.items())
        print(f"\n[reliability] {nodeid} ({backend()}): {shown}")
        write_figures(nodeid, dict(collected))

    return record
