"""Mosquitto as a child process: the embedded broker when it is installed, and the tests' broker.

``MosquittoProcess`` writes a configuration into its work directory (one listener,
anonymous clients unless told otherwise, persistence on or off, a log file), starts
``mosquitto -c`` in a session of its own (a Ctrl-C at the terminal reaches the
gateway, which then stops the broker after its last acknowledgements, not the broker
first), waits until a TCP connect succeeds, and stops it with terminate → wait →
kill. On Linux the child also gets SIGTERM if its parent dies (``PR_SET_PDEATHSIG``),
so a killed gateway leaves no broker holding its port.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import getpass
import logging
import math
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["MosquittoProcess", "find_mosquitto", "free_port", "mosquitto_version"]

log = logging.getLogger(__name__)

_SBIN = "/usr/sbin:/usr/local/sbin:/opt/homebrew/sbin"
_PR_SET_PDEATHSIG = 1


def find_mosquitto() -> str | None:
    """The mosquitto executable on PATH (or in the sbin directories packages use), or None."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path=_SBIN)


def mosquitto_version(exe: str) -> str:
    """What ``mosquitto -h`` says its version is (``2.0.11``), or ``unknown``."""
    try:
        done = subprocess.run([exe, "-h"], capture_output=True, timeout=5, check=False)  # noqa: S603
        out = done.stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = out.decode("utf-8", "replace").split()
    return words[2] if len(words) > 2 and words[:2] == ["mosquitto", "version"] else "unknown"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (bind port 0, read it, release it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as mosquitto binds
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    prctl = ctypes.CDLL(name, use_errno=True).prctl  # resolved here, before the fork
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    prctl.restype = ctypes.c_int

    def set_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))

    return set_signal


class MosquittoProcess:
    """One mosquitto process on ``host:port`` (port 0: a free one), configured in ``workdir``.

    ``settings`` are more configuration lines. Start it from a thread that lives as long
    as the broker should: Linux's parent-death signal follows the starting thread.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        persistence: bool = False,
        anonymous: bool = True,
        session_expiry: int | None = None,
        settings: Sequence[str] = (),
        exe: str | None = None,
    ) -> None:
        found = exe or find_mosquitto()
        if found is None:
            raise RuntimeError("mosquitto is not installed")
        self.exe = found
        self.workdir = workdir
        self.host = host
        self.port = port or free_port(host)
        self.persistence = persistence
        self.anonymous = anonymous
        self.session_expiry = session_expiry
        self.settings = tuple(settings)
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.stderr = workdir / "mosquitto.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``mqtt://HOST:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def config_text(self) -> str:
        """The configuration file ``start`` writes."""
        lines = [
            "# Written by waste-custody at every start.",
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.log}",
            # Started as root, mosquitto would drop to user "mosquitto", who may not
            # write the (private) work directory: no log, no persistence.
            f"user {getpass.getuser()}",
        ]
        if self.session_expiry is not None:  # MQTT 3.1.1 sessions; MQTT 5 clients ask
            hours = max(1, math.ceil(self.session_expiry / 3600))
            lines.append(f"persistent_client_expiration {hours}h")
        return "\n".join([*lines, *self.settings]) + "\n"

    def start(self, timeout: float = 5.0) -> None:
        """Write the configuration, start mosquitto, return once it accepts connections."""
        if self.running:
            raise RuntimeError("mosquitto already running")
        if not _port_is_free(self.host, self.port):
            raise RuntimeError(f"{self.host}:{self.port} is already in use")
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.conf.write_text(self.config_text())
        with self.stderr.open("wb") as err:  # it speaks there only before its log is open
            self.proc = subprocess.Popen(  # noqa: S603 - our own executable and config
                [self.exe, "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
                preexec_fn=_parent_death_signal(),  # noqa: PLW1509 - only a prctl call
            )
        deadline = time.monotonic() + timeout
        while not _accepts(self.host, self.port):
            code = self.proc.poll()
            if code is not None or time.monotonic() > deadline:
                why = self._failure(code)
                self.stop()
                raise RuntimeError(f"mosquitto did not start on {self.host}:{self.port}: {why}")
            time.sleep(0.02)
        log.debug("mosquitto (pid %d) listening on %s:%d", self.proc.pid, self.host, self.port)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate, wait, kill if it lingers; a no-op when not running."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("mosquitto (pid %d) ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait(timeout)

    def restart(self, timeout: float = 5.0) -> None:
        """Stop and start again on the same port."""
        self.stop(timeout)
        self.start(timeout)

    def _failure(self, code: int | None) -> str:
        if code is None:
            return "no TCP connection accepted in time"
        err = self.stderr.read_text("utf-8", "replace") if self.stderr.exists() else ""
        tail = self.log.read_text("utf-8", "replace")[-400:] if self.log.exists() else ""
        return f"exit code {code}: {(err.strip() or tail.strip())[-400:]}"
