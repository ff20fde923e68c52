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
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from sensord.detections import VELOCITY, Detection
from sensord.tracker.measurement import MeasurementModel
from sensord.tracker.track import Track
from sensord.tracker.updater import Measurements

if TYPE_CHECKING:
    from sensord.tracker.tracker import TrackerConfig, TrackerStats


def position_index(model: MeasurementModel) -> int | None:
    """Where z holds (e, n), for a model that measures the horizontal position."""
    return getattr(model, "position_at", None)


class Gate:
    """Admits or refuses the measurements of tracks (counted in ``stats.gated``)."""

    def __init__(self, config: TrackerConfig, stats: TrackerStats) -> None:
        self.config = config
        self.stats = stats

    def admitted(
        self,
        tracks: list[Track],
        dets: list[Detection],
        meas: Measurements,
        d2: np.ndarray,
        states: Callable[[], tuple[np.ndarray, np.ndarray]],
    ) -> np.ndarray:
        """Which of the measurements pass (d2 their distances): the chi-square gate and, for
        positions, the speed limit against the tracks' ``states()`` (x (n, 6), P (n, 6, 6))."""
        cfg = self.config
        passed = d2 <= cfg.gate_chi2
        if not passed.all():
            for k in np.flatnonzero(~passed).tolist():
                d = dets[k]
                self.stats.gate(f"mahalanobis-{d.source or '-'.join(d.observes) or 'model'}")
        i = position_index(meas.model)
        if i is not None:
            x, p = states()
            jump = np.hypot(meas.z[:, i] - x[:, 0], meas.z[:, i + 1] - x[:, 1])
            dt = np.fromiter(
                (d.t_s - tr.last_update_s for d, tr in zip(dets, tracks, strict=True)),
                dtype=float,
                count=len(dets),
            )
            limit = cfg.max_speed_mps * np.maximum(dt, 0.0) + 3 * np.sqrt(p[:, 0, 0] + p[:, 1, 1])
            fast = passed & (jump > limit)
            if fast.any():
                self.stats.gate("speed", int(fast.sum()))
                passed &= ~fast
        return passed

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
