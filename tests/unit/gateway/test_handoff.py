"""The background hand-off of track updates to a slow consumer (no I/O)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from gateway.handoff import Handoff
from gateway.payloads import Fix
from waste.telemetry.domain import StoredFix, TrackUpdate, group_tracks

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _update(device: str, seq: int, seconds: Sequence[int], leg: int | None = None) -> TrackUpdate:
    fixes = [
        StoredFix(device, seq, i, f"V-{device}", Fix(T0 + timedelta(seconds=s), 1.0, 2.0), T0,
                  None if leg is None else "m-1", leg)
        for i, s in enumerate(seconds)
    ]  # fmt: skip
    (update,) = group_tracks(fixes, [])
    return update


class Gate:
    """A consumer that blocks until released, recording what it was given."""

    def __init__(self) -> None:
        self.calls: list[list[TrackUpdate]] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, updates: Sequence[TrackUpdate]) -> None:
        self.entered.set()
        self.release.wait(10)
        self.calls.append(list(updates))


def test_updates_queued_while_the_consumer_works_are_merged_per_device_and_leg() -> None:
    gate = Gate()
    handoff = Handoff(gate)
    handoff.start()
    handoff([_update("A", 1, [0, 1])])
    assert gate.entered.wait(5)  # busy with the first round
    handoff([_update("A", 3, [4, 5]), _update("B", 1, [0])])
    handoff([_update("A", 2, [2, 3]), _update("A", 4, [9], leg=0)])
    assert handoff.pending == 6
    gate.release.set()
    assert handoff.idle(5)
    handoff.stop()
    first, second = gate.calls
    assert [len(u.fixes) for u in first] == [2]
    merged = {(u.device_id, u.leg_index): u for u in second}
    assert set(merged) == {("A", None), ("B", None), ("A", 0)}
    times = [f.fix.t for f in merged["A", None].fixes]
    assert times == [T0 + timedelta(seconds=s) for s in range(2, 6)]  # in fix-time order
    assert handoff.rounds == 2


def test_a_full_queue_holds_the_caller_until_the_consumer_catches_up() -> None:
    gate = Gate()
    handoff = Handoff(gate, max_pending=3)
    handoff.start()
    handoff([_update("A", 1, [0])])
    assert gate.entered.wait(5)
    handoff([_update("A", 2, [1, 2, 3])])  # 3 queued: the next call must wait
    done = threading.Event()
    threading.Thread(target=lambda: (handoff([_update("A", 3, [4])]), done.set())).start()
    assert not done.wait(0.3)
    gate.release.set()
    assert done.wait(5)
    handoff.stop()
    assert sum(len(u.fixes) for call in gate.calls for u in call) == 5


def test_a_failing_consumer_is_counted_and_the_thread_goes_on() -> None:
    seen: list[int] = []

    def flaky(updates: Sequence[TrackUpdate]) -> None:
        seen.append(len(updates))
        if len(seen) == 1:
            raise RuntimeError("boom")

    handoff = Handoff(flaky)
    handoff.start()
    handoff([_update("A", 1, [0])])
    assert handoff.idle(5)
    handoff([_update("A", 2, [1])])
    assert handoff.idle(5)
    handoff.stop()
    assert (seen, handoff.errors) == ([1, 1], 1)


def test_stop_consumes_what_was_handed_over_first() -> None:
    got: list[TrackUpdate] = []
    handoff = Handoff(got.extend)
    handoff.start()
    for seq in range(20):
        handoff([_update("A", seq, [seq])])
    handoff.stop()
    assert sum(len(u.fixes) for u in got) == 20
    assert handoff.pending == 0
