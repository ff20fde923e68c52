"""Bookkeeping shared by the live sources (rtl_tcp, RTL-SDR): counters, health, backoff."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sensord.source.utc import UtcFit


@dataclass
class LiveStats:
    """Counters of a live source: samples delivered, samples lost, gaps, reconnects."""

    samples: int = 0
    drops: int = 0
    gaps: int = 0
    reconnects: int = 0


class SampleClock:
    """The sample clock of a live stream, advanced by delivered samples and by outages.

    Samples lost to an outage or an overflowing queue advance the clock too, so block
    ``start_sample`` keeps tracking wall time: an outage of ``d`` seconds shows as a jump
    of ``round(d * rate_hz)`` samples (a documented estimate: the dongle's clock is not
    observable while it is gone).
    """

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = float(rate_hz)
        self.next_sample = 0
        self.stats = LiveStats()
        self.last_sample_monotonic: float | None = None
        self.utc_fit = UtcFit(rate_hz)

    def take(self, n_samples: int) -> int:
        """Account ``n_samples`` delivered now; return the start sample of that run."""
        start = self.next_sample
        self.next_sample += n_samples
        self.stats.samples += n_samples
        self.last_sample_monotonic = time.monotonic()
        self.utc_fit.observe(self.next_sample)
        return start

    def utc(self, sample: int) -> float:
        """UTC of ``sample`` by the smoothed fit of block arrivals."""
        return self.utc_fit.utc(sample)

    def drop(self, n_samples: int) -> None:
        """Account ``n_samples`` lost: the next delivered run starts after them."""
        if n_samples <= 0:
            return
        self.next_sample += n_samples
        self.stats.drops += n_samples
        self.stats.gaps += 1

    def drop_outage(self, outage_s: float) -> None:
        """Account an outage of ``outage_s`` seconds as lost samples."""
        self.drop(round(outage_s * self.rate_hz))

    def healthy(self, grace_s: float = 2.0) -> bool:
        """True while samples arrived within the last ``grace_s`` seconds."""
        last = self.last_sample_monotonic
        return last is not None and time.monotonic() - last <= grace_s


class LiveClockMixin:
    """Counters and health of a live source, read off its ``_clock`` (a SampleClock)."""

    _clock: SampleClock

    @property
    def stats(self):
        """Counters: samples, drops, gaps, reconnects."""
        return self._clock.stats

    @property
    def last_sample_monotonic(self) -> float | None:
        """``time.monotonic()`` of the last sample received, None before the first."""
        return self._clock.last_sample_monotonic

    def healthy(self, grace_s: float = 2.0) -> bool:
        """True while samples arrived within the last ``grace_s`` seconds."""
        return self._clock.healthy(grace_s)


class Backoff:
    """Exponential reconnect delays: ``first_s``, doubled up to ``max_s``; reset on success."""

    def __init__(self, first_s: float = 0.25, max_s: float = 8.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._next_s = first_s

    def next_delay_s(self) -> float:
        """The delay before the next attempt (and double the one after it)."""
        delay = self._next_s
        self._next_s = min(self._next_s * 2, self.max_s)
        return delay

    def reset(self) -> None:
        """Back to ``first_s`` after a successful connection."""
        self._next_s = self.first_s
