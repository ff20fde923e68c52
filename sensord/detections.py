"""Detections: one sensor's measurement of one target, the tracker's only input.

Sensor-agnostic on purpose: a Mode S receiver, another sensord node or a passive radar
all produce the same type. A detection measures some components of the tracker's state
vector in the receiver's local ENU frame (see ``sensord.geo.Site``):

    STATE = ("e", "n", "u", "ve", "vn", "vu")   # m, m, m, m/s, m/s, m/s

``observes`` names the components ``z`` measures, in order, so the measurement matrix
is a row selection of the identity; ``R`` is the covariance of ``z``. One name is not a
state component: ``"alt"`` is height above the WGS84 ellipsoid at the target (a Mode S
altitude reply). It differs from ``u`` by the earth's curvature (about 3 km at 200 km
range), so the tracker maps it onto ``u`` at the target's estimated position. A detection that
observes nothing carries identity only (a DF5 squawk, a DF11 all-call reply, a callsign).
``icao`` is None for anonymous sensors (radar): the tracker then associates by gating.

``model`` (``sensord.tracker.measurement``) replaces ``observes`` for a measurement that is
not a selection of components, e.g. a passive radar's bistatic range and range rate:
z = h(x) + noise of covariance R. None (every Mode S producer) means ``observes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sensord.tracker.measurement import MeasurementModel

STATE = ("e", "n", "u", "ve", "vn", "vu")
POSITION = ("e", "n", "u")
HORIZONTAL_POSITION = ("e", "n")
VELOCITY = ("ve", "vn", "vu")
ALTITUDE = ("alt",)
IDENTITY_ONLY: tuple[str, ...] = ()

_EMPTY = np.zeros(0)


@dataclass(slots=True)
class Detection:
    """One measurement at ``t_s`` (sample clock of the source) by ``sensor_id``."""

    t_s: float
    sensor_id: str
    observes: tuple[str, ...] = IDENTITY_ONLY
    z: np.ndarray = field(default_factory=lambda: _EMPTY)
    R: np.ndarray = field(default_factory=lambda: _EMPTY.reshape(0, 0))
    icao: int | None = None
    callsign: str | None = None
    squawk: str | None = None
    category: str | None = None
    alt_baro_ft: float | None = None
    alt_geom_ft: float | None = None
    on_ground: bool | None = None
    source: str = ""  # what made it, for counters and debugging: "adsb-pos", "df4-alt", ...
    utc: float | None = None  # UTC of t_s (the source's sample clock mapped to UTC)
    frame: bytes | None = None  # the Mode S reply it came from (de-duplication, MLAT)
    signal_dbfs: float | None = None  # the reply's signal level
    model: MeasurementModel | None = None  # h(x) of z; None: the components ``observes``

    def state_indices(self) -> list[int]:
        """Indices into STATE of the measured components (rows of the measurement matrix)."""
        return [STATE.index("u" if name == "alt" else name) for name in self.observes]


def detection_dict(d: Detection) -> dict:
    """JSON-ready form (the MQTT ``detections`` payload)."""
    out = {
        "t_s": round(d.t_s, 7),
        "sensor_id": d.sensor_id,
        "source": d.source,
        "observes": list(d.observes),
        "z": [round(float(v), 3) for v in d.z],
        "R": [[round(float(v), 3) for v in row] for row in d.R],
        "icao": f"{d.icao:06X}" if d.icao is not None else None,
    }
    for key in ("callsign", "squawk", "category", "alt_baro_ft", "alt_geom_ft", "on_ground"):
        if getattr(d, key) is not None:
            out[key] = getattr(d, key)
    return out
