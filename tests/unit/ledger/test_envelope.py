"""Custody envelopes: strict parsing, hashing, signatures and chain linkage."""

from __future__ import annotations

import copy
import hashlib
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.ledger._chain import (
    HAULER_1,
    MANIFEST_ID,
    PARTIES,
    PRODUCER,
    T0,
    build_envelopes,
    seeded_key,
)
from waste.errors import (
    CanonicalJSONError,
    ChainConflict,
    Invalid,
    KeyNotValid,
    SignatureError,
    UnknownKey,
)
from waste.ledger.canonical import canonical_bytes
from waste.ledger.envelope import (
    GENESIS_PREV_HASH,
    check_link,
    check_signatures,
    event_hash,
    make_body,
    parse_envelope,
    sign_body,
    signed_bytes,
)
from waste.ledger.keys import KeyRecord, b64encode, public_key_b64

ENVELOPES = build_envelopes()
KEYS = {r.key_id: r for r in (p.record() for p in PARTIES)}
ACCEPTED = T0 + timedelta(hours=2, minutes=1)


def pickup() -> dict[str, Any]:
    """A fresh copy of the signed ``picked_up`` envelope (seq 1, hauler and producer)."""
    return copy.deepcopy(ENVELOPES[1])


def test_parses_a_signed_envelope() -> None:
    env = parse_envelope(pickup())
    assert env.body.manifest_id == MANIFEST_ID
    assert env.body.seq == 1
    assert env.body.prev_hash == event_hash(ENVELOPES[0]["body"])
    assert env.body.type == "picked_up"
    assert env.body.actor == HAULER_1.party_id
    assert env.body.at == T0 + timedelta(hours=2)
    assert env.body.data["seal_id"] == "SEAL-101"
    assert [s.key_id for s in env.signatures] == [
        public_key_b64(HAULER_1.key)[1],
        public_key_b64(PRODUCER.key)[1],
    ]


def test_event_hash_is_sha256_of_the_jcs_body() -> None:
    raw = pickup()
    env = parse_envelope(raw)
    expected = hashlib.sha256(canonical_bytes(raw["body"])).hexdigest()
    assert env.event_hash() == event_hash(raw["body"]) == expected
    assert signed_bytes(env) == canonical_bytes(raw["body"])


def test_body_json_is_the_body_as_received_and_detached_from_the_caller() -> None:
    raw = pickup()
    raw["body"]["data"]["mass_kg"] = 2401.0  # a float; JCS writes it as 2401
    env = parse_envelope(raw)
    raw["body"]["data"]["mass_kg"] = 1.0
    assert env.body_json["data"]["mass_kg"] == 2401.0
    assert env.body.data["mass_kg"] == 2401.0
    assert env.to_json()["body"]["data"]["mass_kg"] == 2401.0
    with pytest.raises(TypeError):
        env.body_json["seq"] = 5  # type: ignore[index]


def test_to_json_round_trips() -> None:
    env = parse_envelope(pickup())
    assert parse_envelope(env.to_json()) == env
    assert env.to_json() == pickup()


def _mutated(path: str, value: Any) -> dict[str, Any]:
    """The pickup envelope with ``path`` (dotted; ``-`` deletes) set to ``value``."""
    env = pickup()
    *parents, last = path.split(".")
    target: Any = env
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value == "-":
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return env


BAD_ENVELOPES = [
    ("extra", 1, "extra"),
    ("body", "-", "body"),
    ("signatures", "-", "signatures"),
    ("body", [], "body"),
    ("body.note", "x", "body.note"),
    ("body.actor", "-", "body.actor"),
    ("body.manifest_id", MANIFEST_ID.upper(), "body.manifest_id"),
    ("body.manifest_id", "{" + MANIFEST_ID + "}", "body.manifest_id"),
    ("body.manifest_id", MANIFEST_ID.replace("-", ""), "body.manifest_id"),
    ("body.manifest_id", 7, "body.manifest_id"),
    ("body.seq", -1, "body.seq"),
    ("body.seq", True, "body.seq"),
    ("body.seq", 1.0, "body.seq"),
    ("body.seq", "1", "body.seq"),
    ("body.seq", 2**53, "body.seq"),
    ("body.prev_hash", "A" * 64, "body.prev_hash"),
    ("body.prev_hash", "a" * 63, "body.prev_hash"),
    ("body.prev_hash", GENESIS_PREV_HASH, "body.prev_hash"),
    ("body.type", "shipped", "body.type"),
    ("body.type", None, "body.type"),
    ("body.actor", "", "body.actor"),
    ("body.actor", "  ", "body.actor"),
    ("body.actor", 3, "body.actor"),
    ("body.at", "2026-11-23T10:00:00+00:00", "body.at"),
    ("body.at", "2026-02-30T10:00:00Z", "body.at"),
    ("body.data", [], "body.data"),
    ("signatures", [], "signatures"),
    ("signatures", {}, "signatures"),
    ("signatures.0", "sig", "signatures[0]"),
    ("signatures.0.key_id", "ABCDEF0123456789", "signatures[0].key_id"),
    ("signatures.0.key_id", "abc", "signatures[0].key_id"),
    ("signatures.0.sig", b64encode(bytes(63)), "signatures[0].sig"),
    ("signatures.0.sig", "not base64", "signatures[0].sig"),
    ("signatures.0.sig", 12, "signatures[0].sig"),
    ("signatures.0.by", "me", "signatures[0].by"),
]


@pytest.mark.parametrize(("path", "value", "field"), BAD_ENVELOPES)
def test_malformed_envelopes_name_the_field(path: str, value: Any, field: str) -> None:
    with pytest.raises(Invalid) as info:
        parse_envelope(_mutated(path, value))
    assert info.value.field == field
    assert info.value.status == 422


def test_seq_zero_needs_the_genesis_prev_hash() -> None:
    env = copy.deepcopy(ENVELOPES[0])
    env["body"]["prev_hash"] = "1" * 64
    with pytest.raises(Invalid, match="64 zeros when seq is 0") as info:
        parse_envelope(env)
    assert info.value.field == "body.prev_hash"


def test_duplicate_signer_key_is_refused() -> None:
    env = pickup()
    env["signatures"].append(dict(env["signatures"][0]))
    with pytest.raises(Invalid, match="signs twice") as info:
        parse_envelope(env)
    assert info.value.field == "signatures[2].key_id"


def test_non_representable_data_names_the_body_member() -> None:
    env = _mutated("body.data.mass_kg", float("nan"))
    with pytest.raises(CanonicalJSONError) as info:
        parse_envelope(env)
    assert info.value.field == "body.data.mass_kg"


def test_not_an_object() -> None:
    with pytest.raises(Invalid, match="must be a JSON object"):
        parse_envelope([])


# --- signatures ------------------------------------------------------------------


def test_check_signatures_returns_the_signing_parties() -> None:
    signers = check_signatures(parse_envelope(pickup()), KEYS.get, ACCEPTED)
    assert signers == {HAULER_1.party_id: "hauler", PRODUCER.party_id: "producer"}


def test_unknown_key() -> None:
    keys = dict(KEYS)
    del keys[public_key_b64(PRODUCER.key)[1]]
    with pytest.raises(UnknownKey) as info:
        check_signatures(parse_envelope(pickup()), keys.get, ACCEPTED)
    assert info.value.field == "signatures[1].key_id"


def test_lookup_answering_another_key_counts_as_unknown() -> None:
    other = HAULER_1.record()
    with pytest.raises(UnknownKey):
        check_signatures(parse_envelope(pickup()), lambda _kid: other, ACCEPTED)


def test_key_window_is_judged_at_acceptance_not_at_the_claimed_time() -> None:
    env = parse_envelope(pickup())  # claims at = T0 + 2h; accepted at T0 + 2h01
    expired = PRODUCER.record(valid_until=ACCEPTED - timedelta(seconds=1))
    keys = {**KEYS, expired.key_id: expired}
    with pytest.raises(KeyNotValid) as info:
        check_signatures(env, keys.get, ACCEPTED)
    assert info.value.field == "signatures[1].key_id"
    # Registered after the claimed time but before acceptance: valid.
    late = PRODUCER.record(valid_from=env.body.at + timedelta(seconds=30))
    assert PRODUCER.party_id in check_signatures(env, {**KEYS, late.key_id: late}.get, ACCEPTED)


def test_signature_by_another_key_under_a_registered_id() -> None:
    env = pickup()
    forged = seeded_key(77).sign(canonical_bytes(env["body"]))
    env["signatures"][1]["sig"] = b64encode(forged)
    with pytest.raises(SignatureError) as info:
        check_signatures(parse_envelope(env), KEYS.get, ACCEPTED)
    assert info.value.field == "signatures[1].sig"
    assert type(info.value) is SignatureError


def test_body_changed_after_signing() -> None:
    env = _mutated("body.data.mass_kg", 2000)
    with pytest.raises(SignatureError, match="does not verify"):
        check_signatures(parse_envelope(env), KEYS.get, ACCEPTED)


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8) | st.booleans(),
        max_size=5,
    ),
    st.integers(min_value=1, max_value=2**53 - 1),
)
def test_any_signed_body_verifies_and_any_change_breaks_it(data: dict[str, Any], seq: int) -> None:
    body = make_body(
        manifest_id=MANIFEST_ID,
        seq=seq,
        prev_hash="ab" * 32,
        type="received",
        actor="S-1",
        at=T0,
        data=data,
    )
    env = parse_envelope(sign_body(body, [PRODUCER.key]))
    assert check_signatures(env, KEYS.get, ACCEPTED) == {PRODUCER.party_id: "producer"}
    changed = sign_body(body, [PRODUCER.key])
    changed["body"] = {**body, "seq": seq - 1 if seq > 1 else 2}
    with pytest.raises(SignatureError):
        check_signatures(parse_envelope(changed), KEYS.get, ACCEPTED)


def test_key_record_lookup_can_be_any_callable() -> None:
    calls: list[str] = []

    def lookup(kid: str) -> KeyRecord | None:
        calls.append(kid)
        return KEYS.get(kid)

    check_signatures(parse_envelope(pickup()), lookup, ACCEPTED)
    assert calls == [s["key_id"] for s in pickup()["signatures"]]


# --- linkage -----------------------------------------------------------------------


def test_check_link_accepts_the_head() -> None:
    env = parse_envelope(pickup())
    check_link(env.body, 1, event_hash(ENVELOPES[0]["body"]))


@pytest.mark.parametrize(
    ("seq", "prev", "field"),
    [(2, None, "body.seq"), (1, "f" * 64, "body.prev_hash"), (0, GENESIS_PREV_HASH, "body.seq")],
)
def test_check_link_conflicts(seq: int, prev: str | None, field: str) -> None:
    env = parse_envelope(pickup())
    expected_prev = prev or event_hash(ENVELOPES[0]["body"])
    with pytest.raises(ChainConflict) as info:
        check_link(env.body, seq, expected_prev)
    assert info.value.status == 409
    assert info.value.field == field
    assert info.value.problem()["expected_seq"] == seq
    assert info.value.problem()["expected_prev_hash"] == expected_prev
