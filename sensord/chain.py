"""The receive chain in one process: source -> demodulator -> detector -> tracker.

``Chain`` wires the stages the way the daemon does, minus the publisher; ``sensord track``
and the tests replay recordings through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import numpy as np

from sensord.decode import Detector
from sensord.demod import Demodulator
from sensord.detections import Detection
from sensord.geo import Site
from sensord.sinks.base import Step
from sensord.source.base import IQSource
from sensord.tracker.tracker import Tracker, TrackerConfig
from sensord.tracker.update import TrackUpdate

_Timed = TypeVar("_Timed", Detection, TrackUpdate)


ChainOutput = Step  # the former name of what one block produced


class Chain:
    """Demodulator, detector and tracker for one receiver at ``site``."""

    def __init__(
        self,
        rate_hz: float,
        site: Site,
        sensor_id: str = "rx0",
        fix_bits: int = 1,
        max_range_m: float = 500e3,
        tracker_config: TrackerConfig | None = None,
    ) -> None:
        self.demod = Demodulator(rate_hz, fix_bits=fix_bits)
        self.tracker = Tracker(site, tracker_config)
        self.detector = Detector(site, sensor_id, self.tracker.predicted_position, max_range_m)
        self.utc_minus_t_s: float | None = None  # the source's sample clock -> UTC

    def feed_frames(self, frames: np.ndarray) -> list[TrackUpdate]:
        """Frames -> detections -> track updates."""
        return self.tracker.process(self.detector.process(frames))

    def run(self, source: IQSource) -> Iterator[Step]:
        """Every block of the source through the chain, then the end-of-stream flush.

        The tracker's clock is the sample clock: tracks coast and drop when the blocks say
        time has passed, with no detections too (a quiet band, an outage's sample jump).
        Detections and updates get the UTC of their sample-clock time by the latest
        block's mapping (``IQBlock.utc``).
        """
        for block in source.blocks():
            if block.utc == block.utc:  # not NaN
                self.utc_minus_t_s = block.utc - block.t_s
            frames = self.demod.feed_block(block)
            dets = self._with_utc(self.detector.process(frames))
            updates = self.tracker.process(dets)
            end_s = (block.start_sample + block.n_samples) / block.rate_hz
            updates = self._with_utc(updates + self.tracker.clock(end_s))
            yield self._step(frames, dets, updates, end_s)
        frames = self.demod.flush()
        dets = self._with_utc(self.detector.process(frames))
        updates = self._with_utc(self.tracker.process(dets) + self.tracker.flush())
        end_s = self.demod.stats.samples / self.demod.rate_hz
        yield self._step(frames, dets, updates, end_s)

    def _step(
        self, frames: np.ndarray, dets: list[Detection], updates: list[TrackUpdate], end_s: float
    ) -> Step:
        return Step(frames, dets, updates, self.demod.stats.samples, self._utc(end_s), end_s=end_s)

    def _utc(self, t_s: float) -> float | None:
        offset = self.utc_minus_t_s
        return None if offset is None else t_s + offset

    def _with_utc(self, items: list[_Timed]) -> list[_Timed]:
        """Set ``utc`` of detections or updates from their ``t_s`` (in place; returned)."""
        offset = self.utc_minus_t_s
        if offset is not None:
            for item in items:
                item.utc = item.t_s + offset
        return items
