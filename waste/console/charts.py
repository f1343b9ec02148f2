"""Small server-rendered SVG charts (no script, no inline styles: CSP-friendly)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from markupsafe import Markup, escape

ALERT_KINDS = (
    "suspected_illegal_dumping",
    "seal_opened_off_site",
    "seal_tamper",
    "route_deviation",
    "restricted_zone_entry",
    "unscheduled_stop",
    "signal_lost",
    "quantity_discrepancy",
    "overdue_delivery",
    "unlicensed_receipt",
    "unmanifested_movement",
)
_PALETTE = (
    "#b2182b",
    "#d6604d",
    "#f4a582",
    "#2166ac",
    "#762a83",
    "#5aae61",
    "#878787",
    "#e08214",
    "#8c510a",
    "#01665e",
    "#c51b7d",
)


def kind_colour(kind: str) -> str:
    """The chart colour of an alert kind (grey for kinds it does not know)."""
    try:
        return _PALETTE[ALERT_KINDS.index(kind)]
    except ValueError:
        return "#4d4d4d"


def stacked_bars(
    days: Sequence[date],
    counts: Mapping[date, Mapping[str, int]],
    *,
    width: int = 640,
    height: int = 220,
    title: str = "Alerts by kind per day",
) -> Markup:
    """A stacked bar chart: one bar per day, one segment per alert kind."""
    left, bottom, top = 34, 28, 10
    plot_w, plot_h = width - left - 6, height - bottom - top
    totals = [sum(counts.get(d, {}).values()) for d in days]
    peak = max([*totals, 1])
    step = _nice_step(peak)
    ceiling = step * -(-peak // step)
    bar_w = plot_w / max(len(days), 1)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in range(0, ceiling + 1, step):
        y = top + plot_h - plot_h * tick / ceiling
        out.append(
            f'<line class="gridline" x1="{left}" x2="{width - 6}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    for i, day in enumerate(days):
        x = left + i * bar_w
        y = top + plot_h
        for kind in ALERT_KINDS + tuple(sorted(set(counts.get(day, {})) - set(ALERT_KINDS))):
            n = counts.get(day, {}).get(kind, 0)
            if n <= 0:
                continue
            h = plot_h * n / ceiling
            y -= h
            out.append(
                f'<rect class="bar" x="{x + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="{kind_colour(kind)}" data-kind="{escape(kind)}">'
                f"<title>{day.isoformat()}: {n} {escape(kind)}</title></rect>"
            )
        if len(days) <= 16 or i % 2 == 0:
            out.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - 10}" '
                f'text-anchor="middle">{day.strftime("%m-%d")}</text>'
            )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - built from numbers and escaped labels


def _nice_step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        if peak / step <= 5:
            return step
    return 10_000
