"""Manifests: the custody lifecycle state machine (pure), its event data, timeline and deadlines."""

from waste.manifests.deadlines import OverdueFlag, OverdueKind, overdue
from waste.manifests.domain import (
    AppliedEvent,
    Custody,
    EventRecord,
    Leg,
    ManifestState,
    Masses,
    SealRecord,
    active_leg_at,
    apply_event,
    open_leg,
    replay,
    required_signers,
)
from waste.manifests.events import EventData, Filing, parse_event_data
from waste.manifests.history import TimelineEntry, timeline
from waste.manifests.vocabulary import EventType

__all__ = [
    "AppliedEvent",
    "Custody",
    "EventData",
    "EventRecord",
    "EventType",
    "Filing",
    "Leg",
    "ManifestState",
    "Masses",
    "OverdueFlag",
    "OverdueKind",
    "SealRecord",
    "TimelineEntry",
    "active_leg_at",
    "apply_event",
    "open_leg",
    "overdue",
    "parse_event_data",
    "replay",
    "required_signers",
    "timeline",
]
