"""The ``waste`` command: serve the API, manage the database, keys and the example registry."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from devices.cli import devices_app
from waste.config import Settings
from waste.demo.cli import demo_command
from waste.errors import WasteError
from waste.ledger.cli import audit_app
from waste.manifests.cli import app as manifest_app

app = typer.Typer(help="Chain of custody for solid and hazardous waste.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
keys_app = typer.Typer(help="Ed25519 keys for parties and devices.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(manifest_app, name="manifest")
app.add_typer(devices_app, name="devices")


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError: show it plainly, no traceback
        typer.secho(f"bad settings: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
    example: Annotated[bool, typer.Option(help="Load the example registry first")] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each its own database pool)")
    ] = 1,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from waste.api import create_app

    settings = _settings()
    if host:
        settings.host = host
    if port is not None:
        settings.port = port
    if workers > 1:
        if example:
            typer.secho("--example needs one worker: load it once, then add workers", err=True)
            raise typer.Exit(2)
        _prepare_workers(settings)
        typer.echo(f"API docs: {settings.base_url}/docs ({workers} workers)")
        uvicorn.run(
            "waste.api:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
        )
        return
    hook = None
    if example:
        from waste.registry.example import load_into_app

        hook = load_into_app
    typer.echo(f"API docs: {settings.base_url}/docs")
    uvicorn.run(create_app(settings, on_startup=hook), host=settings.host, port=settings.port)


def _prepare_workers(settings: Settings) -> None:
    """Migrate and make the log key once, in the parent, so workers do not race to; the
    workers then only check that the schema is current."""
    import os

    from waste.db import make_engine
    from waste.ledger.service import load_or_create_log_key
    from waste.migrate import ensure_schema

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    try:
        ensure_schema(engine, auto_migrate=settings.auto_migrate)
    except WasteError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    load_or_create_log_key(settings.resolved_log_key_path, settings.log_origin)
    os.environ.update(
        WASTE_AUTO_MIGRATE="false", WASTE_HOST=settings.host, WASTE_PORT=str(settings.port)
    )


app.command("demo")(demo_command)  # the live demo: waste/demo/cli.py


@app.command()
def gateway(
    client_id: Annotated[
        str | None, typer.Option(help="MQTT client id (each gateway process its own)")
    ] = None,
) -> None:
    """Run the MQTT gateway: verify, store and seal device telemetry until SIGINT/SIGTERM."""
    import logging

    from gateway.service import run

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    raise typer.Exit(run(_settings(), client_id=client_id))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database up."""
    from waste.db import make_engine
    from waste.migrate import upgrade

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(make_engine(settings.resolved_database_url), revision)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to a revision (``base`` empties it)."""
    from waste.db import make_engine
    from waste.migrate import downgrade

    downgrade(make_engine(_settings().resolved_database_url), revision)
    typer.echo(f"database at {revision}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's revision and the code's head."""
    from waste.db import make_engine
    from waste.migrate import current_revision, head_revision

    engine = make_engine(_settings().resolved_database_url)
    typer.echo(f"database: {current_revision(engine) or 'empty'}; code: {head_revision(engine)}")


@keys_app.command("gen")
def keys_gen(
    out: Annotated[Path, typer.Argument(help="Where to write the private key (PEM)")],
    force: Annotated[bool, typer.Option(help="Overwrite an existing file")] = False,
) -> None:
    """Generate an Ed25519 key pair; print the public key and key id."""
    from waste.ledger.keys import generate_private_key, public_key_b64, save_private_key

    if out.exists() and not force:
        typer.secho(f"{out} exists; use --force to overwrite", fg="red", err=True)
        raise typer.Exit(2)
    private = generate_private_key()
    save_private_key(private, out)
    public, kid = public_key_b64(private)
    typer.echo(f"public_key: {public}\nkey_id: {kid}\nprivate key written to {out} (mode 600)")


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except WasteError as exc:
        typer.secho(f"error: {exc.detail}", fg="red", err=True)
        sys.exit(2)
