"""One track: its filter, identity, lifecycle counters."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sensord.tracker.models import DIM
from sensord.tracker.update import TrackStatus

if TYPE_CHECKING:
    from sensord.tracker.bank import Filter

# initial uncertainty of what the first detection does not measure
INIT_POS_SIGMA_M = 1000.0
INIT_VEL_SIGMA_MPS = 250.0
INIT_VRATE_SIGMA_MPS = 20.0


def initial_state(z: np.ndarray, R: np.ndarray, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """State and covariance from one measurement of some components."""
    x = np.zeros(DIM)
    p = np.diag([INIT_POS_SIGMA_M**2] * 3 + [INIT_VEL_SIGMA_MPS**2] * 2 + [INIT_VRATE_SIGMA_MPS**2])
    x[idx] = z
    p[np.ix_(idx, idx)] = R
    return x, p


def position_kind(source: str) -> str | None:
    """The kind of position a detection's ``source`` gives (None: no position)."""
    if source in ("adsb-pos", "adsb-surface"):
        return "adsb"
    if source == "mlat":
        return "mlat"
    if source.startswith(("radar", "bistatic")):
        return "radar"
    return None


@dataclass
class Track:
    """A target's filter and what is known of it."""

    track_id: str
    t_s: float  # time of the filter's state
    filt: Filter
    icao: int | None = None
    callsign: str | None = None
    squawk: str | None = None
    category: str | None = None
    status: TrackStatus = TrackStatus.TENTATIVE
    first_s: float = 0.0
    last_update_s: float = 0.0  # last kinematic measurement
    last_seen_s: float = 0.0  # last detection of any kind
    n_updates: int = 0
    hits: deque = field(default_factory=lambda: deque(maxlen=16))  # accepted (1) / gated (0)
    sensors: dict[str, float] = field(
        default_factory=dict
    )  # sensor_id -> t_s of its last detection
    challenger: tuple | None = None  # last gated-out position: (t_s, enu, detection)
    rejected_in_row: int = 0
    geo_minus_baro_ft: float | None = None
    has_position: bool = False
    position_source: str | None = None  # what gave its last position: adsb, mlat, radar

    def took(self, d_source: str) -> None:
        """The filter took a measurement from a detection of kind ``d_source``."""
        kind = position_kind(d_source)
        if kind == "radar" and self.position_source not in (None, "radar"):
            return  # a bistatic echo refines a transponder's (or MLAT's) track, not replaces it
        if kind is not None:
            self.position_source = kind

    def heard(self, sensor_id: str, t_s: float) -> None:
        """A detection of ``sensor_id`` at t_s was associated with this track."""
        if t_s > self.sensors.get(sensor_id, -math.inf):
            self.sensors[sensor_id] = t_s

    @property
    def x(self) -> np.ndarray:
        return self.filt.x

    @property
    def P(self) -> np.ndarray:
        return self.filt.P
