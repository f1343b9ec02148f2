"""A loopback TCP proxy between a service and PostgreSQL, to cut and restore (fault tests).

``cut()`` refuses new connections (the listener is closed: connection refused) and
resets the established ones (RST); ``restore()`` listens again on the same port.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

from tests.support.brokers import free_port
from tests.support.telemetry import wait_for


@dataclass(eq=False)
class _Pair:
    client: socket.socket
    upstream: socket.socket
    reset: threading.Event = field(default_factory=threading.Event)


def _rst_close(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a crashed server or a cut cable looks."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class TcpProxy:
    """A loopback TCP proxy to ``target``; ``cut()`` and ``restore()`` simulate an outage."""

    def __init__(self, target_host: str, target_port: int, *, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self.accepted = 0
        self.reset = 0
        self.cuts = 0
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._listener: socket.socket | None = None
        self._accepting = threading.Event()
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def for_database(cls, url: str) -> TcpProxy:
        """A proxy to the PostgreSQL server of ``url``."""
        parsed = make_url(url)
        return cls(parsed.host or "127.0.0.1", parsed.port or 5432)

    def url(self, database_url: str) -> str:
        """``database_url`` pointed at this proxy."""
        parsed = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return parsed.render_as_string(hide_password=False)

    def start(self) -> None:
        """Listen and forward."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._listener = sock
        self._accepting.set()
        self._spawn(self._accept_loop, sock)

    def cut(self) -> int:
        """Refuse new connections and reset the established ones; how many were reset."""
        self._accepting.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # connects now get "connection refused"
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.reset.set()
        wait_for(lambda: not self._pairs, timeout=5)
        self.cuts += 1
        return len(pairs)

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self.start()

    def close(self) -> None:
        """Stop everything."""
        self._closed.set()
        self.cut()
        for thread in self._threads:
            thread.join(2)

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _accept_loop(self, listener: socket.socket) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            while self._accepting.is_set() and self._listener is listener:
                if not sel.select(0.05):
                    continue
                try:
                    client, _ = listener.accept()
                except OSError:
                    return
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    _rst_close(client)
                    continue
                pair = _Pair(client, upstream)
                with self._lock:
                    self._pairs.add(pair)
                    self.accepted += 1
                self._spawn(self._pump, pair)

    def _pump(self, pair: _Pair) -> None:
        """Copy bytes both ways until either side closes or the proxy is cut."""
        peer = {pair.client: pair.upstream, pair.upstream: pair.client}
        try:
            with selectors.DefaultSelector() as sel:
                for sock in peer:
                    sel.register(sock, selectors.EVENT_READ)
                while not pair.reset.is_set():
                    for key, _ in sel.select(0.05):
                        src: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = src.recv(65536)
                        if not data:
                            return
                        peer[src].sendall(data)
        except OSError:
            return
        finally:
            if pair.reset.is_set():
                self.reset += 1
                _rst_close(pair.client)
                _rst_close(pair.upstream)
            else:
                pair.client.close()
                pair.upstream.close()
            with self._lock:
                self._pairs.discard(pair)
