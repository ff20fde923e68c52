"""An FM broadcast illuminator at complex baseband, with the statistics of a real station.

Programme material is audio-like: two partly correlated channels (left, right) of
shaped noise with a speech/music spectrum (falling above about 1 kHz), a syllabic
envelope (a few Hz) and pauses (silence of a few hundred ms every few seconds), 50 us
pre-emphasis, a 15 kHz audio low-pass and a broadcast limiter. The stereo multiplex is
``0.45 (L+R) + 0.45 (L-R) cos(2 w_p t) + 0.09 cos(w_p t)`` with the 19 kHz pilot
``w_p``; its peak drives 75 kHz deviation. A pause leaves the carrier and the pilot
alone, whose ambiguity function is poor: that is what a real station does too.

The generator streams: ``next(n)`` continues the signal (filter states, envelope and
phase carry over), so a recording of any length is built chunk by chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PILOT_HZ = 19_000.0


@dataclass(frozen=True)
class FMParams:
    """What shapes the programme and the modulation."""

    deviation_hz: float = 75e3
    pilot_level: float = 0.09  # share of the peak deviation (8-10 % in practice)
    audio_cutoff_hz: float = 15e3
    preemphasis_s: float = 50e-6  # Europe 50 us, Americas 75 us
    programme_mean_s: float = 5.0  # mean length of programme between pauses
    pause_mean_s: float = 0.3  # mean length of a pause
    syllable_hz: float = 4.0  # bandwidth of the loudness envelope
    stereo_width: float = 0.35  # L-R share of the programme
    limiter_drive: float = 2.5  # broadcast processing: >1 compresses peaks


class FMBroadcast:
    """Streaming FM broadcast baseband (complex64, unit power) at ``rate_hz``."""

    def __init__(self, rate_hz: float, seed: int = 0, params: FMParams | None = None) -> None:
        from scipy import signal

        self.rate_hz = float(rate_hz)
        self.p = params or FMParams()
        self.rng = np.random.default_rng(seed)
        fs = self.rate_hz
        # audio spectrum: pink-ish (1st-order low-pass at 1 kHz), pre-emphasis, 15 kHz low-pass
        self._tilt = signal.butter(1, 1000.0, fs=fs, output="sos")
        tau = self.p.preemphasis_s
        # pre-emphasis H(s) = 1 + s tau, made proper with a pole far above the audio band
        b, a = signal.bilinear([tau, 1.0], [1.0 / (2 * math.pi * 100e3), 1.0], fs=fs)
        self._emph = signal.tf2sos(b, a)
        self._lowpass = signal.butter(8, self.p.audio_cutoff_hz, fs=fs, output="sos")
        self._env_lp = signal.butter(2, self.p.syllable_hz, fs=fs, output="sos")
        self._zi: dict[str, np.ndarray] = {}
        self._n = 0  # samples generated
        self._phase = 0.0
        self._on = True  # programme playing (else a pause)
        self._state_left_s = self.rng.exponential(self.p.programme_mean_s)
        self._gate = 1.0  # smoothed on/off gate
        self._level = 1.0
        self.last_programme = 1.0  # share of the last chunk with programme (not a pause)

    def _filter(self, name: str, sos: np.ndarray, x: np.ndarray) -> np.ndarray:
        from scipy import signal

        zi = self._zi.get(name)
        if zi is None:
            zi = np.zeros((sos.shape[0], 2, *x.shape[1:]))
        y, self._zi[name] = signal.sosfilt(sos, x, axis=0, zi=zi)
        return y

    def _gate_track(self, n: int) -> np.ndarray:
        """Programme on (1) / paused (0), smoothed over about 10 ms."""
        gate = np.empty(n)
        i = 0
        while i < n:
            left = max(1, int(self._state_left_s * self.rate_hz))
            k = min(n - i, left)
            gate[i : i + k] = 1.0 if self._on else 0.0
            self._state_left_s -= k / self.rate_hz
            i += k
            if self._state_left_s <= 0:
                self._on = not self._on
                mean = self.p.programme_mean_s if self._on else self.p.pause_mean_s
                self._state_left_s = self.rng.exponential(mean)
        # one-pole smoothing, 10 ms (a fade, not a click)
        alpha = 1.0 / (0.01 * self.rate_hz)
        from scipy import signal

        y, _zf = signal.lfilter([alpha], [1.0, alpha - 1.0], gate, zi=[self._gate * (1 - alpha)])
        self._gate = float(y[-1])
        return y

    def audio(self, n: int) -> np.ndarray:
        """(n, 2) left/right programme, peak limited to +-1."""
        p = self.p
        noise = self.rng.standard_normal((n, 3))
        mid, side = noise[:, 0], noise[:, 1]
        lr = np.column_stack([mid + p.stereo_width * side, mid - p.stereo_width * side])
        lr = self._filter("tilt", self._tilt, lr)
        lr = self._filter("emph", self._emph, lr)
        lr = self._filter("lowpass", self._lowpass, lr)
        env = np.abs(self._filter("env", self._env_lp, noise[:, 2])) * 1.6 + 0.15
        gate = self._gate_track(n)
        self.last_programme = float(np.mean(gate > 0.5)) if n else 1.0
        lr *= (env * gate)[:, None]
        # broadcast processing: a slow level control, then a soft limiter
        rms = float(np.sqrt(np.mean(lr**2))) if n else 0.0
        if rms > 0:
            self._level = 0.9 * self._level + 0.1 * (0.35 / rms) if self._n else 0.35 / rms
        return np.tanh(p.limiter_drive * lr * self._level) / math.tanh(p.limiter_drive)

    def mpx(self, n: int) -> np.ndarray:
        """The stereo multiplex (peak 1.0 = full deviation)."""
        lr = self.audio(n)
        t = (self._n + np.arange(n)) / self.rate_hz
        w = 2 * math.pi * PILOT_HZ * t
        total = 1.0 - self.p.pilot_level
        return (
            total / 2 * (lr[:, 0] + lr[:, 1])
            + total / 2 * (lr[:, 0] - lr[:, 1]) * np.cos(2 * w)
            + self.p.pilot_level * np.cos(w)
        )

    def next(self, n: int) -> np.ndarray:
        """The next n samples of the FM signal, complex64 of unit amplitude."""
        m = self.mpx(n)
        dphi = 2 * math.pi * self.p.deviation_hz / self.rate_hz * m
        phase = self._phase + np.cumsum(dphi)
        self._phase = float(phase[-1] % (2 * math.pi)) if n else self._phase
        self._n += n
        return np.exp(1j * phase).astype(np.complex64)
