"""Log use cases: the log key, signed checkpoints, witnesses and their cosignatures."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from waste.clock import utcnow
from waste.errors import Conflict, Invalid, NotFound, ProofError
from waste.ledger.checkpoint import Checkpoint as CheckpointBody
from waste.ledger.checkpoint import (
    NoteSigner,
    parse_cosigner_vkey,
    sign_note,
    verify_cosignature,
)
from waste.ledger.keys import generate_private_key, load_private_key, save_private_key
from waste.ledger.models import Checkpoint, Cosignature, Witness
from waste.ledger.store import LogStore
from waste.uow import UnitOfWork

log = logging.getLogger("waste.ledger")


@dataclass(frozen=True)
class LogKey:
    """The log's signing identity."""

    signer: NoteSigner

    @property
    def vkey(self) -> str:
        """The verifier key in C2SP ``name+keyid+b64`` form."""
        return self.signer.vkey()


def load_or_create_log_key(path: Path, origin: str) -> LogKey:
    """Load the log key from ``path``, generating it (mode 600) on first start."""
    if path.exists():
        private = load_private_key(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        private = generate_private_key()
        save_private_key(private, path)
        os.chmod(path, 0o600)
        log.info("generated a new transparency log key at %s", path)
    return LogKey(NoteSigner(origin, private))


def publish_checkpoint(*, uow: UnitOfWork, key: LogKey, min_size: int = 0) -> Checkpoint:
    """The checkpoint at the log's current size, signing a new one if there is none yet."""
    store = LogStore(uow.session)
    size = store.size()
    if size < min_size:
        raise NotFound(f"the log has only {size} entries")
    existing = uow.session.get(Checkpoint, size)
    if existing is not None:
        return existing
    root = store.root(size)
    note = sign_note(CheckpointBody(key.signer.name, size, root).body(), key.signer)
    row = Checkpoint(size=size, root_hash=root, note=note, created_at=utcnow())
    uow.session.add(row)
    try:
        uow.commit()
    except Conflict:  # another worker signed the same size meanwhile: the same tree head
        uow.session.rollback()
        again = uow.session.get(Checkpoint, size)
        assert again is not None
        return again
    return row


def latest_checkpoint(*, uow: UnitOfWork) -> Checkpoint | None:
    """The newest signed checkpoint."""
    return uow.session.scalar(select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1))


def served_note(*, uow: UnitOfWork, checkpoint: Checkpoint) -> str:
    """The checkpoint note with every stored cosignature line appended."""
    lines = uow.session.scalars(
        select(Cosignature.signature_line)
        .where(Cosignature.checkpoint_size == checkpoint.size)
        .order_by(Cosignature.id)
    )
    return checkpoint.note + "".join(lines)


def register_witness(*, uow: UnitOfWork, name: str, vkey: str, party_id: str | None) -> Witness:
    """Register a cosigner's verifier key (C2SP tlog-cosignature, type 0x04)."""
    if uow.session.get(Witness, name) is not None:
        raise Conflict(f"witness {name} exists", field="name")
    try:
        parsed_name, _ = parse_cosigner_vkey(vkey)
    except (Invalid, ProofError) as exc:
        raise Invalid(f"bad cosigner vkey: {exc.detail}", field="vkey") from exc
    if parsed_name != name:
        raise Invalid("the vkey's name must be the witness name", field="vkey")
    witness = Witness(name=name, vkey=vkey, party_id=party_id, created_at=utcnow())
    uow.session.add(witness)
    uow.commit()
    return witness


def add_cosignature(*, uow: UnitOfWork, size: int, signature_line: str) -> Cosignature:
    """Verify a witness's cosignature on the checkpoint of ``size`` and store it."""
    checkpoint = uow.session.get(Checkpoint, size)
    if checkpoint is None:
        raise NotFound(f"no checkpoint of size {size}", field="size")
    line = signature_line.rstrip("\n") + "\n"
    name = line.removeprefix("\u2014 ").split(" ", 1)[0]
    witness = uow.session.get(Witness, name)
    if witness is None:
        raise NotFound(f"no witness named {name!r}", field="signature_line")
    body = checkpoint.note.split("\n\n", 1)[0] + "\n"
    signed_at = verify_cosignature(line, body, witness.vkey)
    row = Cosignature(
        checkpoint_size=size,
        cosigner=name,
        key_hash=witness.vkey.split("+")[1],
        signature_line=line,
        signed_at=signed_at,
        received_at=utcnow(),
    )
    uow.session.add(row)
    uow.commit()
    return row


class CheckpointPublisher:
    """A background thread that signs a checkpoint whenever the log has grown."""

    def __init__(
        self, session_factory: sessionmaker[Session], key: LogKey, interval_s: float
    ) -> None:
        self._factory = session_factory
        self._key = key
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoints", daemon=True)

    def start(self) -> None:
        """Start publishing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=10)

    def publish_once(self) -> int:
        """Sign a checkpoint for the current size if needed; return the size."""
        with UnitOfWork(self._factory) as uow:
            return publish_checkpoint(uow=uow, key=self._key).size

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.publish_once()
            except Exception:  # a database hiccup must not kill the publisher
                log.exception("checkpoint publication failed; retrying")
            self._stop.wait(self._interval)
