"""Waveforms and channel: a reply's PPM envelope through the dongle's filter, at any rate.

A reply is drawn at a fine rate (24 MHz, a multiple of 2.0 and 2.4 MS/s): 0.5 us pulses
of the preamble (0, 1, 3.5, 4.5 us) and of each bit (first half for 1, second half for 0),
smoothed by a Gaussian low-pass that stands for the RTL2832's filter, then sampled at the
output rate from a random sub-sample arrival time. The carrier's phase and frequency
offset rotate it; the amplitude comes from the link budget.

The Gaussian alone (``FILTER_SIGMA_US``) keeps more bandwidth than a dongle passes at
2.0 or 2.4 MS/s: its pulses are sharper than real ones. ``band_hz`` adds the dongle's
decimation low-pass (an ideal low-pass at ``band_hz``, Blackman-windowed); at
``BAND_FRACTION`` of the sample rate the simulated pulses match real recordings
(``benchmarks/pulse_shape.py``: modes1 at 2.0 MS/s, the rsadsb captures at 2.4 MS/s).
"""

from __future__ import annotations

import functools
import math

import numpy as np

FINE_HZ = 24e6
FILTER_SIGMA_US = 0.12  # Gaussian pulse smoothing: about 1.6 MHz (-3 dB) bandwidth
# the dongle's passband as a fraction of its sample rate, fitted to real recordings: the
# peaks of isolated pulses relative to the reply's amplitude (percentiles 10/25/50/75/90)
# are 0.48/0.56/0.65/0.73/0.79 on modes1 at 2.0 MS/s and 0.50/0.56/0.65/0.72/0.78 here
# (Gaussian alone: 0.58/0.70/0.83/0.92/0.97); at 2.4 MS/s 0.57/0.64/0.71/0.78/0.84 on the
# rsadsb captures (10 replies) against 0.61/0.67/0.74/0.79/0.83
BAND_FRACTION = 0.475
PREAMBLE_US = (0.0, 1.0, 3.5, 4.5)
_FINE_PER_US = int(FINE_HZ / 1e6)

_HALF_KERNEL = math.ceil(4 * FILTER_SIGMA_US * _FINE_PER_US)
_t = np.arange(-_HALF_KERNEL, _HALF_KERNEL + 1)  # odd length, centred: no time shift
_KERNEL = np.exp(-0.5 * (_t / (FILTER_SIGMA_US * _FINE_PER_US)) ** 2)
_KERNEL /= _KERNEL.sum()
_PAD = len(_KERNEL) // 2


def message_bits(msg: bytes) -> np.ndarray:
    """The reply's bits, MSB first."""
    return np.unpackbits(np.frombuffer(msg, dtype=np.uint8))


@functools.lru_cache(maxsize=8)
def _band_kernel(band_hz: float) -> np.ndarray:
    """The Gaussian kernel followed by a Blackman-windowed ideal low-pass at band_hz (odd
    length, centred, sum 1; its tails reach past the Gaussian's, so envelopes are longer)."""
    m = math.ceil(4 * FINE_HZ / band_hz)  # four periods of the cutoff either side
    u = np.arange(-m, m + 1)
    low = np.sinc(2 * band_hz / FINE_HZ * u) * np.blackman(2 * m + 1)
    k = np.convolve(_KERNEL, low)
    return k / k.sum()


def fine_envelope(msg: bytes, band_hz: float | None = None) -> np.ndarray:
    """Filtered pulse envelope (plateau 1) of a reply at FINE_HZ; index ``pad(band_hz)`` is
    the preamble start."""
    bits = message_bits(msg)
    half = _FINE_PER_US // 2
    kernel = _KERNEL if band_hz is None else _band_kernel(band_hz)
    pad = len(kernel) // 2
    env = np.zeros((8 + len(bits)) * _FINE_PER_US + 2 * pad)
    for t_us in PREAMBLE_US:
        i = pad + int(t_us * _FINE_PER_US)
        env[i : i + half] = 1.0
    starts = pad + (8 + np.arange(len(bits))) * _FINE_PER_US + np.where(bits == 1, 0, half)
    idx = (starts[:, None] + np.arange(half)[None, :]).ravel()
    env[idx] = 1.0
    return np.convolve(env, kernel, mode="same")


def pad(band_hz: float | None = None) -> int:
    """Fine samples before the preamble's start in ``fine_envelope(msg, band_hz)``."""
    return _PAD if band_hz is None else len(_band_kernel(band_hz)) // 2


def sampled_reply(
    msg: bytes,
    start_sample: float,
    rate_hz: float,
    amplitude: float,
    phase_rad: float,
    freq_offset_hz: float,
    band_hz: float | None = None,
) -> tuple[int, np.ndarray]:
    """(first sample index, complex samples) of a reply whose preamble starts at start_sample;
    ``band_hz``: the dongle's low-pass too (see the module's docstring)."""
    env = fine_envelope(msg, band_hz)
    p = pad(band_hz)
    step = FINE_HZ / rate_hz
    first = math.ceil(start_sample - p / step)
    n = int((len(env) - 1) / step)
    # fine position of output sample i (interpolated): fine sample j holds the pulse over
    # [j - 0.5, j + 0.5], so the preamble's leading edge sits at p - 0.5
    fine_pos = p - 0.5 + (first + np.arange(n) - start_sample) * step
    keep = (fine_pos >= 0) & (fine_pos <= len(env) - 1)
    fine_pos = fine_pos[keep]
    first += int(np.argmax(keep))
    t_s = (first + np.arange(len(fine_pos)) - start_sample) / rate_hz
    carrier = np.exp(1j * (phase_rad + 2 * np.pi * freq_offset_hz * t_s))
    level = np.interp(fine_pos, np.arange(len(env)), env)
    return first, (amplitude * level * carrier).astype(np.complex64)


def reply_duration_samples(nbits: int, rate_hz: float) -> float:
    """Samples from the preamble start to the end of the last bit."""
    return (8 + nbits) * 1e-6 * rate_hz


def fspl_db(range_m: float, freq_hz: float = 1090e6) -> float:
    """Free-space path loss."""
    return 20 * math.log10(max(range_m, 1.0)) + 20 * math.log10(freq_hz) - 147.55


def to_cu8(iq: np.ndarray) -> np.ndarray:
    """Complex samples (full scale 1.0) to interleaved u8 as rtl_sdr writes them (DC 127.4)."""
    out = np.empty(2 * len(iq), dtype=np.float32)
    out[0::2] = iq.real
    out[1::2] = iq.imag
    out *= 127.5
    out += 127.4
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)
