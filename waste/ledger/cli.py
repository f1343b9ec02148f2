"""``waste audit``: verify an offline audit bundle, or the whole transparency log in the database.

Exit codes: 0 verified, 1 not verified (the findings are printed), 2 a usage
problem (an unreadable or non-bundle file, a bad key, an unreachable database).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from waste.config import Settings
    from waste.ledger.verify_log import Progress

audit_app = typer.Typer(
    help="Verify audit bundles offline, or the whole transparency log.", no_args_is_help=True
)

LogKeyOption = Annotated[
    str | None,
    typer.Option(
        "--log-key",
        help="The log's verifier key (name+keyid+base64, as GET /v1/log/key serves it), or a "
        "file holding it or the log's private key. Default: the key at WASTE_LOG_KEY_PATH.",
    ),
]


@audit_app.command("verify")
def verify(
    bundle: Annotated[Path, typer.Argument(help="The audit bundle (JSON) of one manifest")],
    log_key: LogKeyOption = None,
) -> None:
    """Verify a manifest's audit bundle offline against the log's key."""
    from waste.errors import Invalid
    from waste.ledger.audit import BUNDLE_FORMAT, verify_bundle
    from waste.ledger.canonical import loads_strict

    try:
        raw = bundle.read_bytes()
    except OSError as exc:
        _usage(f"cannot read {bundle}: {exc.strerror or exc}")
    try:
        parsed = loads_strict(raw)
    except Invalid as exc:
        _usage(f"{bundle} is not JSON: {exc.detail}")
    if not isinstance(parsed, dict) or parsed.get("format") != BUNDLE_FORMAT:
        _usage(f'{bundle} is not an audit bundle (no "format": "{BUNDLE_FORMAT}")')
    report = verify_bundle(parsed, _log_vkey(log_key))
    typer.echo(report.render())
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("verify-log")
def verify_log_command(
    log_key: LogKeyOption = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Processes checking signatures and chains")
    ] = 2,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(help="A checkpoint note kept outside the database (e.g. by a witness)"),
    ] = None,
) -> None:
    """Verify the whole log in the database: tree, checkpoints and every custody chain."""
    from sqlalchemy.exc import SQLAlchemyError

    from waste.db import make_engine
    from waste.ledger.verify_log import verify_log

    settings = _settings()
    vkey = _log_vkey(log_key, settings)
    notes = [_read_text(path, "checkpoint") for path in checkpoint or []]
    url = settings.resolved_database_url
    if url.startswith("sqlite") and ":memory:" not in url:
        database = Path(url.split("///", 1)[-1])
        if not database.is_file():
            _usage(f"no database at {database} (set WASTE_DATABASE_URL or WASTE_DATA_DIR)")
    engine = make_engine(url)
    try:
        with _progress() as progress:
            report = verify_log(engine, vkey, workers=workers, progress=progress, checkpoints=notes)
    except SQLAlchemyError as exc:
        _usage(f"cannot read the log from the database: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()
    typer.echo(report.render())
    raise typer.Exit(0 if report.ok else 1)


def _log_vkey(value: str | None, settings: Settings | None = None) -> str:
    """A verifier key from a vkey string, a file holding one, or a private key (PEM) file."""
    from waste.errors import Invalid
    from waste.ledger.checkpoint import NoteSigner, NoteVerifier
    from waste.ledger.keys import private_key_from_bytes

    if value is not None:
        try:
            return NoteVerifier.from_vkey(value.strip()).vkey()
        except Invalid:
            pass
        path = Path(value)
        if not path.is_file():
            _usage(f"--log-key {value!r} is neither a verifier key nor a readable file")
    else:
        settings = settings or _settings()
        path = settings.resolved_log_key_path
        if not path.is_file():
            _usage(f"give --log-key: there is no log key at {path}")
    data = _read_bytes(path, "log key")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            origin = (settings or _settings()).log_origin
            return NoteSigner(origin, private_key_from_bytes(data)).vkey()
        return NoteVerifier.from_vkey(data.decode("utf-8").strip()).vkey()
    except (Invalid, UnicodeDecodeError, ValueError):
        _usage(f"{path} holds neither a verifier key nor an Ed25519 private key")


def _settings() -> Settings:
    from waste.config import Settings

    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError: show it plainly, no traceback
        _usage(f"bad settings: {exc}")


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        _usage(f"cannot read the {what} {path}: {exc.strerror or exc}")


def _read_text(path: Path, what: str) -> str:
    try:
        return _read_bytes(path, what).decode("utf-8")
    except UnicodeDecodeError:
        _usage(f"the {what} {path} is not UTF-8 text")


@contextmanager
def _progress() -> Iterator[Progress | None]:
    """A progress bar on a terminal (stderr), nothing otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


def _usage(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)
