"""One track: its filter (filterpy), identity, lifecycle counters."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from filterpy.kalman import IMMEstimator, KalmanFilter

from sensord.tracker.models import DIM
from sensord.tracker.update import TrackStatus

# initial uncertainty of what the first detection does not measure
INIT_POS_SIGMA_M = 1000.0
INIT_VEL_SIGMA_MPS = 250.0
INIT_VRATE_SIGMA_MPS = 20.0


def new_filter(x0: np.ndarray, p0: np.ndarray) -> KalmanFilter:
    kf = KalmanFilter(dim_x=DIM, dim_z=3)
    kf.x = x0.copy()
    kf.P = p0.copy()
    return kf


def initial_state(z: np.ndarray, R: np.ndarray, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """State and covariance from one measurement of some components."""
    x = np.zeros(DIM)
    p = np.diag([INIT_POS_SIGMA_M**2] * 3 + [INIT_VEL_SIGMA_MPS**2] * 2 + [INIT_VRATE_SIGMA_MPS**2])
    x[idx] = z
    p[np.ix_(idx, idx)] = R
    return x, p


@dataclass
class Track:
    """A target's filter and what is known of it."""

    track_id: str
    t_s: float  # time of the filter's state
    filt: KalmanFilter | IMMEstimator
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
    sensors: set[str] = field(default_factory=set)
    challenger: tuple | None = None  # last gated-out position: (t_s, enu, detection)
    rejected_in_row: int = 0
    geo_minus_baro_ft: float | None = None
    has_position: bool = False

    @property
    def x(self) -> np.ndarray:
        return self.filt.x

    @property
    def P(self) -> np.ndarray:
        return self.filt.P
