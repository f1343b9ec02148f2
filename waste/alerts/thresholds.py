"""Alert thresholds: documented defaults, overridable per region (pure).

``WASTE_ALERT_THRESHOLDS`` holds a JSON object mapping region-code prefixes to
overrides, e.g. ``{"33": {"unscheduled_stop_s": 900}, "330782": {"mass_tolerance": 0.05}}``.
For a region, every matching prefix applies, shortest first, so the most specific
wins; the empty prefix ``""`` applies everywhere. Unknown names or bad values are
refused when the settings are built.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from waste.errors import Invalid
from waste.tracking import MatchSettings

ALERT_FORMS = ("solid", "semi_solid", "liquid", "gas", "sludge")


@dataclass(frozen=True)
class AlertThresholds:
    """Every threshold of the alert rules, with its default."""

    long_deviation_s: float = 600.0
    """A route deviation lasting this long is ``high`` (else ``medium``) ..."""
    long_deviation_m: float = 1000.0
    """... as is one reaching this far from the route."""
    unscheduled_stop_s: float = 600.0
    """A stop outside the pickup, destination and rest areas longer than this is alerted."""
    signal_lost_s: float = 600.0
    """No fix for longer than this while a leg is open: ``signal_lost``."""
    will_grace_s: float = 60.0
    """After the device's will (offline) message, wait this long for it to come back."""
    gap_max_speed_kmh: float = 130.0
    """A gap whose straight-line speed exceeds this is implausible: the alert escalates."""
    mass_tolerance: float = 0.10
    """A weighing lower than the previous one by more than this fraction is a discrepancy
    (10% for bulk, as the US rule) ..."""
    mass_tolerance_by_form: Mapping[str, float] = field(default_factory=dict)
    """... unless the waste's physical form has its own; the strictest line applies."""
    overdue_grace_s: float = 0.0
    """A manifest not received this long after its deliver-by time is overdue."""
    dumping_window_s: float = 1800.0
    """A seal opened this close in time to an off-site stop, deviation or gap: dumping."""
    unmanifested_move_m: float = 1000.0
    """A sealed vehicle without an open leg this far from where it stood has moved ..."""
    unmanifested_fixes: int = 2
    """... on this many consecutive good fixes."""
    site_radius_m: float = 300.0
    """A site registered as a point is the circle of this radius."""
    area_buffer_m: float = 50.0
    """Site and rest-area polygons are grown by this much (GPS error at the gate)."""
    handover_radius_m: float = 300.0
    """A handover location is the circle of this radius (the next leg's pickup area)."""
    max_hdop: float = 6.0
    """Route matching: a fix with a higher HDOP is not evidence (about 30 m)."""
    off_route_fixes: int = 3
    """Route matching: consecutive fixes beyond the corridor needed to start a deviation ..."""
    off_route_s: float = 45.0
    """... spanning at least this long."""
    stop_window_s: float = 180.0
    """Stops: fixes spanning this long ..."""
    stop_radius_m: float = 100.0
    """... within this radius make a stop."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "mass_tolerance_by_form":
                for form, tol in dict(value).items():
                    if form not in ALERT_FORMS:
                        raise Invalid(f"unknown waste form {form!r}", field=f.name)
                    _fraction(tol, f"{f.name}.{form}")
                continue
            if f.name == "mass_tolerance":
                _fraction(value, f.name)
                continue
            ok = not isinstance(value, bool) and isinstance(value, int | float)
            if not ok or not math.isfinite(value) or value < 0:
                raise Invalid(f"{f.name} must be a number ≥ 0", field=f.name)
            if f.name in ("unmanifested_fixes", "off_route_fixes") and (
                int(value) != value or value < 1
            ):
                raise Invalid(f"{f.name} must be a whole number ≥ 1", field=f.name)

    def tolerance(self, forms: tuple[str, ...]) -> float:
        """The mass tolerance of a load of ``forms``: the strictest of its lines."""
        by_form = dict(self.mass_tolerance_by_form)
        values = [by_form.get(form, self.mass_tolerance) for form in forms]
        return min(values) if values else self.mass_tolerance

    def match_settings(self) -> MatchSettings:
        """The route tracker's settings under these thresholds."""
        return MatchSettings(
            max_hdop=self.max_hdop or 6.0,
            off_route_fixes=int(self.off_route_fixes),
            off_route_s=self.off_route_s or 45.0,
            stop_window_s=self.stop_window_s or 180.0,
            stop_radius_m=self.stop_radius_m or 100.0,
            gap_s=self.signal_lost_s or 600.0,
        )


def _fraction(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise Invalid(f"{name} must be a fraction in [0, 1)", field=name)


class ThresholdBook:
    """Defaults plus per-region overrides; ``for_region`` gives the thresholds of a region."""

    def __init__(
        self,
        base: AlertThresholds | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.base = base or AlertThresholds()
        self.overrides = {k: dict(v) for k, v in (overrides or {}).items()}
        for prefix in self.overrides:
            if prefix and not (prefix.isdigit() and 2 <= len(prefix) <= 6):
                raise Invalid(
                    f"region prefix {prefix!r} must be 2-6 digits (or empty)",
                    field="alert_thresholds",
                )
        self._cache: dict[str, AlertThresholds] = {}
        for prefix in self.overrides:  # refuse bad overrides now, not on the first alert
            self._apply(self.base, prefix)

    @classmethod
    def parse(cls, text: str) -> ThresholdBook:
        """A book from the JSON of ``WASTE_ALERT_THRESHOLDS``; ``Invalid`` if it is not one."""
        try:
            data = json.loads(text or "{}")
        except ValueError as exc:
            raise Invalid(
                f"alert thresholds are not JSON: {exc}", field="alert_thresholds"
            ) from exc
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise Invalid(
                "alert thresholds must map region prefixes to objects", field="alert_thresholds"
            )
        return cls(AlertThresholds(), data)

    def _apply(self, thresholds: AlertThresholds, prefix: str) -> AlertThresholds:
        values = self.overrides[prefix]
        known = {f.name for f in fields(AlertThresholds)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise Invalid(
                f"unknown alert threshold(s) {', '.join(unknown)} for {prefix!r}",
                field="alert_thresholds",
            )
        return replace(thresholds, **values)

    def for_region(self, region_code: str | None) -> AlertThresholds:
        """The thresholds of ``region_code``: every matching prefix applied, shortest first."""
        code = region_code or ""
        found = self._cache.get(code)
        if found is None:
            found = self.base
            for prefix in sorted(self.overrides, key=len):
                if code.startswith(prefix):
                    found = self._apply(found, prefix)
            self._cache[code] = found
        return found


_configured: list[ThresholdBook] = []


def configure(book: ThresholdBook) -> None:
    """Make ``book`` the process's thresholds (called by entrypoints at start-up)."""
    _configured[:] = [book]


def current() -> ThresholdBook:
    """The book ``configure`` set, else the documented defaults."""
    return _configured[0] if _configured else ThresholdBook()
