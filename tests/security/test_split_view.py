"""A server that shows two regulators two different histories is caught when they compare.

Each regulator alone sees a log that is consistent with everything it was shown
before. Put their cosigned checkpoints side by side, though, and either both are
of one size with different roots — two signed statements by the log key that
cannot both be true — or the server cannot produce an RFC 9162 consistency proof
from the older to the newer one. ``compare`` below is all a regulator's auditor
needs: the log's verifier key, the two notes, and the public proof endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from tests.support.reliability import Recorder
from tests.support.tamper import Logged, consistent, logged_fixture, manual_checkpoints, root_of  # noqa: F401 (fixtures)
from waste.ledger.checkpoint import NoteVerifier


@dataclass(frozen=True)
class Verdict:
    """What two checkpoints say about the log's history."""

    consistent: bool
    why: str


def compare(http: TestClient, verifier: NoteVerifier, note_a: str, note_b: str) -> Verdict:
    """Check two checkpoints, each signed by the log key, describe one append-only history."""
    (size_a, root_a), (size_b, root_b) = root_of(note_a, verifier), root_of(note_b, verifier)
    if size_a == size_b:
        if root_a == root_b:
            return Verdict(True, f"both checkpoints are of size {size_a} with the same root")
        return Verdict(False, f"split view: two signed roots for size {size_a}")
    old, new = sorted([(size_a, root_a), (size_b, root_b)])
    ok, _ = consistent(http, old, new)
    if ok:
        return Verdict(True, f"size {new[0]} extends size {old[0]} (consistency proof verifies)")
    return Verdict(False, f"split view: no consistency proof from size {old[0]} to size {new[0]}")


def test_an_honest_log_gives_regulators_consistent_checkpoints(logged: Logged) -> None:
    """Two regulators cosigning the log at different times hold checkpoints that a
    consistency proof from the server links, and equal checkpoints at equal sizes."""
    north = logged.regulator("regulator-north")
    south = logged.regulator("regulator-south")
    at_8 = north.cosign_latest(logged.http)
    logged.append_other(3, "later")
    at_11 = south.cosign_latest(logged.http)
    verdict = compare(logged.http, logged.verifier, at_8, at_11)
    assert verdict == Verdict(True, "size 11 extends size 8 (consistency proof verifies)")
    again = north.cosign_latest(logged.http)
    assert compare(logged.http, logged.verifier, again, at_11).consistent


def test_two_histories_shown_to_two_regulators_are_caught_by_comparing_checkpoints(
    logged: Logged, reliability: Recorder
) -> None:
    """The server shows regulator north history A (cosigned at size 8), then forks: it
    rewrites the last two leaves, re-signs, grows to 10 and shows regulator south history
    B. South's own view is consistent (its earlier checkpoint at 6 extends to 10). Compared,
    north's and south's checkpoints have no consistency proof (8 → 10), and the server's
    current checkpoint at 8 contradicts north's: both are named as a split view."""
    north = logged.regulator("regulator-north")
    south = logged.regulator("regulator-south")
    logged.truncate(6)  # start from a common prefix both will have seen
    common = south.cosign_latest(logged.http)
    logged.append_other(2, "history-a")
    shown_to_north = north.cosign_latest(logged.http)

    logged.truncate(6)  # the fork: same prefix, another tail, re-signed with the log key
    logged.append_other(4, "history-b")
    shown_to_south = south.cosign_latest(logged.http)
    assert compare(logged.http, logged.verifier, common, shown_to_south).consistent

    verdict = compare(logged.http, logged.verifier, shown_to_north, shown_to_south)
    assert verdict == Verdict(False, "split view: no consistency proof from size 8 to size 10")
    served_8 = logged.resign_at(8)
    same_size = compare(logged.http, logged.verifier, shown_to_north, served_8)
    assert same_size == Verdict(False, "split view: two signed roots for size 8")
    reliability(north_size=8, south_size=10, detected=2, honest_control="consistent")
