"""Radar detections as tracker measurements: the non-linear bistatic model.

``RadarMeasurements`` turns ``RadarDetection``s into ``sensord.detections.Detection``s a
``Tracker`` takes: ``z`` = (bistatic range m, range rate m/s), ``R`` from the detection's
variances (plus small floors for what the variances leave out: the range-cell
interpolation's bias, a residual skew), and the model
``BistaticRangeRate(tx, rx)`` with both sites in the tracker's ENU frame. They are
anonymous: the tracker gates them against every track's predicted bistatic range and
rate (GNN, EKF or UKF update) and never starts a track from one, since one bistatic pair
does not fix a position; detections no track takes are the radar-only tracker's
(``association.RangeDopplerTracker``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sensord.detections import Detection
from sensord.geo import Site
from sensord.radar.detections import RadarDetection
from sensord.radar.geometry import Bistatic
from sensord.tracker.measurement import BistaticRangeRate

RANGE_FLOOR_M = 30.0
RATE_FLOOR_MPS = 1.5  # a track's CV prediction of the rate lags in a turn by about this


@dataclass
class RadarMeasurements:
    """A radar's detections in the frame of a tracker at ``site``."""

    bistatic: Bistatic
    site: Site
    sensor_id: str = "radar0"
    model: BistaticRangeRate = field(init=False)

    def __post_init__(self) -> None:
        tx, rx = self.bistatic.tx, self.bistatic.rx
        t = self.site.to_enu(tx.lat_deg, tx.lon_deg, tx.alt_m)
        r = self.site.to_enu(rx.lat_deg, rx.lon_deg, rx.alt_m)
        self.model = BistaticRangeRate(
            (float(t[0]), float(t[1]), float(t[2])), (float(r[0]), float(r[1]), float(r[2]))
        )

    def detection(self, det: RadarDetection, use_utc: bool = False) -> Detection:
        """One radar detection as an anonymous tracker measurement at its CPI centre."""
        r = np.diag(
            [
                det.bistatic_range_var_m2 + RANGE_FLOOR_M**2,
                det.range_rate_var_m2s2 + RATE_FLOOR_MPS**2,
            ]
        )
        return Detection(
            t_s=det.utc if use_utc else det.t_s,
            sensor_id=self.sensor_id,
            z=np.array([det.bistatic_range_m, det.range_rate_mps]),
            R=r,
            source="radar",
            utc=det.utc,
            model=self.model,
        )

    def detections(self, dets: list[RadarDetection], use_utc: bool = False) -> list[Detection]:
        return [self.detection(d, use_utc) for d in dets]
