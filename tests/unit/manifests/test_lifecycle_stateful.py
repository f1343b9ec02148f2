"""Random event sequences: valid steps follow the protocol's table, forged or disallowed ones
always raise and change nothing, and the custody stays consistent throughout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import event as label
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.unit.manifests.builders import (
    MANIFEST_ID,
    OTHER_PRODUCER,
    REGULATOR,
    T0,
    next_event,
    signers,
)
from waste.errors import Invalid, TransitionNotAllowed
from waste.manifests import (
    Custody,
    EventRecord,
    ManifestState,
    apply_event,
    open_leg,
    replay,
)
from waste.manifests.events import MASS_TOLERANCE_KG

EVENT_TYPES = ["filed", "cancelled", "picked_up", "handed_over", "received", "rejected", "disposed"]
# The protocol's table, restated independently of the code under test.
NEXT_STATE = {
    ("filed", "cancelled"): "cancelled",
    ("filed", "picked_up"): "in_transit",
    ("in_transit", "handed_over"): "in_transit",
    ("in_transit", "received"): "received",
    ("in_transit", "rejected"): None,  # rejected, or in_transit when redirected
    ("received", "disposed"): "disposed",
}
FORGERIES = ["drop_cosigner", "extra_signer", "wrong_kind", "stranger_actor", "backwards"]


class ManifestMachine(RuleBasedStateMachine):
    """Drives one manifest with random events, valid and forged."""

    def __init__(self) -> None:
        super().__init__()
        self.custody: Custody | None = None
        self.records: list[EventRecord] = []
        self.model: str | None = None  # the state the table predicts
        self.handovers = 0
        self.redirects = 0
        self.at = T0

    def _apply(
        self, event_type: str, data: dict[str, Any], actor: str, parties: dict[str, str], at: Any
    ) -> Custody:
        return apply_event(
            self.custody,
            event_type=event_type,
            actor=actor,
            at=at,
            data=data,
            signers=parties,
            manifest_id=MANIFEST_ID,
        )

    @rule(
        event_type=st.sampled_from(EVENT_TYPES),
        minutes=st.integers(0, 600),
        redirect=st.booleans(),
        refused_kg=st.sampled_from([0.0, 94.0, 1000.0]),
    )
    def event(self, event_type: str, minutes: int, redirect: bool, refused_kg: float) -> None:
        """A well-formed event: accepted exactly when the table (and the limits) allow it."""
        self._event(event_type, minutes, redirect, refused_kg)

    @precondition(lambda self: self.custody is None)
    @rule(minutes=st.integers(0, 600))
    def file(self, minutes: int) -> None:
        """File the manifest (the other rules may also try anything before that)."""
        self._event("filed", minutes, False, 0.0)

    @rule(minutes=st.integers(0, 600))
    def hand_over(self, minutes: int) -> None:
        """A handover, often enough to meet the 5-hauler limit."""
        self._event("handed_over", minutes, False, 0.0)

    @rule(minutes=st.integers(0, 600))
    def redirect(self, minutes: int) -> None:
        """A redirect, often enough to meet the redirect limit."""
        self._event("rejected", minutes, True, 0.0)

    def _event(self, event_type: str, minutes: int, redirect: bool, refused_kg: float) -> None:
        data, actor, parties = next_event(
            self.custody, event_type, redirect=redirect, refused_kg=refused_kg
        )
        # The filing must come before its pickup window closes (T0 + 8 h).
        at = self.at + timedelta(minutes=minutes if self.custody else minutes % 60)
        if self.model is None:
            allowed = event_type == "filed"
        else:
            allowed = (self.model, event_type) in NEXT_STATE
            if event_type == "handed_over" and self.handovers == 4:
                allowed = False
            if event_type == "rejected" and redirect and self.redirects == 3:
                allowed = False
        before = self.custody
        if not allowed:
            try:
                self._apply(event_type, data, actor, signers(*parties), at)
            except TransitionNotAllowed:
                assert self.custody is before
                if self.handovers == 4 or self.redirects == 3:
                    label("a limit was reached")
                return
            raise AssertionError(f"{event_type} accepted in state {self.model}")
        self.custody = self._apply(event_type, data, actor, signers(*parties), at)
        self.records.append(
            EventRecord(event_type, actor, at, data, signers(*parties), MANIFEST_ID)
        )
        self.at = at
        if self.model is None:
            self.model = "filed"
        else:
            following = NEXT_STATE[(self.model, event_type)]
            if following is None:
                following = "in_transit" if redirect else "rejected"
            self.model = following
        label(f"reached {self.model}")
        self.handovers += event_type == "handed_over"
        self.redirects += event_type == "rejected" and redirect

    @rule(
        event_type=st.sampled_from(EVENT_TYPES),
        forgery=st.sampled_from(FORGERIES),
        minutes=st.integers(0, 600),
    )
    def forged(self, event_type: str, forgery: str, minutes: int) -> None:
        """A forged or malformed event never goes through and never changes the custody."""
        data, actor, parties = next_event(self.custody, event_type)
        keys = signers(*parties)
        at = self.at + timedelta(minutes=minutes)
        if forgery == "drop_cosigner":
            keys.pop(next((p for p in parties if p != actor), actor))
        elif forgery == "extra_signer":
            keys[REGULATOR] = "regulator"
        elif forgery == "wrong_kind":
            keys[actor] = "regulator"
        elif forgery == "stranger_actor":
            actor = OTHER_PRODUCER
        elif self.custody is not None:
            at = self.custody.last_at - timedelta(seconds=1)
        else:
            data = dict(data, vehicle="")  # nothing to go back from: forge the data instead
        before = self.custody
        try:
            self._apply(event_type, data, actor, keys, at)
        except Invalid:
            assert self.custody is before
            return
        raise AssertionError(f"forged {event_type} ({forgery}) accepted in state {self.model}")

    @invariant()
    def state_matches_the_table(self) -> None:
        """The custody's state is the one the table predicts."""
        if self.custody is None:
            assert self.model is None
        else:
            assert self.custody.state == self.model

    @invariant()
    def legs_are_consistent(self) -> None:
        """Legs chain without gaps; exactly one is open while in transit; hauler limits hold."""
        c = self.custody
        if c is None:
            return
        for i, (a, b) in enumerate(zip(c.legs, c.legs[1:], strict=False)):
            assert a.index == i
            assert b.index == i + 1
            assert a.closed_at == b.opened_at
            assert a.closed_by == b.opened_by
        assert all(leg.closed_at is not None for leg in c.legs[:-1])
        leg = open_leg(c)
        assert (leg is not None) == (c.state is ManifestState.IN_TRANSIT)
        if leg is not None:
            assert leg.destination == c.destination
        assert len(c.haulers) <= 5
        assert c.handovers <= 4
        assert c.destinations[-1] == c.destination
        assert len(c.destinations) <= 4

    @invariant()
    def history_and_masses_are_consistent(self) -> None:
        """Seqs count from 0, times never go back, recorded masses agree with each other."""
        c = self.custody
        if c is None:
            return
        assert [e.seq for e in c.history] == list(range(c.last_seq + 1))
        times = [e.at for e in c.history]
        assert times == sorted(times)
        assert times[-1] == c.last_at
        m = c.masses
        if m.received_kg is not None:
            assert m.accepted_kg is not None
            assert m.refused_kg is not None
            assert abs(m.accepted_kg + m.refused_kg - m.received_kg) <= MASS_TOLERANCE_KG
        if m.disposed_kg is not None:
            assert m.accepted_kg is not None
            assert m.disposed_kg <= m.accepted_kg + MASS_TOLERANCE_KG
        assert (c.received_at is not None) == (
            c.state in (ManifestState.RECEIVED, ManifestState.DISPOSED)
        )

    @invariant()
    def replay_reproduces_the_custody(self) -> None:
        """Replaying the accepted events gives the same custody."""
        if self.custody is not None:
            assert replay(self.records) == self.custody


ManifestMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=30, deadline=None
)
TestManifestMachine = ManifestMachine.TestCase
