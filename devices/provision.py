"""Provisioning a vehicle device: its key pair, its registration, its broker credentials.

What an operator does for each new terminal (``waste devices provision``):

1. Make the device's Ed25519 key pair; the private key goes to a file readable by its
   owner only (0600), to be flashed onto the device.
2. Register the public key through the HTTP API (``POST /v1/devices``) with the
   hauler's (or an admin's) bearer token, bound to the vehicle it is mounted on.
3. Give the broker a login for it: a Mosquitto password-file line (``$7$``:
   PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt, as ``mosquitto_passwd`` of
   Mosquitto 2 writes it) and ACL lines letting it publish only under its own topics.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.topics import is_valid_device_id, lock_topic, status_topic, telemetry_topic

__all__ = [
    "ProvisionError",
    "acl_lines",
    "check_password_line",
    "mosquitto_password_line",
    "register_device",
]

PBKDF2_ITERATIONS = 101
"""What mosquitto_passwd uses (its default, and the only count mosquitto 2 writes)."""
SALT_BYTES = 12


class ProvisionError(RuntimeError):
    """The server refused, or could not be asked."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def mosquitto_password_line(
    username: str, password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """``username:$7$iterations$b64(salt)$b64(PBKDF2-HMAC-SHA512)``, a password-file line."""
    if not username or ":" in username or any(c.isspace() for c in username):
        raise ValueError("a Mosquitto username has no ':' and no white space")
    if "\n" in password or "\r" in password:
        raise ValueError("a password is one line")
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, 64)
    return f"{username}:$7${iterations}${_b64(salt)}${_b64(digest)}"


def check_password_line(line: str, password: str) -> bool:
    """Whether a ``$7$`` password-file line (ours or mosquitto_passwd's) admits ``password``."""
    try:
        username, rest = line.strip().split(":", 1)
        empty, tag, iterations, salt, digest = rest.split("$")
        if empty or tag != "7":
            return False
        expected = mosquitto_password_line(
            username, password, salt=base64.b64decode(salt), iterations=int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(expected.rsplit("$", 1)[1], digest)


def acl_lines(device_id: str) -> list[str]:
    """Mosquitto ACL lines: the device may publish its telemetry, e-lock events and status
    (the will included) and nothing else, and read nothing."""
    if not is_valid_device_id(device_id):
        raise ValueError(f"not a valid device id: {device_id[:80]!r}")
    topics = (telemetry_topic(device_id), lock_topic(device_id), status_topic(device_id))
    return [f"user {device_id}", *(f"topic write {t}" for t in topics)]


@dataclass(frozen=True)
class Registered:
    """The server's record of a newly registered device."""

    device_id: str
    vehicle_id: str
    key_id: str


def _problem(resp: httpx.Response) -> str:
    try:
        body: Any = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:300]
    return str(body)[:300]


def _vehicle_by_plate(
    http: httpx.Client, headers: dict[str, str], plate: str, hauler: str | None
) -> str:
    if hauler is None:
        who = http.get("/v1/whoami", headers=headers)
        if who.status_code >= 400:
            raise ProvisionError(f"whoami: {who.status_code} {_problem(who)}")
        hauler = who.json().get("party_id")
        if not hauler:
            raise ProvisionError("this token belongs to no party: give --hauler (or --vehicle-id)")
    resp = http.get(f"/v1/parties/{hauler}/vehicles", headers=headers)
    if resp.status_code >= 400:
        raise ProvisionError(f"vehicles of {hauler}: {resp.status_code} {_problem(resp)}")
    wanted = plate.strip().upper()
    for vehicle in resp.json():
        if str(vehicle.get("plate", "")).upper() == wanted:
            return str(vehicle["id"])
    raise ProvisionError(f"hauler {hauler} has no vehicle with plate {plate}")


def register_device(
    *,
    api_url: str,
    token: str,
    device_id: str,
    public_key_b64: str,
    vehicle_id: str | None = None,
    plate: str | None = None,
    hauler: str | None = None,
    http: httpx.Client | None = None,
) -> Registered:
    """Register the device's public key, bound to a vehicle (by id, or by plate)."""
    if (vehicle_id is None) == (plate is None):
        raise ValueError("give exactly one of vehicle_id and plate")
    client = http or httpx.Client(base_url=api_url, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        vehicle = vehicle_id or _vehicle_by_plate(client, headers, plate or "", hauler)
        body = {"device_id": device_id, "public_key": public_key_b64, "vehicle_id": vehicle}
        resp = client.post("/v1/devices", json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ProvisionError(f"cannot reach {api_url}: {exc}") from exc
    finally:
        if http is None:
            client.close()
    if resp.status_code >= 400:
        raise ProvisionError(f"registering {device_id}: {resp.status_code} {_problem(resp)}")
    data = resp.json()
    return Registered(str(data["device_id"]), str(data["vehicle_id"]), str(data["key_id"]))
