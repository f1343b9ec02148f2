"""How far a compressed day has really got: the replay's position and the judged watermark.

On a busy machine the fleet's scheduler can fall behind its simulated clock, and the
gateway behind the scheduler. The alert sweep judges silence ("no fix for 10 minutes")
and deadlines against a clock, so that clock must not run ahead of the data: the
*watermark* is the time of the newest record such that as many records as were
recorded up to it have been stored and run through detection, minus a little slack
for devices whose messages overtake each other. The sweep never sees a leg as silent
whose fixes are merely still on their way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from devices.fleet import Fleet

__all__ = ["PacedFleet", "Progress", "watermark"]


class Progress:
    """The times of the records handed to devices (in that order) and of the last item."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.position = start
        self._times: list[datetime] = []
        self._lock = threading.Lock()

    def record(self, moment: datetime) -> None:
        """A fix or e-lock event of ``moment`` was handed to its device."""
        with self._lock:
            self._times.append(moment)
            self.position = max(self.position, moment)

    def reached(self, moment: datetime) -> None:
        """Something else of ``moment`` was done (a custody step posted)."""
        with self._lock:
            self.position = max(self.position, moment)

    @property
    def count(self) -> int:
        """Records handed over so far."""
        return len(self._times)

    def time_of(self, count: int) -> datetime | None:
        """The time of the ``count``-th record (None before any)."""
        with self._lock:
            if count <= 0 or not self._times:
                return None
            return self._times[min(count, len(self._times)) - 1]


class PacedFleet(Fleet):
    """A ``Fleet`` that keeps a ``Progress`` of what its scheduler has done."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, on_progress=self._note, **kwargs)
        self.progress = Progress(self.clock.sim_start)

    @property
    def position(self) -> datetime:
        """The simulated time the scheduler has reached."""
        return self.progress.position

    def _note(self, kind: str, at: datetime) -> None:
        """Note how far the scheduler has got (a record's time, a custody step's posting)."""
        if kind == "record":
            self.progress.record(at)
        elif kind == "custody":
            self.progress.reached(at)


def watermark(
    progress: Progress,
    judged: Callable[[], int],
    *,
    slack: timedelta = timedelta(minutes=2),
) -> Callable[[], datetime]:
    """A clock for the sweep: how far the data judged so far reaches (see the module)."""

    def now() -> datetime:
        """The watermark."""
        reached = progress.time_of(judged())
        if reached is None:
            return progress.start - slack
        return min(reached, progress.position) - slack

    return now
