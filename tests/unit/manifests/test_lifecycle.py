"""The manifest state machine: the protocol's table, signers, legs, masses, seals and replays."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.manifests.builders import (
    HAULER,
    HAULERS,
    MANIFEST_ID,
    OTHER_PRODUCER,
    PRODUCER,
    REGULATOR,
    ROUTE_2,
    SITE,
    SITES,
    T0,
    VEHICLE,
    disposal_data,
    filed,
    filed_data,
    handover_data,
    next_event,
    picked_up,
    pickup_data,
    receipt_data,
    received,
    record,
    signers,
    step,
    ts,
)
from waste.errors import Invalid, SignatureError, SignerNotAllowed, TransitionNotAllowed
from waste.manifests import (
    Custody,
    EventType,
    ManifestState,
    active_leg_at,
    apply_event,
    open_leg,
    parse_event_data,
    replay,
    required_signers,
)
from waste.manifests.domain import ALLOWED_FROM

EVENT_TYPES = [t.value for t in EventType]


def in_state(state: ManifestState) -> Custody:
    """A custody in ``state``, reached by the shortest valid path."""
    paths: dict[ManifestState, list[str]] = {
        ManifestState.FILED: [],
        ManifestState.CANCELLED: ["cancelled"],
        ManifestState.IN_TRANSIT: ["picked_up"],
        ManifestState.RECEIVED: ["picked_up", "received"],
        ManifestState.DISPOSED: ["picked_up", "received", "disposed"],
        ManifestState.REJECTED: ["picked_up", "rejected"],
    }
    c = filed()
    for event_type in paths[state]:
        data, actor, parties = next_event(c, event_type)
        c = step(c, event_type, data, actor, parties)
    assert c.state is state
    return c


TABLE = [(s, t) for s in ManifestState for t in EVENT_TYPES]


@pytest.mark.parametrize(("state", "event_type"), TABLE, ids=[f"{s}-{t}" for s, t in TABLE])
def test_every_state_and_event_type_pair(state: ManifestState, event_type: str) -> None:
    c = in_state(state)
    data, actor, parties = next_event(c, event_type)
    if state in ALLOWED_FROM[EventType(event_type)]:
        after = step(c, event_type, data, actor, parties)
        assert after.last_seq == c.last_seq + 1
        assert after.history[-1].event_type == event_type
    else:
        with pytest.raises(TransitionNotAllowed) as info:
            step(c, event_type, data, actor, parties)
        assert info.value.field == "type"


@pytest.mark.parametrize("event_type", [t for t in EVENT_TYPES if t != "filed"])
def test_only_filed_starts_a_manifest(event_type: str) -> None:
    data, actor, parties = next_event(filed(), event_type)
    with pytest.raises(TransitionNotAllowed):
        step(None, event_type, data, actor, parties)


def test_the_allowed_table_is_the_protocols() -> None:
    allowed = {t: {str(s) for s in states} for t, states in ALLOWED_FROM.items()}
    assert allowed == {
        "filed": set(),
        "cancelled": {"filed"},
        "picked_up": {"filed"},
        "handed_over": {"in_transit"},
        "received": {"in_transit"},
        "rejected": {"in_transit"},
        "disposed": {"received"},
    }


def test_full_journey_with_handover_and_partial_refusal() -> None:
    c = picked_up()
    c = step(
        c,
        "handed_over",
        handover_data(HAULER, "H-2", location={"lat": 29.34, "lon": 120.15}),
        HAULER,
        (HAULER, "H-2"),
    )
    c = step(c, "received", receipt_data(accepted_kg=1000, refused_kg=194, seal_id="SEAL-2"), SITE)
    assert c.state is ManifestState.RECEIVED
    assert c.haulers == (HAULER, "H-2")
    assert [leg.hauler for leg in c.legs] == [HAULER, "H-2"]
    assert c.legs[0].closed_at == c.legs[1].opened_at
    assert c.legs[1].closed_by is EventType.RECEIVED
    assert c.legs[1].route == c.legs[0].route  # a handover without a route keeps the old one
    assert c.masses.accepted_kg == 1000
    assert c.masses.refused_kg == 194
    assert c.masses.handed_over_kg == (1195.0,)
    c = step(c, "disposed", disposal_data(mass_kg=1000), SITE)
    assert c.state is ManifestState.DISPOSED
    assert c.terminal
    assert c.masses.disposed_kg == 1000
    assert open_leg(c) is None


def test_disposal_cannot_exceed_accepted_mass() -> None:
    c = step(picked_up(), "received", receipt_data(accepted_kg=1000, refused_kg=194), SITE)
    with pytest.raises(Invalid) as info:
        step(c, "disposed", disposal_data(mass_kg=1000.5), SITE)
    assert info.value.field == "data.mass_kg"
    assert step(c, "disposed", disposal_data(mass_kg=1000.0005), SITE).masses.disposed_kg


def test_required_signers_are_parties_of_the_manifest() -> None:
    f = filed()
    assert required_signers(None, "filed", parse_event_data("filed", filed_data())) == {PRODUCER}
    assert required_signers(f, "picked_up", parse_event_data("picked_up", pickup_data())) == {
        HAULER,
        PRODUCER,
    }
    c = picked_up()
    h = parse_event_data("handed_over", handover_data(HAULER, "H-3"))
    assert required_signers(c, "handed_over", h) == {HAULER, "H-3"}
    r = parse_event_data("received", receipt_data())
    assert required_signers(c, "received", r) == {SITE}
    with pytest.raises(TypeError):
        required_signers(c, "received", h)


@pytest.mark.parametrize(
    ("parties", "error", "field"),
    [
        ((HAULER,), SignatureError, "signatures"),  # the producer is missing
        ((PRODUCER,), SignatureError, "signatures"),  # the hauler is missing
        ((HAULER, PRODUCER, SITE), SignerNotAllowed, "signatures"),  # one too many
        ((HAULER, PRODUCER, REGULATOR), SignerNotAllowed, "signatures"),
        (("H-2", PRODUCER), SignerNotAllowed, "signatures"),  # a hauler not on the manifest
        ((HAULER, OTHER_PRODUCER), SignerNotAllowed, "signatures"),
    ],
)
def test_pickup_signers(parties: tuple[str, ...], error: type[Exception], field: str) -> None:
    with pytest.raises(error) as info:
        step(filed(), "picked_up", pickup_data(), parties[0], parties)
    assert type(info.value) is error
    assert getattr(info.value, "field", None) == field


def test_a_hauler_not_on_the_manifest_cannot_pick_up() -> None:
    with pytest.raises(Invalid) as info:
        step(filed(), "picked_up", pickup_data(hauler="H-2"), "H-2", ("H-2", PRODUCER))
    assert info.value.field == "data.hauler"


def test_pickup_vehicle_must_be_the_filed_one() -> None:
    with pytest.raises(Invalid) as info:
        step(filed(), "picked_up", pickup_data(vehicle="浙A99999"), HAULER, (HAULER, PRODUCER))
    assert info.value.field == "data.vehicle"


def test_signer_kind_must_fit_the_role() -> None:
    with pytest.raises(SignerNotAllowed, match="as a hauler"):
        apply_event(
            filed(),
            event_type="picked_up",
            actor=HAULER,
            at=T0 + timedelta(hours=1),
            data=pickup_data(),
            signers={HAULER: "disposal_site", PRODUCER: "producer"},
        )
    with pytest.raises(SignerNotAllowed):
        apply_event(
            None,
            event_type="filed",
            actor=PRODUCER,
            at=T0,
            data=filed_data(),
            signers={PRODUCER: "regulator"},
            manifest_id=MANIFEST_ID,
        )


def test_actor_must_be_a_required_signer() -> None:
    with pytest.raises(SignerNotAllowed) as info:
        step(picked_up(), "received", receipt_data(), "S-2", (SITE,))
    assert info.value.field == "actor"


def test_filing_producer_must_be_the_actor() -> None:
    with pytest.raises(Invalid) as info:
        step(None, "filed", filed_data(producer=OTHER_PRODUCER), PRODUCER)
    assert info.value.field == "data.producer"


def test_only_the_destination_may_receive() -> None:
    with pytest.raises(SignerNotAllowed):
        step(picked_up(), "received", receipt_data(), "S-2")


def test_only_the_receiving_site_may_confirm_disposal() -> None:
    with pytest.raises(SignerNotAllowed):
        step(received(), "disposed", disposal_data(), "S-2")


def test_handover_signers_and_outgoing_hauler() -> None:
    c = picked_up()
    with pytest.raises(SignatureError):
        step(c, "handed_over", handover_data(HAULER, "H-2"), HAULER, (HAULER,))
    with pytest.raises(SignerNotAllowed):
        step(c, "handed_over", handover_data(HAULER, "H-2"), HAULER, (HAULER, "H-2", PRODUCER))
    with pytest.raises(Invalid) as info:
        step(c, "handed_over", handover_data("H-3", "H-2"), "H-3", ("H-3", "H-2"))
    assert info.value.field == "data.from_hauler"
    after = step(c, "handed_over", handover_data(HAULER, "H-2"), "H-2", (HAULER, "H-2"))
    assert after.current_hauler == "H-2"


def test_at_most_five_haulers() -> None:
    c = picked_up()
    for i in range(4):
        c = step(
            c,
            "handed_over",
            handover_data(HAULERS[i], HAULERS[i + 1], i + 2),
            HAULERS[i],
            (HAULERS[i], HAULERS[i + 1]),
        )
    assert c.haulers == HAULERS[:5]
    assert c.handovers == 4
    assert len(c.legs) == 5
    with pytest.raises(TransitionNotAllowed, match="5 haulers"):
        step(
            c,
            "handed_over",
            handover_data(HAULERS[4], HAULERS[5], 6),
            HAULERS[4],
            (HAULERS[4], HAULERS[5]),
        )
    assert step(c, "received", receipt_data(seal_id="SEAL-5"), SITE).state is ManifestState.RECEIVED


def test_redirect_opens_a_new_leg_to_the_new_site() -> None:
    c = picked_up()
    at = c.last_at + timedelta(hours=2)
    data = {
        "reason": "Kiln down",
        "next": "redirect",
        "redirect_site": "S-2",
        "route": ROUTE_2,
        "mass_kg": 1190,
    }
    c = step(c, "rejected", data, SITE, at=at)
    assert c.state is ManifestState.IN_TRANSIT
    assert c.destination == "S-2"
    assert c.destinations == (SITE, "S-2")
    old, new = c.legs
    assert (old.closed_at, old.closed_by) == (at, EventType.REJECTED)
    assert (new.opened_at, new.opened_by, new.destination) == (at, EventType.REJECTED, "S-2")
    assert (new.hauler, new.vehicle, new.seal_id) == (HAULER, VEHICLE, "SEAL-1")
    assert new.route == ROUTE_2
    assert new.mass_kg_at_open == 1190
    assert c.masses.rejected_kg == (1190,)
    assert c.haulers == (HAULER,)
    with pytest.raises(SignerNotAllowed):  # the first site no longer decides
        step(c, "received", receipt_data(), SITE)
    c = step(c, "received", receipt_data(), "S-2")
    assert c.received_by == "S-2"
    assert step(c, "disposed", disposal_data(), "S-2").state is ManifestState.DISPOSED


def test_redirect_site_must_be_new_and_redirects_are_bounded() -> None:
    c = picked_up()
    for bad in (SITE, PRODUCER, HAULER):
        with pytest.raises(Invalid) as info:
            step(c, "rejected", {"reason": "x", "next": "redirect", "redirect_site": bad}, SITE)
        assert info.value.field == "data.redirect_site"
    for i in range(1, 4):
        data, actor, parties = next_event(c, "rejected", redirect=True)
        c = step(c, "rejected", data, actor, parties)
        assert c.destination == SITES[i]
    data, actor, parties = next_event(c, "rejected", redirect=True)
    with pytest.raises(TransitionNotAllowed):
        step(c, "rejected", data, actor, parties)


def test_return_to_producer_is_terminal() -> None:
    c = step(
        picked_up(), "rejected", {"reason": "Not as declared", "next": "return_to_producer"}, SITE
    )
    assert c.state is ManifestState.REJECTED
    assert c.terminal
    assert c.legs[-1].closed_by is EventType.REJECTED
    assert open_leg(c) is None


def test_seal_history() -> None:
    c = picked_up()
    c = step(c, "handed_over", handover_data(HAULER, "H-2"), HAULER, (HAULER, "H-2"))
    c = step(c, "received", receipt_data(seal_id="SEAL-X", seal_intact=False), SITE)
    assert [(s.action, s.seal_id) for s in c.seals] == [
        ("applied", "SEAL-1"),
        ("applied", "SEAL-2"),
        ("found", "SEAL-X"),
    ]
    found = c.seals[-1]
    assert found.expected_seal_id == "SEAL-2"
    assert not found.matches
    assert found.intact is False
    assert c.received_codes == c.filing.waste_codes


def test_received_waste_codes_are_recorded() -> None:
    c = step(picked_up(), "received", receipt_data(waste_codes=["900-041-49"]), SITE)
    assert c.received_codes == ("900-041-49",)


def test_time_must_not_go_backwards() -> None:
    c = picked_up()
    with pytest.raises(Invalid) as info:
        step(c, "received", receipt_data(), SITE, at=c.last_at - timedelta(seconds=1))
    assert info.value.field == "at"
    assert step(c, "received", receipt_data(), SITE, at=c.last_at).state is ManifestState.RECEIVED


def test_filing_after_the_pickup_window_is_refused() -> None:
    with pytest.raises(Invalid) as info:
        step(None, "filed", filed_data(), PRODUCER, at=T0 + timedelta(hours=8))
    assert info.value.field == "data.pickup_window.to"


def test_filing_after_delivery_deadline_is_refused() -> None:
    data = filed_data(deliver_by=ts(T0 + timedelta(hours=1)))
    data["pickup_window"]["to"] = ts(T0 + timedelta(hours=3))
    with pytest.raises(Invalid) as info:
        step(None, "filed", data, PRODUCER, at=T0 + timedelta(hours=2))
    assert info.value.field == "data.deliver_by"


def test_manifest_id_is_checked() -> None:
    with pytest.raises(Invalid) as info:
        apply_event(
            None,
            event_type="filed",
            actor=PRODUCER,
            at=T0,
            data=filed_data(),
            signers=signers(PRODUCER),
            manifest_id="not-a-uuid",
        )
    assert info.value.field == "manifest_id"
    with pytest.raises(Invalid):
        apply_event(
            filed(),
            event_type="cancelled",
            actor=PRODUCER,
            at=T0,
            data={"reason": "x"},
            signers=signers(PRODUCER),
            manifest_id=MANIFEST_ID.replace("0b", "0c"),
        )


def test_active_leg_at_uses_half_open_windows() -> None:
    c = picked_up()
    t1 = c.last_at + timedelta(hours=1)
    c = step(c, "handed_over", handover_data(HAULER, "H-2"), HAULER, (HAULER, "H-2"), at=t1)
    first, second = c.legs
    assert active_leg_at(c, first.opened_at - timedelta(seconds=1)) is None
    assert active_leg_at(c, first.opened_at) == first
    assert active_leg_at(c, t1 - timedelta(milliseconds=1)) == first
    assert active_leg_at(c, t1) == second
    assert active_leg_at(c, t1, vehicle=VEHICLE) is None
    assert active_leg_at(c, t1 - timedelta(seconds=1), vehicle="浙a12345") == first
    assert active_leg_at(c, t1 + timedelta(days=9), device_id="DEV-0002") == second
    assert open_leg(c) == second


def test_replay_equals_stepwise_application() -> None:
    times = [T0 + timedelta(hours=h) for h in range(4)]
    records = [
        record("filed", filed_data(), PRODUCER, (PRODUCER,), times[0]),
        record("picked_up", pickup_data(), HAULER, (HAULER, PRODUCER), times[1]),
        record("received", receipt_data(), SITE, (SITE,), times[2]),
        record("disposed", disposal_data(), SITE, (SITE,), times[3]),
    ]
    c = replay(records)
    assert c.state is ManifestState.DISPOSED
    assert c.last_seq == 3
    assert c.last_at == times[3]
    assert [e.seq for e in c.history] == [0, 1, 2, 3]
    with pytest.raises(Invalid):
        replay([])


def test_event_record_from_body_and_seq_gaps() -> None:
    from waste.manifests import EventRecord

    body = {
        "manifest_id": MANIFEST_ID,
        "seq": 0,
        "type": "filed",
        "actor": PRODUCER,
        "at": "2026-11-23T08:00:00Z",
        "data": filed_data(),
        "prev_hash": "0" * 64,
    }
    rec = EventRecord.from_body(body, signers(PRODUCER))
    assert rec.at == T0
    c = replay([rec])
    assert c.manifest_id == MANIFEST_ID
    gap = EventRecord.from_body(
        {**body, "seq": 2, "type": "cancelled", "data": {"reason": "x"}}, signers(PRODUCER)
    )
    with pytest.raises(Invalid) as info:
        replay([rec, gap])
    assert info.value.field == "seq"
