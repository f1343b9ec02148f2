"""Rate limit of failed authentication per client address, in process (pure).

Every presented credential that does not authenticate (a wrong, malformed,
expired or revoked token; a wrong console login) counts as one failure of the
client address it came from. Once an address has ``max_failures`` failures
within the last ``window_s`` seconds, every attempt from it, right or wrong, is
refused with ``RateLimited`` until the oldest failure leaves the window, so
guessing goes no faster however the guesses are spread. Requests that present
no credential at all do not count.

The limiter is per process: with several API workers an address gets up to
``max_failures`` per window from each. Memory is bounded: at most
``max_clients`` addresses are tracked, the least recently failing forgotten
first. The address is the connection's peer; behind a reverse proxy run
uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips`` so that it is the
client's, not the proxy's.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from waste.errors import RateLimited

Monotonic = Callable[[], float]


class FailureLimiter:
    """Counts authentication failures per client address in a sliding window."""

    def __init__(
        self,
        *,
        max_failures: int,
        window_s: float,
        max_clients: int = 10_000,
        clock: Monotonic = time.monotonic,
    ) -> None:
        if max_failures < 1 or window_s <= 0 or max_clients < 1:
            raise ValueError("max_failures, window_s and max_clients must be positive")
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, client: str) -> None:
        """Raise ``RateLimited`` (with ``retry_after`` seconds) if ``client`` is locked out."""
        wait = self.retry_after(client)
        if wait > 0:
            raise RateLimited(
                f"too many failed authentication attempts from this address; retry in {wait} s",
                retry_after=wait,
            )

    def retry_after(self, client: str) -> int:
        """Whole seconds until ``client`` may try again (0: now)."""
        with self._lock:
            times = self._window(client)
            if times is None or len(times) < self.max_failures:
                return 0
            # Allowed again once enough failures have aged out to drop below the limit.
            release = times[len(times) - self.max_failures] + self.window_s
            return max(1, math.ceil(release - self._clock()))

    def failed(self, client: str) -> None:
        """Count one failed attempt of ``client``."""
        with self._lock:
            times = self._window(client)
            if times is None:
                times = self._failures[client] = deque()
                while len(self._failures) > self.max_clients:
                    self._failures.popitem(last=False)
            self._failures.move_to_end(client)
            times.append(self._clock())
            while len(times) > self.max_failures:  # older ones never decide anything
                times.popleft()

    def failures(self, client: str) -> int:
        """Failures of ``client`` within the window."""
        with self._lock:
            times = self._window(client)
            return 0 if times is None else len(times)

    def _window(self, client: str) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        horizon = self._clock() - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times
