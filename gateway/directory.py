"""The device registry as decoding needs it: a small TTL cache in front of the database.

``DeviceDirectory.lookup`` is the ``lookup_device`` of ``gateway.payloads.decode``. It
returns the device's key and its vehicle's plate (custody legs name vehicles by
plate, so the gateway does too), or None for a device that is unknown or no longer
active. A database error propagates: ``decode`` turns it into the retryable
``lookup_failed``. Known devices are cached for ``ttl_s`` seconds and unknown ids
for ``negative_ttl_s`` (so a flood of made-up ids costs one query per id and
interval), at most ``max_entries`` of them; a key rotated or a device moved to
another vehicle is seen within ``ttl_s``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.payloads import DeviceKey
from waste.registry.models import Device, Vehicle

__all__ = ["DeviceDirectory"]

log = logging.getLogger(__name__)


class DeviceDirectory:
    """Registered devices by id, cached for a short time (not thread-safe: one ingest loop)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        ttl_s: float = 30.0,
        negative_ttl_s: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = session_factory
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._max = max_entries
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, DeviceKey | None]] = OrderedDict()
        self.queries = 0

    def lookup(self, device_id: str) -> DeviceKey | None:
        """The device's key and plate, or None if unknown or inactive; raises on DB errors."""
        now = self._clock()
        cached = self._cache.get(device_id)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(device_id)
            return cached[1]
        key = self._load(device_id)
        self._cache[device_id] = (now + (self._ttl if key else self._negative_ttl), key)
        self._cache.move_to_end(device_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return key

    def forget(self, device_id: str | None = None) -> None:
        """Drop one device (or every device) from the cache."""
        if device_id is None:
            self._cache.clear()
        else:
            self._cache.pop(device_id, None)

    def _load(self, device_id: str) -> DeviceKey | None:
        self.queries += 1
        query = (
            select(Device.public_key, Device.active, Vehicle.plate)
            .outerjoin(Vehicle, Vehicle.id == Device.vehicle_id)
            .where(Device.device_id == device_id)
        )
        with self._factory() as session:
            row = session.execute(query).first()
        if row is None or not row.active:
            return None
        try:
            raw = base64.b64decode(row.public_key, validate=True)
            plate = row.plate.upper() if row.plate else None
            return DeviceKey(device_id, raw, plate)
        except (binascii.Error, ValueError):
            log.error("device %s has an unusable public key in the registry", device_id)
            return None
