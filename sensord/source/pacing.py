"""Real-time pacing of a recorded source: each block is released when its last sample
would have arrived from a dongle, so a replay behaves like a live source (latency,
CPU share) while time stays the sample clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from sensord.source.base import IQBlock, IQSource


class RealtimeSource:
    """Wraps a source; ``speed`` > 1 replays faster than real time."""

    def __init__(self, source: IQSource, speed: float = 1.0) -> None:
        self.source = source
        self.rate_hz = source.rate_hz
        self.speed = speed
        self.started_wall: float | None = None  # time.time() of sample 0
        self._closed = threading.Event()

    def blocks(self) -> Iterator[IQBlock]:
        start = time.monotonic()
        self.started_wall = time.time()
        for block in self.source.blocks():
            due = (block.start_sample + block.n_samples) / self.rate_hz / self.speed
            wait = start + due - time.monotonic()
            if wait > 0 and self._closed.wait(wait):
                return
            yield block

    def close(self) -> None:
        self._closed.set()
        self.source.close()
