"""What a demo day did, and its rendering for the terminal."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from waste.demo.audit import AuditResult
from waste.demo.scoring import Score

__all__ = ["DemoSummary", "render_summary"]


@dataclass
class DemoSummary:
    """The day's figures: paperwork, trips, alerts against the planted truth, audit."""

    day: int
    county: str
    trips: int
    """Trips with a manifest (unmanifested movements apart)."""
    speed: float
    sim_span_s: float
    wall_s: float = 0.0
    movements: int = 0
    """Planted movements with no manifest at all."""
    manifests_filed: int = 0
    trips_completed: int = 0
    custody_posted: int = 0
    custody_refused: list[tuple[str, str, str]] = field(default_factory=list)
    records_sent: int = 0
    records_stored: int = 0
    undelivered: dict[str, tuple[int, int]] = field(default_factory=dict)
    score: Score | None = None
    audit: AuditResult | None = None
    stopped_early: bool = False
    api_url: str = ""
    console_url: str = ""
    tokens_file: str = ""

    @property
    def alerts_by_kind(self) -> Counter[str]:
        """Standing alerts of the day, by kind."""
        return Counter() if self.score is None else self.score.by_kind()

    @property
    def retracted(self) -> int:
        """Alerts raised and later withdrawn by the detector itself."""
        if self.score is None:
            return 0
        return sum(1 for m in self.score.matches if m.verdict == "retracted")

    @property
    def missed(self) -> dict[str, tuple[str, ...]]:
        """Planted incidents with alert kinds not raised."""
        return {} if self.score is None else {k: v for k, v in self.score.planted.items() if v}

    @property
    def ok(self) -> bool:
        """The day ran to the end, every incident was alerted, no honest trip was, every
        custody step was accepted and every bundle verified."""
        return (
            not self.stopped_early
            and self.score is not None
            and not self.missed
            and not self.score.honest_alerted
            and not self.custody_refused
            and self.audit is not None
            and self.audit.ok
        )


def _line(label: str, value: str, style: str = "") -> tuple[Text, Text]:
    return Text(label, style="bold"), Text(value, style=style)


def render_summary(s: DemoSummary) -> RenderableType:
    """The summary as rich tables (plain text when the output is not a terminal)."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column()
    facts.add_column()
    hours = s.sim_span_s / 3600
    facts.add_row(
        *_line(
            "day",
            f"{s.day} in {s.county}: {hours:.1f} h of traffic at "
            f"{s.speed:.0f}x in {s.wall_s:.0f} s",
        )
    )
    facts.add_row(*_line("manifests filed", str(s.manifests_filed)))
    moved = f" (and {s.movements} unmanifested movement(s))" if s.movements else ""
    facts.add_row(*_line("trips completed", f"{s.trips_completed} of {s.trips}{moved}"))
    refused = f", {len(s.custody_refused)} refused" if s.custody_refused else ""
    facts.add_row(
        *_line(
            "custody events",
            f"{s.custody_posted} signed and accepted{refused}",
            "red" if s.custody_refused else "",
        )
    )
    lost = f", undelivered: {s.undelivered}" if s.undelivered else ""
    facts.add_row(
        *_line(
            "device records",
            f"{s.records_sent} sent, {s.records_stored} stored{lost}",
            "red" if s.undelivered else "",
        )
    )
    rows: list[RenderableType] = [Text("Summary", style="bold underline"), facts]
    score = s.score
    if score is not None:
        planted = len(score.planted)
        detected = score.planted_detected
        facts.add_row(
            *_line(
                "planted incidents",
                f"{detected} of {planted} detected",
                "green" if detected == planted else "red",
            )
        )
        honest = len(score.honest)
        alerted = score.honest_alerted
        facts.add_row(
            *_line(
                "honest trips",
                f"{honest}, {len(alerted)} falsely alerted",
                "green" if not alerted else "red",
            )
        )
        kinds = Table(title="alerts by kind", title_justify="left", box=None, pad_edge=False)
        kinds.add_column("kind")
        kinds.add_column("raised", justify="right")
        kinds.add_column("false", justify="right")
        kinds.add_column("retracted", justify="right")
        for name, ks in sorted(score.kinds.items()):
            raised = ks.true + ks.tolerated + ks.false
            if raised or ks.retracted:
                kinds.add_row(name, str(raised), str(ks.false), str(ks.retracted))
        rows.append(kinds)
        for key, missing in sorted(s.missed.items()):
            rows.append(
                Text(f"  missed: {key} ({score.kinds_of[key]}): {', '.join(missing)}", style="red")
            )
        for m in score.false_alerts:
            where = m.scenario.key if m.scenario is not None else "?"
            rows.append(
                Text(
                    f"  false alert: {m.alert.kind} on {where} at {m.alert.at:%H:%M:%S}",
                    style="yellow",
                )
            )
    if s.audit is not None:
        a = s.audit
        text = f"{a.verified} of {a.verified + len(a.failed)} verified offline"
        if not a.key_matches_server:
            text += " (the server serves another log key!)"
        facts.add_row(*_line("audit bundles", text, "green" if a.ok else "red"))
        for manifest_id, why in a.failed[:10]:
            rows.append(Text(f"  not verified: {manifest_id}: {why}", style="red"))
    for key, kind, why in s.custody_refused[:10]:
        rows.append(Text(f"  refused: {key} {kind}: {why}", style="red"))
    if s.stopped_early:
        rows.append(Text("stopped before the day ended", style="yellow"))
    return Group(*rows)
