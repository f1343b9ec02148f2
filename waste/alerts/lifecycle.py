"""The closed-loop handling of an alert: a pure state machine (no I/O).

::

    open ──acknowledge──▶ acknowledged ──investigate──▶ investigating ◀──reopen──┐
      └──────────────investigate──────────────────────▶     │                   │
                                                         resolve                │
                                                            ▼                   │
                                          closed ◀──close── resolved ───────────┘

- ``acknowledge``: open → acknowledged.
- ``investigate``: open or acknowledged → investigating.
- ``resolve``: investigating → resolved; needs a ``resolution``
  (``confirmed_violation``, ``false_alarm`` or ``other``) and a written ``finding``.
- ``reopen``: resolved → investigating (new evidence, a disputed finding); the
  resolution and finding are cleared here and kept in the transition history.
- ``close``: resolved → closed. Closed is final: nothing follows it.
- ``assign``: in open, acknowledged or investigating, without changing the state;
  names the responsible ``department`` and ``assignee`` (a person) and a ``due_at``.
- ``escalate``: in open, acknowledged or investigating, raises the severity
  (never lowers it); done by a regulator, or by the overdue sweep (``system``).

Every action carries a ``note``. An alert is *overdue* when it is neither
resolved nor closed and its due time has passed: the ``due_at`` set by
``assign``, or, while none is set, ``raised_at`` plus the default handling
time of its severity (``DEFAULT_HANDLING``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from waste.clock import format_utc
from waste.errors import AlertTransitionRefused, Invalid

MAX_NOTE = 2000
MAX_FINDING = 10_000
MIN_FINDING = 10
MAX_ASSIGNEE = 64  # the column sizes of alerts.assignee and alerts.department
MAX_DEPARTMENT = 100


class AlertState(StrEnum):
    """Where an alert is in its handling."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Action(StrEnum):
    """What a regulator (or the overdue sweep) does to an alert."""

    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    INVESTIGATE = "investigate"
    ESCALATE = "escalate"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"


class Resolution(StrEnum):
    """How an investigation ended."""

    CONFIRMED_VIOLATION = "confirmed_violation"
    FALSE_ALARM = "false_alarm"
    OTHER = "other"


SEVERITIES = ("low", "medium", "high", "critical")
LIVE_STATES = frozenset({AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.INVESTIGATING})
DONE_STATES = frozenset({AlertState.RESOLVED, AlertState.CLOSED})

# How long an alert may wait for resolution when nobody set a due date.
DEFAULT_HANDLING = {
    "critical": timedelta(days=1),
    "high": timedelta(days=3),
    "medium": timedelta(days=7),
    "low": timedelta(days=14),
}

_MOVES: dict[Action, tuple[frozenset[AlertState], AlertState | None]] = {
    # action: (states it is allowed from, state it leads to; None = unchanged)
    Action.ACKNOWLEDGE: (frozenset({AlertState.OPEN}), AlertState.ACKNOWLEDGED),
    Action.INVESTIGATE: (
        frozenset({AlertState.OPEN, AlertState.ACKNOWLEDGED}),
        AlertState.INVESTIGATING,
    ),
    Action.RESOLVE: (frozenset({AlertState.INVESTIGATING}), AlertState.RESOLVED),
    Action.REOPEN: (frozenset({AlertState.RESOLVED}), AlertState.INVESTIGATING),
    Action.CLOSE: (frozenset({AlertState.RESOLVED}), AlertState.CLOSED),
    Action.ASSIGN: (LIVE_STATES, None),
    Action.ESCALATE: (LIVE_STATES, None),
}


def severity_rank(severity: str) -> int:
    """0 for low … 3 for critical; ``Invalid`` for anything else."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        allowed = ", ".join(SEVERITIES)
        raise Invalid(f"severity must be one of {allowed}", field="severity") from None


def allowed_actions(state: AlertState) -> frozenset[Action]:
    """The actions an alert in ``state`` accepts."""
    return frozenset(a for a, (sources, _) in _MOVES.items() if state in sources)


@dataclass(frozen=True)
class Handling:
    """An alert's handling fields, as the state machine sees them."""

    state: AlertState
    severity: str
    raised_at: datetime
    assignee: str | None = None
    department: str | None = None
    due_at: datetime | None = None
    resolution: Resolution | None = None
    finding: str | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True)
class Command:
    """One requested action with its note and the fields the action needs."""

    action: Action
    note: str
    resolution: Resolution | None = None
    finding: str | None = None
    assignee: str | None = None
    department: str | None = None
    due_at: datetime | None = None
    severity: str | None = None


def apply(handling: Handling, command: Command, *, at: datetime) -> Handling:
    """The handling after ``command`` at ``at``.

    Raises ``AlertTransitionRefused`` (409) when the state does not allow the
    action, and ``Invalid`` (422, naming the field) when a required field is
    missing or malformed.
    """
    sources, target = _MOVES[command.action]
    if handling.state not in sources:
        allowed = ", ".join(sorted(allowed_actions(handling.state))) or "none (closed is final)"
        raise AlertTransitionRefused(
            f"cannot {command.action} an alert that is {handling.state}; allowed: {allowed}",
            state=str(handling.state),
            action=str(command.action),
        )
    _check_text(command.note, "note", MAX_NOTE, minimum=1)
    state = target or handling.state
    if command.action is Action.RESOLVE:
        if command.resolution is None:
            raise Invalid("resolving needs a resolution", field="resolution")
        finding = _check_text(command.finding, "finding", MAX_FINDING, minimum=MIN_FINDING)
        return replace(handling, state=state, resolution=command.resolution, finding=finding)
    if command.action is Action.REOPEN:
        return replace(handling, state=state, resolution=None, finding=None)
    if command.action is Action.CLOSE:
        return replace(handling, state=state, closed_at=at)
    if command.action is Action.ASSIGN:
        return replace(
            handling,
            department=_check_text(command.department, "department", MAX_DEPARTMENT, minimum=1),
            assignee=_check_text(command.assignee, "assignee", MAX_ASSIGNEE, minimum=1),
            due_at=_check_due(command.due_at, at),
        )
    if command.action is Action.ESCALATE:
        if command.severity is None:
            raise Invalid("escalating needs the new severity", field="severity")
        if severity_rank(command.severity) <= severity_rank(handling.severity):
            raise Invalid(
                f"escalation must raise the severity above {handling.severity}", field="severity"
            )
        return replace(handling, severity=command.severity)
    return replace(handling, state=state)


def effective_due(handling: Handling) -> datetime:
    """The time by which the alert should be resolved: ``due_at``, or the default for its
    severity counted from ``raised_at``."""
    if handling.due_at is not None:
        return handling.due_at
    return handling.raised_at + DEFAULT_HANDLING.get(handling.severity, DEFAULT_HANDLING["low"])


def is_overdue(handling: Handling, now: datetime) -> bool:
    """Whether the alert is past its due time and neither resolved nor closed."""
    return handling.state in LIVE_STATES and now > effective_due(handling)


def next_severity(severity: str) -> str | None:
    """The severity one step up, or None at critical."""
    rank = severity_rank(severity)
    return SEVERITIES[rank + 1] if rank + 1 < len(SEVERITIES) else None


def changes(before: Handling, after: Handling) -> dict[str, Any]:
    """The handling fields that differ, as JSON values (for the log entry)."""
    out: dict[str, Any] = {}
    for name in ("state", "severity", "assignee", "department", "due_at", "resolution", "finding"):
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            out[name] = _json(new)
    return out


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, StrEnum):
        return str(value)
    return value


def _check_text(value: str | None, field: str, maximum: int, *, minimum: int) -> str:
    text = (value or "").strip()
    if len(text) < minimum:
        need = "is required" if minimum <= 1 else f"needs at least {minimum} characters"
        raise Invalid(f"{field} {need}", field=field)
    if len(text) > maximum:
        raise Invalid(f"{field} may have at most {maximum} characters", field=field)
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise Invalid(f"{field} must not contain control characters", field=field)
    return text


def _check_due(due_at: datetime | None, at: datetime) -> datetime:
    if due_at is None:
        raise Invalid("assigning needs a due date", field="due_at")
    if due_at.tzinfo is None:
        raise Invalid("due_at must be UTC", field="due_at")
    if due_at <= at:
        raise Invalid("due_at must be in the future", field="due_at")
    return due_at
