"""Tampering by an operator with database access and the log's signing key.

The direct edits of ``tests/integration/test_verify_log.py`` (a changed mass, a
deleted event, swapped seqs, a rewritten leaf, a truncated log, a forged
checkpoint) are each named by ``verify-log``. What the database alone cannot
show is a rewrite that is consistent everywhere — rows, leaves, nodes, head —
and re-signed with the log key, which the operator holds. These tests show that
a regulator's cosigned checkpoint catches exactly that, through the API and
``waste audit verify-log --checkpoint``, naming the checkpoint; and that leaves
moved around without recomputing the tree are named by leaf and by event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from tests.support.reliability import Recorder
from tests.support.tamper import (  # noqa: F401 (fixtures)
    Logged,
    body_of,
    findings,
    logged_fixture,
    manual_checkpoints,
    root_of,
)
from waste.cli import app as cli
from waste.ledger.checkpoint import cosign, cosigner_vkey, verify_cosignature


def test_a_re_signed_consistent_rewrite_is_caught_by_a_regulators_cosigned_checkpoint(
    logged: Logged, tmp_path: Path, reliability: Recorder
) -> None:
    """The regulator cosigns checkpoint 8 through the API and keeps it. The operator then
    replaces the last two custody events (a disposal and a cancellation) with other
    entries, recomputes the tree and signs a new checkpoint 8 with the log key:
    ``verify-log`` on the database alone passes — nothing in it is inconsistent — but
    with the regulator's note it fails at "checkpoint 8 (held outside)", and the CLI says
    so with exit status 1. The regulator's note carries its own valid cosignature, and the
    server now serves a different, also validly signed, root for size 8: two signed
    statements about one size, proof of the rewrite."""
    regulator = logged.regulator("regulator-3307")
    kept = regulator.cosign_latest(logged.http)
    size, kept_root = root_of(kept, logged.verifier)
    assert size == 8

    logged.truncate(6)
    logged.append_other(2, "rewritten")
    forged = logged.resign()
    assert root_of(forged, logged.verifier)[0] == 8

    alone = logged.verify()
    assert alone.ok, alone.render()
    places = findings(logged.verify(checkpoints=[kept]))
    assert places == {"checkpoint 8 (held outside)": "root does not match the recomputed tree"}

    note_file = tmp_path / "regulator-3307-checkpoint-8.txt"
    note_file.write_text(kept, "utf-8")
    env = {
        "WASTE_DATA_DIR": str(logged.settings.data_dir),
        "WASTE_DATABASE_URL": logged.engine.url.render_as_string(hide_password=False),
        "WASTE_LOG_ORIGIN": logged.settings.log_origin,
    }
    result = CliRunner().invoke(
        cli,
        ["audit", "verify-log", "--workers", "1", "--checkpoint", str(note_file)],
        env=env,
    )
    assert result.exit_code == 1, result.output
    assert "checkpoint 8 (held outside): root does not match the recomputed tree" in result.output

    line = kept.rstrip("\n").rsplit("\n", 1)[1]
    verify_cosignature(line, body_of(kept), cosigner_vkey(regulator.name, regulator.key))
    served = logged.http.get("/v1/log/checkpoints/8").text
    assert root_of(served, logged.verifier) == (8, root_of(forged, logged.verifier)[1])
    assert root_of(served, logged.verifier)[1] != kept_root
    reliability(edited_leaves=2, verify_log_alone="passes", with_cosigned_checkpoint="FAILED")


def test_swapped_leaves_are_named_by_leaf_and_by_event(logged: Logged) -> None:
    """Two leaves swapped in ``log_entries`` (entries and leaf hashes, the tree's nodes left
    alone): verify-log names the two leaf nodes that no longer match, both checkpoints
    whose roots no longer verify, and the custody events whose rows now differ from the
    leaf they point at."""
    a, b = logged.leaf_of(logged.full, 1), logged.leaf_of(logged.full, 2)
    logged.swap_leaves(a, b)
    places = findings(logged.verify())
    for leaf in (a, b):
        assert places[f"node (0, {leaf})"] == "differs from the hash recomputed from its children"
    for size in (4, 8):
        assert places[f"checkpoint {size}"] == "root does not match the recomputed tree"
    for seq, leaf in ((1, a), (2, b)):
        assert f"differs from log leaf {leaf}" in places[f"manifest {logged.full} seq {seq}"]


def test_a_cosignature_not_made_by_the_witness_is_refused(logged: Logged) -> None:
    """A cosignature line under a registered regulator's name but made with another key is
    refused (422) and not served; the regulator's real one is accepted and served."""
    regulator = logged.regulator("regulator-3307")
    note = logged.http.get("/v1/log/checkpoint").text
    impostor = cosign(
        body_of(note), regulator.name, Ed25519PrivateKey.generate(), datetime.now(UTC)
    )
    refused = logged.http.post(
        "/v1/log/cosignatures",
        json={"size": 8, "signature_line": impostor},
        headers=regulator.actor.headers,
    )
    assert refused.status_code == 422, refused.text
    assert impostor.strip() not in logged.http.get("/v1/log/checkpoints/8").text
    kept = regulator.cosign_latest(logged.http)
    assert kept.rstrip("\n").rsplit("\n", 1)[1] in logged.http.get("/v1/log/checkpoints/8").text
