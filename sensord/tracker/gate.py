"""The gate role (Stone Soup's hypothesiser): does a measurement belong to a track?

A measurement passes when its squared Mahalanobis distance to the track's prediction
(h(x) for a non-linear model) is within ``gate_chi2`` and, for a position, the jump
from the track is one the aircraft could have flown (``max_speed_mps``). A velocity
outside the gate that the aircraft could have reached (``max_accel_mps2``) is a
manoeuvre: the nearly-constant-velocity model lags a turn, so the covariance is widened
by the innovation and the measurement taken. Every refusal is counted by reason.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from sensord.detections import VELOCITY, Detection
from sensord.tracker.measurement import MeasurementModel
from sensord.tracker.track import Track

if TYPE_CHECKING:
    from sensord.tracker.tracker import TrackerConfig, TrackerStats


def position_index(model: MeasurementModel) -> int | None:
    """Where z holds (e, n), for a model that measures the horizontal position."""
    observes = getattr(model, "observes", ())
    if "e" in observes and observes[observes.index("e") + 1 : observes.index("e") + 2] == ("n",):
        return observes.index("e")
    return None


class Gate:
    """Admits or refuses the measurements of tracks (counted in ``stats.gated``)."""

    def __init__(self, config: TrackerConfig, stats: TrackerStats) -> None:
        self.config = config
        self.stats = stats

    def admits(self, track: Track, d: Detection, model: MeasurementModel, d2: float) -> bool:
        """Within the chi-square gate, and for a position, within the speed limit."""
        if d2 > self.config.gate_chi2:
            self.stats.gate(f"mahalanobis-{d.source or '-'.join(d.observes) or 'model'}")
            return False
        i = position_index(model)
        if i is not None:
            jump = math.hypot(d.z[i] - track.x[0], d.z[i + 1] - track.x[1])
            dt = max(d.t_s - track.last_update_s, 0.0)
            if jump > self.config.max_speed_mps * dt + 3 * math.sqrt(track.P[0, 0] + track.P[1, 1]):
                self.stats.gate("speed")
                return False
        return True

    def manoeuvre(self, track: Track, d: Detection, model: MeasurementModel) -> bool:
        """A velocity outside the gate that an aircraft could have reached: widen and take it."""
        if getattr(model, "observes", None) != VELOCITY or d.icao is None:
            return False
        y = d.z - track.x[3:6]
        dt = max(d.t_s - track.last_update_s, 0.5)
        if np.linalg.norm(y) > self.config.max_accel_mps2 * dt + 3 * math.sqrt(np.trace(d.R)):
            return False
        track.filt.widen(y, dt)
        self.stats.gate("manoeuvre-accepted")
        return True
