"""``unmanifested_movement``: a vehicle whose e-lock is sealed moves with no open leg (pure).

A ``VehicleWatcher`` follows one vehicle: every e-lock event (in a leg or not) sets
whether it is sealed; fixes outside any leg, while sealed, are compared with an
anchor (the first good fix after it stood still or was sealed). ``unmanifested_fixes``
consecutive good fixes farther than ``unmanifested_move_m`` from the anchor raise one
alert per anchor, updated as the vehicle goes on. A silence of ``signal_lost_s`` (e.g.
a leg in between) re-anchors. Fixes with a poor HDOP are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from waste.alerts.engine import LockIn
from waste.alerts.rules import UNMANIFESTED_MOVEMENT, Candidate, ts
from waste.alerts.thresholds import AlertThresholds
from waste.clock import parse_utc
from waste.tracking import Fix
from waste.tracking.geometry import geodesic_m

MAX_POSITIONS = 60


def _empty() -> dict[str, Any]:
    return {
        "sealed": None,
        "sealed_at": None,
        "lock_t": None,
        "anchor": None,
        "far": [],
        "last_t": None,
        "alert": None,
        "since": None,
        "positions": [],
        "max_m": 0.0,
    }


class VehicleWatcher:
    """The unmanifested-movement state of one vehicle."""

    def __init__(
        self,
        vehicle: str,
        device_id: str,
        th: AlertThresholds,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        self.vehicle = vehicle
        self.device_id = device_id
        self.th = th
        self.state: dict[str, Any] = _empty()
        if state:
            self.state.update(dict(state))

    def locks(self, locks: Iterable[LockIn]) -> None:
        """Take e-lock events (older than the latest one seen are ignored)."""
        s = self.state
        for lock in sorted(locks, key=lambda lk: lk.t):
            if s["lock_t"] is not None and lock.t <= parse_utc(s["lock_t"]):
                continue
            if lock.event == "sealed":
                s["sealed"], s["sealed_at"] = lock.lock_id, ts(lock.t)
                self._reanchor()
            elif lock.event == "unsealed":
                s["sealed"], s["sealed_at"] = None, None
                self._reanchor()
            else:
                continue
            s["lock_t"] = ts(lock.t)

    def _reanchor(self) -> None:
        s = self.state
        s["anchor"], s["far"], s["alert"], s["positions"], s["max_m"] = None, [], None, [], 0.0

    def fixes(self, fixes: Iterable[Fix]) -> list[Candidate]:
        """Take fixes bound to no leg, in time order; the candidate they make, if any."""
        s, th = self.state, self.th
        out: list[Candidate] = []
        for fix in fixes:
            if s["last_t"] is not None and fix.t <= parse_utc(s["last_t"]):
                continue
            silent = (
                s["last_t"] is not None
                and (fix.t - parse_utc(s["last_t"])).total_seconds() > th.signal_lost_s
            )
            s["last_t"] = ts(fix.t)
            if s["sealed"] is None:
                continue
            if silent:
                self._reanchor()
            if fix.hdop is not None and fix.hdop > th.max_hdop:
                continue
            if s["anchor"] is None:
                s["anchor"] = [ts(fix.t), fix.lat, fix.lon]
                continue
            metres = geodesic_m(s["anchor"][1], s["anchor"][2], fix.lat, fix.lon)
            if metres <= th.unmanifested_move_m:
                if s["alert"] is None:
                    s["far"] = []
                continue
            s["far"].append([ts(fix.t), fix.lat, fix.lon, round(metres, 1)])
            if s["alert"] is None and len(s["far"]) < th.unmanifested_fixes:
                continue
            cand = self._candidate(fix, metres)
            if cand is not None:
                out.append(cand)
        return out

    def _candidate(self, fix: Fix, metres: float) -> Candidate | None:
        s = self.state
        if s["alert"] is None:
            s["alert"] = f"{UNMANIFESTED_MOVEMENT}:{self.vehicle}/{s['anchor'][0]}"
            s["since"] = s["far"][0][0]
        s["max_m"] = max(float(s["max_m"]), metres)
        positions = [*s["positions"], *s["far"]][-MAX_POSITIONS:]
        s["positions"], s["far"] = positions, []
        return Candidate(
            UNMANIFESTED_MOVEMENT,
            "high",
            str(s["alert"]),
            parse_utc(s["since"]),
            fix.lat,
            fix.lon,
            {
                "vehicle": self.vehicle,
                "lock_id": s["sealed"],
                "sealed_at": s["sealed_at"],
                "anchor": s["anchor"],
                "max_distance_m": round(float(s["max_m"]), 1),
                "last_seen_at": ts(fix.t),
                "positions": positions,
            },
            last_seen_at=fix.t,
        )

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return self.state

    @property
    def last_t(self) -> datetime | None:
        """The latest fix taken."""
        return None if self.state["last_t"] is None else parse_utc(self.state["last_t"])
