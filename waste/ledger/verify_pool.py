"""The worker processes of ``verify_log``: chain and checkpoint checks, off the reading process."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import Any, Self

from waste.ledger import chaincheck
from waste.ledger.chaincheck import ChainChecker, ChainResult, ChainRow, CheckpointRow, Finding
from waste.ledger.checkpoint import NoteVerifier
from waste.ledger.keys import KeyRecord

_PRELOAD = ["waste.ledger.chaincheck"]


class Workers:
    """``count`` worker processes (or, for ``count`` ≤ 1, this process) checking batches."""

    def __init__(self, count: int, keys: list[KeyRecord], log_vkey: str) -> None:
        self.verifier = NoteVerifier.from_vkey(log_vkey)
        self.capacity = max(2, 3 * count)  # batches in flight: bounds memory
        self.checkpoint_results: list[Future[list[Finding]]] = []
        self._inline: ChainChecker | None = None
        self._pool: ProcessPoolExecutor | None = None
        if count <= 1:
            self._inline = ChainChecker(keys, log_vkey)
        else:
            # forkserver: workers fork from a clean server process, never from this one
            # (which may hold database connections and threads), and start fast.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD)
            self._pool = ProcessPoolExecutor(
                max_workers=count,
                mp_context=context,
                initializer=chaincheck.init_worker,
                initargs=(keys, log_vkey),
            )

    def chains(self, batch: list[list[ChainRow]]) -> Future[ChainResult]:
        """Check a batch of whole manifests."""
        if self._pool is not None:
            return self._pool.submit(chaincheck.run_chains, batch)
        assert self._inline is not None
        return _done(self._inline.check_chains(batch))

    def checkpoints(self, rows: list[CheckpointRow]) -> None:
        """Verify checkpoint notes; results gather in ``checkpoint_results``."""
        if self._pool is not None:
            self.checkpoint_results.append(self._pool.submit(chaincheck.run_checkpoints, rows))
            return
        assert self._inline is not None
        self.checkpoint_results.append(_done(self._inline.check_checkpoints(rows)))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=exc is None, cancel_futures=exc is not None)


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future
