"""Clutter cancellation: ECA-B, least squares over K delay taps of the reference.

The surveillance channel's direct path and static multipath are copies of the reference
at fixed delays and no Doppler. For each group of batches (``groups`` = B of ECA-B; one
group = plain ECA over the CPI) the taps ``w`` minimise ``|s - X w|^2`` where column k of
X is the reference delayed by k samples; the cleaned channel is ``s - X w``.

Everything comes from the batched FFTs the CAF uses anyway: ``X^H s`` is the CAF's
zero-Doppler row (lags 0..K-1) and ``X^H X`` is taken Toeplitz from the reference's
autocorrelation over the same batches (edge terms are K / L of the sum: far below the
cancellation depth). The normal equations are estimated on every ``stride``-th batch
(the clutter is static; the misadjustment of an LS fit is noise x K / samples), and the
taps are applied to all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensord.radar.caf import BatchPlan, lag_correlations, placed, segment_spectra

DIAGONAL_LOADING = 1e-7  # relative to the reference power: keeps X^H X invertible


@dataclass(frozen=True)
class EcaResult:
    """Cleaned surveillance batches (spectra, for the CAF) and what was cancelled."""

    clean_spec: np.ndarray  # (M, nfft) FFT of the cleaned surveillance batches
    taps: np.ndarray  # (groups, K) complex weights
    ref_acorr: np.ndarray  # (n_lags,) reference autocorrelation, lag 0 first (per sample)
    power_before: float  # surveillance power per sample
    power_after: float  # cleaned surveillance power per sample


def _solve(acorr: np.ndarray, cross: np.ndarray) -> np.ndarray:
    from scipy import linalg

    k = len(acorr)
    col = acorr.copy()
    col[0] = col[0].real * (1 + DIAGONAL_LOADING)
    # G[i, j] = acorr[i - j] for i >= j, Hermitian: first column acorr, first row conj
    g = linalg.toeplitz(col, np.conj(col))
    try:
        return linalg.solve(g, cross, assume_a="her", check_finite=False)
    except (linalg.LinAlgError, ValueError):
        return np.zeros(k, dtype=np.complex128)


def cancel(
    ref_spec: np.ndarray,
    ref: np.ndarray,
    history: int,
    surv: np.ndarray,
    plan: BatchPlan,
    taps: int,
    groups: int = 1,
    stride: int = 2,
) -> EcaResult:
    """ECA-B on one CPI; ``ref_spec`` is ``caf.ref_spectra`` of the same CPI."""
    from scipy import fft

    if not 1 <= taps <= plan.n_lags:
        raise ValueError(f"clutter taps must be 1..{plan.n_lags}, got {taps}")
    m = plan.n_batches
    groups = max(1, min(groups, m))
    bounds = np.linspace(0, m, groups + 1).astype(int)
    cpi_ref = ref[history : history + m * plan.batch_len]
    cpi_surv = surv[: m * plan.batch_len]
    y = np.empty((m, plan.batch_len), dtype=np.complex64)
    all_taps = np.zeros((groups, taps), dtype=np.complex64)
    acorr_total = np.zeros(plan.n_lags, dtype=np.complex128)
    for g in range(groups):
        batches = np.arange(bounds[g], bounds[g + 1])
        fit = batches[:: max(1, stride)]
        e = ref_spec[fit]
        acorr = lag_correlations(e, segment_spectra(cpi_ref, plan, fit), plan.n_lags).sum(axis=0)
        cross = lag_correlations(e, segment_spectra(cpi_surv, plan, fit), taps).sum(axis=0)
        w = _solve(acorr[:taps].astype(np.complex128), cross.astype(np.complex128))
        all_taps[g] = w
        acorr_total += acorr
        # the clutter estimate X w per batch: (e_m * w)[n_lags - 1 + i]
        wf = fft.fft(w.astype(np.complex64), n=plan.nfft)
        conv = fft.ifft(ref_spec[batches] * wf, axis=1, workers=1, overwrite_x=True)
        y[batches] = conv[:, plan.n_lags - 1 : plan.n_lags - 1 + plan.batch_len]
    clean = cpi_surv.reshape(m, plan.batch_len) - y
    n_fit = sum(len(np.arange(bounds[g], bounds[g + 1])[:: max(1, stride)]) for g in range(groups))
    clean_flat = clean.reshape(-1)
    clean_spec = fft.fft(placed(clean_flat, plan), axis=1, workers=1, overwrite_x=True)
    return EcaResult(
        clean_spec=clean_spec,
        taps=all_taps,
        ref_acorr=acorr_total / max(1, n_fit * plan.batch_len),
        power_before=float(np.mean(np.abs(cpi_surv) ** 2)),
        power_after=float(np.mean(np.abs(clean_flat) ** 2)),
    )
