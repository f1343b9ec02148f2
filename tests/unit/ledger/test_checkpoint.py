"""C2SP signed notes, tlog checkpoints and Ed25519 cosignatures."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.unit.ledger._chain import seeded_key
from waste.errors import Invalid, ProofError
from waste.ledger.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    cosign,
    cosigner_vkey,
    open_checkpoint,
    open_note,
    parse_cosigner_vkey,
    sign_note,
    verify_cosignature,
)
from waste.ledger.keys import raw_public_key

# The example of golang.org/x/mod/sumdb/note (also used by the C2SP signed-note spec's
# implementations): skey PRIVATE+KEY+PeterNeumann+c74f20a3+<b64(0x01 || seed)>.
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FF"
    "YC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# The examples of c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature.
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_COSIGNATURE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJs"
    "X3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)

LOG = NoteSigner("log.example/v1", seeded_key(9))
ROOT = hashlib.sha256(b"root").digest()
AT = datetime(2026, 11, 23, 8, 0, 5, tzinfo=UTC)


def test_go_note_vector() -> None:
    signer = NoteSigner("PeterNeumann", Ed25519PrivateKey.from_private_bytes(GO_SEED))
    assert signer.vkey() == GO_VKEY
    assert sign_note(GO_TEXT, signer) == GO_NOTE
    verifier = NoteVerifier.from_vkey(GO_VKEY)
    assert verifier.public_key == raw_public_key(signer._private_key)
    assert open_note(GO_NOTE, verifier) == GO_TEXT
    assert open_note(GO_NOTE.encode(), verifier) == GO_TEXT
    with pytest.raises(ProofError, match="does not verify"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), verifier)


def test_key_hash_is_sha256_of_name_newline_type_and_key() -> None:
    pub = raw_public_key(seeded_key(9))
    expected = hashlib.sha256(b"log.example/v1\n\x01" + pub).digest()[:4]
    assert LOG.verifier.key_hash == expected
    key_b64 = base64.b64encode(b"\x01" + pub).decode()
    assert LOG.vkey() == f"log.example/v1+{expected.hex()}+{key_b64}"


def test_spec_checkpoint_body_parses() -> None:
    checkpoint = Checkpoint.parse(SPEC_BODY)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.body() == SPEC_BODY


def test_spec_cosignature_layout() -> None:
    # key ID (4) || u64 big-endian timestamp || Ed25519 signature (64); "time 1679315147".
    blob = base64.b64decode(SPEC_COSIGNATURE.split(" ")[2])
    assert len(blob) == 4 + 8 + 64
    assert int.from_bytes(blob[4:12], "big") == 1679315147


def test_checkpoint_body_and_round_trip() -> None:
    checkpoint = Checkpoint("log.example/v1", 42, ROOT, ("ext one",))
    body = checkpoint.body()
    assert body == f"log.example/v1\n42\n{base64.b64encode(ROOT).decode()}\next one\n"
    assert Checkpoint.parse(body) == checkpoint
    assert open_checkpoint(sign_note(body, LOG), LOG.verifier) == checkpoint


def test_empty_tree_checkpoint() -> None:
    empty = Checkpoint("log.example/v1", 0, hashlib.sha256(b"").digest())
    assert Checkpoint.parse(empty.body()) == empty


ROOT_B64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "body",
    [
        f"o\n42\n{ROOT_B64}",  # no final newline
        "o\n42\n",
        f"\n42\n{ROOT_B64}\n",
        f"o\n042\n{ROOT_B64}\n",
        f"o\n-1\n{ROOT_B64}\n",
        f"o\n+1\n{ROOT_B64}\n",
        f"o\n 1\n{ROOT_B64}\n",
        f"o\n1.0\n{ROOT_B64}\n",
        f"o\n{2**64}\n{ROOT_B64}\n",
        f"o\n{'9' * 5000}\n{ROOT_B64}\n",
        "o\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n",
        "o\n1\n" + ROOT_B64.rstrip("=") + "\n",
        f"o\n1\n{ROOT_B64}\n\next\n",
    ],
)
def test_checkpoint_parse_is_strict(body: str) -> None:
    with pytest.raises(ProofError):
        Checkpoint.parse(body)


def test_wrong_log_key_is_refused() -> None:
    note = sign_note(Checkpoint("log.example/v1", 1, ROOT).body(), LOG)
    impostor = NoteSigner("log.example/v1", seeded_key(10))
    with pytest.raises(ProofError, match="not signed by the trusted key"):
        open_checkpoint(note, impostor.verifier)


def test_unknown_signatures_are_ignored() -> None:
    body = Checkpoint("log.example/v1", 1, ROOT).body()
    other = NoteSigner("witness.example/w1", seeded_key(11))
    note = sign_note(body, [other, LOG])
    assert open_checkpoint(note, LOG.verifier).size == 1
    # Same name, another key (so another key ID): also unknown, also ignored.
    same_name = NoteSigner("log.example/v1", seeded_key(12))
    assert open_checkpoint(
        body + "\n" + same_name.signature_line(body) + LOG.signature_line(body), LOG.verifier
    )


def test_known_key_with_a_bad_signature_rejects_the_note() -> None:
    body = Checkpoint("log.example/v1", 1, ROOT).body()
    good = sign_note(body, LOG)
    line = good.split("\n\n")[1]
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[10] ^= 1
    bad = f"— log.example/v1 {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(ProofError, match="does not verify"):
        open_checkpoint(body + "\n" + bad + line, LOG.verifier)
    with pytest.raises(ProofError, match="two signatures"):
        open_checkpoint(good + line, LOG.verifier)


def test_origin_can_be_pinned() -> None:
    note = sign_note(Checkpoint("other.example/log", 1, ROOT).body(), LOG)
    assert open_checkpoint(note, LOG.verifier).origin == "other.example/log"
    with pytest.raises(ProofError, match="origin"):
        open_checkpoint(note, LOG.verifier, origin="log.example/v1")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n.rstrip("\n"),
        lambda n: n.replace("\n\n", "\n"),
        lambda n: n.replace("— ", "- "),
        lambda n: n.replace("— ", "—"),
        lambda n: n + "\n",
        lambda n: n.replace("42", "4\t2"),
        lambda n: n.replace("42", "4\r2"),
        lambda n: n.split("\n\n")[0] + "\n\n",
        lambda n: n.replace("=\n", "\n"),
        lambda n: n + "— x AAAA\n",
        lambda n: n + "— a+b " + base64.b64encode(bytes(70)).decode() + "\n",
    ],
)
def test_malformed_notes_are_refused(mangle: object) -> None:
    note = sign_note(Checkpoint("log.example/v1", 42, ROOT).body(), LOG)
    assert callable(mangle)
    with pytest.raises(ProofError):
        open_checkpoint(mangle(note), LOG.verifier)


def test_invalid_utf8_note() -> None:
    with pytest.raises(ProofError, match="UTF-8"):
        open_note(b"\xff\n\n- x\n", LOG.verifier)


def test_too_many_signature_lines() -> None:
    body = Checkpoint("log.example/v1", 1, ROOT).body()
    filler = "— w " + base64.b64encode(bytes(68)).decode() + "\n"
    with pytest.raises(ProofError, match="at most"):
        open_checkpoint(body + "\n" + filler * 100 + LOG.signature_line(body), LOG.verifier)
    assert open_checkpoint(body + "\n" + filler * 16 + LOG.signature_line(body), LOG.verifier)


@pytest.mark.parametrize(
    "vkey",
    [
        GO_VKEY.replace("c74f20a3", "c74f20a4"),
        GO_VKEY.replace("c74f20a3", "C74F20A3"),
        GO_VKEY.replace("PeterNeumann", "Peter Neumann"),
        GO_VKEY.replace("+ARpc", "+Apc"),
        "PeterNeumann+c74f20a3",
        "a+b+c+d",
        "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x04" + bytes(32)).decode(),
        "",
    ],
)
def test_malformed_vkeys_are_invalid(vkey: str) -> None:
    with pytest.raises(Invalid) as info:
        NoteVerifier.from_vkey(vkey)
    assert info.value.field == "vkey"


def test_signer_names_are_checked() -> None:
    for name in ["", "a b", "a+b", "a\u00a0b", "a\nb"]:
        with pytest.raises(Invalid):
            NoteSigner(name, seeded_key(1))


# --- cosignatures -------------------------------------------------------------------

WITNESS = seeded_key(21)
WITNESS_NAME = "witness.example/w1"


def test_cosignature_round_trip() -> None:
    body = Checkpoint("log.example/v1", 7, ROOT).body()
    line = cosign(body, WITNESS_NAME, WITNESS, AT)
    vkey = cosigner_vkey(WITNESS_NAME, WITNESS)
    assert verify_cosignature(line, body, vkey) == AT.replace(microsecond=0)
    assert parse_cosigner_vkey(vkey) == (WITNESS_NAME, raw_public_key(WITNESS))
    # A cosigned note still opens with the log key: the cosignature is an unknown key to it.
    assert open_checkpoint(sign_note(body, LOG) + line, LOG.verifier).size == 7


def test_cosignature_format() -> None:
    body = Checkpoint("log.example/v1", 7, ROOT).body()
    line = cosign(body, WITNESS_NAME, WITNESS, AT)
    assert line.startswith(f"— {WITNESS_NAME} ")
    assert line.endswith("\n")
    blob = base64.b64decode(line.split(" ")[2])
    pub = raw_public_key(WITNESS)
    assert blob[:4] == hashlib.sha256(WITNESS_NAME.encode() + b"\n\x04" + pub).digest()[:4]
    assert int.from_bytes(blob[4:12], "big") == int(AT.timestamp())
    message = f"cosignature/v1\ntime {int(AT.timestamp())}\n".encode() + body.encode()
    WITNESS.public_key().verify(blob[12:], message)  # raises if the message differs


def test_cosignature_failures() -> None:
    body = Checkpoint("log.example/v1", 7, ROOT).body()
    line = cosign(body, WITNESS_NAME, WITNESS, AT)
    vkey = cosigner_vkey(WITNESS_NAME, WITNESS)
    with pytest.raises(ProofError, match="does not verify"):
        verify_cosignature(line, Checkpoint("log.example/v1", 8, ROOT).body(), vkey)
    with pytest.raises(ProofError, match="not by cosigner"):
        verify_cosignature(line, body, cosigner_vkey("other.example/w", WITNESS))
    with pytest.raises(ProofError, match="not by cosigner"):
        verify_cosignature(line, body, cosigner_vkey(WITNESS_NAME, seeded_key(22)))
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[11] ^= 1  # move the claimed time by a second
    moved = f"— {WITNESS_NAME} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(ProofError, match="does not verify"):
        verify_cosignature(moved, body, vkey)
    with pytest.raises(Invalid):
        verify_cosignature(line, body, LOG.vkey())  # a note key (type 0x01) is not a cosigner key
    with pytest.raises(Invalid):
        NoteVerifier.from_vkey(vkey)  # and a cosigner key is not a note key
