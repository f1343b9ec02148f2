"""The trips of a day and where each stands, as the parties post its custody steps."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from devices.registrar import Registry
from devices.scenario_model import Corpus, CustodyStep, Scenario

__all__ = ["TRIP_STATES", "TripBoard"]

TRIP_STATES = ("waiting", "filed", "in transit", "delivered", "rejected", "no manifest")
_AFTER = {"filed": "filed", "picked_up": "in transit", "handed_over": "in transit"}


class TripBoard:
    """Posts custody steps for the fleet (signed by the parties' keys) and keeps score."""

    def __init__(self, corpus: Corpus, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._manifests = {s.key: {m.key for m in s.manifests} for s in corpus.scenarios}
        self._closed: dict[str, set[str]] = {s.key: set() for s in corpus.scenarios}
        self.state = {s.key: "waiting" if s.manifests else "no manifest" for s in corpus.scenarios}
        self.numbers: dict[str, str] = {}
        """Manifest key → the 14-digit number the server gave it."""
        self.filed = 0
        self.posted = 0

    def post(self, scenario: Scenario, step: CustodyStep) -> dict[str, Any]:
        """Sign and post ``step`` as its parties; raise what the client raises."""
        answer = self.registry.post(step)
        with self._lock:
            self.posted += 1
            if step.type == "filed":
                self.filed += 1
                if "number" in answer:
                    self.numbers[step.manifest] = str(answer["number"])
            if step.type in ("received", "rejected"):
                self._closed[scenario.key].add(step.manifest)
                done = self._closed[scenario.key] >= self._manifests[scenario.key]
                if done:
                    self.state[scenario.key] = (
                        "delivered" if step.type == "received" else "rejected"
                    )
                else:
                    self.state[scenario.key] = "in transit"
            elif self.state[scenario.key] not in ("delivered", "rejected"):
                self.state[scenario.key] = _AFTER.get(step.type, self.state[scenario.key])
        return answer

    def counts(self) -> Counter[str]:
        """Trips by state."""
        with self._lock:
            return Counter(self.state.values())

    def completed(self) -> int:
        """Trips whose every manifest was received (or rejected) at a site."""
        with self._lock:
            return sum(1 for v in self.state.values() if v in ("delivered", "rejected"))
