"""One CPI through the radar: alignment check, clutter cancellation, CAF, CFAR.

``RadarProcessor.process(cpi)`` returns a ``CpiResult``: the detections (with bistatic
range, Doppler, range rate, SNR and their variances), the per-stage CPU time, and, when
asked, the map. A CPI whose channels are dead or not coherent is discarded with the
reason (``CpiResult.discarded``), counted by the caller.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from sensord.radar import align, caf, cfar, clutter
from sensord.radar.detections import RadarDetection
from sensord.radar.geometry import C_MPS
from sensord.radar.source import Cpi


@dataclass(frozen=True)
class RadarParams:
    """The processing chain's settings (defaults: blah2's 2 MS/s, 0.5 s, about 400 x 200)."""

    rate_hz: float = 2.0e6
    cpi_s: float = 0.5
    carrier_hz: float = 98.0e6
    n_range: int = 400
    n_doppler: int = 200
    batches_per_bin: int = 2  # CAF batches = this x n_doppler (edge loss <= 0.9 dB at 2)
    clutter_taps: int = 64  # cancelled lags; the reference's autocorrelation is kept for all
    clutter_groups: int = 1  # ECA-B batches per CPI
    clutter_stride: int = 2  # fit the clutter on every n-th CAF batch
    cfar: cfar.CfarParams = field(default_factory=cfar.CfarParams)
    check_coherence: bool = True

    @property
    def n_samples(self) -> int:
        return round(self.cpi_s * self.rate_hz)

    @property
    def range_cell_m(self) -> float:
        return C_MPS / self.rate_hz

    @property
    def wavelength_m(self) -> float:
        return C_MPS / self.carrier_hz

    @property
    def history(self) -> int:
        """Reference samples needed before a CPI."""
        return self.n_range - 1


@dataclass
class CpiResult:
    """What one CPI gave."""

    cpi: int
    t_s: float
    detections: list[RadarDetection]
    timings_s: dict[str, float]
    clutter_attenuation_db: float = 0.0
    noise_floor: float = 0.0
    exceed_cells: int = 0  # cells over the CFAR threshold (false-alarm accounting)
    searched_cells: int = 0
    alignment: align.Alignment | None = None
    discarded: str | None = None
    cmap: np.ndarray | None = None  # complex (n_range, n_doppler) when asked


class RadarProcessor:
    """Stateless per CPI apart from its FFT plan; one per radar."""

    def __init__(self, params: RadarParams) -> None:
        if params.n_doppler % 2:
            raise ValueError("n_doppler must be even")
        self.p = params
        self.plan = caf.BatchPlan.make(
            params.n_samples, params.n_range, params.batches_per_bin * params.n_doppler
        )

    def process(self, cpi: Cpi, utc0: float = 0.0, keep_map: bool = False) -> CpiResult:
        """Detections of one CPI; ``utc0`` is the UTC of the recording's sample 0."""
        p = self.p
        t: dict[str, float] = {}
        t0 = time.process_time()
        result = CpiResult(cpi.index, cpi.t_centre_s, [], t)
        if p.check_coherence:
            al = align.measure(cpi.ref[cpi.history :], cpi.surv, p.rate_hz, max_lag=8)
            result.alignment = al
            problem = al.problem()
            if problem is None and abs(al.skew - cpi.skew_frac) > 0.5:
                problem = (
                    f"the direct path moved by {al.skew - cpi.skew_frac:+.1f} samples since "
                    "the channels were aligned (a sample slipped on one channel)"
                )
            t["check"] = time.process_time() - t0
            if problem:
                result.discarded = problem
                return result
        t1 = time.process_time()
        ref_spec = caf.ref_spectra(cpi.ref, cpi.history, self.plan)
        eca = clutter.cancel(
            ref_spec, cpi.ref, cpi.history, cpi.surv, self.plan, p.clutter_taps,
            p.clutter_groups, p.clutter_stride,
        )  # fmt: skip
        t2 = time.process_time()
        corr = caf.lag_correlations(ref_spec, eca.clean_spec, p.n_range)
        cmap = caf.doppler_map(corr, p.n_doppler, window="hann")
        t3 = time.process_time()
        leak = np.abs(eca.ref_acorr) ** 2 / max(float(eca.ref_acorr[0].real) ** 2, 1e-30)
        cells = range_corr_cells(eca.ref_acorr, p.cfar.guard_range + p.cfar.train_range)
        peaks, mask = cfar.detect(cmap, p.cfar, cells * HANN_BIN_CORR, leak)
        result.exceed_cells = int(mask.sum())
        result.searched_cells = cfar.searched_cells(cmap.shape, p.cfar)
        t4 = time.process_time()
        t.update(clutter=t2 - t1, caf=t3 - t2, cfar=t4 - t3)
        result.clutter_attenuation_db = 10 * math.log10(
            max(eca.power_before, 1e-30) / max(eca.power_after, 1e-30)
        )
        curvature = acorr_curvature(eca.ref_acorr)
        for pk in peaks:
            snr = max(pk.power / max(pk.noise, 1e-30) - 1.0, 1e-3)
            rng_m = pk.range_cell * p.range_cell_m  # integer alignment only (docs/radar.md)
            dop = pk.doppler_bin / p.cpi_s
            var_r = p.range_cell_m**2 / (2 * snr * curvature)
            var_f = 3.0 / (2 * math.pi**2 * snr * p.cpi_s**2)
            lam = p.wavelength_m
            result.detections.append(
                RadarDetection(
                    t_s=cpi.t_centre_s,
                    utc=utc0 + cpi.t_centre_s,
                    cpi=cpi.index,
                    bistatic_range_m=rng_m,
                    doppler_hz=dop,
                    range_rate_mps=-dop * lam,
                    snr_db=10 * math.log10(snr),
                    bistatic_range_var_m2=var_r,
                    doppler_var_hz2=var_f,
                    range_rate_var_m2s2=var_f * lam**2,
                    range_cell=pk.range_cell,
                    doppler_bin=pk.doppler_bin,
                )
            )
        result.noise_floor = float(np.median(cmap.real**2 + cmap.imag**2))
        if keep_map:
            result.cmap = cmap
        return result


# power correlation of neighbouring Doppler bins of noise under the Hann window,
# 1 + 2 (|-2/3|^2 + |1/6|^2), times 0.8: dividing the training cells by the full
# correlation product overstates how few are independent (the false-alarm rate came out
# at 0.4-0.65 of the design on simulated noise maps); 0.8 holds it at 0.8-0.9 for Pfa
# 1e-3..1e-5 (benchmarks/bench_radar.py prints the ratio)
HANN_BIN_CORR = 0.8 * (1.0 + 2.0 * (4.0 / 9.0 + 1.0 / 36.0))


def range_corr_cells(acorr: np.ndarray, max_lag: int) -> float:
    """Range correlation of the map's noise within +-max_lag cells (the CFAR window's
    half-height): 1 + 2 sum |rho(k)|^2 over 1..max_lag."""
    if not len(acorr) or acorr[0].real <= 0:
        return 1.0
    rho2 = np.abs(acorr[1 : max_lag + 1] / acorr[0].real) ** 2
    return float(1.0 + 2.0 * rho2.sum())


def acorr_curvature(acorr: np.ndarray) -> float:
    """-d^2|rho|/dk^2 at lag 0 (per cell^2) of the reference: sets the range accuracy."""
    if len(acorr) < 3 or acorr[0].real <= 0:
        return 0.01
    rho = np.abs(acorr[:4]) / acorr[0].real
    k = np.arange(len(rho))
    # |rho(k)| ~ 1 - c k^2 / 2 near the peak
    c = float(np.sum((1 - rho[1:]) * 2 * k[1:] ** 2) / np.sum(k[1:] ** 4))
    return max(c, 1e-4)
