"""JSON-ready encoding of ``LegTracker`` state pieces (private to the package)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from waste.tracking.areas import AreaRef
from waste.tracking.model import Excursion, PathPoint, Stop

Point = tuple[datetime, float, float]
"""A good fix as the state machines keep it: t, lat, lon."""


def enc_t(t: datetime) -> str:
    return t.isoformat()


def dec_t(value: str) -> datetime:
    return datetime.fromisoformat(value)


def enc_point(p: Point | None) -> list[Any] | None:
    return None if p is None else [enc_t(p[0]), p[1], p[2]]


def dec_point(value: list[Any] | None) -> Point | None:
    return None if value is None else dec_point_req(value)


def dec_point_req(value: list[Any]) -> Point:
    return (dec_t(value[0]), float(value[1]), float(value[2]))


def enc_path(p: PathPoint) -> list[Any]:
    return [enc_t(p.t), p.lat, p.lon, p.distance_m, p.progress_m]


def dec_path(v: list[Any]) -> PathPoint:
    return PathPoint(dec_t(v[0]), float(v[1]), float(v[2]), float(v[3]), float(v[4]))


def enc_exc(e: Excursion | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {
        "id": e.id,
        "started_at": enc_t(e.started_at),
        "last_seen_at": enc_t(e.last_seen_at),
        "max_distance_m": e.max_distance_m,
        "path": [enc_path(p) for p in e.path],
    }


def dec_exc(v: Mapping[str, Any] | None) -> Excursion | None:
    if v is None:
        return None
    path = tuple(dec_path(p) for p in v["path"])
    started, seen = dec_t(v["started_at"]), dec_t(v["last_seen_at"])
    return Excursion(str(v["id"]), started, None, seen, float(v["max_distance_m"]), path)


def enc_stop(s: Stop | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "id": s.id,
        "started_at": enc_t(s.started_at),
        "last_seen_at": enc_t(s.last_seen_at),
        "centre": list(s.centre),
        "fix_count": s.fix_count,
        "areas": [a.to_dict() for a in s.areas],
    }


def dec_stop(v: Mapping[str, Any] | None) -> Stop | None:
    if v is None:
        return None
    return Stop(
        str(v["id"]),
        dec_t(v["started_at"]),
        None,
        dec_t(v["last_seen_at"]),
        (float(v["centre"][0]), float(v["centre"][1])),
        int(v["fix_count"]),
        tuple(AreaRef.from_dict(a) for a in v["areas"]),
    )


def enc_zones(zones: dict[str, tuple[AreaRef, list[Point]]]) -> list[Any]:
    return [[ref.to_dict(), [enc_point(q) for q in run]] for ref, run in zones.values()]


def dec_zones(value: list[Any]) -> dict[str, tuple[AreaRef, list[Point]]]:
    out: dict[str, tuple[AreaRef, list[Point]]] = {}
    for ref_value, run in value:
        ref = AreaRef.from_dict(ref_value)
        out[ref.id] = (ref, [dec_point_req(q) for q in run])
    return out
