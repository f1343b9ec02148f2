"""What a demo run is asked to do (the ``waste demo`` options, checked)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from devices.scenarios import INCIDENT_KINDS

__all__ = ["DEFAULT_KINDS", "DemoOptions", "Restart", "parse_kinds"]

DEFAULT_KINDS: tuple[str, ...] = INCIDENT_KINDS
"""Incident kinds planted, in turn (``devices.scenarios.INCIDENT_KINDS``)."""


class Restart(StrEnum):
    """What to do with a data directory that already holds a demo."""

    ASK = "ask"
    FRESH = "fresh"
    CONTINUE = "continue"


@dataclass(frozen=True)
class DemoOptions:
    """Options of one demo run; ``check`` refuses nonsense with a plain message."""

    trips: int = 40
    """Trips (labelled scenarios) in the day."""
    incidents: float = 0.2
    """Share of trips with a planted incident."""
    kinds: tuple[str, ...] = DEFAULT_KINDS
    """Incident kinds planted, in turn."""
    seed: int = 0
    speed: float | None = None
    """Time compression; default: the day's span over ``minutes``."""
    minutes: float = 3.0
    """Wall minutes the day should take when ``speed`` is not given."""
    lat: float = 29.31
    lon: float = 120.07
    """Centre of the simulated county (default: Yiwu, Zhejiang)."""
    region_code: str = "330782"
    place_name: str = "Yiwu county (simulated)"
    host: str = "127.0.0.1"
    port: int = 8000
    """API port; 0: a free one."""
    restart: Restart = Restart.ASK
    stay: bool = False
    """Keep serving after the day until Ctrl-C (the console can be browsed)."""
    headless: bool = False
    """No live display: plain lines (the command's choice of display)."""
    settle_timeout_s: float = 60.0
    """How long to wait at the end for the gateway to store what the devices sent."""

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad option."""
        if not 1 <= self.trips <= 5000:
            raise ValueError("--trips must be 1-5000")
        if not 0 <= self.incidents <= 1:
            raise ValueError("--incidents must be between 0 and 1")
        if self.speed is not None and not (math.isfinite(self.speed) and 1 <= self.speed <= 1e5):
            raise ValueError("--speed must be 1-100000")
        if not (math.isfinite(self.minutes) and 0.05 <= self.minutes <= 24 * 60):
            raise ValueError("--minutes must be 0.05-1440")
        if not (math.isfinite(self.lat) and -75 <= self.lat <= 75):
            raise ValueError("--lat must be within ±75 degrees")
        if not (math.isfinite(self.lon) and -179 <= self.lon <= 179):
            raise ValueError("--lon must be within ±179 degrees (the county may not cross 180)")
        if not (self.region_code.isdigit() and len(self.region_code) == 6):
            raise ValueError("--region-code must be 6 digits")
        if not 0 <= self.port <= 65535:
            raise ValueError("--port must be 0-65535")
        unknown = [k for k in self.kinds if k not in INCIDENT_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"incident kinds must be among {', '.join(INCIDENT_KINDS)}")

    def speed_for(self, span_s: float) -> float:
        """The compression: ``speed`` if given, else the day's span over ``minutes``."""
        if self.speed is not None:
            return self.speed
        return max(1.0, span_s / (self.minutes * 60))


def parse_kinds(text: str | None) -> tuple[str, ...]:
    """``dump_stop,detour`` → a tuple of kinds (checked by ``DemoOptions.check``)."""
    if not text:
        return DEFAULT_KINDS
    parts: Sequence[str] = [p.strip() for p in text.split(",")]
    return tuple(p for p in parts if p)
