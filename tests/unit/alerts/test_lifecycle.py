"""The alert handling state machine: the documented table, required fields, overdue rules,
and random action sequences checked against an independent model."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from waste.alerts.lifecycle import (
    DEFAULT_HANDLING,
    SEVERITIES,
    Action,
    AlertState,
    Command,
    Handling,
    Resolution,
    allowed_actions,
    apply,
    changes,
    effective_due,
    is_overdue,
    next_severity,
)
from waste.errors import AlertTransitionRefused, Conflict, Invalid

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
FINDING = "Driver stopped at a lay-by; load intact on inspection."

# The documented table, restated independently of the code under test.
TABLE: dict[tuple[str, str], str] = {
    ("open", "acknowledge"): "acknowledged",
    ("open", "investigate"): "investigating",
    ("acknowledged", "investigate"): "investigating",
    ("investigating", "resolve"): "resolved",
    ("resolved", "reopen"): "investigating",
    ("resolved", "close"): "closed",
}
for _state in ("open", "acknowledged", "investigating"):
    TABLE[(_state, "assign")] = _state
    TABLE[(_state, "escalate")] = _state


def fresh(severity: str = "medium", state: AlertState = AlertState.OPEN) -> Handling:
    return Handling(state=state, severity=severity, raised_at=T0)


def full_command(action: Action, handling: Handling, at: datetime) -> Command:
    """A command with every field its action needs, valid for ``handling``."""
    return Command(
        action=action,
        note=f"{action} by the duty officer",
        resolution=Resolution.FALSE_ALARM,
        finding=FINDING,
        assignee="Wang Li",
        department="Jinhua enforcement brigade",
        due_at=at + timedelta(days=2),
        severity=next_severity(handling.severity) or "critical",
    )


@pytest.mark.parametrize("state", list(AlertState))
@pytest.mark.parametrize("action", list(Action))
def test_every_state_action_pair_follows_the_table(state: AlertState, action: Action) -> None:
    handling = fresh("high", state)
    command = full_command(action, handling, T0)
    expected = TABLE.get((str(state), str(action)))
    if expected is None:
        with pytest.raises(AlertTransitionRefused) as err:
            apply(handling, command, at=T0)
        assert err.value.status == 409
        assert isinstance(err.value, Conflict)
        assert action not in allowed_actions(state)
    else:
        assert str(apply(handling, command, at=T0).state) == expected
        assert action in allowed_actions(state)


def test_closed_is_final() -> None:
    assert allowed_actions(AlertState.CLOSED) == frozenset()


def test_resolve_needs_a_resolution_and_a_written_finding() -> None:
    h = fresh(state=AlertState.INVESTIGATING)
    base = Command(Action.RESOLVE, note="done", resolution=Resolution.CONFIRMED_VIOLATION)
    with pytest.raises(Invalid) as err:
        apply(h, replace(base, finding=None), at=T0)
    assert err.value.field == "finding"
    with pytest.raises(Invalid) as err:
        apply(h, replace(base, finding="   ok   "), at=T0)
    assert err.value.field == "finding"
    with pytest.raises(Invalid) as err:
        apply(h, replace(base, resolution=None, finding=FINDING), at=T0)
    assert err.value.field == "resolution"
    done = apply(h, replace(base, finding=f"  {FINDING}  "), at=T0)
    assert done.resolution is Resolution.CONFIRMED_VIOLATION
    assert done.finding == FINDING


@pytest.mark.parametrize("note", ["", "   ", "x" * 2001, "bell\x07"])
def test_every_action_needs_a_clean_note(note: str) -> None:
    with pytest.raises(Invalid) as err:
        apply(fresh(), Command(Action.ACKNOWLEDGE, note=note), at=T0)
    assert err.value.field == "note"


def test_refusal_by_state_comes_before_field_checks() -> None:
    with pytest.raises(AlertTransitionRefused):
        apply(fresh(), Command(Action.CLOSE, note=""), at=T0)


def test_assign_sets_department_person_and_future_due_date() -> None:
    due = T0 + timedelta(days=3)
    cmd = Command(Action.ASSIGN, note="n", assignee="Wang Li", department="Brigade 2", due_at=due)
    out = apply(fresh(), cmd, at=T0)
    assert (out.assignee, out.department, out.due_at, out.state) == (
        "Wang Li",
        "Brigade 2",
        due,
        AlertState.OPEN,
    )
    for bad, field in [
        (replace(cmd, due_at=T0), "due_at"),
        (replace(cmd, due_at=None), "due_at"),
        (replace(cmd, due_at=datetime(2027, 1, 1)), "due_at"),  # naive
        (replace(cmd, assignee=""), "assignee"),
        (replace(cmd, assignee="x" * 65), "assignee"),
        (replace(cmd, department=None), "department"),
    ]:
        with pytest.raises(Invalid) as err:
            apply(fresh(), bad, at=T0)
        assert err.value.field == field


def test_escalate_only_raises_severity() -> None:
    h = fresh("high")
    assert apply(h, Command(Action.ESCALATE, note="n", severity="critical"), at=T0).severity == (
        "critical"
    )
    for sev in ("low", "medium", "high", "bogus", None):
        with pytest.raises(Invalid) as err:
            apply(h, Command(Action.ESCALATE, note="n", severity=sev), at=T0)
        assert err.value.field == "severity"
    assert next_severity("critical") is None
    assert next_severity("medium") == "high"


def test_reopen_clears_resolution_and_close_stamps_time() -> None:
    h = fresh(state=AlertState.INVESTIGATING)
    resolved = apply(
        h,
        Command(Action.RESOLVE, note="n", resolution=Resolution.OTHER, finding=FINDING),
        at=T0,
    )
    reopened = apply(resolved, Command(Action.REOPEN, note="new evidence"), at=T0)
    assert (reopened.state, reopened.resolution, reopened.finding) == (
        AlertState.INVESTIGATING,
        None,
        None,
    )
    closed = apply(resolved, Command(Action.CLOSE, note="n"), at=T0 + timedelta(hours=1))
    assert closed.closed_at == T0 + timedelta(hours=1)
    assert changes(h, resolved) == {"state": "resolved", "resolution": "other", "finding": FINDING}


@pytest.mark.parametrize("severity", SEVERITIES)
def test_overdue_by_default_handling_time_until_a_due_date_is_set(severity: str) -> None:
    h = fresh(severity)
    limit = T0 + DEFAULT_HANDLING[severity]
    assert effective_due(h) == limit
    assert not is_overdue(h, limit)
    assert is_overdue(h, limit + timedelta(seconds=1))
    later = replace(h, due_at=limit + timedelta(days=5))
    assert not is_overdue(later, limit + timedelta(days=1))
    for state in (AlertState.RESOLVED, AlertState.CLOSED):
        assert not is_overdue(replace(h, state=state), limit + timedelta(days=100))


class AlertMachine(RuleBasedStateMachine):
    """Random actions with random (sometimes missing) fields, against the table."""

    def __init__(self) -> None:
        super().__init__()
        self.handling = fresh("low")
        self.model_state = "open"
        self.at = T0
        self.history: list[str] = ["open"]

    @rule(
        action=st.sampled_from(list(Action)),
        minutes=st.integers(0, 3000),
        complete=st.booleans(),
        resolution=st.sampled_from(list(Resolution)),
        severity=st.sampled_from([*SEVERITIES, "bogus"]),
    )
    def act(
        self, action: Action, minutes: int, complete: bool, resolution: Resolution, severity: str
    ) -> None:
        """Valid and incomplete commands: accepted exactly when the table and fields allow."""
        self.at += timedelta(minutes=minutes)
        cmd = full_command(action, self.handling, self.at)
        cmd = replace(cmd, resolution=resolution, severity=severity)
        if not complete:
            cmd = replace(cmd, note=" ")
        before = self.handling
        expected = TABLE.get((self.model_state, str(action)))
        raises_severity = severity in SEVERITIES and SEVERITIES.index(severity) > SEVERITIES.index(
            before.severity
        )
        if expected is None:
            with pytest.raises(AlertTransitionRefused):
                apply(before, cmd, at=self.at)
            return
        if not complete or (action is Action.ESCALATE and not raises_severity):
            with pytest.raises(Invalid):
                apply(before, cmd, at=self.at)
            return
        self.handling = apply(before, cmd, at=self.at)
        self.model_state = expected
        self.history.append(expected)
        if action is Action.ESCALATE:
            assert self.handling.severity == severity
        else:
            assert self.handling.severity == before.severity

    @invariant()
    def state_matches_model(self) -> None:
        """The machine and the model agree."""
        assert str(self.handling.state) == self.model_state

    @invariant()
    def resolved_has_its_finding(self) -> None:
        """Resolved and closed alerts carry a resolution and a finding; others none."""
        done = self.handling.state in (AlertState.RESOLVED, AlertState.CLOSED)
        assert (self.handling.resolution is not None) == done
        assert (self.handling.finding is not None) == done
        assert (self.handling.closed_at is not None) == (self.handling.state is AlertState.CLOSED)

    @invariant()
    def never_leaves_closed(self) -> None:
        """Nothing follows closed."""
        if "closed" in self.history:
            assert self.history[-1] == "closed"
            assert self.history.index("closed") == len(self.history) - 1


TestAlertMachine = AlertMachine.TestCase
TestAlertMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
