"""Counting the work a decoder does, in Python function calls, to bound it without a clock.

``sys.setprofile`` sees every Python call and every call into C (``c_call``),
deterministically: the same input gives the same count on any machine. Work
done inside one C call (``json.loads`` scanning a string) is one call however
long; the decoders guard the C calls whose cost is not linear (``int()`` on a
long digit string) explicitly, and the families below include those inputs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

SMALL, LARGE = 8 * 1024, 64 * 1024 - 64
"""Sizes a family of inputs is built at: linear work grows 8×, quadratic 64×."""
MAX_GROWTH = 12.0
"""Allowed ratio of the calls at LARGE to those at SMALL (8× plus slack, far from 64×)."""


def count_calls(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, int]:
    """``fn(*args, **kwargs)`` and the number of Python and C calls it made."""
    calls = 0

    def profile(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        result = fn(*args, **kwargs)
    finally:
        sys.setprofile(previous)
    return result, calls


def tile(pattern: bytes, size: int) -> bytes:
    """``pattern`` repeated to exactly ``size`` bytes (empty pattern: zero bytes)."""
    if not pattern:
        return b"\x00" * size
    return (pattern * (size // len(pattern) + 1))[:size]


@dataclass(frozen=True)
class Growth:
    """The work of one family of inputs at the small and the large size."""

    family: str
    small_calls: int
    large_calls: int

    @property
    def ratio(self) -> float:
        """How much more work the large input took."""
        return self.large_calls / max(self.small_calls, 1)

    @property
    def calls_per_kib(self) -> float:
        """Calls per KiB of the large input."""
        return self.large_calls / (LARGE / 1024)


def growth(family: str, build: Callable[[int], bytes], run: Callable[[bytes], Any]) -> Growth:
    """Run the family's input at both sizes and count the calls."""
    _, small = count_calls(run, build(SMALL))
    _, large = count_calls(run, build(LARGE))
    return Growth(family, small, large)
