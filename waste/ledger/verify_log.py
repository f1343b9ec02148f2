"""Verify the whole transparency log in the database: tree, checkpoints and every custody chain.

``verify_log`` reads one consistent snapshot (REPEATABLE READ, read only, on
PostgreSQL; a deferred read transaction on SQLite, so appends go on meanwhile)
and makes two streamed passes, interleaved:

- the tree pass (this process), leaves in index order, 4096 at a time: indices
  contiguous from 0 to ``log_head.size``; every leaf hash recomputed from the
  entry bytes; every perfect node recomputed and compared with ``log_nodes``;
  the root at every stored checkpoint's size compared with the checkpoint (whose
  signature a worker verifies); every entry without a ``custody_events`` row
  read, so a custody event whose row was deleted is named;
- the chain pass (worker processes, ``waste.ledger.chaincheck``), events in
  ``(manifest_id, seq)`` order, whole manifests per batch.

Memory is bounded by the batch sizes and the number of batches in flight, not
by the size of the log. Entries of kinds other than ``custody_event`` are
hashed into the tree and counted; their content is their owners' to check.

What the database alone cannot show: an operator who rewrites the log's tail
consistently (leaves, nodes, event rows, head) and deletes every checkpoint
signed over it. Pass checkpoints kept elsewhere (a witness's, a regulator's
bundle) as ``checkpoints`` to catch that. Workers start through multiprocessing's
``forkserver``: a script calling ``verify_log`` needs ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from waste.errors import Invalid, ProofError
from waste.ledger import exactjson
from waste.ledger import verify_queries as q
from waste.ledger.chaincheck import ENTRY_KIND, ChainResult, Finding, note_root
from waste.ledger.checkpoint import NoteVerifier, open_checkpoint
from waste.ledger.treecheck import TreeCheck
from waste.ledger.verify_pool import Workers

__all__ = ["Finding", "LogReport", "Progress", "verify_log"]

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``; phases ``leaves`` and ``events``."""

LEAF_BATCH = 4096  # a power of two: batches are aligned subtrees
MAX_FINDINGS = 1000
MAX_DIFFS = 100
_ORDER = ("log", "leaf", "leaves", "node", "checkpoint", "manifest")


@dataclass
class LogReport:
    """The verdict on the whole log: what was checked, and every problem found, by place."""

    size: int = 0
    leaves: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    manifests: int = 0
    events: int = 0
    signatures: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)
    omitted: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether nothing was found."""
        return not self.findings and not self.omitted

    def render(self) -> str:
        """``VERIFIED: …`` or ``FAILED: n problems …`` followed by one line per place."""
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items())) or "empty"
        summary = (
            f"log of {self.size} leaves ({kinds}); {self.manifests} manifests, "
            f"{self.events} events, {self.signatures} signatures; "
            f"{self.checkpoints} checkpoints; {self.seconds:.1f} s"
        )
        if self.ok:
            return f"VERIFIED: {summary}"
        count = len(self.findings) + self.omitted
        places = "1 place" if count == 1 else f"{count} places"
        lines = [f"FAILED: {places} with problems in a {summary}"]
        lines += [f"  {f.render()}" for f in self.findings]
        if self.omitted:
            lines.append(f"  … and {self.omitted} more places")
        return "\n".join(lines)


def verify_log(
    source: Engine | sessionmaker[Session],
    log_vkey: str,
    *,
    workers: int = 2,
    progress: Progress | None = None,
    checkpoints: Iterable[str] = (),
) -> LogReport:
    """Verify the log, its checkpoints and every chain; ``checkpoints``: notes kept elsewhere."""
    started = time.monotonic()
    verifier = NoteVerifier.from_vkey(log_vkey)
    run = _Run(progress or (lambda _phase, _done, _total: None))
    external = [_external(note, verifier, run) for note in checkpoints]
    with q.snapshot(q.engine_of(source)) as conn, Workers(workers, q.keys(conn), log_vkey) as pool:
        run.execute(conn, pool, [c for c in external if c is not None])
    report = run.report
    report.findings, report.omitted = run.findings()
    report.seconds = time.monotonic() - started
    return report


class _Run:
    """One verification: the two passes, and the findings gathered by place."""

    def __init__(self, progress: Progress) -> None:
        self.report = LogReport()
        self.progress = progress
        self._places: dict[str, list[str]] = {}
        self._omitted: set[str] = set()
        self._mismatches: list[tuple[str, int, bytes]] = []

    def add(self, finding: Finding) -> None:
        place = self._places.get(finding.where)
        if place is None and len(self._places) >= MAX_FINDINGS:
            self._omitted.add(finding.where)
            return
        self._places.setdefault(finding.where, []).append(finding.what)

    def findings(self) -> tuple[list[Finding], int]:
        out = [Finding(where, "; ".join(whats)) for where, whats in self._places.items()]
        rank = {word: n for n, word in enumerate(_ORDER)}
        out.sort(key=lambda f: rank.get(f.where.split(" ")[0], len(rank)))
        return out, len(self._omitted)

    def execute(self, conn: Connection, pool: Workers, external: list[tuple[int, bytes]]) -> None:
        head = q.head_size(conn)
        if head is None:
            self.add(Finding("log", "the log_head row is missing"))
            head = q.last_leaf(conn) + 1
        size = self.report.size = head
        total_events = q.event_count(conn)
        tree = TreeCheck(size, self.add)
        tree_steps = self._tree_pass(conn, tree, pool, external)
        chain_jobs = q.chain_batches(conn)
        inflight: deque[Future[Any]] = deque()
        tree_done = chains_done = False
        while True:
            while not chains_done and len(inflight) < pool.capacity:
                batch = next(chain_jobs, None)
                if batch is None:
                    chains_done = True
                else:
                    inflight.append(pool.chains(batch))
            if not tree_done:
                tree_done = not next(tree_steps, False)
                self.progress("leaves", tree.next_index, size)
            elif inflight:
                self._merge(inflight.popleft().result(), total_events)
            elif chains_done:
                break
            while inflight and inflight[0].done():
                self._merge(inflight.popleft().result(), total_events)
        for checked in pool.checkpoint_results:
            self._merge(checked.result(), total_events)
        self._beyond(conn, size, pool.verifier, [s for s, _ in external if s > size])
        self._diffs(conn)

    def _merge(self, result: ChainResult | list[Finding], total_events: int) -> None:
        if isinstance(result, list):
            for finding in result:
                self.add(finding)
            return
        report = self.report
        report.manifests += result.manifests
        report.events += result.events
        report.signatures += result.signatures
        for finding in result.findings:
            self.add(finding)
        self._mismatches.extend(result.mismatches[: MAX_DIFFS - len(self._mismatches)])
        self.progress("events", report.events, total_events)

    def _tree_pass(
        self, conn: Connection, tree: TreeCheck, pool: Workers, external: list[tuple[int, bytes]]
    ) -> Iterator[bool]:
        """Feed the tree one batch per step, checking checkpoints as their sizes go by."""
        size = tree.size
        pending = sorted((s, r, f"checkpoint {s} (held outside)") for s, r in external if s <= size)
        self._check_roots(tree, self._checkpoints(conn, 0, 0, pool), pending)
        missing_from: int | None = None
        for start in range(0, size, LEAF_BATCH):
            end = min(start + LEAF_BATCH, size)
            nodes = q.nodes(conn, start, end)
            rows = q.entries(conn, start, end)
            stored = self._checkpoints(conn, start + 1, end, pool)
            due = [(s, r, w) for s, r, w in stored if s <= end]
            for index, kind_column, entry, leaf, seq in rows:
                while tree.next_index < index:
                    if missing_from is None:
                        missing_from = tree.next_index
                    tree.missing(tree.next_index, nodes)
                    due = self._check_roots(tree, due, pending)
                if missing_from is not None:
                    self._gap(missing_from, index)
                    missing_from = None
                self.report.leaves += 1
                tree.leaf(index, bytes(entry), bytes(leaf), nodes)
                kind = str(kind_column)
                if seq is None:
                    kind = self._unlinked_entry(index, kind, bytes(entry))
                self.report.kinds[kind] = self.report.kinds.get(kind, 0) + 1
                due = self._check_roots(tree, due, pending)
            while tree.next_index < end:
                if missing_from is None:
                    missing_from = tree.next_index
                tree.missing(tree.next_index, nodes)
                due = self._check_roots(tree, due, pending)
            yield True
        if missing_from is not None:
            self.add(
                Finding("log truncated", f"head says {size}, {self.report.leaves} leaves present")
            )

    def _checkpoints(
        self, conn: Connection, low: int, high: int, pool: Workers
    ) -> list[tuple[int, bytes, str]]:
        """Stored checkpoints with low ≤ size ≤ high; their notes go to the workers to verify."""
        rows = q.checkpoints(conn, low, high)
        if rows:
            pool.checkpoints(rows)
        out = []
        for size, root, note in rows:
            stated = note_root(note)  # compare the signed statement, not the column
            out.append((size, stated[1] if stated else root, f"checkpoint {size}"))
        return out

    def _check_roots(
        self,
        tree: TreeCheck,
        due: list[tuple[int, bytes, str]],
        pending: list[tuple[int, bytes, str]],
    ) -> list[tuple[int, bytes, str]]:
        """Compare the root with the checkpoints of the size reached; return those still due."""
        at = tree.next_index
        while pending and pending[0][0] < at:
            pending.pop(0)
        here = [c for c in due if c[0] == at] + [c for c in pending if c[0] == at]
        for _size, root, where in here:
            self.report.checkpoints += 1
            recomputed, _bad = tree.root()
            if recomputed is None:
                self.add(Finding(where, "cannot be recomputed: leaves and nodes are missing"))
            elif recomputed != root:
                self.add(Finding(where, "root does not match the recomputed tree"))
        return [c for c in due if c[0] > at]

    def _gap(self, first: int, end: int) -> None:
        where = f"leaf {first}" if end == first + 1 else f"leaves {first}–{end - 1}"
        self.add(Finding(where, "missing from log_entries"))

    def _unlinked_entry(self, index: int, kind: str, entry: bytes) -> str:
        """Read an entry no event row points at; name a deleted custody event. Returns its kind."""
        where = f"leaf {index}"
        try:
            value, canonical = exactjson.is_canonical(entry)
        except Invalid as exc:
            self.add(Finding(where, f"the entry is not readable JSON: {exc.detail}"))
            return kind
        if not canonical:
            self.add(Finding(where, "the entry bytes are not canonical JSON (RFC 8785)"))
        stated = value.get("kind") if isinstance(value, dict) else None
        if stated != kind:
            self.add(Finding(where, f"filed as kind {kind!r}, but the entry says {stated!r}"))
        if stated == ENTRY_KIND:
            body = _member(_member(value, "payload"), "body")
            manifest, seq = body.get("manifest_id"), body.get("seq")
            self.add(
                Finding(
                    f"manifest {manifest} seq {seq}", f"event row deleted (log leaf {index} has it)"
                )
            )
        return stated if isinstance(stated, str) else kind

    def _beyond(
        self, conn: Connection, size: int, verifier: NoteVerifier, external: list[int]
    ) -> None:
        """Rows past the head: leaves, nodes, and checkpoints signed for a longer log."""
        for checkpoint_size in external:
            self.add(
                Finding(
                    "log truncated",
                    f"checkpoint {checkpoint_size} (held outside) was signed, "
                    f"the log has {size} leaves",
                )
            )
        count, first, last = q.leaves_beyond(conn, size)
        if count:
            self.add(Finding("log truncated", f"head says {size}, yet leaves {first}–{last} exist"))
        count, node = q.nodes_beyond(conn, size)
        if node is not None:
            self.add(
                Finding(
                    "log truncated",
                    f"{count} stored nodes lie beyond size {size}, e.g. node {node}",
                )
            )
        for checkpoint_size, _root, note in q.checkpoints(conn, size + 1):
            try:
                open_checkpoint(note, verifier)
            except (Invalid, ProofError) as exc:
                self.add(
                    Finding(f"checkpoint {checkpoint_size}", f"forged or damaged: {exc.detail}")
                )
                continue
            self.add(
                Finding(
                    "log truncated",
                    f"checkpoint {checkpoint_size} was signed, the log has {size} leaves",
                )
            )

    def _diffs(self, conn: Connection) -> None:
        """Say where each event row differs from its log entry (the first few)."""
        if not self._mismatches:
            return
        entries = q.entry_bytes(conn, [index for _, index, _ in self._mismatches])
        for where, index, rebuilt in self._mismatches:
            try:
                logged = exactjson.parse(entries[index])[0]
                from_row = exactjson.parse(rebuilt)[0]
            except (KeyError, Invalid):
                continue
            difference = exactjson.first_difference(logged, from_row)
            if difference is not None:
                path, in_log, in_row = difference
                self.add(Finding(where, f"at {path}: the log has {in_log!r}, the row {in_row!r}"))


def _member(value: Any, name: str) -> dict[str, Any]:
    found = value.get(name) if isinstance(value, dict) else None
    return found if isinstance(found, dict) else {}


def _external(note: str, verifier: NoteVerifier, run: _Run) -> tuple[int, bytes] | None:
    try:
        checkpoint = open_checkpoint(note, verifier)
    except (Invalid, ProofError) as exc:
        run.add(Finding("checkpoint (held outside)", f"does not verify: {exc.detail}"))
        return None
    return checkpoint.size, checkpoint.root_hash
