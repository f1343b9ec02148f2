"""``waste manifest``: file, prepare, co-sign, submit, show and export manifests from a shell.

Connection settings come from options or the environment: ``--url`` / ``WASTE_URL``,
``--token`` / ``WASTE_TOKEN``, ``--party`` / ``WASTE_PARTY``. Keys are Ed25519 PEM files
(``waste keys gen``). Co-signing on two devices::

    waste manifest prepare ID picked_up pickup.json -o body.json     # hauler's device
    waste manifest sign body.json --key hauler.pem > hauler.sig
    waste manifest sign body.json --key producer.pem > producer.sig  # producer's device
    waste manifest submit body.json -s hauler.sig -s producer.sig

Exit codes: 0 done; 1 the server refused (its problem is printed); 2 bad local
input (file, JSON, key, option); 3 the server could not be reached.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from waste.client import ClientError, PartyClient
from waste.clock import parse_utc, utcnow
from waste.errors import WasteError
from waste.ledger.canonical import loads_strict
from waste.ledger.envelope import event_hash, make_body, parse_envelope, sign_body
from waste.ledger.keys import load_private_key

app = typer.Typer(help="Manifests: file, co-sign, submit and read them.", no_args_is_help=True)

Url = Annotated[str, typer.Option("--url", envvar="WASTE_URL", help="Server base URL")]
Token = Annotated[
    str, typer.Option("--token", envvar="WASTE_TOKEN", help="Bearer token", show_default=False)
]
PartyOpt = Annotated[str, typer.Option("--party", envvar="WASTE_PARTY", help="Your party id")]
KeyOpt = Annotated[Path, typer.Option("--key", help="Your Ed25519 private key (PEM)")]
At = Annotated[str | None, typer.Option("--at", help="Event time, RFC 3339 UTC (default: now)")]
DEFAULT_URL = "http://127.0.0.1:8000"


class LocalInputError(Exception):
    """A file, key or option that cannot be used as given."""


def _http(url: str) -> httpx.Client:
    """The HTTP client talking to the server (tests replace it)."""
    return httpx.Client(base_url=url, timeout=30)


@contextmanager
def _reported() -> Iterator[None]:
    """Turn every expected failure into a message on stderr and an exit code; no tracebacks."""
    try:
        yield
    except ClientError as exc:
        typer.secho(f"refused ({exc.status}): {exc.problem.get('detail', '')}", fg="red", err=True)
        for error in exc.problem.get("errors", []):
            typer.secho(f"  {error.get('field')}: {error.get('message')}", err=True)
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        typer.secho(f"cannot reach the server: {exc}", fg="red", err=True)
        raise typer.Exit(3) from None
    except (LocalInputError, WasteError) as exc:
        detail = exc.detail if isinstance(exc, WasteError) else str(exc)
        typer.secho(f"error: {detail}", fg="red", err=True)
        raise typer.Exit(2) from None


def _read_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LocalInputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return loads_strict(raw)
    except WasteError as exc:
        raise LocalInputError(f"{path} is not valid JSON: {exc.detail}") from exc


def _read_object(path: Path) -> dict[str, Any]:
    value = _read_json(path)
    if not isinstance(value, dict):
        raise LocalInputError(f"{path} must hold a JSON object")
    return value


def _key(path: Path) -> Ed25519PrivateKey:
    try:
        return load_private_key(path)
    except (OSError, ValueError, TypeError, WasteError) as exc:
        raise LocalInputError(f"{path} is not an Ed25519 private key") from exc


def _at(value: str | None) -> Any:
    return utcnow() if value is None else parse_utc(value, field="--at")


def _client(url: str, token: str, party: str, key: Ed25519PrivateKey) -> PartyClient:
    return PartyClient(_http(url), token=token, party_id=party, key=key)


def _answer(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        try:
            problem = resp.json()
        except ValueError:
            problem = {"detail": resp.text}
        raise ClientError(resp.status_code, problem)
    return resp.json()


def _get(url: str, token: str, path: str) -> Any:
    return _answer(_http(url).get(path, headers={"Authorization": f"Bearer {token}"}))


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


@app.command("file")
def file_manifest(
    data_file: Annotated[Path, typer.Argument(help="The `filed` data (JSON object)")],
    key: KeyOpt,
    token: Token,
    party: PartyOpt,
    url: Url = DEFAULT_URL,
    at: At = None,
) -> None:
    """File a manifest: sign its `filed` event with your key and post it."""
    with _reported():
        data, signing_key = _read_object(data_file), _key(key)
        _print(_client(url, token, party, signing_key).file(data, at=_at(at)))


@app.command("prepare")
def prepare(
    manifest_id: str,
    event_type: Annotated[str, typer.Argument(help="picked_up, handed_over, received, …")],
    data_file: Annotated[Path, typer.Argument(help="The event's data (JSON object)")],
    token: Token,
    party: PartyOpt,
    url: Url = DEFAULT_URL,
    at: At = None,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Write here")] = None,
) -> None:
    """Build the next unsigned event body of a manifest, to be signed on each device."""
    with _reported():
        data = _read_object(data_file)
        events = _get(url, token, f"/v1/manifests/{manifest_id}/events")
        body = make_body(
            manifest_id=manifest_id,
            seq=len(events),
            prev_hash=event_hash(events[-1]["body"]),
            type=event_type,
            actor=party,
            at=_at(at),
            data=data,
        )
        text = json.dumps(body, indent=2, ensure_ascii=False)
        if out is None:
            typer.echo(text)
        else:
            out.write_text(text + "\n", encoding="utf-8")


@app.command("sign")
def sign(
    body_file: Annotated[Path, typer.Argument(help="An event body, or an envelope to add to")],
    key: KeyOpt,
) -> None:
    """Print your signature over JCS(body) (or the envelope with it added), for co-signing."""
    with _reported():
        doc, signing_key = _read_object(body_file), _key(key)
        is_envelope = set(doc) == {"body", "signatures"}
        body = doc["body"] if is_envelope else doc
        signed = sign_body(body, [signing_key])
        parse_envelope(signed)  # the body must be a well-formed event body
        signature = signed["signatures"][0]
        if is_envelope:
            others = [s for s in doc["signatures"] if s.get("key_id") != signature["key_id"]]
            _print({"body": body, "signatures": [*others, signature]})
        else:
            _print(signature)


@app.command("submit")
def submit(
    envelope_file: Annotated[Path, typer.Argument(help="An envelope, or a body with -s files")],
    token: Token,
    url: Url = DEFAULT_URL,
    signatures: Annotated[
        list[Path] | None, typer.Option("-s", "--signature", help="A signature from `sign`")
    ] = None,
) -> None:
    """Post an event signed elsewhere (a body plus signature files, or a whole envelope)."""
    with _reported():
        doc = _read_object(envelope_file)
        envelope = doc if set(doc) == {"body", "signatures"} else {"body": doc, "signatures": []}
        for path in signatures or []:
            extra = _read_object(path)
            envelope["signatures"] += extra.get("signatures", [extra])
        body = parse_envelope(envelope).body  # refuse a malformed envelope before sending it
        target = (
            "/v1/manifests" if body.type == "filed" else f"/v1/manifests/{body.manifest_id}/events"
        )
        auth = {"Authorization": f"Bearer {token}"}
        _print(_answer(_http(url).post(target, json=envelope, headers=auth)))


@app.command("show")
def show(
    manifest: Annotated[str, typer.Argument(help="A manifest id, or its 14-digit number")],
    token: Token,
    url: Url = DEFAULT_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON summary")] = False,
) -> None:
    """Show a manifest: state, parties, masses and its timeline."""
    with _reported():
        by_number = len(manifest) == 14 and manifest.isdigit()
        path = f"/v1/manifests/by-number/{manifest}" if by_number else f"/v1/manifests/{manifest}"
        m = _get(url, token, path)
        if as_json:
            _print(m)
            return
        typer.echo(f"Manifest {m['number']} ({m['id']}): {m['state']}")
        typer.echo(f"  producer     {m['producer']['name']}")
        typer.echo(f"  destination  {m['destination']['name']}")
        typer.echo(
            f"  wastes       {', '.join(m['waste_codes'])}; {m['declared_kg']:g} kg declared"
        )
        if m["overdue"]:
            typer.echo(f"  OVERDUE      {m['overdue']['kind']} since {m['overdue']['due']}")
        for e in m["timeline"]:
            typer.echo(f"  {e['seq']:>2} {e['at']}  {e['what']}")


@app.command("bundle")
def bundle(
    manifest_id: str,
    token: Token,
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the bundle")],
    url: Url = DEFAULT_URL,
) -> None:
    """Save a manifest's offline audit bundle (verify it with waste.ledger.audit.verify_bundle)."""
    with _reported():
        doc = _get(url, token, f"/v1/manifests/{manifest_id}/bundle")
        try:
            out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as exc:
            raise LocalInputError(f"cannot write {out}: {exc.strerror or exc}") from exc
        typer.echo(f"wrote {len(doc['entries'])} events of {manifest_id} to {out}", err=True)
