"""What an append costs, for bench/ledger.py: CPU per process group, and the log lock's hold time.

CPU comes from /proc (user + system time of every thread): the API's processes,
the PostgreSQL backends connected to the bench's own database (other databases'
backends are not counted), and the load-generating clients. On a machine whose
cores are all busy, ``cores × 1000 / (CPU ms per append)`` bounds the rate
whatever the locking does.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds used so far by each process (gone ones are left out)."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return used


@dataclass
class Cpu:
    """CPU seconds used meanwhile by the API, the database backends and the clients."""

    app: float = 0.0
    database: float = 0.0
    clients: float = 0.0

    def per_append_ms(self, appends: int) -> str:
        """The three as milliseconds per append, and the rate they allow on this machine."""
        if not appends:
            return "no appends"
        total = (self.app + self.database + self.clients) * 1000 / appends
        ceiling = (os.cpu_count() or 1) * 1000 / total if total else float("inf")
        return (
            f"CPU/append: API {self.app * 1000 / appends:.1f} ms, PostgreSQL "
            f"{self.database * 1000 / appends:.1f} ms, clients {self.clients * 1000 / appends:.1f}"
            f" ms → at most {ceiling:,.0f}/s on {os.cpu_count()} cores"
        )


@contextmanager
def cpu_used(database_url: str, app_pids: Callable[[], list[int]], own: bool) -> Iterator[Cpu]:
    """Measure CPU over the block: ``app_pids()`` (or this process if ``own``) and the backends.

    With ``own`` the API runs in this process and the clients' work is counted as the API's.
    """
    probe = create_engine(database_url, poolclass=NullPool)

    def backends() -> list[int]:
        with probe.connect() as conn:
            query = text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [int(pid) for pid in conn.scalars(query)]

    me = os.getpid()
    before_app, before_db = cpu_seconds(app_pids()), cpu_seconds(backends())
    before_me = cpu_seconds([me]).get(me, 0.0)
    cpu = Cpu()
    try:
        yield cpu
    finally:
        after_app, after_db = cpu_seconds(app_pids()), cpu_seconds(backends())
        after_me = cpu_seconds([me]).get(me, 0.0)
        cpu.app = sum(t - before_app.get(pid, 0.0) for pid, t in after_app.items())
        cpu.database = sum(t - before_db.get(pid, 0.0) for pid, t in after_db.items())
        cpu.clients = 0.0 if own else after_me - before_me
        probe.dispose()


@dataclass
class LockTimer:
    """How long transactions of one engine hold the log's append lock: from taking it to commit.

    The lock is the ``log_head`` row's ``FOR UPDATE`` (PostgreSQL), released by
    the commit, so a hold is timed from that statement's return to the end of
    the session's commit (or rollback).
    """

    held: list[float] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, engine: Engine, factory: sessionmaker[Session]) -> None:
        """Start listening to the engine's statements and the factory's sessions."""
        event.listen(engine, "after_cursor_execute", self._executed)
        event.listen(factory, "after_commit", self._ended)
        event.listen(factory, "after_rollback", self._ended)

    def reset(self) -> None:
        """Forget the holds measured so far."""
        with self._guard:
            self.held.clear()

    def summary(self, seconds: float) -> str:
        """Mean and p99 hold, and the share of ``seconds`` the lock was held."""
        if not self.held:
            return "log lock never taken"
        ordered = sorted(self.held)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        mean = sum(ordered) / len(ordered)
        return (
            f"log lock held {mean * 1000:.2f} ms per append (p99 {p99 * 1000:.1f} ms), "
            f"{sum(ordered) / seconds:.0%} of the time → at most {1 / mean:,.0f} appends/s "
            f"through it"
        )

    def _executed(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM log_head" in statement and "FOR UPDATE" in statement:
            self._local.since = time.perf_counter()

    def _ended(self, _session: Session) -> None:
        since = getattr(self._local, "since", None)
        if since is not None:
            self._local.since = None
            with self._guard:
                self.held.append(time.perf_counter() - since)
