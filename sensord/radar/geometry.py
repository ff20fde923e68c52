"""Bistatic geometry: a transmitter (illuminator) and a receiver, both WGS84, in ECEF.

Bistatic range is the extra path of an echo over the direct path,
``|tx - target| + |target - rx| - |tx - rx|`` (m); its Doppler is ``-(dR/dt) / lambda``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sensord.errors import UserError
from sensord.geo import Site, geodetic_to_ecef

C_MPS = 299_792_458.0
MIN_BASELINE_M = 100.0


@dataclass(frozen=True)
class Bistatic:
    """A transmitter/receiver pair and the carrier (Hz)."""

    tx: Site
    rx: Site
    carrier_hz: float

    def __post_init__(self) -> None:
        if not np.isfinite(self.carrier_hz) or self.carrier_hz <= 0:
            raise UserError(f"carrier must be a positive frequency in Hz, got {self.carrier_hz:g}")
        if self.baseline_m < MIN_BASELINE_M:
            raise UserError(
                f"transmitter and receiver are {self.baseline_m:.0f} m apart: a bistatic radar "
                f"needs them at least {MIN_BASELINE_M:.0f} m apart (is --tx the receiver's "
                "position?)"
            )

    @cached_property
    def tx_ecef_m(self) -> np.ndarray:
        return geodetic_to_ecef(self.tx.lat_deg, self.tx.lon_deg, self.tx.alt_m)

    @cached_property
    def rx_ecef_m(self) -> np.ndarray:
        return geodetic_to_ecef(self.rx.lat_deg, self.rx.lon_deg, self.rx.alt_m)

    @cached_property
    def baseline_m(self) -> float:
        return float(np.linalg.norm(self.tx_ecef_m - self.rx_ecef_m))

    @property
    def wavelength_m(self) -> float:
        return C_MPS / self.carrier_hz

    def range_m(self, pos_ecef_m: np.ndarray) -> np.ndarray:
        """Bistatic range of ECEF positions (..., 3), m."""
        p = np.asarray(pos_ecef_m, dtype=float)
        return (
            np.linalg.norm(p - self.tx_ecef_m, axis=-1)
            + np.linalg.norm(p - self.rx_ecef_m, axis=-1)
            - self.baseline_m
        )

    def range_rate_mps(self, pos_ecef_m: np.ndarray, vel_ecef_mps: np.ndarray) -> np.ndarray:
        """dR/dt of ECEF positions and velocities (..., 3), m/s."""
        p = np.asarray(pos_ecef_m, dtype=float)
        v = np.asarray(vel_ecef_mps, dtype=float)
        u_tx = p - self.tx_ecef_m
        u_rx = p - self.rx_ecef_m
        u_tx = u_tx / np.linalg.norm(u_tx, axis=-1, keepdims=True)
        u_rx = u_rx / np.linalg.norm(u_rx, axis=-1, keepdims=True)
        return np.sum((u_tx + u_rx) * v, axis=-1)

    def doppler_hz(self, range_rate_mps):
        """Doppler of a range rate, Hz (an approaching echo has positive Doppler)."""
        return -np.asarray(range_rate_mps) / self.wavelength_m

    def to_dict(self) -> dict:
        """The pair as the radar node's ``info`` gives it."""
        return {
            "tx": {"lat_deg": self.tx.lat_deg, "lon_deg": self.tx.lon_deg, "alt_m": self.tx.alt_m},
            "rx": {"lat_deg": self.rx.lat_deg, "lon_deg": self.rx.lon_deg, "alt_m": self.rx.alt_m},
            "carrier_hz": self.carrier_hz,
            "baseline_m": round(self.baseline_m, 1),
        }


def parse_site(text: str, what: str) -> Site:
    """``LAT,LON,ALT_M`` -> Site; UserError naming ``what`` (``--tx``) when malformed."""
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        parts = []
    if (
        len(parts) not in (2, 3)
        or not all(np.isfinite(parts))
        or not (-90 <= parts[0] <= 90 and -180 <= parts[1] <= 180)
    ):
        raise UserError(f"{what} is LAT,LON,ALT_M in degrees and metres, got {text!r}")
    return Site(*parts)
