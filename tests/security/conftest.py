"""Fixtures of the security suite: the figures recorder for docs/reliability.md."""

from tests.support.reliability import reliability  # noqa: F401
