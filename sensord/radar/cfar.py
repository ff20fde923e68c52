"""Detection on the range-Doppler map: 2-D CA-CFAR, peak clustering, sub-cell peaks.

CA-CFAR: each cell's noise is the mean power of a training ring around it (a
rectangle of ``train`` cells beyond ``guard`` cells each side, in range and Doppler),
summed with a 2-D integral image (cost independent of the window). The default ring is
two blocks beside the cell in Doppler (+-3..14 bins, over +-10 range cells) and nothing
along range: a target's range response (mainlobe about 15 cells, sidelobes only 13 dB
down for FM) sits in its own Doppler column and would otherwise train its own threshold.
Doppler wraps (the map is periodic in Doppler); range is cut at the map's ends, where
fewer cells train. The threshold factor for a design false-alarm probability ``pfa`` over ``n``
independent exponential cells is ``n (pfa^(-1/n) - 1)``. An FM reference's range
response is several cells wide and the Hann window spreads a bin into its neighbours,
so neighbouring cells are correlated: ``n`` is the number of training cells divided by
the correlation in range (within the window) and in Doppler (the caller's
``corr_cells``).

Cells far above the map's median (targets and their sidelobes) are censored from the
training, so a strong target does not raise the threshold of its weaker neighbours.
Peaks are the exceedances that are local maxima (3 x 3); strongest first, a peak is kept
only if it beats by ``sidelobe_margin`` the leakage every stronger kept peak puts there
(the reference's range autocorrelation times the Doppler window's response): an FM
signal's range sidelobes are only 13-20 dB down and would otherwise be reported as
targets (peak clustering). A kept peak is refined to a fraction of a cell: range by a
least-squares parabola through the amplitude of +-2 cells, Doppler by a parabola through
the log-magnitudes of +-1 bin (Gaussian interpolation, for the Hann window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CfarParams:
    """Window (cells each side) and design false-alarm probability per cell."""

    pfa: float = 1e-4
    guard_range: int = 10
    guard_doppler: int = 2
    train_range: int = 0
    train_doppler: int = 12
    zero_doppler_bins: int = 1  # |bin| <= this is not searched (cancelled clutter lives there)
    censor_factor: float = 20.0  # cells above this x the map median do not train
    sidelobe_margin: float = 4.0  # a peak must beat stronger peaks' predicted leakage by this


@dataclass(frozen=True)
class Peak:
    """One detection's cell, refined."""

    range_cell: float  # fractional lag
    doppler_bin: float  # fractional, from the map's zero-Doppler column
    power: float
    noise: float  # CFAR noise estimate at the peak


def _box_sum(x: np.ndarray, half_r: int, half_d: int) -> np.ndarray:
    """Sum over a (2 half_r + 1) x (2 half_d + 1) box around every cell; Doppler wraps,
    range is zero-padded."""
    padded = np.pad(x, ((half_r + 1, half_r), (0, 0)))
    padded = np.concatenate([padded[:, -half_d - 1 :], padded, padded[:, :half_d]], axis=1)
    ii = padded.cumsum(axis=0).cumsum(axis=1)
    r, d = x.shape
    a = 2 * half_r + 1
    b = 2 * half_d + 1
    return ii[a : a + r, b : b + d] - ii[:r, b : b + d] - ii[a : a + r, :d] + ii[:r, :d]


def _ring_sum(x: np.ndarray, p: CfarParams) -> np.ndarray:
    outer = _box_sum(x, p.guard_range + p.train_range, p.guard_doppler + p.train_doppler)
    return outer - _box_sum(x, p.guard_range, p.guard_doppler)


def threshold_factor(pfa: float, n_independent: np.ndarray) -> np.ndarray:
    """CA-CFAR multiplier for exponential noise."""
    n = np.maximum(n_independent, 1.0)
    return n * (pfa ** (-1.0 / n) - 1.0)


def noise_estimate(power: np.ndarray, p: CfarParams) -> tuple[np.ndarray, np.ndarray]:
    """(mean training power, training cell count) per cell; cells far above the map's
    median (targets, their sidelobes) are left out of the training (censored)."""
    keep = (power <= p.censor_factor * np.median(power)).astype(np.float64)
    count = np.maximum(_ring_sum(keep, p), 1.0)
    return _ring_sum(power * keep, p) / count, count


# Doppler leakage of a peak into bins 0, 1, 2, 3 away (Hann window across batches,
# worst fractional offset): what a weaker neighbour must beat
HANN_LEAK = np.array([1.0, 1.0, 0.12, 0.004])


def searched_cells(shape: tuple[int, int], p: CfarParams) -> int:
    """Cells a map of ``shape`` is searched in (not the zero-Doppler notch or far edges)."""
    n_rng, n_dop = shape
    return (n_rng - 1) * (n_dop - 2 - (2 * p.zero_doppler_bins + 1))


def detect(
    cmap: np.ndarray,
    p: CfarParams,
    corr_cells: float = 1.0,
    range_leak: np.ndarray | None = None,
) -> tuple[list[Peak], np.ndarray]:
    """Peaks of a complex map (n_range, n_doppler) and the exceedance mask.

    ``range_leak[k]`` is the power a peak leaks k range cells away, relative to itself
    (the reference's |autocorrelation|^2): a local maximum that does not beat a stronger
    peak's leakage by ``sidelobe_margin`` is that peak's sidelobe, not a target.
    """
    from scipy import ndimage

    power = (cmap.real**2 + cmap.imag**2).astype(np.float64)
    noise, count = noise_estimate(power, p)
    alpha = threshold_factor(p.pfa, count / max(corr_cells, 1.0))
    mask = power > alpha * noise
    n_rng, n_dop = cmap.shape
    zero = n_dop // 2
    mask[:, max(0, zero - p.zero_doppler_bins) : zero + p.zero_doppler_bins + 1] = False
    # a maximum on the map's far edge belongs to a target beyond it (range past the last
    # lag, Doppler past the kept bins: the batched CAF resolves twice the bins it keeps)
    mask[-1, :] = False
    mask[:, 0] = False
    mask[:, -1] = False
    local_max = power >= ndimage.maximum_filter(power, size=3, mode=("nearest", "wrap"))
    cand = np.argwhere(mask & local_max)
    if not len(cand):
        return [], mask
    order = np.argsort(-power[cand[:, 0], cand[:, 1]])
    leak_r = np.ones(n_rng) if range_leak is None else np.asarray(range_leak, dtype=float)
    if len(leak_r) < n_rng:
        leak_r = np.concatenate([leak_r, np.full(n_rng - len(leak_r), leak_r[-1])])
    accepted: list[tuple[int, int, float]] = []
    peaks = []
    amp = np.sqrt(power)
    for r, d in cand[order]:
        pw = power[r, d]
        worst = 0.0
        for ra, da, pa in accepted:
            dd = min(abs(int(d) - da), n_dop - abs(int(d) - da))
            if dd < len(HANN_LEAK):
                worst = max(worst, pa * HANN_LEAK[dd] * leak_r[abs(int(r) - ra)])
        if pw <= p.sidelobe_margin * worst:
            continue
        accepted.append((int(r), int(d), float(pw)))
        peaks.append(
            Peak(
                range_cell=r + _range_offset(amp[:, d], r),
                doppler_bin=d - zero + _doppler_offset(cmap[r], d),
                power=float(pw),
                noise=float(noise[r, d]),
            )
        )
    return peaks, mask


def _range_offset(col: np.ndarray, r: int, half: int = 2) -> float:
    """Vertex of a least-squares parabola through amplitudes r-half..r+half."""
    lo, hi = max(0, r - half), min(len(col), r + half + 1)
    if hi - lo < 3:
        return 0.0
    x = np.arange(lo, hi) - r
    a, b, _ = np.polyfit(x, col[lo:hi], 2)
    if a >= 0:
        return 0.0
    return float(np.clip(-b / (2 * a), -1.0, 1.0))


def _doppler_offset(row: np.ndarray, d: int) -> float:
    """Vertex of a parabola through the log-magnitudes of bins d-1, d, d+1 (Gaussian
    interpolation: near-unbiased for the Hann window's mainlobe)."""
    n = len(row)
    mags = np.abs(np.array([row[(d - 1) % n], row[d], row[(d + 1) % n]]))
    if np.any(mags <= 0):
        return 0.0
    a, b, c = np.log(mags)
    den = a - 2 * b + c
    if den >= 0:
        return 0.0
    return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
