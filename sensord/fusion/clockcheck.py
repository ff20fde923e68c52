"""Each node's UTC against the fusion clock: a node whose clock is wrong is refused.

A message's offset is its UTC minus the fusion clock when it arrived (the clock the
``Fuser`` is stepped with: the data's clock live, the recordings' progress in a replay).
A node on time shows a small negative offset (its pipeline and the network's latency);
a wrong clock shows as a large one. A node's offset is the median of its last
``SAMPLES`` messages', so one late or early batch does not decide. A node is in a clock
fault once that median (of at least ``FAULT_SAMPLES`` messages) is more than ``ahead_s``
ahead of the fusion clock, or more than ``behind_s`` behind it; it recovers when the
median comes back within half of that.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

SAMPLES = 9
FAULT_SAMPLES = SAMPLES // 2 + 1  # a fault needs the majority of a full set
RECOVER_FRACTION = 0.5  # back within this fraction of the limit: agreeing again


@dataclass
class ClockLimits:
    """How far a node's UTC may be from the fusion clock (seconds, both positive)."""

    ahead_s: float
    behind_s: float

    def beyond(self, offset_s: float, fraction: float = 1.0) -> bool:
        return offset_s > self.ahead_s * fraction or offset_s < -self.behind_s * fraction


@dataclass
class NodeClock:
    """One node's recent offsets from the fusion clock and whether it is in a clock fault."""

    offsets_s: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))
    faulty: bool = False

    @property
    def settled(self) -> bool:
        """Its offset is the median of a full set of messages."""
        return len(self.offsets_s) == SAMPLES

    @property
    def offset_s(self) -> float | None:
        """The median offset (UTC of its messages minus the fusion clock), or None."""
        return statistics.median(self.offsets_s) if self.offsets_s else None

    def observe(self, utc: float, clock_utc: float, limits: ClockLimits) -> str | None:
        """A message of UTC ``utc`` arrived at fusion clock ``clock_utc``: returns "fault"
        or "recovered" when the node's state changes, else None."""
        if not (math.isfinite(utc) and math.isfinite(clock_utc)):
            return None
        self.offsets_s.append(utc - clock_utc)
        offset_s = self.offset_s
        assert offset_s is not None
        if not self.faulty and len(self.offsets_s) >= FAULT_SAMPLES and limits.beyond(offset_s):
            self.faulty = True
            return "fault"
        if self.faulty and not limits.beyond(offset_s, RECOVER_FRACTION):
            self.faulty = False
            return "recovered"
        return None
