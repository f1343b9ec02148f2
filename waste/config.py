"""Settings, read from the environment (``WASTE_*``) when an entrypoint starts.

Nothing here runs at import: entrypoints call ``Settings()`` and pass the
result down. Every setting has a default that works on a fresh machine with
nothing installed (SQLite under ``WASTE_DATA_DIR``, the embedded broker).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_URL_PASSWORD = re.compile(r"(//[^/@:]*:)[^/]*@")


class Settings(BaseSettings):
    """Every knob of the server, gateway and CLI, with working defaults."""

    model_config = SettingsConfigDict(env_prefix="WASTE_", env_file=None, extra="ignore")

    data_dir: Path = Field(
        default=Path("waste-data"), description="Where SQLite files, keys and spools live."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///<data_dir>/waste.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host:5432/db",
    )
    mqtt_url: str = Field(
        default="embedded://",
        description="mqtt://user:pass@host:1883, mqtts://host:8883, or embedded:// for the "
        "embedded broker (Mosquitto as a child process if installed, else in-process amqtt).",
    )
    log_key_path: Path | None = Field(
        default=None, description="Ed25519 private key of the transparency log (PEM)."
    )
    log_origin: str = Field(
        default="waste-custody.local/log", description="Checkpoint origin line of the log."
    )
    checkpoint_interval_s: float = Field(default=2.0, gt=0, le=3600)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    admin_token: SecretStr | None = Field(
        default=None, description="Bootstrap admin bearer token (at least 32 characters)."
    )
    auto_migrate: bool = Field(
        default=True, description="Run `alembic upgrade head` at start; else refuse if behind."
    )
    auth_max_failures: int = Field(
        default=10,
        ge=1,
        le=100_000,
        description="Failed authentications from one client address within the window "
        "before further attempts get 429.",
    )
    auth_failure_window_s: float = Field(
        default=60.0, gt=0, le=86_400, description="Window of auth_max_failures, in seconds."
    )
    public_base_url: str = Field(
        default="", description="Base URL printed on manifests' QR codes; default host:port."
    )
    gateway_metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="Gateway /metrics and /healthz port; 0: off."
    )
    gateway_share_group: str = Field(
        default="",
        description="MQTT 5 shared-subscription group the gateways join to split the load "
        "(a share_group in WASTE_MQTT_URL wins); empty (default): a plain subscription, "
        "which a broker restart loses nothing of. Opt in only on a broker that restores "
        "shared subscriptions after a restart (Mosquitto >= 2.0.12, EMQX).",
    )
    gateway_batch_fixes: int = Field(default=1000, ge=1, le=100_000)
    gateway_batch_interval_s: float = Field(default=0.2, gt=0, le=60)
    leg_seal_grace_s: float = Field(
        default=600.0, ge=0, description="Wait after a leg closes before sealing its telemetry."
    )
    alert_thresholds: str = Field(
        default="{}",
        description="JSON: region-code prefix → alert threshold overrides, e.g. "
        '{"33": {"unscheduled_stop_s": 900}} (names and defaults: waste.alerts.thresholds).',
    )
    alert_sweep_interval_s: float = Field(
        default=5.0, gt=0, le=3600, description="How often each gateway sweeps for silent legs "
        "and overdue deliveries, and publishes alerts changed elsewhere."
    )

    @field_validator("alert_thresholds")
    @classmethod
    def _thresholds(cls, value: str) -> str:
        from waste.alerts.thresholds import ThresholdBook
        from waste.errors import Invalid

        try:
            ThresholdBook.parse(value)
        except Invalid as exc:
            raise ValueError(f"WASTE_ALERT_THRESHOLDS: {exc}") from exc
        return value

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("WASTE_ADMIN_TOKEN must be at least 32 characters")
        return value

    def __repr_args__(self) -> Any:
        """Fields for ``repr``, with passwords in URLs hidden: a repr may end up in a log."""
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if isinstance(value, str) else value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'waste.db').resolve()}"

    @property
    def resolved_log_key_path(self) -> Path:
        """Where the log's signing key is kept."""
        return self.log_key_path or self.data_dir / "log-key.pem"

    @property
    def base_url(self) -> str:
        """The server's public base URL."""
        return self.public_base_url.rstrip("/") or f"http://{self.host}:{self.port}"


def redact_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", url)
