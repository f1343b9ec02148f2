"""Alerts raised against the labelled ground truth of a corpus (``devices.scenarios``).

An alert belongs to a scenario through its manifest, or (no manifest: an unmanifested
movement) through its device and time. It is *true* when it matches a required label
of its scenario (``ExpectedAlert.matches``: kind, manifest or device, ``at`` within the
label's window), *tolerated* when it matches only a label the detector may raise
(e.g. a provisional ``signal_lost`` while a device's backlog is on its way), and
*false* otherwise. A retracted alert (the detector withdrew it when later data no
longer supported it, ``evidence.retracted``) is neither: it is counted apart. A label
is detected when a standing alert matches it; a planted incident is detected when all
its required labels are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devices.scenario_model import ALERT_KINDS, Corpus, ExpectedAlert, Scenario
from waste.clock import parse_utc

__all__ = ["AlertView", "KindScore", "Match", "Score", "score"]

_SLACK = timedelta(minutes=30)


@dataclass(frozen=True)
class AlertView:
    """The members of an alert payload that scoring reads."""

    id: str
    kind: str
    severity: str
    manifest_id: str | None
    device_id: str | None
    vehicle: str | None
    at: datetime
    raised_at: datetime
    retracted: bool
    evidence: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> AlertView:
        """From a protocol alert object (MQTT payload or ``GET /v1/alerts`` item)."""
        evidence = payload.get("evidence") or {}
        return cls(
            id=str(payload["id"]),
            kind=str(payload["kind"]),
            severity=str(payload.get("severity", "")),
            manifest_id=payload.get("manifest_id"),
            device_id=payload.get("device_id"),
            vehicle=payload.get("vehicle"),
            at=parse_utc(str(payload["at"])),
            raised_at=parse_utc(str(payload["raised_at"])),
            retracted=bool(evidence.get("retracted")),
            evidence=evidence,
        )


@dataclass(frozen=True)
class Match:
    """An alert of the corpus, its scenario, and the label it matched (if any)."""

    alert: AlertView
    scenario: Scenario | None
    label: ExpectedAlert | None
    verdict: str  # true | tolerated | false | retracted


@dataclass
class KindScore:
    """Figures for one alert kind."""

    kind: str
    expected: int = 0
    detected: int = 0
    true: int = 0
    tolerated: int = 0
    false: int = 0
    retracted: int = 0
    at_delays_s: list[float] = field(default_factory=list)
    """``at`` of the first matching alert minus the label's ``earliest``, per detected label."""

    @property
    def recall(self) -> float | None:
        """Detected required labels over required labels (None: none expected)."""
        return None if not self.expected else self.detected / self.expected

    @property
    def precision(self) -> float | None:
        """True alerts over true plus false (None: no alert)."""
        raised = self.true + self.false
        return None if not raised else self.true / raised


@dataclass
class Score:
    """The corpus scored: per kind, per scenario, and every alert's verdict."""

    kinds: dict[str, KindScore]
    matches: list[Match]
    planted: dict[str, tuple[str, ...]]
    """Incident scenario key → required kinds not detected (empty: detected)."""
    honest: dict[str, tuple[str, ...]]
    """Honest scenario key → kinds of its false alerts (empty: left alone)."""
    kinds_of: dict[str, str]
    """Scenario key → scenario kind."""

    @property
    def planted_detected(self) -> int:
        """Incident scenarios all of whose required alerts were raised."""
        return sum(1 for missing in self.planted.values() if not missing)

    @property
    def honest_alerted(self) -> list[str]:
        """Honest scenarios with at least one false alert."""
        return sorted(k for k, kinds in self.honest.items() if kinds)

    @property
    def false_alerts(self) -> list[Match]:
        """Standing alerts that match no label."""
        return [m for m in self.matches if m.verdict == "false"]

    def by_kind(self, *, standing: bool = True) -> Counter[str]:
        """Alerts of the corpus by kind (standing only, or retracted ones too)."""
        return Counter(
            m.alert.kind for m in self.matches if not (standing and m.verdict == "retracted")
        )


def _candidates(
    alert: AlertView,
    by_manifest: Mapping[str, tuple[Scenario, str]],
    by_device: Mapping[str, list[Scenario]],
) -> list[tuple[Scenario, str | None]]:
    """The scenarios an alert may be about: its manifest's, else its device's runs near
    its time (the run holding ``at`` first, then the nearest)."""
    if alert.manifest_id is not None:
        owner = by_manifest.get(alert.manifest_id)
        return [] if owner is None else [owner]
    if alert.device_id is None:
        return []
    runs = by_device.get(alert.device_id, [])
    near = [s for s in runs if s.start - _SLACK <= alert.at <= s.end + _SLACK]

    def distance(s: Scenario) -> float:
        if s.start <= alert.at <= s.end:
            return 0.0
        return min(
            abs((s.start - alert.at).total_seconds()), abs((s.end - alert.at).total_seconds())
        )

    return [(s, None) for s in sorted(near, key=distance)]


def _label(
    alert: AlertView, candidates: list[tuple[Scenario, str | None]]
) -> tuple[Scenario, ExpectedAlert | None]:
    """The first candidate with a label matching the alert (required labels first), else
    the first candidate with none."""
    for scenario, key in candidates:
        for e in sorted(scenario.expected, key=lambda e: not e.required):
            if e.matches(alert.kind, alert.at, manifest=key, device_id=alert.device_id):
                return scenario, e
    return candidates[0][0], None


def score(
    corpus: Corpus, manifest_ids: Mapping[str, str], alerts: Iterable[Mapping[str, Any]]
) -> Score:
    """Score ``alerts`` (protocol objects; others' alerts are ignored) against ``corpus``;
    ``manifest_ids`` maps the corpus's manifest keys to the server's ids."""
    by_manifest: dict[str, tuple[Scenario, str]] = {}
    by_device: dict[str, list[Scenario]] = {}
    for s in corpus.scenarios:
        for plan in s.manifests:
            if plan.key in manifest_ids:
                by_manifest[manifest_ids[plan.key]] = (s, plan.key)
        for m in s.transmissions:
            runs = by_device.setdefault(m.device_id, [])
            if not runs or runs[-1] is not s:
                runs.append(s)
    kinds = {k: KindScore(k) for k in ALERT_KINDS}
    matches: list[Match] = []
    for payload in alerts:
        alert = AlertView.of(payload)
        candidates = _candidates(alert, by_manifest, by_device)
        if not candidates:
            continue  # not this corpus's
        scenario, label = _label(alert, candidates)
        if alert.retracted:
            verdict = "retracted"
        elif label is None:
            verdict = "false"
        else:
            verdict = "true" if label.required else "tolerated"
        matches.append(Match(alert, scenario, label, verdict))
        ks = kinds.setdefault(alert.kind, KindScore(alert.kind))
        setattr(ks, verdict, getattr(ks, verdict) + 1)
    planted: dict[str, tuple[str, ...]] = {}
    honest: dict[str, tuple[str, ...]] = {}
    for s in corpus.scenarios:
        missing: list[str] = []
        for label in (e for e in s.expected if e.required):
            ks = kinds.setdefault(label.kind, KindScore(label.kind))
            ks.expected += 1
            hits = [m for m in matches if m.label is label and m.verdict == "true"]
            if hits:
                ks.detected += 1
                first = min(m.alert.at for m in hits)
                ks.at_delays_s.append((first - label.earliest).total_seconds())
            else:
                missing.append(label.kind)
        if s.honest:
            mine = [m for m in matches if m.scenario is s and m.verdict == "false"]
            wrong = sorted({m.alert.kind for m in mine})
            honest[s.key] = tuple(wrong)
        else:
            planted[s.key] = tuple(sorted(set(missing)))
    return Score(kinds, matches, planted, honest, {s.key: s.kind for s in corpus.scenarios})
