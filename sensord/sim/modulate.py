"""Waveforms and channel: a reply's PPM envelope through the dongle's filter, at any rate.

A reply is drawn at a fine rate (24 MHz, a multiple of 2.0 and 2.4 MS/s): 0.5 us pulses
of the preamble (0, 1, 3.5, 4.5 us) and of each bit (first half for 1, second half for 0),
smoothed by a Gaussian low-pass that stands for the RTL2832's filter, then sampled at the
output rate from a random sub-sample arrival time. The carrier's phase and frequency
offset rotate it; the amplitude comes from the link budget.
"""

from __future__ import annotations

import math

import numpy as np

FINE_HZ = 24e6
FILTER_SIGMA_US = 0.12  # Gaussian pulse smoothing: about 1.6 MHz (-3 dB) bandwidth
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


def fine_envelope(msg: bytes) -> np.ndarray:
    """Filtered pulse envelope (peak 1) of a reply at FINE_HZ; index _PAD is the preamble start."""
    bits = message_bits(msg)
    half = _FINE_PER_US // 2
    env = np.zeros((8 + len(bits)) * _FINE_PER_US + 2 * _PAD)
    for t_us in PREAMBLE_US:
        i = _PAD + int(t_us * _FINE_PER_US)
        env[i : i + half] = 1.0
    starts = _PAD + (8 + np.arange(len(bits))) * _FINE_PER_US + np.where(bits == 1, 0, half)
    idx = (starts[:, None] + np.arange(half)[None, :]).ravel()
    env[idx] = 1.0
    return np.convolve(env, _KERNEL, mode="same")


def sampled_reply(
    msg: bytes,
    start_sample: float,
    rate_hz: float,
    amplitude: float,
    phase_rad: float,
    freq_offset_hz: float,
) -> tuple[int, np.ndarray]:
    """(first sample index, complex samples) of a reply whose preamble starts at start_sample."""
    env = fine_envelope(msg)
    step = FINE_HZ / rate_hz
    first = math.ceil(start_sample - _PAD / step)
    n = int((len(env) - 1) / step)
    # fine position of output sample i (interpolated): fine sample j holds the pulse over
    # [j - 0.5, j + 0.5], so the preamble's leading edge sits at _PAD - 0.5
    fine_pos = _PAD - 0.5 + (first + np.arange(n) - start_sample) * step
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
