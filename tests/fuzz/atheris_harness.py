"""Coverage-guided fuzzing (atheris, i.e. libFuzzer) of the device-facing decoders.

    python3 tests/fuzz/atheris_harness.py payloads -runs=200000 -max_len=65536
    python3 tests/fuzz/atheris_harness.py signed -runs=200000 corpus-dir/
    python3 tests/fuzz/atheris_harness.py jt808 -max_total_time=600

Targets (the first argument; the rest are libFuzzer's flags and corpus dirs):

- ``payloads``: the input's first byte picks the channel, the rest is the MQTT
  payload handed to ``gateway.payloads.decode``;
- ``signed``: the input is parsed as JSON and, when it is an object, signed
  with the device's key before decoding, so the fuzzer explores what lies
  behind the signature check;
- ``jt808``: the input is a JT/T 808 frame for ``devices.jt808.decode_location``.

A "crash" is any exception but the documented ones (a ``Rejection`` is a
return value; ``internal_error`` counts as a crash; ``JT808Error`` for JT/T 808).
``tests/fuzz/test_atheris.py`` runs each target for a bounded number of runs.
"""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import UTC, datetime

import atheris

with atheris.instrument_imports(include=["gateway", "devices", "waste"]):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from devices.jt808 import JT808Error, decode_location
    from devices.signing import public_key_bytes, sign
    from gateway.payloads import DeviceKey, Rejection, RejectReason, decode

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
DEVICE = DeviceKey("DEV-FUZZ", public_key_bytes(KEY), "veh-fuzz")
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CHANNELS = ("telemetry", "lock", "status")


class DecoderBug(Exception):
    """The decoder answered ``internal_error``: a bug, reported as a crash."""


def _lookup(device_id: str) -> DeviceKey | None:
    return DEVICE if device_id == DEVICE.device_id else None


def _check(topic: str, raw: bytes) -> None:
    result = decode(topic, raw, lookup_device=_lookup, now=NOW)
    if isinstance(result, Rejection) and result.reason is RejectReason.INTERNAL_ERROR:
        raise DecoderBug(result.detail)


def payloads(data: bytes) -> None:
    """First byte: channel; rest: payload."""
    if not data:
        return
    channel = CHANNELS[data[0] % len(CHANNELS)]
    _check(f"waste/v1/devices/DEV-FUZZ/{channel}", data[1:])


def signed(data: bytes) -> None:
    """A JSON object from the input, signed as the device would, then decoded."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return
    if not isinstance(value, dict):
        return
    value.pop("sig", None)
    value["device_id"] = DEVICE.device_id
    try:
        raw = sign(value, KEY)
    except (ValueError, TypeError, RecursionError):  # not representable in RFC 8785
        return
    _check("waste/v1/devices/DEV-FUZZ/lock" if "lock" in value else
           "waste/v1/devices/DEV-FUZZ/telemetry", raw)  # fmt: skip


def jt808(data: bytes) -> None:
    """A frame to decode down to a fix."""
    with contextlib.suppress(JT808Error):
        decode_location(data).to_fix()


TARGETS = {"payloads": payloads, "signed": signed, "jt808": jt808}


def main(argv: list[str]) -> None:
    """``atheris_harness.py TARGET [libFuzzer flags and corpus dirs]``."""
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]")
    target = TARGETS[argv[1]]
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
