"""``waste demo``: the live demo from the command line (registered by ``waste/cli.py``)."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo_command"]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def demo_command(
    trips: Annotated[int, typer.Option(help="Trips in the day")] = 40,
    speed: Annotated[
        float | None, typer.Option(help="Time compression (default: the day in --minutes)")
    ] = None,
    minutes: Annotated[float, typer.Option(help="Wall minutes the day should take")] = 3.0,
    seed: Annotated[int, typer.Option(help="The same seed, the same county and day")] = 0,
    incidents: Annotated[float, typer.Option(help="Share of trips with an incident")] = 0.2,
    kinds: Annotated[
        str | None,
        typer.Option(help="Incident kinds planted in turn, comma-separated (default: all)"),
    ] = None,
    lat: Annotated[float, typer.Option(help="Centre of the county")] = 29.31,
    lon: Annotated[float, typer.Option(help="Centre of the county")] = 120.07,
    region_code: Annotated[str, typer.Option(help="The county's 6-digit region code")] = "330782",
    host: Annotated[str, typer.Option(help="API listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port (0: a free one)")] = 8000,
    data_dir: Annotated[
        Path, typer.Option(help="The demo's own directory (database, keys, broker, tokens)")
    ] = Path("waste-demo"),
    database_url: Annotated[
        str | None, typer.Option(help="Another database (default: SQLite in --data-dir)")
    ] = None,
    mqtt_url: Annotated[
        str, typer.Option(help="The broker (default: the embedded one on a free port)")
    ] = "embedded://",
    fresh: Annotated[bool, typer.Option("--fresh", help="Wipe a previous demo first")] = False,
    more: Annotated[
        bool, typer.Option("--continue", help="Keep a previous demo and add a day")
    ] = False,
    stay: Annotated[
        bool | None,
        typer.Option(help="Keep serving after the day until Ctrl-C (default: on a terminal)"),
    ] = None,
    headless: Annotated[bool, typer.Option(help="Plain lines instead of the live view")] = False,
) -> None:
    """Run the live demo: API, gateway and a simulated county's fleet for a compressed day.

    At the end: alerts against the planted incidents, every audit bundle verified offline.
    """
    from rich.console import Console
    from rich.logging import RichHandler

    from waste.config import Settings
    from waste.demo.display import LiveDisplay, PlainDisplay
    from waste.demo.options import DemoOptions, Restart, parse_kinds
    from waste.demo.run import DemoError, run_demo

    if fresh and more:
        raise _fail("--fresh and --continue exclude each other")
    tty = sys.stdout.isatty()
    restart = Restart.FRESH if fresh else Restart.CONTINUE if more else Restart.ASK
    options = DemoOptions(
        trips=trips,
        incidents=incidents,
        kinds=parse_kinds(kinds),
        seed=seed,
        speed=speed,
        minutes=minutes,
        lat=lat,
        lon=lon,
        region_code=region_code,
        place_name="Yiwu county (simulated)"
        if (lat, lon) == (29.31, 120.07)
        else "Simulated county",
        host=host,
        port=port,
        restart=restart,
        stay=tty if stay is None else stay,
        headless=headless or not tty,
    )
    try:
        options.check()
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if port and _port_taken(host, port):
        raise _fail(f"{host}:{port} is taken: give another --port (0 picks a free one)")
    try:
        settings = Settings(data_dir=data_dir, database_url=database_url, mqtt_url=mqtt_url)
    except Exception as exc:  # pydantic's ValidationError: shown plainly
        raise _fail(f"bad settings: {exc}") from exc
    console = Console(highlight=False, soft_wrap=options.headless)
    logging.basicConfig(
        level=logging.WARNING,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
    )

    def ask() -> Restart:
        """Ask whether to continue the previous demo or start afresh."""
        if not tty:
            raise _fail(f"{data_dir} holds a previous demo: pass --continue or --fresh")
        answer = typer.prompt(
            f"{data_dir} holds a previous demo: [c]ontinue (add a day) or [f]resh (wipe it)?",
            default="c",
        )
        if answer.strip().lower().startswith("f"):
            return Restart.FRESH
        if answer.strip().lower().startswith("c"):
            return Restart.CONTINUE
        raise _fail("neither continue nor fresh: nothing done")

    display = PlainDisplay(console) if options.headless else LiveDisplay(console)
    try:
        summary = run_demo(settings, options, display=display, ask=ask)
    except DemoError as exc:
        raise _fail(str(exc)) from exc
    if summary.stopped_early:
        typer.echo("stopped.")
        raise typer.Exit(130)
    raise typer.Exit(0 if summary.ok else 1)
