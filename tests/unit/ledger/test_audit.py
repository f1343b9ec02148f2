"""The offline audit bundle: a real chain verifies, and each tampering fails where it should."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.ledger._chain import (
    HAULER_1,
    LOG_KEY,
    LOG_ORIGIN,
    MANIFEST_ID,
    PARTIES,
    PRODUCER,
    SITE,
    T0,
    Scenario,
    build_envelopes,
    build_scenario,
    relink,
    seeded_key,
    signers_of,
)
from waste.ledger import merkle
from waste.ledger.audit import BUNDLE_FORMAT, AuditReport, assemble_bundle, verify_bundle
from waste.ledger.canonical import canonical_bytes, loads_strict
from waste.ledger.checkpoint import Checkpoint, NoteSigner, sign_note
from waste.ledger.keys import b64decode, b64encode

VKEY = NoteSigner(LOG_ORIGIN, LOG_KEY).vkey()


def bundle_of(scenario: Scenario, *, size: int | None = None) -> dict[str, Any]:
    """The bundle the server would serve, against the checkpoint of ``size`` (default: all)."""
    size = len(scenario.log.leaves) if size is None else size
    proofs = [
        merkle.inclusion_proof(i, size, scenario.log.get_node) if i < size else []
        for i, _ in scenario.placed
    ]
    bundle = assemble_bundle(
        manifest_id=MANIFEST_ID,
        entries=scenario.placed,
        proofs=proofs,
        keys=scenario.keys,
        checkpoint_note=scenario.log.checkpoint_note(scenario.signer, size),
        log_vkey=scenario.signer.vkey(),
    )
    # What an auditor receives is JSON text: verify what survives the trip.
    received: dict[str, Any] = loads_strict(json.dumps(bundle, ensure_ascii=False).encode())
    return received


def failed(report: AuditReport) -> list[tuple[int | None, str]]:
    """(seq, check name) of every failure, in order."""
    return [(c.seq, c.name) for c in report.failures]


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    """The bundle of the six-event happy path."""
    return bundle_of(build_scenario())


def tampered(bundle: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(bundle)


def test_a_real_chain_verifies(good: dict[str, Any]) -> None:
    report = verify_bundle(good, VKEY)
    assert report.ok, report.render()
    assert report.failures == []
    assert report.events == 6
    assert report.final_state == "disposed"
    assert report.checkpoint_size == 15
    assert report.render() == (
        f"VERIFIED: manifest {MANIFEST_ID}: 6 events (state disposed), checkpoint size 15"
    )
    names = [(c.seq, c.name) for c in report.checks]
    assert names[0] == (None, "checkpoint")
    for seq in range(6):
        for name in ("inclusion", "signature", "chain", "transition"):
            assert (seq, name) in names


def test_bundle_format(good: dict[str, Any]) -> None:
    assert good["format"] == BUNDLE_FORMAT
    assert good["manifest_id"] == MANIFEST_ID
    assert [e["leaf_index"] for e in good["entries"]] == [3, 4, 6, 9, 10, 12]
    first = good["entries"][0]
    assert set(first) == {"leaf_index", "entry", "inclusion_proof"}
    assert first["entry"]["kind"] == "custody_event"
    assert first["entry"]["accepted_at"] == "2026-11-23T08:01:00Z"
    assert first["entry"]["payload"]["body"]["type"] == "filed"
    assert all(len(b64decode(h)) == 32 for h in first["inclusion_proof"])
    assert {k["party_id"] for k in good["keys"]} == {p.party_id for p in PARTIES}
    assert good["checkpoint"].startswith(f"{LOG_ORIGIN}\n15\n")


def test_the_bundles_own_vkey_is_not_trusted(good: dict[str, Any]) -> None:
    impostor = NoteSigner(LOG_ORIGIN, seeded_key(66))
    bundle = tampered(good)
    body = good["checkpoint"].split("\n\n")[0] + "\n"
    bundle["checkpoint"] = sign_note(body, impostor)
    bundle["log_vkey"] = impostor.vkey()
    report = verify_bundle(bundle, VKEY)
    assert failed(report) == [(None, "checkpoint")]
    assert report.render().startswith(
        "FAILED: checkpoint: the note is not signed by the trusted key"
    )
    # Conversely a garbled copy does not matter when the trusted key verifies.
    bundle = tampered(good)
    bundle["log_vkey"] = "garbage"
    assert verify_bundle(bundle, VKEY).ok


def test_wrong_checkpoint_key(good: dict[str, Any]) -> None:
    other = NoteSigner(LOG_ORIGIN, seeded_key(67)).vkey()
    report = verify_bundle(good, other)
    assert not report.ok
    assert failed(report) == [(None, "checkpoint")]
    assert report.checkpoint_size is None


def test_edited_body_byte(good: dict[str, Any]) -> None:
    bundle = tampered(good)
    bundle["entries"][3]["entry"]["payload"]["body"]["data"]["mass_kg"] = 2300.0
    report = verify_bundle(bundle, VKEY)
    assert report.failures[0].seq == 3
    assert report.failures[0].leaf_index == 9
    assert {(3, "inclusion"), (3, "signature"), (4, "chain")} <= set(failed(report))
    assert report.render().startswith("FAILED: event seq 3 (leaf 9): inclusion: ")


def test_swapped_events(good: dict[str, Any]) -> None:
    bundle = tampered(good)
    entries = bundle["entries"]
    entries[2], entries[3] = entries[3], entries[2]
    report = verify_bundle(bundle, VKEY)
    assert report.failures[0].name == "chain"
    assert report.failures[0].seq == 3
    assert "seq 2 was due after seq 1" in report.failures[0].detail
    assert all(name in ("chain", "transition") for _, name in failed(report))


def test_dropped_event(good: dict[str, Any]) -> None:
    bundle = tampered(good)
    del bundle["entries"][2]
    report = verify_bundle(bundle, VKEY)
    assert report.failures[0].render().startswith("event seq 3 (leaf 9): chain: seq 2 was due")
    assert (3, "chain") in failed(report)
    assert (4, "chain") not in failed(report)  # relinks after the gap


def test_swapped_signatures_in_the_bundle(good: dict[str, Any]) -> None:
    bundle = tampered(good)
    a, b = (bundle["entries"][i]["entry"]["payload"] for i in (1, 2))
    a["signatures"], b["signatures"] = b["signatures"], a["signatures"]
    report = verify_bundle(bundle, VKEY)
    assert {(1, "inclusion"), (1, "signature"), (2, "inclusion"), (2, "signature")} <= set(
        failed(report)
    )


def test_log_holding_events_with_swapped_signatures() -> None:
    # Even a log that accepted them (a compromised server) cannot make them verify.
    envelopes = build_envelopes()
    envelopes[1]["signatures"], envelopes[2]["signatures"] = (
        envelopes[2]["signatures"],
        envelopes[1]["signatures"],
    )
    report = verify_bundle(bundle_of(build_scenario(envelopes=envelopes)), VKEY)
    assert failed(report) == [(1, "signature"), (2, "signature")]
    assert "does not verify" in report.failures[0].detail
    assert report.final_state is None


def test_key_outside_its_window_at_accepted_at() -> None:
    # The site's key expired after the receipt's claimed ``at`` but before the server
    # accepted it (``at`` + 1 minute): the acceptance time is what counts.
    received_at = T0 + timedelta(hours=6)
    keys = [p.record() for p in PARTIES if p is not SITE]
    keys.append(SITE.record(valid_until=received_at + timedelta(seconds=30)))
    report = verify_bundle(bundle_of(build_scenario(key_records=keys)), VKEY)
    assert failed(report) == [(4, "signature"), (5, "signature")]
    assert "was not valid at 2026-11-23T14:01:00Z" in report.failures[0].detail
    assert report.render().startswith("FAILED: event seq 4 (leaf 10): signature: key ")


def test_key_registered_after_the_claimed_time_but_before_acceptance_counts() -> None:
    keys = [p.record() for p in PARTIES if p is not PRODUCER]
    keys.append(PRODUCER.record(valid_from=T0 + timedelta(seconds=30)))  # filed "at" T0
    assert verify_bundle(bundle_of(build_scenario(key_records=keys)), VKEY).ok


def test_missing_key_is_unknown(good: dict[str, Any]) -> None:
    bundle = tampered(good)
    bundle["keys"] = [k for k in bundle["keys"] if k["party_id"] != HAULER_1.party_id]
    report = verify_bundle(bundle, VKEY)
    assert [seq for seq, name in failed(report)] == [1, 2]
    assert "is not registered" in report.failures[0].detail


def test_key_listed_under_another_id(good: dict[str, Any]) -> None:
    bundle = tampered(good)
    bundle["keys"][0]["key_id"] = "0123456789abcdef"
    report = verify_bundle(bundle, VKEY)
    assert failed(report)[0] == (None, "keys")
    assert "is not the key id of its public key" in report.failures[0].detail


def test_edited_proof_hash(good: dict[str, Any]) -> None:
    bundle = tampered(good)
    proof = bundle["entries"][4]["inclusion_proof"]
    raw = bytearray(b64decode(proof[1]))
    raw[0] ^= 1
    proof[1] = b64encode(bytes(raw))
    report = verify_bundle(bundle, VKEY)
    assert failed(report) == [(4, "inclusion")]
    assert report.render() == (
        "FAILED: event seq 4 (leaf 10): inclusion: proof does not lead to the root of size 15"
    )


def test_checkpoint_of_another_tree(good: dict[str, Any]) -> None:
    other = build_scenario(noise=4)  # same key, same events, another tree
    bundle = tampered(good)
    bundle["checkpoint"] = other.log.checkpoint_note(other.signer, 15)
    report = verify_bundle(bundle, VKEY)
    assert failed(report) == [(seq, "inclusion") for seq in range(6)]


def test_checkpoint_too_small_for_the_later_events() -> None:
    report = verify_bundle(bundle_of(build_scenario(), size=10), VKEY)
    assert failed(report) == [(4, "inclusion"), (5, "inclusion")]
    assert "beyond the checkpoint's size 10" in report.failures[0].detail


def test_checkpoint_size_edited_without_the_log_key(good: dict[str, Any]) -> None:
    body = good["checkpoint"].split("\n\n")[0] + "\n"
    bundle = tampered(good)
    bundle["checkpoint"] = good["checkpoint"].replace("\n15\n", "\n16\n", 1)
    assert bundle["checkpoint"] != good["checkpoint"]
    report = verify_bundle(bundle, VKEY)
    assert failed(report) == [(None, "checkpoint")]
    assert Checkpoint.parse(body).size == 15


def test_transition_not_allowed() -> None:
    # filed, picked_up, then disposed straight from in_transit: properly signed and linked.
    plan = build_envelopes()
    envelopes = relink([plan[0], plan[1], plan[5]], [signers_of(0), signers_of(1), signers_of(5)])
    report = verify_bundle(bundle_of(build_scenario(envelopes=envelopes)), VKEY)
    assert failed(report) == [(2, "transition")]
    assert "'disposed' is allowed when the manifest is received" in report.failures[0].detail


def test_missing_required_signer() -> None:
    plan = build_envelopes()
    envelopes = relink(plan, [signers_of(0), (HAULER_1,), *map(signers_of, range(2, 6))])
    report = verify_bundle(bundle_of(build_scenario(envelopes=envelopes)), VKEY)
    assert failed(report) == [(1, "transition")]
    assert PRODUCER.party_id in report.failures[0].detail
    assert report.final_state is None


def test_signer_of_the_wrong_party() -> None:
    plan = build_envelopes()
    envelopes = relink(plan, [(PRODUCER, SITE), *map(signers_of, range(1, 6))])
    report = verify_bundle(bundle_of(build_scenario(envelopes=envelopes)), VKEY)
    assert failed(report) == [(0, "transition")]
    assert f"party {SITE.party_id} may not sign" in report.failures[0].detail


def test_events_of_another_manifest(good: dict[str, Any]) -> None:
    bundle = tampered(good)
    bundle["manifest_id"] = "00000000-0000-4000-8000-000000000000"
    report = verify_bundle(bundle, VKEY)
    assert failed(report) == [(seq, "chain") for seq in range(6)]


def test_entry_of_another_kind(good: dict[str, Any]) -> None:
    bundle = tampered(good)
    bundle["entries"][0]["entry"]["kind"] = "alert_handled"
    report = verify_bundle(bundle, VKEY)
    assert report.failures[0].render() == (
        "entry (leaf 3): entry: entries[0].entry.kind must be 'custody_event'"
    )
    assert (1, "chain") not in failed(report)  # nothing to link to: not blamed on seq 1


def test_malformed_envelope_names_the_field(good: dict[str, Any]) -> None:
    bundle = tampered(good)
    bundle["entries"][2]["entry"]["payload"]["body"]["seq"] = -2
    report = verify_bundle(bundle, VKEY)
    assert report.failures[0].render() == "entry (leaf 6): entry: body.seq must be an integer ≥ 0"


@pytest.mark.parametrize(
    "bundle",
    [
        [],
        {},
        {"format": "other"},
        {"format": BUNDLE_FORMAT, "manifest_id": MANIFEST_ID},
        {"format": BUNDLE_FORMAT, "manifest_id": 1, "checkpoint": "", "entries": [], "keys": []},
    ],
)
def test_malformed_bundles_fail_cleanly(bundle: Any) -> None:
    report = verify_bundle(bundle, VKEY)
    assert not report.ok
    assert failed(report) == [(None, "format")]
    assert report.render().startswith("FAILED: format: ")


def test_unknown_member_and_empty_bundle(good: dict[str, Any]) -> None:
    bundle = tampered(good)
    bundle["signed_by_regulator"] = True
    assert failed(verify_bundle(bundle, VKEY)) == [(None, "format")]
    bundle = tampered(good)
    bundle["entries"] = []
    report = verify_bundle(bundle, VKEY)
    assert failed(report) == [(None, "chain")]
    assert "no events" in report.render()


def test_leaf_hash_is_of_the_canonical_entry(good: dict[str, Any]) -> None:
    entry = good["entries"][0]["entry"]
    checkpoint = Checkpoint.parse(good["checkpoint"].split("\n\n")[0] + "\n")
    proof = [b64decode(h) for h in good["entries"][0]["inclusion_proof"]]
    leaf = merkle.leaf_hash(canonical_bytes(entry))
    assert merkle.verify_inclusion(leaf, 3, checkpoint.size, proof, checkpoint.root_hash)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


GOOD = bundle_of(build_scenario())
GOOD_PATHS = _paths(GOOD)[1:]
json_scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=5)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(GOOD_PATHS), json_scalars | st.lists(json_scalars, max_size=2))
def test_any_mangled_bundle_yields_a_report_never_an_exception(
    path: tuple[Any, ...], value: Any
) -> None:
    bundle = tampered(GOOD)
    target: Any = bundle
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    report = verify_bundle(bundle, VKEY)
    if report.ok:  # only a change that does not matter may pass
        assert (
            path[0] == "log_vkey"
            or value == json.loads(json.dumps(_get(GOOD, path)))
            or (path[0] == "keys" and path[-1] == "valid_until")
        )
    else:
        assert report.render().startswith("FAILED: ")


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def test_a_report_without_checks_is_not_a_verification() -> None:
    assert AuditReport(ok=False, checks=[]).render() == "FAILED: nothing was verified"
