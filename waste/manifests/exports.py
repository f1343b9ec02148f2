"""CSV exports: formula-safe cells, periods, and the export of a caller's manifests.

Every text cell that a spreadsheet would read as a formula (starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is prefixed with a
single quote (OWASP "CSV injection"). Files are UTF-8 with a byte-order mark
(so spreadsheet software reads Chinese names right) and CRLF line ends
(RFC 4180); list cells are joined with ``;``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from waste.auth.tokens import Principal
from waste.clock import format_utc, parse_day_or_utc
from waste.errors import Invalid
from waste.manifests.queries import ManifestFilter, party_names, scan
from waste.uow import UnitOfWork

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
MAX_PERIOD_DAYS = 366
MAX_EXPORT_ROWS = 50_000

MANIFEST_COLUMNS = (
    "number",
    "manifest_id",
    "state",
    "filed_at",
    "producer_id",
    "producer_name",
    "hauler_id",
    "hauler_name",
    "destination_id",
    "destination_name",
    "vehicle",
    "waste_codes",
    "declared_kg",
    "received_kg",
    "deliver_by",
    "overdue",
    "updated_at",
)


def safe_cell(value: object) -> str | int | float:
    """A CSV cell: numbers as they are, text neutralised against formula injection."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, list | tuple):
        value = ";".join(str(v) for v in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A CSV document (BOM, header row, CRLF) of ``rows`` restricted to ``columns``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return "\ufeff" + out.getvalue()


def parse_period(start: str, end: str) -> tuple[datetime, datetime]:
    """[from, to) from ``YYYY-MM-DD`` (whole UTC days, ``to`` included) or RFC 3339 timestamps."""
    lo = parse_day_or_utc(start, field="query.from", end=False)
    hi = parse_day_or_utc(end, field="query.to", end=True)
    if hi <= lo:
        raise Invalid("to must be after from", field="query.to")
    if hi - lo > timedelta(days=MAX_PERIOD_DAYS):
        raise Invalid(f"a period is at most {MAX_PERIOD_DAYS} days", field="query.to")
    return lo, hi


def export_manifests(
    *, uow: UnitOfWork, principal: Principal, start: datetime, end: datetime, now: datetime
) -> str:
    """The CSV of the manifests the caller may see, filed in [start, end), newest first."""
    rows = scan(
        uow=uow,
        principal=principal,
        filters=ManifestFilter(filed_from=start, filed_to=end),
        now=now,
        cap=MAX_EXPORT_ROWS,
    )
    ids = {p for m, _ in rows for p in (m.producer_id, m.hauler_id, m.destination_id)}
    names = party_names(uow=uow, ids=ids)

    def name(party_id: str) -> str | None:
        party = names.get(party_id)
        return None if party is None else party.name

    return to_csv(
        MANIFEST_COLUMNS,
        (
            {
                "number": m.number,
                "manifest_id": m.id,
                "state": m.state,
                "filed_at": m.filed_at,
                "producer_id": m.producer_id,
                "producer_name": name(m.producer_id),
                "hauler_id": m.hauler_id,
                "hauler_name": name(m.hauler_id),
                "destination_id": m.destination_id,
                "destination_name": name(m.destination_id),
                "vehicle": m.vehicle_plate,
                "waste_codes": m.waste_codes,
                "declared_kg": m.declared_kg,
                "received_kg": m.received_kg,
                "deliver_by": m.deliver_by,
                "overdue": None if flag is None else str(flag.kind),
                "updated_at": m.updated_at,
            }
            for m, flag in rows
        ),
    )
