"""What the demo shows while it runs: a rich Live view on a terminal, plain lines otherwise.

Every display gets ``started`` (addresses, tokens file), ``alert`` for each alert
message the feed receives (from the feed's thread), ``tick`` a few times a second with
a ``Status``, ``phase`` when the run moves on, and ``finished`` with the summary.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from waste.demo.board import TRIP_STATES
from waste.demo.stack import AlertSeen
from waste.demo.summary import DemoSummary, render_summary

__all__ = ["Display", "LiveDisplay", "PlainDisplay", "QuietDisplay", "StartInfo", "Status"]

_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "dim"}


@dataclass(frozen=True)
class StartInfo:
    """Where things are, shown when the stack is up."""

    county: str
    day: int
    trips: int
    kinds: dict[str, int]
    speed: float
    sim_start: datetime
    sim_end: datetime
    api_docs: str
    console: str
    tokens_file: str
    broker: str


@dataclass
class Status:
    """Where the day stands."""

    sim_now: datetime
    trips: Counter[str] = field(default_factory=Counter)
    records_sent: int = 0
    records_stored: int = 0
    custody_posted: int = 0
    custody_refused: int = 0


class Display(Protocol):
    """What the orchestrator tells a display."""

    def started(self, info: StartInfo) -> None:
        """The stack is up and the day is about to run."""
        ...

    def phase(self, text: str) -> None:
        """The run moved on (registering, driving, settling, auditing, serving)."""
        ...

    def alert(self, seen: AlertSeen) -> None:
        """An alert message arrived (called from the feed's thread)."""
        ...

    def tick(self, status: Status) -> None:
        """The day's progress."""
        ...

    def finished(self, summary: DemoSummary) -> None:
        """The day is over: show the summary."""
        ...

    def close(self) -> None:
        """Stop drawing."""
        ...


def _start_lines(info: StartInfo) -> list[str]:
    span_h = (info.sim_end - info.sim_start).total_seconds() / 3600
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(info.kinds.items()))
    return [
        f"API docs:  {info.api_docs}",
        f"Console:   {info.console}  (sign in with the regulator's token from {info.tokens_file})",
        f"Broker:    {info.broker}",
        f"Day {info.day} in {info.county}: {info.trips} trips ({kinds}), "
        f"{span_h:.1f} h of traffic at {info.speed:.0f}x, about "
        f"{span_h * 3600 / info.speed:.0f} s. Ctrl-C stops.",
    ]


def _alert_words(seen: AlertSeen) -> tuple[str, str, str, str, str]:
    p = seen.payload
    retracted = bool((p.get("evidence") or {}).get("retracted"))
    what = "withdrawn" if retracted else ("raised" if seen.first else "updated")
    at = str(p.get("at", ""))[11:19]
    who = str(p.get("vehicle") or p.get("device_id") or "")
    return at, str(p.get("kind", "")), str(p.get("severity", "")), who, what


class QuietDisplay:
    """Shows nothing (tests)."""

    def started(self, info: StartInfo) -> None:
        """Nothing."""

    def phase(self, text: str) -> None:
        """Nothing."""

    def alert(self, seen: AlertSeen) -> None:
        """Nothing."""

    def tick(self, status: Status) -> None:
        """Nothing."""

    def finished(self, summary: DemoSummary) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""


class PlainDisplay(QuietDisplay):
    """Plain lines: for logs and pipes (no cursor movement)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self._info: StartInfo | None = None
        self._shown = -1
        self._lock = threading.Lock()

    def started(self, info: StartInfo) -> None:
        """Print the addresses and the plan."""
        self._info = info
        for line in _start_lines(info):
            self.console.print(line)

    def phase(self, text: str) -> None:
        """Print the new phase."""
        self.console.print(f"-- {text}")

    def alert(self, seen: AlertSeen) -> None:
        """One line per raised or withdrawn alert."""
        at, kind, severity, who, what = _alert_words(seen)
        if what == "updated":
            return
        with self._lock:
            self.console.print(f"alert {what}: {at} {kind} ({severity}) {who}")

    def tick(self, status: Status) -> None:
        """A line every tenth of the day."""
        info = self._info
        if info is None:
            return
        span = (info.sim_end - info.sim_start).total_seconds() or 1.0
        done = max(0.0, min(1.0, (status.sim_now - info.sim_start).total_seconds() / span))
        tenth = int(done * 10)
        if tenth > self._shown:
            self._shown = tenth
            trips = ", ".join(f"{status.trips[s]} {s}" for s in TRIP_STATES if status.trips[s])
            with self._lock:
                self.console.print(
                    f"{done:4.0%} {status.sim_now:%H:%M} simulated: {trips}; "
                    f"{status.records_sent} records sent, {status.records_stored} stored"
                )

    def finished(self, summary: DemoSummary) -> None:
        """Print the summary."""
        self.console.print(render_summary(summary))


class LiveDisplay(PlainDisplay):
    """A rich Live view: simulated-time progress, trips by state, alerts as they come."""

    def __init__(self, console: Console | None = None, *, rows: int = 12) -> None:
        super().__init__(console)
        self._alerts: deque[tuple[str, str, str, str, str]] = deque(maxlen=rows)
        self._kinds: Counter[str] = Counter()
        self._status: Status | None = None
        self._phase = "starting"
        self._live: Live | None = None

    def started(self, info: StartInfo) -> None:
        """Print the addresses, then start the live view below them."""
        super().started(info)
        self._live = Live(
            get_renderable=self._render,
            console=self.console,
            refresh_per_second=4,
            transient=False,
        )
        self._live.start()

    def phase(self, text: str) -> None:
        """Show the phase in the view (printed when there is no view yet)."""
        self._phase = text
        if self._live is None:
            super().phase(text)

    def alert(self, seen: AlertSeen) -> None:
        """Add the alert to the view."""
        words = _alert_words(seen)
        with self._lock:
            if words[4] == "raised":
                self._kinds[words[1]] += 1
            elif words[4] == "withdrawn":
                self._kinds[words[1]] -= 1
            if words[4] != "updated":
                self._alerts.appendleft(words)

    def tick(self, status: Status) -> None:
        """Remember the status for the next refresh."""
        self._status = status

    def finished(self, summary: DemoSummary) -> None:
        """Stop the live view and print the summary."""
        self.close()
        super().finished(summary)

    def close(self) -> None:
        """Stop the live view (the last frame stays on screen)."""
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def _render(self) -> RenderableType:
        info, status = self._info, self._status
        if info is None:
            return Text(self._phase)
        span = (info.sim_end - info.sim_start).total_seconds() or 1.0
        now = status.sim_now if status else info.sim_start
        done = max(0.0, min(span, (now - info.sim_start).total_seconds()))
        head = Table.grid(padding=(0, 1))
        head.add_row(
            Text(f"{now:%Y-%m-%d %H:%M} UTC", style="bold"),
            ProgressBar(total=span, completed=done, width=40),
            Text(f"{done / span:.0%}  {self._phase}"),
        )
        trips = Table(box=None, show_header=True, pad_edge=False)
        for state in TRIP_STATES:
            trips.add_column(state, justify="right")
        counts = status.trips if status else Counter()
        trips.add_row(*(str(counts[s]) for s in TRIP_STATES))
        alerts = Table(box=None, show_header=True, pad_edge=False, expand=False)
        for name in ("at", "kind", "severity", "vehicle", ""):
            alerts.add_column(name)
        with self._lock:
            recent = list(self._alerts)
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(self._kinds.items()) if n > 0)
        for at, kind, severity, who, what in recent:
            style = "dim" if what == "withdrawn" else _SEVERITY_STYLE.get(severity, "")
            alerts.add_row(at, kind, severity, who, what, style=style)
        records = ""
        if status:
            records = (
                f"records {status.records_sent} sent / {status.records_stored} stored   "
                f"custody events {status.custody_posted}"
                + (f" ({status.custody_refused} refused)" if status.custody_refused else "")
            )
        return Panel(
            Group(
                head,
                Text(""),
                trips,
                Text(records, style="dim"),
                Text(""),
                Text(f"alerts: {kinds or 'none yet'}", style="bold"),
                alerts,
            ),
            title=f"waste demo — day {info.day}, {info.county}",
        )
