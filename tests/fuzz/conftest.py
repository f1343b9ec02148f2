"""Fixtures of the fuzz suite: the figures recorder for docs/reliability.md."""

from tests.support.reliability import reliability  # noqa: F401
