"""``waste devices``: provisioning vehicle devices."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

devices_app = typer.Typer(
    help="Vehicle devices: keys, registration, broker logins.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(2)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)


@devices_app.command("provision")
def provision(
    device_id: Annotated[str, typer.Argument(help="The device id, e.g. DEV-0001")],
    key_out: Annotated[
        Path | None, typer.Option(help="Where to write the private key (default ./DEVICE_ID.pem)")
    ] = None,
    vehicle_id: Annotated[str | None, typer.Option(help="The vehicle it is mounted on")] = None,
    plate: Annotated[str | None, typer.Option(help="...or the vehicle's plate")] = None,
    hauler: Annotated[
        str | None, typer.Option(help="The hauler owning --plate (default: the token's party)")
    ] = None,
    api_url: Annotated[
        str, typer.Option(envvar="WASTE_API_URL", help="The server's base URL")
    ] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None, typer.Option(envvar="WASTE_TOKEN", help="A hauler's or admin's bearer token")
    ] = None,
    register: Annotated[bool, typer.Option(help="Register the public key with the server")] = True,
    broker_password: Annotated[
        str | None, typer.Option(help="The device's broker password (default: a random one)")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(help="Write DEVICE_ID.passwd, .acl and .password there instead of printing"),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing key file")] = False,
) -> None:
    """Make a device's key pair, register it, and print its Mosquitto password and ACL lines."""
    from devices.provision import (
        ProvisionError,
        acl_lines,
        mosquitto_password_line,
        register_device,
    )
    from gateway.topics import is_valid_device_id
    from waste.ledger.keys import generate_private_key, public_key_b64, save_private_key

    if not is_valid_device_id(device_id):
        raise _fail(f"not a valid device id: {device_id[:80]!r} (letters, digits, . _ -)")
    if register and token is None:
        raise _fail("registering needs --token (or WASTE_TOKEN); or pass --no-register")
    if register and (vehicle_id is None) == (plate is None):
        raise _fail("give --vehicle-id or --plate (one of them)")
    key_path = key_out or Path(f"{device_id}.pem")
    if key_path.exists() and not force:
        raise _fail(f"{key_path} exists; use --force to overwrite")
    password = broker_password or secrets.token_urlsafe(24)
    try:
        passwd_line = mosquitto_password_line(device_id, password)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    key = generate_private_key()
    public, key_id = public_key_b64(key)
    try:
        save_private_key(key, key_path)
    except OSError as exc:
        raise _fail(f"cannot write {key_path}: {exc}") from exc
    if register:
        assert token is not None
        try:
            done = register_device(
                api_url=api_url,
                token=token,
                device_id=device_id,
                public_key_b64=public,
                vehicle_id=vehicle_id,
                plate=plate,
                hauler=hauler,
            )
        except ProvisionError as exc:
            key_path.unlink(missing_ok=True)  # nothing registered: leave nothing behind
            raise _fail(f"not registered: {exc}") from exc
        typer.echo(
            f"registered {done.device_id} on vehicle {done.vehicle_id} (key id {done.key_id})"
        )
    typer.echo(
        f"private key written to {key_path} (mode 600)\npublic_key: {public}\nkey_id: {key_id}"
    )
    acl = "\n".join(acl_lines(device_id)) + "\n"
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_private(out_dir / f"{device_id}.password", password + "\n")
        (out_dir / f"{device_id}.passwd").write_text(passwd_line + "\n", encoding="utf-8")
        (out_dir / f"{device_id}.acl").write_text(acl, encoding="utf-8")
        typer.echo(f"broker login written to {out_dir}/{device_id}.{{password,passwd,acl}}")
        return
    typer.echo(f"\nbroker password (give it to the device): {password}")
    typer.echo(f"\n# append to the Mosquitto password_file:\n{passwd_line}")
    typer.echo(f"\n# append to the Mosquitto acl_file:\n{acl}")


@devices_app.command("simulate")
def simulate(
    trips: Annotated[int, typer.Option(min=1, help="How many trips (scenarios)")] = 20,
    seed: Annotated[int, typer.Option(help="Seed: the same seed, the same fleet")] = 0,
    speed: Annotated[float, typer.Option(min=1.0, help="Time compression (1: real time)")] = 60.0,
    incidents: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of trips with an incident")
    ] = 0.2,
    api_url: Annotated[
        str, typer.Option(envvar="WASTE_API_URL", help="The server's base URL")
    ] = "http://127.0.0.1:8000",
    admin_token: Annotated[
        str | None, typer.Option(envvar="WASTE_ADMIN_TOKEN", help="The bootstrap admin token")
    ] = None,
    mqtt_url: Annotated[
        str, typer.Option(envvar="WASTE_MQTT_URL", help="The devices' broker")
    ] = "mqtt://127.0.0.1:1884",
    state_dir: Annotated[
        Path, typer.Option(help="The simulated devices' state (keys stay in memory)")
    ] = Path("sim-devices"),
    labels_out: Annotated[
        Path | None, typer.Option(help="Write the ground truth here (JSON lines)")
    ] = None,
) -> None:
    """Register a simulated county through the API and drive its fleet through the broker.

    For development brokers (anonymous, or one login for all devices); a compressed run
    replays a corpus that ends now, a real-time one starts now.
    """
    import json
    import random
    from datetime import timedelta

    import httpx

    from devices.fleet import Fleet
    from devices.registrar import RegistrationError, register_county
    from devices.scenarios import make_corpus
    from devices.world import make_county
    from gateway.broker import BrokerConfig
    from waste.clock import format_utc, utcnow

    if admin_token is None:
        raise _fail("needs --admin-token (or WASTE_ADMIN_TOKEN)")
    try:
        broker = BrokerConfig.from_url(mqtt_url)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if broker.embedded:
        broker = broker.with_port(broker.port or 1884)
    tag = secrets.token_hex(3).upper()
    county = make_county(random.Random(seed), trucks_per_hauler=max(2, -(-trips // 24)), tag=tag)
    now = utcnow()
    if speed > 1:
        corpus = make_corpus(trips, seed=seed, incident_share=incidents, county=county, end=now)
    else:
        start = now + timedelta(minutes=2)
        corpus = make_corpus(trips, seed=seed, incident_share=incidents, county=county, start=start)
    with httpx.Client(base_url=api_url, timeout=30) as http:
        try:
            registry = register_county(http, admin_token, county, serial=int(tag, 16) % 1000)
        except (RegistrationError, httpx.HTTPError) as exc:
            raise _fail(f"could not register the county: {exc}") from exc
        if labels_out is not None:
            with labels_out.open("w", encoding="utf-8") as out:
                for scenario, label in corpus.expected():
                    row = {
                        "scenario": scenario.key,
                        "scenario_kind": scenario.kind,
                        "kind": label.kind,
                        "required": label.required,
                        "manifest_id": registry.manifest_id(label.manifest)
                        if label.manifest
                        else None,
                        "device_id": label.device_id,
                        "earliest": format_utc(label.earliest),
                        "latest": format_utc(label.latest),
                    }
                    out.write(json.dumps(row) + "\n")
        span = corpus.end - corpus.start
        typer.echo(
            f"county {county.name}: {len(county.trucks)} trucks, {trips} trips {corpus.counts()}; "
            f"{span} of traffic at {speed:g}x: about {span.total_seconds() / speed:.0f} s"
        )
        fleet = Fleet(
            corpus.scenarios,
            county,
            state_dir / tag,
            speed=speed,
            broker=broker,
            post_custody=lambda _s, step: registry.post(step),
            sim_start=None if speed > 1 else now,
        )
        try:
            report = fleet.run()
        except KeyboardInterrupt:
            fleet.stop()
            raise _fail("stopped") from None
    typer.echo(
        f"sent {sum(report.records.values())} records from {len(report.records)} devices, "
        f"posted {report.custody_posted} custody events ({len(report.custody_failed)} refused) "
        f"in {report.wall_s:.0f} s"
    )
    for key, kind, why in report.custody_failed[:10]:
        typer.secho(f"  {key} {kind}: {why}", fg="yellow", err=True)
    if report.undelivered:
        typer.secho(f"undelivered: {report.undelivered}", fg="red", err=True)
        raise typer.Exit(1)


@devices_app.command("jt808-bridge")
def jt808_bridge(
    terminals: Annotated[
        Path, typer.Option(help="JSON file: terminal phone number → device id")
    ] = Path("terminals.json"),
    key_dir: Annotated[
        Path, typer.Option(help="The devices' keys (DEVICE_ID.pem, DEVICE_ID.password)")
    ] = Path("."),
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0: every interface)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port for terminals")] = 7611,
    state_dir: Annotated[Path, typer.Option(help="The devices' outboxes")] = Path("jt808-state"),
    attributes_log: Annotated[
        Path | None, typer.Option(help="Append the reports' alarms and statuses here (JSONL)")
    ] = None,
) -> None:
    """Accept JT/T 808 terminals over TCP and publish their reports as signed fixes.

    The broker is the settings' ``WASTE_MQTT_URL``; the bridge signs with each device's
    key, so keep KEY_DIR as safe as the devices themselves.
    """
    import threading

    from devices.jt808_serve import BridgeConfigError, load_terminals, start_bridge
    from gateway.broker import BrokerConfig
    from waste.config import Settings

    try:
        broker = BrokerConfig.from_url(Settings().mqtt_url)
    except ValueError as exc:  # pydantic's ValidationError is one too
        raise _fail(f"bad broker settings: {exc}") from exc
    if broker.embedded:  # the gateway's embedded broker: connect to it as a client
        broker = broker.with_port(broker.port or 1884)
    try:
        running = start_bridge(
            load_terminals(terminals),
            key_dir=key_dir,
            state_dir=state_dir,
            host=host,
            port=port,
            broker=broker,
            attributes_log=attributes_log,
        )
    except (BridgeConfigError, OSError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"JT/T 808 bridge on {host}:{running.port} for {len(running.clients)} devices")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.close()
