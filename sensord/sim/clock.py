"""A receiver's sample clock as the simulator sees it: true time -> the receiver's counter.

``ReceiverClock`` models what MLAT must undo:

- a random counter offset (the dongle started at some moment, its counter at 0);
- a frequency error (``ppm``: up to +-100 ppm for a plain dongle, +-2 ppm for a TCXO)
  with a slow random wander (a random walk of the frequency, ``wander_ppm_per_sqrt_s``),
  drawn once on a 1 s grid over ``duration_s`` so every call gives the same clock;
- an optional sample-loss jump: at ``jump_at_s`` the counter skips ``jump_samples``
  samples (a lost USB transfer: 16k-256k samples at ``sample_rate_hz``);
- timestamp jitter (``jitter_s``, Gaussian) and 12 MHz tick quantisation, applied only
  by ``ticks_12mhz`` (the timestamp a demodulator would report).

``local_s`` is the clock itself (no jitter): the simulator renders a recording through
it, and the demodulator then adds its own jitter. ``ticks_12mhz`` is for synthetic
timestamps without IQ (MLAT tests and benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sensord.frames import TICKS_PER_S

DONGLE_MAX_PPM = 100.0
TCXO_MAX_PPM = 2.0
_GRID_S = 1.0


@dataclass
class ReceiverClock:
    """One receiver's counter as a function of true time (seconds since the scenario start)."""

    offset_s: float = 0.0
    ppm: float = 0.0
    wander_ppm_per_sqrt_s: float = 0.0
    jitter_s: float = 0.0
    jump_at_s: float | None = None
    jump_samples: int = 0
    sample_rate_hz: float = 2.4e6
    duration_s: float = 600.0
    seed: int = 0
    _phase_s: np.ndarray = field(init=False, repr=False)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.jitter_s < 1e-3:
            raise ValueError(f"jitter_s must be 0..1 ms, got {self.jitter_s}")
        if abs(self.ppm) > 1000:
            raise ValueError(f"ppm must be within +-1000, got {self.ppm}")
        rng = np.random.default_rng([self.seed, 7])
        n = int(np.ceil(self.duration_s / _GRID_S)) + 1
        steps = rng.normal(0.0, self.wander_ppm_per_sqrt_s * np.sqrt(_GRID_S), n)
        freq_ppm = np.cumsum(steps)  # the wander's frequency error on each grid step
        # phase error at each grid knot: integral of the (piecewise constant) frequency
        self._phase_s = np.concatenate(([0.0], np.cumsum(freq_ppm[:-1] * 1e-6 * _GRID_S)))
        self._rng = np.random.default_rng([self.seed, 11])

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        kind: str = "dongle",
        jitter_s: float = 50e-9,
        duration_s: float = 600.0,
        jump_at_s: float | None = None,
    ) -> ReceiverClock:
        """A clock of a ``kind`` ("dongle" or "tcxo") with random offset, error and seed."""
        if kind not in ("dongle", "tcxo"):
            raise ValueError(f"clock kind must be dongle or tcxo, got {kind!r}")
        max_ppm = DONGLE_MAX_PPM if kind == "dongle" else TCXO_MAX_PPM
        wander = 2e-3 if kind == "dongle" else 2e-4
        return cls(
            offset_s=float(rng.uniform(1.0, 3600.0)),
            ppm=float(rng.uniform(-max_ppm, max_ppm)),
            wander_ppm_per_sqrt_s=wander,
            jitter_s=jitter_s,
            jump_at_s=jump_at_s,
            jump_samples=int(rng.integers(16_384, 262_145)) if jump_at_s is not None else 0,
            duration_s=duration_s,
            seed=int(rng.integers(0, 2**31)),
        )

    @property
    def jump_s(self) -> float:
        """How far the counter jumps forward at ``jump_at_s`` (0 without a jump)."""
        return self.jump_samples / self.sample_rate_hz if self.jump_at_s is not None else 0.0

    def local_s(self, t_true_s):
        """The receiver's counter, in seconds, at true time(s) ``t_true_s`` (no jitter)."""
        t = np.asarray(t_true_s, dtype=float)
        grid_t = np.arange(self._phase_s.size) * _GRID_S
        wander = np.interp(t, grid_t, self._phase_s)
        local = self.offset_s + t * (1.0 + self.ppm * 1e-6) + wander
        if self.jump_at_s is not None:
            local = local + np.where(t >= self.jump_at_s, self.jump_s, 0.0)
        return local if local.ndim else float(local)

    def ticks_12mhz(self, t_true_s, jitter: bool = True):
        """The 12 MHz counter a demodulator reports at true time(s): jittered, whole ticks."""
        ticks = np.round(self.toa_12mhz(t_true_s, jitter)).astype(np.int64)
        return ticks if ticks.ndim else int(ticks)

    def toa_12mhz(self, t_true_s, jitter: bool = True):
        """The same instant as a sub-tick arrival (float ticks): jittered, not quantised."""
        local = np.asarray(self.local_s(t_true_s), dtype=float)
        if jitter and self.jitter_s > 0:
            local = local + self._rng.normal(0.0, self.jitter_s, local.shape)
        return local * TICKS_PER_S
