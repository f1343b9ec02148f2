"""Fault injection for ``tests/faults``: processes to kill and start again.

``ServiceProcess`` runs ``waste gateway`` or ``waste serve`` as a subprocess that a
test can SIGKILL and start again (``gateway_process``, ``api_process``). The TCP proxy
to cut is in ``tests/support/tcp_proxy.py``, the devices that buffer and resend in
``tests/support/fault_devices.py``.

Everything stays on loopback. ``require_real_services`` skips a test unless both
``WASTE_TEST_DATABASE_URL`` (PostgreSQL) and ``WASTE_TEST_MQTT_URL`` are set.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.brokers import MQTT_ENV, free_port, mosquitto_path
from tests.support.databases import PG_ENV, postgres_url
from tests.support.telemetry import http_get, wait_for

__all__ = [
    "ServiceProcess",
    "api_process",
    "gateway_process",
    "require_real_services",
    "service_env",
    "waste_command",
]


def require_real_services(*, own_mosquitto: bool = True) -> None:
    """Skip unless PostgreSQL and a real broker are configured (and mosquitto is installed)."""
    missing = [
        name
        for name, ok in ((PG_ENV, postgres_url() is not None), (MQTT_ENV, os.environ.get(MQTT_ENV)))
        if not ok
    ]
    if missing:
        pytest.skip(
            f"fault tests need real services: set {' and '.join(missing)} "
            "(PostgreSQL and an MQTT broker; CI's second run sets both)"
        )
    if own_mosquitto and mosquitto_path() is None:
        pytest.skip("fault tests start and restart their own broker: install mosquitto")


def service_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ``WASTE_*``, plus ``WASTE_<NAME>`` settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("WASTE_")}
    return base | {f"WASTE_{k.upper()}": v for k, v in settings.items()}


def waste_command() -> list[str]:
    """The ``waste`` command of this Python environment."""
    exe = Path(sys.executable).with_name("waste")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from waste.cli import main; main()"]


@dataclass
class ServiceProcess:
    """A ``waste`` subprocess that can be started, killed and started again."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    port: int
    health_path: str
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0

    def start(self, timeout: float = 30.0) -> None:
        """Start it and wait until its health endpoint answers 200."""
        with self.log.open("ab") as out:
            out.write(f"\n--- start {self.starts + 1} ---\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [*waste_command(), *self.args], env=self.env, stdout=out, stderr=out
            )
        self.starts += 1
        wait_for(self.healthy, timeout=timeout)

    def healthy(self) -> bool:
        """Whether the health endpoint answers 200 (fails the test if the process died)."""
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"{self.name} is not running: {self.tail()}")
        return self.status() == 200

    def status(self) -> int | None:
        """The health endpoint's status code, or None if nothing answers."""
        try:
            return http_get(self.port, self.health_path)[0]
        except OSError:
            return None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed or acknowledged."""
        proc, self.proc = self.proc, None
        assert proc is not None, f"{self.name} is not running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.kills += 1

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait (SIGKILL if it lingers); the exit code, or 0 if not running."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return 0 if proc is None else int(proc.returncode)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
            raise AssertionError(f"{self.name} did not stop: {self.tail()}") from None

    def tail(self, chars: int = 3000) -> str:
        """The end of its log."""
        return self.log.read_text("utf-8", "replace")[-chars:] if self.log.exists() else ""

    def metric(self, line_prefix: str) -> float:
        """Sum of the metrics lines starting with ``line_prefix`` (gateways only)."""
        text = http_get(self.port, "/metrics")[1]
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(line_prefix)
        )


def _service(
    workdir: Path, name: str, args: list[str], port_setting: str, **settings: str
) -> ServiceProcess:
    """A ``waste`` service on a free port (the setting ``port_setting``), files in ``workdir``."""
    port = free_port()
    env = service_env(
        data_dir=str(workdir / f"{name}-data"),
        auto_migrate="false",
        **{port_setting: str(port)},
        **settings,
    )
    return ServiceProcess(name, args, env, workdir / f"{name}.log", port, "/healthz")


def gateway_process(
    workdir: Path, *, database_url: str, mqtt_url: str, client_id: str, **settings: str
) -> ServiceProcess:
    """A ``waste gateway`` with a stable client id (its broker session survives restarts)."""
    return _service(
        workdir,
        "gateway",
        ["gateway", "--client-id", client_id],
        "gateway_metrics_port",
        database_url=database_url,
        mqtt_url=mqtt_url,
        gateway_batch_interval_s="0.05",
        **settings,
    )


def api_process(
    workdir: Path, *, database_url: str, admin_token: str, log_key: Path, **settings: str
) -> ServiceProcess:
    """A ``waste serve`` (uvicorn) on a free port, signing checkpoints with ``log_key``."""
    return _service(
        workdir,
        "api",
        ["serve"],
        "port",
        database_url=database_url,
        admin_token=admin_token,
        log_key_path=str(log_key),
        **settings,
    )


def broker_log_lines(log: Path, start: int = 0) -> tuple[list[str], int]:
    """Mosquitto's log lines from byte ``start`` on, and the offset after them."""
    with log.open("rb") as f:
        f.seek(start)
        data = f.read()
    end = start + data.rfind(b"\n") + 1
    return data[: end - start].decode("utf-8", "replace").splitlines(), end
