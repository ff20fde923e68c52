"""Watched zones: polygons or circles with an altitude band; entering and leaving are events.

A zone is configured as ``[zones.NAME]`` with either ``center = [lat, lon]`` and
``radius_m``, or ``polygon = [[lat, lon], ...]`` (3 or more vertices), and optionally
``alt_min_ft``, ``alt_max_ft`` (the band; a track without altitude counts as inside it)
and ``noncooperative_only`` (only tracks without a transponder: radar-only tracks).

Membership is computed in a local plane tangent at the zone's reference point
(equirectangular, exact to well under 0.1 % across a zone of 100 km). ``ZoneWatcher`` is
pure: it takes track updates and returns the events; the caller publishes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sensord.errors import UserError
from sensord.outputs.aircraft_json import SOURCE_RADAR, source_of
from sensord.tracker.update import SCHEMA_VERSION, TrackStatus, TrackUpdate

EARTH_RADIUS_M = 6_371_008.8
ZONE_KEYS = {"center", "radius_m", "polygon", "alt_min_ft", "alt_max_ft", "noncooperative_only"}


@dataclass(frozen=True)
class Zone:
    """A watched area: a circle (``center_deg``, ``radius_m``) or a polygon of (lat, lon)."""

    name: str
    polygon_deg: tuple[tuple[float, float], ...] = ()
    center_deg: tuple[float, float] | None = None
    radius_m: float = 0.0
    alt_min_ft: float | None = None
    alt_max_ft: float | None = None
    noncooperative_only: bool = False
    _ref_deg: tuple[float, float] = field(default=(0.0, 0.0), repr=False, compare=False)
    _poly_m: tuple[tuple[float, float], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.center_deg is not None:
            ref = self.center_deg
        else:
            ref = (
                sum(p[0] for p in self.polygon_deg) / len(self.polygon_deg),
                sum(p[1] for p in self.polygon_deg) / len(self.polygon_deg),
            )
        object.__setattr__(self, "_ref_deg", ref)
        object.__setattr__(
            self, "_poly_m", tuple(self._plane_m(lat, lon) for lat, lon in self.polygon_deg)
        )

    def _plane_m(self, lat_deg: float, lon_deg: float) -> tuple[float, float]:
        lat0, lon0 = self._ref_deg
        dlon = (lon_deg - lon0 + 180.0) % 360.0 - 180.0
        east_m = math.radians(dlon) * math.cos(math.radians(lat0)) * EARTH_RADIUS_M
        north_m = math.radians(lat_deg - lat0) * EARTH_RADIUS_M
        return east_m, north_m

    def contains(self, lat_deg: float, lon_deg: float, alt_ft: float | None) -> bool:
        """Inside the area and the altitude band (no altitude: in the band)."""
        if alt_ft is not None:
            if self.alt_min_ft is not None and alt_ft < self.alt_min_ft:
                return False
            if self.alt_max_ft is not None and alt_ft > self.alt_max_ft:
                return False
        x, y = self._plane_m(lat_deg, lon_deg)
        if self.center_deg is not None:
            return math.hypot(x, y) <= self.radius_m
        inside = False
        poly = self._poly_m
        j = len(poly) - 1
        for i in range(len(poly)):
            xi, yi = poly[i]
            xj, yj = poly[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside

    def applies_to(self, update: TrackUpdate) -> bool:
        """Non-cooperative-only zones watch radar-only tracks (no transponder) alone."""
        return not self.noncooperative_only or (
            source_of(update) == SOURCE_RADAR and not update.icao
        )

    def to_dict(self) -> dict:
        """For the map: shape, band and flag."""
        d: dict = {
            "name": self.name,
            "alt_min_ft": self.alt_min_ft,
            "alt_max_ft": self.alt_max_ft,
            "noncooperative_only": self.noncooperative_only,
        }
        if self.center_deg is not None:
            d["center"] = list(self.center_deg)
            d["radius_m"] = self.radius_m
        else:
            d["polygon"] = [list(p) for p in self.polygon_deg]
        return d


@dataclass(frozen=True)
class ZoneEvent:
    """A track entering or leaving a zone."""

    event: str  # "zone_enter" | "zone_leave"
    zone: str
    track_id: str
    icao: str | None
    callsign: str | None
    source: str
    t_s: float
    lat_deg: float | None
    lon_deg: float | None
    alt_baro_ft: float | None

    def to_dict(self) -> dict:
        """The MQTT ``events`` payload (beside the publisher's new/confirmed/lost)."""
        return {
            "event": self.event,
            "zone": self.zone,
            "track_id": self.track_id,
            "icao": self.icao,
            "callsign": self.callsign,
            "source": self.source,
            "t_s": round(self.t_s, 3),
            "lat_deg": None if self.lat_deg is None else round(self.lat_deg, 6),
            "lon_deg": None if self.lon_deg is None else round(self.lon_deg, 6),
            "alt_baro_ft": None if self.alt_baro_ft is None else round(self.alt_baro_ft),
            "schema": SCHEMA_VERSION,
        }


@dataclass
class ZoneCounts:
    """Per zone: entries, exits and tracks inside now."""

    entered: dict[str, int] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)
    inside: dict[str, int] = field(default_factory=dict)


class ZoneWatcher:
    """Which tracks are in which zone; ``update`` returns the enter/leave events."""

    def __init__(self, zones: list[Zone]) -> None:
        self.zones = zones
        self._inside: dict[str, set[str]] = {z.name: set() for z in zones}
        self.counts = ZoneCounts(
            entered={z.name: 0 for z in zones},
            left={z.name: 0 for z in zones},
            inside={z.name: 0 for z in zones},
        )

    def update(self, updates: list[TrackUpdate]) -> list[ZoneEvent]:
        """Events for these updates; a dropped track, or one without position, leaves."""
        events: list[ZoneEvent] = []
        for u in updates:
            alive = u.status is not TrackStatus.DROPPED and u.lat_deg is not None
            for zone in self.zones:
                members = self._inside[zone.name]
                now_in = (
                    alive
                    and zone.applies_to(u)
                    and zone.contains(u.lat_deg, u.lon_deg, u.alt_baro_ft)  # type: ignore[arg-type]
                )
                was_in = u.track_id in members
                if now_in == was_in:
                    continue
                if now_in:
                    members.add(u.track_id)
                    self.counts.entered[zone.name] += 1
                else:
                    members.discard(u.track_id)
                    self.counts.left[zone.name] += 1
                self.counts.inside[zone.name] = len(members)
                events.append(_event("zone_enter" if now_in else "zone_leave", zone, u))
        return events

    def inside(self, zone: str) -> set[str]:
        """Track ids inside ``zone`` now."""
        return set(self._inside[zone])


def _event(name: str, zone: Zone, u: TrackUpdate) -> ZoneEvent:
    return ZoneEvent(
        event=name,
        zone=zone.name,
        track_id=u.track_id,
        icao=u.icao,
        callsign=u.callsign,
        source=source_of(u),
        t_s=u.t_s,
        lat_deg=u.lat_deg,
        lon_deg=u.lon_deg,
        alt_baro_ft=u.alt_baro_ft,
    )


def _latlon(value: object, where: str) -> tuple[float, float]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise UserError(f"{where}: expected [lat, lon] in degrees, got {value!r}")
    lat, lon = float(value[0]), float(value[1])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise UserError(f"{where}: [lat, lon] out of range: {value!r}")
    return lat, lon


def _number(spec: dict, key: str, where: str) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{where} {key}: must be a number, got {value!r}")
    return float(value)


def parse_zones(section: object, source: str = "<config>") -> list[Zone]:
    """``[zones.NAME]`` tables -> zones; a one-line UserError naming the zone on any fault."""
    if not isinstance(section, dict):
        raise UserError(f"{source}: [zones] must hold [zones.NAME] tables")
    zones = []
    for name, spec in section.items():
        where = f"{source}: [zones.{name}]"
        if not isinstance(spec, dict):
            raise UserError(f"{where}: must be a table ([zones.{name}])")
        unknown = set(spec) - ZONE_KEYS
        if unknown:
            raise UserError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        has_circle = "center" in spec or "radius_m" in spec
        if has_circle == ("polygon" in spec):
            raise UserError(f"{where}: give either center and radius_m, or polygon")
        alt_min, alt_max = _number(spec, "alt_min_ft", where), _number(spec, "alt_max_ft", where)
        if alt_min is not None and alt_max is not None and alt_min > alt_max:
            raise UserError(f"{where}: alt_min_ft is above alt_max_ft")
        nc = spec.get("noncooperative_only", False)
        if not isinstance(nc, bool):
            raise UserError(f"{where} noncooperative_only: must be true or false")
        if has_circle:
            radius = _number(spec, "radius_m", where)
            if radius is None or not radius > 0 or "center" not in spec:
                raise UserError(f"{where}: a circle needs center = [lat, lon] and radius_m > 0")
            zone = Zone(
                name,
                center_deg=_latlon(spec["center"], f"{where} center"),
                radius_m=radius,
                alt_min_ft=alt_min,
                alt_max_ft=alt_max,
                noncooperative_only=nc,
            )
        else:
            vertices = spec["polygon"]
            if not isinstance(vertices, list) or len(vertices) < 3:
                raise UserError(f"{where} polygon: needs 3 or more [lat, lon] vertices")
            zone = Zone(
                name,
                polygon_deg=tuple(_latlon(v, f"{where} polygon") for v in vertices),
                alt_min_ft=alt_min,
                alt_max_ft=alt_max,
                noncooperative_only=nc,
            )
        zones.append(zone)
    return zones
