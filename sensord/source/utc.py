"""UTC of the sample clock.

A file knows when it started (``start_utc`` from SigMF ``core:datetime``, from the user, or
from its mtime minus its duration). A live stream does not: ``UtcFit`` maps its sample
clock to UTC with a fit smoothed over block arrivals, so a block's UTC never steps
backwards and NTP slews (or a dongle's ppm error) are absorbed gradually. A jump of the
system clock forwards by more than ``step_s`` re-anchors the fit; a jump backwards is
slewed out at ``max_slew`` (never a step back).
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timezone

log = logging.getLogger(__name__)


class UtcFit:
    """utc(sample) = offset + sample / rate_hz, the offset tracked from block arrivals."""

    def __init__(
        self, rate_hz: float, gain: float = 0.02, max_slew: float = 500e-6, step_s: float = 1.0
    ) -> None:
        self.rate_hz = float(rate_hz)
        self.gain = gain
        self.max_slew = max_slew
        self.step_s = step_s
        self.offset_s: float | None = None
        self._last_end_sample = 0
        self.reanchored = 0

    def observe(self, end_sample: int, arrival_utc: float | None = None) -> None:
        """The block ending at ``end_sample`` arrived at ``arrival_utc`` (default: now)."""
        arrival = time.time() if arrival_utc is None else arrival_utc
        predicted_offset = arrival - end_sample / self.rate_hz
        if self.offset_s is None:
            self.offset_s = predicted_offset
        else:
            residual = predicted_offset - self.offset_s
            if residual > self.step_s:
                self.reanchored += 1
                log.warning("system clock stepped %.1f s forwards: UTC fit re-anchored", residual)
                self.offset_s = predicted_offset
            else:
                # at most max_slew of the elapsed samples: utc(sample) stays increasing
                elapsed_s = max(end_sample - self._last_end_sample, 0) / self.rate_hz
                limit = self.max_slew * elapsed_s
                self.offset_s += min(max(self.gain * residual, -limit), limit)
        self._last_end_sample = end_sample

    def utc(self, sample: int) -> float:
        """UTC of ``sample`` (NaN before the first block was observed)."""
        if self.offset_s is None:
            return math.nan
        return self.offset_s + sample / self.rate_hz


def parse_utc(text: str) -> float:
    """UTC seconds from ISO 8601 ('2026-11-30T10:00:00Z', '...+00:00') or epoch seconds.

    A time without a zone is taken as UTC. ValueError with the accepted forms otherwise.
    """
    t = text.strip()
    try:
        value = float(t)
    except ValueError:
        pass
    else:
        if math.isfinite(value) and value >= 0:
            return value
        raise ValueError(f"not a usable UTC time: {text!r}")
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a UTC time: {text!r} (ISO 8601 like 2026-11-30T10:00:00Z, or epoch seconds)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def format_utc(utc: float) -> str:
    """ISO 8601 with microseconds and 'Z' (SigMF's core:datetime form)."""
    return datetime.fromtimestamp(utc, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
