"""Channel alignment and coherence, from the direct path both channels hear.

The surveillance channel holds the transmitter's direct path (attenuated) at some skew
against the reference: two dongles never start their sample clocks together. The
cross-correlation of the two channels peaks at that skew; its normalised height says
how much of the surveillance channel the reference explains; its phase, measured on
segments across the stretch, must hold still: a phase that turns means the two
channels are not on one clock (a frequency offset), and nothing downstream can cancel
the direct path then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_COHERENCE = 0.05  # normalised direct-path correlation below this: not coherent
MAX_OFFSET_HZ = 0.5  # direct-path phase turning faster than this: not one clock
DEAD_POWER = (0.5 / 127.5) ** 2  # below half an 8-bit step rms: the channel carries nothing


@dataclass(frozen=True)
class Alignment:
    """How the surveillance channel sits against the reference."""

    skew_samples: int  # surveillance late by this many samples (integer part)
    skew_frac: float  # the rest, -0.5..0.5
    coherence: float  # |direct-path correlation| / sqrt(P_ref P_surv), 0..1
    offset_hz: float  # how fast the direct path's phase turns between the channels
    ref_power: float
    surv_power: float
    half_symmetry: float = 1.0  # how far |c(j)| and |c(-1-j)| differ (0: mirror about -0.5)

    @property
    def skew(self) -> float:
        return self.skew_samples + self.skew_frac

    def problem(self) -> str | None:
        """Why these channels cannot be processed, or None."""
        if self.ref_power < DEAD_POWER:
            return "the reference channel carries no signal (all samples equal or zero)"
        if self.surv_power < DEAD_POWER:
            return "the surveillance channel carries no signal (all samples equal or zero)"
        ratio_db = 10 * math.log10(self.surv_power / self.ref_power)
        if (
            self.skew_samples == 0
            and self.skew_frac < -0.45
            and self.half_symmetry < 0.02
            and self.coherence > 0.8
            and abs(ratio_db) < 1
        ):
            return (
                "the two channels are alternate samples of one signal: is this a one-channel "
                "recording read as two channels?"
            )
        if self.coherence < MIN_COHERENCE:
            return (
                f"channels not coherent: direct-path correlation {self.coherence:.3f} "
                f"(needs >= {MIN_COHERENCE}); not a reference/surveillance pair, or not on "
                "one clock"
            )
        if abs(self.offset_hz) > MAX_OFFSET_HZ:
            return (
                f"channels not coherent: the direct path drifts {self.offset_hz:+.1f} Hz between "
                "them (not on a shared clock)"
            )
        return None


def _xcorr(ref: np.ndarray, surv: np.ndarray, max_lag: int) -> np.ndarray:
    """c[l] = sum_n conj(ref[n - l]) surv[n] for l = -max_lag..max_lag."""
    from scipy import fft

    n = len(ref)
    nfft = fft.next_fast_len(n + 2 * max_lag)
    c = fft.ifft(np.conj(fft.fft(ref, nfft)) * fft.fft(surv, nfft))
    return np.concatenate([c[-max_lag:], c[: max_lag + 1]]) if max_lag else c[:1]


def _peak_frac(mag: np.ndarray, i: int) -> float:
    """Sub-sample offset of a peak at i, parabola through its neighbours."""
    if i <= 0 or i >= len(mag) - 1:
        return 0.0
    a, b, c = mag[i - 1], mag[i], mag[i + 1]
    d = a - 2 * b + c
    return float(np.clip(0.5 * (a - c) / d, -0.5, 0.5)) if d < 0 else 0.0


def measure(
    ref: np.ndarray,
    surv: np.ndarray,
    rate_hz: float,
    max_lag: int = 64,
    segments: int = 4,
    seg_len: int = 1 << 14,
) -> Alignment:
    """Skew, coherence and frequency offset of the surveillance against the reference.

    ``segments`` stretches of ``seg_len`` samples spread over the arrays are correlated
    over +-max_lag; their sum gives the skew and coherence, the turn of their phases
    the offset.
    """
    n = min(len(ref), len(surv))
    seg_len = min(seg_len, max(n - 2 * max_lag, 16))
    starts = np.linspace(max_lag, max(n - seg_len - max_lag, max_lag), segments).astype(int)
    ref_p = float(np.mean(np.abs(ref[:n]) ** 2))
    surv_p = float(np.mean(np.abs(surv[:n]) ** 2))
    # remove each channel's DC (an 8-bit ADC's offset is not a direct path)
    ref_dc, surv_dc = np.mean(ref[:n]), np.mean(surv[:n])
    ref_ac = ref_p - abs(ref_dc) ** 2
    surv_ac = surv_p - abs(surv_dc) ** 2
    if ref_ac < DEAD_POWER or surv_ac < DEAD_POWER:
        return Alignment(0, 0.0, 0.0, 0.0, ref_ac, surv_ac)
    corr = []
    for s in starts:
        r = ref[s - max_lag : s + seg_len + max_lag] - ref_dc
        x = np.zeros_like(r)
        x[max_lag : max_lag + seg_len] = surv[s : s + seg_len] - surv_dc
        # ref padded on both sides: lags -max_lag..max_lag all see seg_len products
        corr.append(_xcorr(r, x, max_lag))
    c = np.array(corr)  # (segments, lags -max_lag..max_lag)
    total = np.abs(c).sum(axis=0)
    i = int(np.argmax(total))
    frac = _peak_frac(total, i)
    norm = seg_len * math.sqrt(ref_ac * surv_ac)
    coherence = float(np.abs(c[:, i]).mean() / norm)
    offset = 0.0
    if segments > 1 and coherence > MIN_COHERENCE:
        phase = np.unwrap(np.angle(c[:, i]))
        slope = np.polyfit(starts / rate_hz, phase, 1)[0]  # rad/s
        offset = float(slope / (2 * math.pi))
    # one signal's alternate samples read as two channels mirror about lag -0.5
    j = np.arange(0, min(6, max_lag))
    mirror = float(np.max(np.abs(total[max_lag + j] - total[max_lag - 1 - j])) / total[i])
    return Alignment(i - max_lag, frac, coherence, offset, ref_ac, surv_ac, mirror)
