"""The batched cross-ambiguity function: range-Doppler map of one CPI.

The CPI's N samples are cut into M batches of L = N / M. For each batch the
surveillance segment is correlated with the reference (and its ``n_lags - 1`` samples
of history) at lags 0..n_lags-1 by FFT; an FFT across the batches then resolves Doppler
in bins of 1 / CPI. Doppler within a batch is taken as constant, which costs
``sinc(f_d L / fs)`` in amplitude: with M = 2 x the Doppler bins kept (the default), at
most 0.9 dB at the map's edge. ``scipy.fft`` is imported lazily.

Lag k is a delay of the surveillance channel against the reference of k samples:
bistatic range ``k c / fs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchPlan:
    """How a CPI is cut: ``n_batches`` batches of ``batch_len`` samples, FFTs of ``nfft``."""

    n_samples: int
    n_lags: int
    n_batches: int
    batch_len: int
    nfft: int

    @classmethod
    def make(cls, n_samples: int, n_lags: int, n_batches: int) -> BatchPlan:
        from scipy import fft

        if n_batches < 1 or n_lags < 1:
            raise ValueError("n_batches and n_lags must be positive")
        batch_len = n_samples // n_batches
        if batch_len < 1:
            raise ValueError(f"a CPI of {n_samples} samples cannot hold {n_batches} batches")
        return cls(n_samples, n_lags, n_batches, batch_len,
                   fft.next_fast_len(batch_len + n_lags - 1))  # fmt: skip


def ref_spectra(ref: np.ndarray, history: int, plan: BatchPlan) -> np.ndarray:
    """FFT of every batch's reference with its lag history: (M, nfft) complex64.

    ``ref`` holds ``history >= n_lags - 1`` samples before the CPI.
    """
    from scipy import fft

    off = history - (plan.n_lags - 1)
    if off < 0:
        raise ValueError(f"reference history {history} shorter than the {plan.n_lags - 1} lags")
    width = plan.batch_len + plan.n_lags - 1
    base = np.ascontiguousarray(ref[off : off + plan.n_batches * plan.batch_len + plan.n_lags])
    view = np.lib.stride_tricks.as_strided(
        base,
        shape=(plan.n_batches, width),
        strides=(plan.batch_len * base.itemsize, base.itemsize),
        writeable=False,
    )
    return fft.fft(view, n=plan.nfft, axis=1, workers=1)


def placed(x: np.ndarray, plan: BatchPlan, batches: slice | np.ndarray = slice(None)) -> np.ndarray:
    """Batches of a CPI-long signal, each at offset n_lags - 1 in a zero frame of nfft."""
    m, length = plan.n_batches, plan.batch_len
    seg = x[: m * length].reshape(m, length)[batches]
    out = np.zeros((seg.shape[0], plan.nfft), dtype=np.complex64)
    out[:, plan.n_lags - 1 : plan.n_lags - 1 + length] = seg
    return out


def segment_spectra(x: np.ndarray, plan: BatchPlan,
                    batches: slice | np.ndarray = slice(None)) -> np.ndarray:  # fmt: skip
    """FFT of ``placed`` batches: (batches, nfft) complex64."""
    from scipy import fft

    return fft.fft(placed(x, plan, batches), axis=1, workers=1, overwrite_x=True)


def lag_correlations(ref_spec: np.ndarray, seg_spec: np.ndarray, n_lags: int) -> np.ndarray:
    """Per batch, sum_n conj(ref[n - k]) seg[n] for k = 0..n_lags-1: (batches, n_lags)."""
    from scipy import fft

    prod = np.conj(ref_spec)
    prod *= seg_spec
    return fft.ifft(prod, axis=1, workers=1, overwrite_x=True)[:, :n_lags]


def doppler_map(corr: np.ndarray, n_doppler: int, window: str = "rect") -> np.ndarray:
    """Batches x lags -> complex map (n_lags, n_doppler); Doppler bin j is
    ``(j - n_doppler // 2) / CPI`` Hz."""
    from scipy import fft

    m = corr.shape[0]
    if n_doppler > m:
        raise ValueError(f"{n_doppler} Doppler bins need at least as many batches (have {m})")
    x = corr
    if window == "hann":
        x = corr * np.hanning(m).astype(np.float32)[:, None]
    spec = fft.fft(x, axis=0, workers=1)
    # bins 0..m-1 are frequencies 0.. then negative; keep -n_doppler/2 .. n_doppler/2 - 1
    half = n_doppler // 2
    rows = np.arange(-half, n_doppler - half) % m
    return np.ascontiguousarray(spec[rows].T)


def doppler_axis_hz(n_doppler: int, cpi_s: float) -> np.ndarray:
    """Doppler of each map column, Hz."""
    return (np.arange(n_doppler) - n_doppler // 2) / cpi_s
