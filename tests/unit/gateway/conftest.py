"""Devices, keys and a clock for the payload tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.signing import public_key_bytes
from gateway.payloads import DeviceKey

# RFC 8032 §7.1 test 1 secret key, so the golden vectors can be recomputed anywhere.
SEED_1 = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
SEED_2 = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
NOW = datetime(2026, 11, 23, 8, 1, 0, tzinfo=UTC)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    """DEV-0001's private key."""
    return Ed25519PrivateKey.from_private_bytes(SEED_1)


@pytest.fixture
def other_key() -> Ed25519PrivateKey:
    """DEV-0002's private key."""
    return Ed25519PrivateKey.from_private_bytes(SEED_2)


@pytest.fixture
def registry(key: Ed25519PrivateKey, other_key: Ed25519PrivateKey) -> dict[str, DeviceKey]:
    """DEV-0001 and DEV-0002 bound to vehicles; DEV-LOOSE registered but unbound."""
    loose = Ed25519PrivateKey.from_private_bytes(bytes(32))
    return {
        "DEV-0001": DeviceKey("DEV-0001", public_key_bytes(key), "veh-1"),
        "DEV-0002": DeviceKey("DEV-0002", public_key_bytes(other_key), "veh-2"),
        "DEV-LOOSE": DeviceKey("DEV-LOOSE", public_key_bytes(loose), None),
    }


@pytest.fixture
def lookup(registry: dict[str, DeviceKey]) -> Callable[[str], DeviceKey | None]:
    """A ``lookup_device`` over the registry."""
    return registry.get


@pytest.fixture
def now() -> datetime:
    """The decoding clock: one minute after the sample fix of PROTOCOL.md."""
    return NOW
