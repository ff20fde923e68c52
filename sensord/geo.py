"""Coordinate frames: WGS84 geodetic (lat/lon deg, height m), ECEF (m), local ENU (m).

ENU is east/north/up around a site (the receiver). Functions take and return numpy
arrays so that whole tracks convert at once; scalars work too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

WGS84_A_M = 6378137.0
WGS84_F = 1.0 / 298.257223563
WGS84_B_M = WGS84_A_M * (1.0 - WGS84_F)
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
WGS84_EP2 = WGS84_E2 / (1.0 - WGS84_E2)

FT_M = 0.3048
KT_MPS = 1852.0 / 3600.0
FPM_MPS = FT_M / 60.0
NM_M = 1852.0


def geodetic_to_ecef(lat_deg, lon_deg, h_m):
    """WGS84 latitude, longitude (deg) and ellipsoidal height (m) to ECEF x, y, z (m)."""
    if np.ndim(lat_deg) == 0 and np.ndim(lon_deg) == 0 and np.ndim(h_m) == 0:
        return _geodetic_to_ecef_point(float(lat_deg), float(lon_deg), float(h_m))
    lat = np.radians(lat_deg)
    lon = np.radians(lon_deg)
    sin_lat = np.sin(lat)
    n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sin_lat * sin_lat)
    x = (n + h_m) * np.cos(lat) * np.cos(lon)
    y = (n + h_m) * np.cos(lat) * np.sin(lon)
    z = (n * (1.0 - WGS84_E2) + h_m) * sin_lat
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def _geodetic_to_ecef_point(lat_deg: float, lon_deg: float, h_m: float) -> np.ndarray:
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    sin_lat, cos_lat = math.sin(lat), math.cos(lat)
    n = WGS84_A_M / math.sqrt(1.0 - WGS84_E2 * sin_lat * sin_lat)
    return np.array(
        [
            (n + h_m) * cos_lat * math.cos(lon),
            (n + h_m) * cos_lat * math.sin(lon),
            (n * (1.0 - WGS84_E2) + h_m) * sin_lat,
        ]
    )


def _ecef_to_geodetic_point(x: float, y: float, z: float) -> tuple[float, float, float]:
    p = math.hypot(x, y)
    theta = math.atan2(z * WGS84_A_M, p * WGS84_B_M)
    lat = math.atan2(
        z + WGS84_EP2 * WGS84_B_M * math.sin(theta) ** 3,
        p - WGS84_E2 * WGS84_A_M * math.cos(theta) ** 3,
    )
    sin_lat, cos_lat = math.sin(lat), math.cos(lat)
    n = WGS84_A_M / math.sqrt(1.0 - WGS84_E2 * sin_lat * sin_lat)
    h = p / cos_lat - n if abs(cos_lat) > 1e-9 else abs(z) - WGS84_B_M
    return math.degrees(lat), math.degrees(math.atan2(y, x)), h


def ecef_to_geodetic(xyz_m):
    """ECEF (..., 3) in m to WGS84 (lat_deg, lon_deg, h_m), Bowring's closed form (mm accuracy)."""
    xyz = np.asarray(xyz_m, dtype=float)
    if xyz.shape == (3,):
        return _ecef_to_geodetic_point(float(xyz[0]), float(xyz[1]), float(xyz[2]))
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    p = np.hypot(x, y)
    theta = np.arctan2(z * WGS84_A_M, p * WGS84_B_M)
    lat = np.arctan2(
        z + WGS84_EP2 * WGS84_B_M * np.sin(theta) ** 3,
        p - WGS84_E2 * WGS84_A_M * np.cos(theta) ** 3,
    )
    lon = np.arctan2(y, x)
    sin_lat = np.sin(lat)
    n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sin_lat * sin_lat)
    cos_lat = np.cos(lat)
    h = np.where(
        np.abs(cos_lat) > 1e-9,
        p / np.where(np.abs(cos_lat) > 1e-9, cos_lat, 1.0) - n,
        np.abs(z) - WGS84_B_M,
    )
    return np.degrees(lat), np.degrees(lon), h


@dataclass(frozen=True)
class Site:
    """A local ENU frame: the receiver's WGS84 position and the rotation ECEF -> ENU."""

    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0

    @cached_property
    def ecef_m(self) -> np.ndarray:
        """The site in ECEF, m."""
        return geodetic_to_ecef(self.lat_deg, self.lon_deg, self.alt_m)

    @cached_property
    def rot_ecef_to_enu(self) -> np.ndarray:
        """Rotation taking ECEF vectors to this site's east/north/up."""
        return rotation_ecef_to_enu(self.lat_deg, self.lon_deg)

    def to_enu(self, lat_deg, lon_deg, h_m) -> np.ndarray:
        """WGS84 -> ENU (..., 3) in m around this site."""
        d = geodetic_to_ecef(lat_deg, lon_deg, h_m) - self.ecef_m
        return d @ self.rot_ecef_to_enu.T

    def to_geodetic(self, enu_m):
        """ENU (..., 3) in m around this site -> WGS84 (lat_deg, lon_deg, h_m)."""
        ecef = np.asarray(enu_m, dtype=float) @ self.rot_ecef_to_enu + self.ecef_m
        return ecef_to_geodetic(ecef)


def rotation_ecef_to_enu(lat_deg: float, lon_deg: float) -> np.ndarray:
    """Rotation taking ECEF vectors to east/north/up at a WGS84 position."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    sl, cl = math.sin(lat), math.cos(lat)
    so, co = math.sin(lon), math.cos(lon)
    return np.array([[-so, co, 0.0], [-sl * co, -sl * so, cl], [cl * co, cl * so, sl]])


def great_circle_m(lat1_deg, lon1_deg, lat2_deg, lon2_deg):
    """Haversine distance on a sphere of the WGS84 mean radius, m."""
    r_m = 6371008.8
    p1, p2 = np.radians(lat1_deg), np.radians(lat2_deg)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2_deg) - np.asarray(lon1_deg))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * r_m * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
