"""Request bodies of the alert handling API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from waste.alerts.lifecycle import (
    MAX_ASSIGNEE,
    MAX_DEPARTMENT,
    MAX_FINDING,
    MAX_NOTE,
    Action,
    Resolution,
)


class TransitionIn(BaseModel):
    """One handling step: the action, a note, and the fields the action needs."""

    model_config = ConfigDict(extra="forbid")

    action: Action = Field(
        description="acknowledge, investigate, assign, escalate, resolve, reopen or close"
    )
    note: str = Field(max_length=MAX_NOTE, description="Why: required for every action")
    version: int | None = Field(
        default=None,
        ge=1,
        description="The alert's handling.version you last read (or send If-Match instead)",
    )
    resolution: Resolution | None = Field(default=None, description="resolve: how it ended")
    finding: str | None = Field(
        default=None, max_length=MAX_FINDING, description="resolve: the written finding"
    )
    assignee: str | None = Field(
        default=None, max_length=MAX_ASSIGNEE, description="assign: the responsible person"
    )
    department: str | None = Field(
        default=None, max_length=MAX_DEPARTMENT, description="assign: the responsible department"
    )
    due_at: str | None = Field(
        default=None, description="assign: RFC 3339 UTC time it must be resolved by"
    )
    severity: str | None = Field(
        default=None, description="escalate: the new, higher severity (high, critical)"
    )
