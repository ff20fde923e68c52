"""The radar's output record: one detection on a CPI's range-Doppler map."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RadarDetection:
    """A detection: bistatic range, Doppler and range rate with variances, and SNR.

    ``t_s`` is the CPI centre on the recording's clock (seconds from its first sample);
    ``utc`` the same instant in UTC seconds. Doppler is ``-(dR/dt) / lambda``.
    """

    t_s: float
    utc: float
    cpi: int
    bistatic_range_m: float
    doppler_hz: float
    range_rate_mps: float
    snr_db: float
    bistatic_range_var_m2: float
    doppler_var_hz2: float
    range_rate_var_m2s2: float
    range_cell: float  # fractional lag on the map
    doppler_bin: float  # fractional bin from zero Doppler

    def to_dict(self) -> dict:
        """The JSON object ``sensord radar`` prints and the daemon publishes."""
        return {
            "t_s": round(self.t_s, 6),
            "utc": round(self.utc, 6),
            "cpi": self.cpi,
            "bistatic_range_m": round(self.bistatic_range_m, 1),
            "doppler_hz": round(self.doppler_hz, 3),
            "range_rate_mps": round(self.range_rate_mps, 3),
            "snr_db": round(self.snr_db, 2),
            "bistatic_range_var_m2": round(self.bistatic_range_var_m2, 1),
            "doppler_var_hz2": round(self.doppler_var_hz2, 5),
            "range_rate_var_m2s2": round(self.range_rate_var_m2s2, 4),
        }
