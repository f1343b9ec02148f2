"""Signed checkpoints of the log: C2SP ``signed-note``, ``tlog-checkpoint``, ``tlog-cosignature``.

Formats, as the specifications fix them (https://c2sp.org/signed-note,
https://c2sp.org/tlog-checkpoint, https://c2sp.org/tlog-cosignature):

- A checkpoint body is ``origin\\n<decimal size>\\n<b64 root>\\n`` followed by
  optional non-empty extension lines; the size has no leading zeros.
- A signed note is the text (ending in a newline), a blank line, then one or
  more lines ``— <key name> <b64(4-byte key ID || signature)>\\n`` (em dash
  U+2014). The text is separated from the signatures by the *last* blank line.
  Notes are UTF-8 with no control characters but newline. Key names are
  non-empty, without Unicode spaces or ``+``.
- Ed25519 note signatures (type ``0x01``) sign the text; key ID =
  ``SHA-256(name || 0x0A || 0x01 || pub)[:4]``. A verifier key ("vkey") is
  ``<name>+<8 hex key ID>+<b64(0x01 || pub)>`` (the golang.org/x/mod/sumdb/note form).
- Signatures from keys the verifier does not know (name *and* ID) are ignored;
  a known key's bad signature rejects the note; no good known signature rejects it.
- Ed25519 cosignatures (type ``0x04``): key ID = ``SHA-256(name || 0x0A || 0x04 || pub)[:4]``;
  the signature is ``key ID || u64 big-endian POSIX seconds || Ed25519 signature``
  over ``"cosignature/v1\\ntime <seconds>\\n" || checkpoint body``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from waste.errors import Invalid, ProofError
from waste.ledger.keys import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, b64decode, b64encode, raw_public_key
from waste.ledger.merkle import HASH_SIZE

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
EM_DASH = "\u2014"
MAX_SIGNATURES = 100
"""Signature lines accepted in one note (the spec asks for at least 16)."""

_SIZE_RE = re.compile(r"^(0|[1-9][0-9]*)$")
_MAX_U63 = 2**63 - 1


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, size and root hash (plus opaque extension lines)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = field(default=())

    def body(self) -> str:
        """The checkpoint note text: ``origin\\nsize\\nb64(root)\\n`` and any extension lines."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text strictly; ``ProofError`` on any deviation."""
        if not text.endswith("\n"):
            raise ProofError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise ProofError("checkpoint must have an origin, a size and a root hash line")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise ProofError("checkpoint origin line is empty")
        if (
            _SIZE_RE.fullmatch(size_text) is None
            or len(size_text) > len(str(_MAX_U63))
            or int(size_text) > _MAX_U63
        ):
            raise ProofError(
                f"checkpoint size {size_text!r} is not a decimal without leading zeros"
            )
        try:
            root = b64decode(root_text, field="root_hash")
        except Invalid as exc:
            raise ProofError(f"checkpoint root hash: {exc.detail}") from exc
        if len(root) != HASH_SIZE:
            raise ProofError(f"checkpoint root hash must be {HASH_SIZE} bytes, not {len(root)}")
        if any(not line for line in extensions):
            raise ProofError("checkpoint extension lines must not be empty")
        return cls(origin=origin, size=int(size_text), root_hash=root, extensions=tuple(extensions))


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted Ed25519 note key: its name and raw public key."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise Invalid("an Ed25519 public key is 32 bytes", field="vkey")

    @property
    def key_hash(self) -> bytes:
        """The 4-byte key ID: ``SHA-256(name || 0x0A || 0x01 || pub)[:4]``."""
        return _key_hash(self.name, ALG_ED25519, self.public_key)

    def vkey(self) -> str:
        """The verifier key string ``name+hex(key ID)+b64(0x01 || pub)``."""
        return _vkey(self.name, ALG_ED25519, self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse ``name+hex(key ID)+b64(0x01 || pub)``; ``Invalid`` if malformed or inconsistent."""
        name, public_key = _parse_vkey(vkey, ALG_ED25519)
        return cls(name=name, public_key=public_key)

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``text``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except (InvalidSignature, ValueError):
            return False
        return True


class NoteSigner:
    """A named Ed25519 key that signs notes (the log's checkpoint key)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_key_name(name)
        self.name = name
        self._private_key = private_key
        self.verifier = NoteVerifier(name=name, public_key=raw_public_key(private_key))

    def vkey(self) -> str:
        """The verifier key string of this signer."""
        return self.verifier.vkey()

    def signature_line(self, text: str) -> str:
        """``— name b64(key ID || Ed25519(text))\\n``."""
        signature = self._private_key.sign(text.encode("utf-8"))
        return _signature_line(self.name, self.verifier.key_hash + signature)


def sign_note(body: str, signer: NoteSigner | Sequence[NoteSigner]) -> str:
    """The signed note: ``body``, a blank line, one signature line per signer."""
    _check_text(body)
    signers = [signer] if isinstance(signer, NoteSigner) else list(signer)
    if not signers:
        raise ValueError("a note needs at least one signer")
    return body + "\n" + "".join(s.signature_line(body) for s in signers)


def open_note(note: str | bytes, verifier: NoteVerifier) -> str:
    """The text of a note signed by ``verifier``; ``ProofError`` unless its signature verifies."""
    text, lines = _split_note(note)
    verified = False
    seen = False
    for name, blob in lines:
        if name != verifier.name or blob[:4] != verifier.key_hash:
            continue  # unknown key: ignored, as the spec requires
        if seen:
            raise ProofError(f"note carries two signatures by {verifier.name}")
        seen = True
        if not verifier.verify(text.encode("utf-8"), blob[4:]):
            raise ProofError(f"the signature by {verifier.name} does not verify")
        verified = True
    if not verified:
        raise ProofError(f"the note is not signed by the trusted key {verifier.vkey()}")
    return text


def open_checkpoint(
    note: str | bytes, verifier: NoteVerifier, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint with the trusted log key and parse it strictly."""
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if origin is not None and checkpoint.origin != origin:
        raise ProofError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint


def cosigner_vkey(name: str, private_key: Ed25519PrivateKey) -> str:
    """The vkey of an Ed25519 cosigner: ``name+hex(key ID)+b64(0x04 || pub)``."""
    return _vkey(name, ALG_COSIGNATURE_V1, raw_public_key(private_key))


def parse_cosigner_vkey(vkey: str) -> tuple[str, bytes]:
    """``(name, raw public key)`` of a cosigner vkey ``name+hex(key ID)+b64(0x04 || pub)``."""
    return _parse_vkey(vkey, ALG_COSIGNATURE_V1)


def cosign(checkpoint_body: str, name: str, private_key: Ed25519PrivateKey, at: datetime) -> str:
    """A tlog-cosignature/v1 signature line over ``checkpoint_body`` at time ``at``."""
    _check_key_name(name)
    Checkpoint.parse(checkpoint_body)
    timestamp = int(at.timestamp())
    if not 0 <= timestamp <= _MAX_U63:
        raise ValueError("cosignature time must be after the epoch")
    key_hash = _key_hash(name, ALG_COSIGNATURE_V1, raw_public_key(private_key))
    signature = private_key.sign(_cosigned_message(checkpoint_body, timestamp))
    return _signature_line(name, key_hash + timestamp.to_bytes(8, "big") + signature)


def verify_cosignature(line: str, body: str, cosigner_vkey: str) -> datetime:
    """Verify a cosignature line over ``body``; return its time, or raise ``ProofError``."""
    name, public_key = parse_cosigner_vkey(cosigner_vkey)
    if not line.endswith("\n"):
        line += "\n"
    line_name, blob = _parse_signature_line(line[:-1])
    if line_name != name or blob[:4] != _key_hash(name, ALG_COSIGNATURE_V1, public_key):
        raise ProofError(f"the cosignature line is not by cosigner {name}")
    if len(blob) != 4 + 8 + SIGNATURE_SIZE:
        raise ProofError("an Ed25519 cosignature is a key ID, an 8-byte time and 64 bytes")
    timestamp = int.from_bytes(blob[4:12], "big")
    if timestamp > _MAX_U63:
        raise ProofError("cosignature time exceeds 2^63 - 1")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            blob[12:], _cosigned_message(body, timestamp)
        )
    except InvalidSignature as exc:
        raise ProofError(f"the cosignature by {name} does not verify") from exc
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ProofError(f"cosignature time {timestamp} is out of range") from exc


def _cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def _key_hash(name: str, alg: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()[:4]


def _vkey(name: str, alg: int, public_key: bytes) -> str:
    return f"{name}+{_key_hash(name, alg, public_key).hex()}+{b64encode(bytes([alg]) + public_key)}"


def _parse_vkey(vkey: str, alg: int) -> tuple[str, bytes]:
    # The key's base64 may itself hold '+': only the first two separate fields.
    parts = vkey.split("+", 2) if isinstance(vkey, str) else []
    if len(parts) != 3 or re.fullmatch(r"[0-9a-f]{8}", parts[1]) is None:
        raise Invalid("a verifier key looks like name+8 hex digits+base64", field="vkey")
    name, hash_hex, key_b64 = parts
    _check_key_name(name, field="vkey")
    key = b64decode(key_b64, field="vkey")
    if len(key) != 1 + PUBLIC_KEY_SIZE or key[0] != alg:
        raise Invalid(
            f"verifier key must hold type 0x{alg:02x} and a 32-byte Ed25519 key", field="vkey"
        )
    if bytes.fromhex(hash_hex) != _key_hash(name, alg, key[1:]):
        raise Invalid("verifier key ID does not match its name and key", field="vkey")
    return name, key[1:]


def _check_key_name(name: str, *, field: str = "name") -> None:
    if (
        not isinstance(name, str)
        or not name
        or "+" in name
        or any(ch.isspace() or unicodedata.category(ch) == "Zs" for ch in name)
        or any(ord(ch) < 0x20 for ch in name)
    ):
        raise Invalid(f"key name {name!r} must be non-empty, without spaces or '+'", field=field)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise ValueError("note text must end with a newline")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise ValueError("note text must not contain control characters")


def _signature_line(name: str, blob: bytes) -> str:
    return f"{EM_DASH} {name} {b64encode(blob)}\n"


def _split_note(note: str | bytes) -> tuple[str, list[tuple[str, bytes]]]:
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProofError("a signed note must be valid UTF-8") from exc
    if any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise ProofError("a signed note must not contain control characters other than newline")
    if not note.endswith("\n"):
        raise ProofError("a signed note must end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise ProofError("a signed note needs a blank line before its signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    if not signatures:
        raise ProofError("a signed note needs at least one signature line")
    raw_lines = signatures[:-1].split("\n")
    if len(raw_lines) > MAX_SIGNATURES:
        raise ProofError(f"a signed note may carry at most {MAX_SIGNATURES} signatures")
    return text, [_parse_signature_line(line) for line in raw_lines]


def _parse_signature_line(line: str) -> tuple[str, bytes]:
    prefix = EM_DASH + " "
    if not line.startswith(prefix):
        raise ProofError("a signature line must start with an em dash and a space")
    name, sep, encoded = line[len(prefix) :].partition(" ")
    if not sep or not name or "+" in name or " " in encoded:
        raise ProofError("a signature line is '— <key name> <base64>'")
    try:
        blob = b64decode(encoded, field="signature")
    except Invalid as exc:
        raise ProofError(f"signature of {name}: {exc.detail}") from exc
    if len(blob) < 5:
        raise ProofError(f"signature of {name} is too short")
    return name, blob
