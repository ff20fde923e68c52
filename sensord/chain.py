"""The receive chain in one process: source -> demodulator -> detector -> tracker.

``Chain`` wires the stages the way the daemon does, minus the publisher; ``sensord track``
and the tests replay recordings through it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sensord.decode import Detector
from sensord.demod import Demodulator
from sensord.geo import Site
from sensord.sinks.base import Step
from sensord.source.base import IQSource
from sensord.tracker.tracker import Tracker, TrackerConfig
from sensord.tracker.update import TrackUpdate

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

    def feed_frames(self, frames: np.ndarray) -> list[TrackUpdate]:
        """Frames -> detections -> track updates."""
        return self.tracker.process(self.detector.process(frames))

    def run(self, source: IQSource) -> Iterator[Step]:
        """Every block of the source through the chain, then the end-of-stream flush.

        The tracker's clock is the sample clock: tracks coast and drop when the blocks say
        time has passed, with no detections too (a quiet band, an outage's sample jump).
        """
        for block in source.blocks():
            frames = self.demod.feed_block(block)
            dets = self.detector.process(frames)
            updates = self.tracker.process(dets)
            end_s = (block.start_sample + block.n_samples) / block.rate_hz
            updates += self.tracker.clock(end_s)
            yield Step(frames, dets, updates, self.demod.stats.samples)
        frames = self.demod.flush()
        dets = self.detector.process(frames)
        updates = self.tracker.process(dets) + self.tracker.flush()
        yield Step(frames, dets, updates, self.demod.stats.samples)
