"""A sensor's detections into the fusion frame.

The fusion state lives in one frame for every sensor: ENU about the fusion site. ENU is
ECEF translated and rotated, an exact Cartesian frame, so carrying a measurement into it
loses nothing at any range: a position measured in a node's ENU frame becomes
``M z + t`` with ``M = R_fusion R_node^T`` and ``t = R_fusion (ecef_node - ecef_fusion)``,
its covariance ``M R M^T``; a velocity ``M z``. Heights above the ellipsoid (``alt``) and
identity are frame-free and pass unchanged. What the frame does cost is in the motion
model: an aircraft in level flight follows the earth's curvature, an acceleration of
v^2 / R_earth (0.01 m/s^2 at 250 m/s) that the constant-velocity model leaves to its process
noise (2 m/s^2): a 5 mm error over a 1 s prediction, the same at 500 km as at the site.
See docs/fusion.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensord.detections import POSITION, VELOCITY, Detection
from sensord.geo import Site


@dataclass(frozen=True)
class SensorFrame:
    """The map from one sensor site's ENU frame into the fusion site's."""

    sensor: Site
    fusion: Site

    @property
    def identity(self) -> bool:
        return self.sensor == self.fusion

    def rotation(self) -> np.ndarray:
        return self.fusion.rot_ecef_to_enu @ self.sensor.rot_ecef_to_enu.T

    def translation_m(self) -> np.ndarray:
        return self.fusion.rot_ecef_to_enu @ (self.sensor.ecef_m - self.fusion.ecef_m)


class FrameMapper:
    """Cached rotations per sensor site; ``to_fusion`` maps one detection."""

    def __init__(self, fusion: Site) -> None:
        self.fusion = fusion
        self._cache: dict[Site, tuple[np.ndarray, np.ndarray]] = {}

    def _map(self, sensor: Site) -> tuple[np.ndarray, np.ndarray]:
        got = self._cache.get(sensor)
        if got is None:
            frame = SensorFrame(sensor, self.fusion)
            got = self._cache[sensor] = (frame.rotation(), frame.translation_m())
        return got

    def to_fusion(self, d: Detection, sensor: Site) -> bool:
        """Carry ``d`` (in ``sensor``'s ENU) into the fusion frame, in place; False if it
        cannot be (a partial position or velocity, whose missing components the map would
        need)."""
        if sensor == self.fusion or not d.observes or d.observes == ("alt",):
            return True
        m, t = self._map(sensor)
        if d.observes == POSITION:
            d.z, d.R = m @ d.z + t, m @ d.R @ m.T
            return True
        if d.observes == VELOCITY:
            d.z, d.R = m @ d.z, m @ d.R @ m.T
            return True
        return False
