"""TrackUpdate: the tracker's output, and the JSON payload every publisher sends.

Positions are the filter's estimate at ``t_s`` (not the last raw message), in WGS84;
uncertainties are 95% radii, and the horizontal 95% ellipse (semi-axes in m, the major
axis's direction in degrees clockwise from true north at the aircraft, 0-180).
Radar-only tracks are ``non_cooperative``; one that a single bistatic pair holds has no
position and carries its ``bistatic`` range and range rate instead. Aviation units are
used where subscribers expect them (ft, kt, ft/min) and carried in the names.
``sensors`` lists the sensors whose detections the track took; ``sensor_last_s`` gives
each one's last detection time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum

SCHEMA_VERSION = 1


class TrackStatus(str, Enum):
    """Lifecycle of a track."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    COASTING = "coasting"
    DROPPED = "dropped"


@dataclass(slots=True)
class TrackUpdate:
    """One track's state at one instant: ``t_s`` on the tracker's clock (a receiver's sample
    clock; UTC in the fusion node), ``utc`` the same instant in UTC."""

    track_id: str
    t_s: float
    status: TrackStatus
    lat_deg: float | None = None
    lon_deg: float | None = None
    alt_baro_ft: float | None = None
    alt_geom_ft: float | None = None
    h_err95_m: float | None = None
    v_err95_m: float | None = None
    gs_kt: float | None = None
    track_deg: float | None = None
    vrate_fpm: float | None = None
    icao: str | None = None
    callsign: str | None = None
    squawk: str | None = None
    category: str | None = None
    n_updates: int = 0
    age_s: float = 0.0
    last_update_s: float = 0.0
    sensors: tuple[str, ...] = field(default_factory=tuple)  # sorted sensor ids
    utc: float | None = None  # UTC of t_s
    sensor_last_s: dict[str, float] = field(default_factory=dict)  # sensor id -> its last t_s
    source: str | None = None  # what its position comes from: adsb, mlat, radar
    err95_major_m: float | None = None  # the horizontal 95% ellipse
    err95_minor_m: float | None = None
    err95_orient_deg: float | None = None
    non_cooperative: bool = False  # a radar-only track: no transponder heard
    bistatic: dict | None = None  # a range-Doppler-only radar track: BISTATIC_KEYS

    def to_dict(self) -> dict:
        """JSON-ready dict with the schema version; floats rounded to what they resolve."""
        d = {name: getattr(self, name) for name in _FIELDS}  # asdict's deep copies cost 10x
        d["status"] = self.status.value
        d["sensors"] = list(self.sensors)
        d["sensor_last_s"] = {k: round(v, 3) for k, v in self.sensor_last_s.items()}
        for key, digits in _ROUNDING.items():
            if d[key] is not None:
                d[key] = round(d[key], digits)
        if self.bistatic is not None:
            d["bistatic"] = dict(self.bistatic)
        d["schema"] = SCHEMA_VERSION
        return d


_ROUNDING = {
    "t_s": 3,
    "utc": 3,
    "lat_deg": 6,
    "lon_deg": 6,
    "alt_baro_ft": 0,
    "alt_geom_ft": 0,
    "h_err95_m": 1,
    "err95_major_m": 1,
    "err95_minor_m": 1,
    "err95_orient_deg": 1,
    "v_err95_m": 1,
    "gs_kt": 1,
    "track_deg": 1,
    "vrate_fpm": 0,
    "age_s": 2,
    "last_update_s": 3,
}

BISTATIC_KEYS = (
    "node",  # the radar node
    "tx",  # [lat_deg, lon_deg, alt_m] of the transmitter
    "rx",  # [lat_deg, lon_deg, alt_m] of the receiver
    "bistatic_range_m",  # |tx-target| + |target-rx| - |tx-rx|
    "bistatic_range_sigma_m",
    "range_rate_mps",
    "range_rate_sigma_mps",
    "doppler_hz",
)

_FIELDS = tuple(f.name for f in fields(TrackUpdate))
