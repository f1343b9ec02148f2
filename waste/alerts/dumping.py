"""``suspected_illegal_dumping``: an off-site episode together with an opened seal or lost mass.

Episodes are what the vehicle did off site during the leg: a stop outside the
allowed areas, a route deviation, or a signal gap. Signals are e-lock ``unsealed``
(outside the destination) and ``tamper`` events. Weighings are mass losses found
at a handover or at the gate. An episode is dumping when a signal falls within
``dumping_window_s`` of it; a mass loss (known only when the load is weighed, maybe
long after) marks the episodes already linked to a signal, or else the most telling
episode of the leg (the longest stop, then the farthest deviation, then the longest
gap). One alert per episode links all of its evidence. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from waste.alerts.rules import SUSPECTED_ILLEGAL_DUMPING, Candidate, LegFacts
from waste.alerts.thresholds import AlertThresholds
from waste.clock import parse_utc

Episode = Mapping[str, Any]
"""``{id, kind: stop|excursion|gap, start, end, last, lat, lon, size}`` (times as text)."""
Signal = Mapping[str, Any]
"""``{id, kind: unsealed|tamper, t, lat, lon, lock_id}``."""
Weighing = Mapping[str, Any]
"""``{seq, stage, at, expected_kg, weighed_kg, loss_kg, loss_fraction}``."""

_KIND_ORDER = {"stop": 0, "excursion": 1, "gap": 2}


def dumping_key(episode_id: str) -> str:
    """The natural key of the dumping alert about one episode."""
    return f"{SUSPECTED_ILLEGAL_DUMPING}:{episode_id}"


def _t(text: str) -> datetime:
    return parse_utc(text)


def _near(episode: Episode, signal: Signal, window: timedelta) -> bool:
    start = _t(episode["start"])
    end = _t(episode.get("end") or episode["last"])
    at = _t(signal["t"])
    return start - window <= at <= end + window


def _rank(episode: Episode) -> tuple[int, float]:
    return (_KIND_ORDER.get(str(episode["kind"]), 9), -float(episode.get("size", 0.0)))


def correlate(
    facts: LegFacts,
    th: AlertThresholds,
    *,
    episodes: Sequence[Episode],
    signals: Sequence[Signal],
    weighings: Sequence[Weighing],
) -> list[Candidate]:
    """Every dumping alert the leg's episodes, seal signals and weighings make, as of now."""
    window = timedelta(seconds=th.dumping_window_s)
    linked: dict[str, list[Signal]] = {}
    for episode in episodes:
        near = [s for s in signals if _near(episode, s, window)]
        if near:
            linked[str(episode["id"])] = near
    chosen = [e for e in episodes if str(e["id"]) in linked]
    others: list[Episode] = []
    if weighings and not chosen and episodes:
        ranked = sorted(episodes, key=_rank)
        chosen, others = ranked[:1], ranked[1:]
    candidates = []
    for episode in chosen:
        seal_events = linked.get(str(episode["id"]), [])
        reasons = (["seal_opened"] if seal_events else []) + (["mass_lost"] if weighings else [])
        evidence = {
            "episode": dict(episode),
            "reasons": reasons,
            "seal_events": [dict(s) for s in seal_events],
            "weighings": [dict(w) for w in weighings],
            "other_episodes": [str(e["id"]) for e in others],
            "last_seen_at": episode.get("end") or episode["last"],
        }
        end = episode.get("end")
        candidates.append(
            Candidate(
                SUSPECTED_ILLEGAL_DUMPING,
                "critical",
                dumping_key(str(episode["id"])),
                _t(episode["start"]),
                episode.get("lat"),
                episode.get("lon"),
                evidence,
                ended_at=_t(end) if end else None,
                last_seen_at=_t(episode.get("end") or episode["last"]),
                manifest_id=facts.manifest_id,
                leg_index=facts.leg_index,
            )
        )
    return candidates
