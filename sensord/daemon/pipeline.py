"""The daemon's pipeline: source -> DSP -> decode -> tracker in a worker thread, publisher on
the event loop.

The worker thread reads blocks, demodulates them (the Cython loops release the GIL),
decodes and tracks, and hands each block's results to the event loop through a bounded
queue. A live source cannot wait: if the loop falls behind, results are dropped and
counted (track state is idempotent: the next update carries it). A file replay is
``lossless``: the worker waits for the loop instead. MQTT I/O runs on the loop and
never blocks the worker; a slow broker only fills the publisher's bounded queues.

Health, for the systemd watchdog: samples must keep arriving; the heartbeat stops when
no block has come for ``stall_grace_s`` (a dongle unplugged for good), so systemd
restarts a daemon that is truly stuck. A shorter outage (a live source reconnecting)
leaves the tracks coasting on the sample clock, which jumps by the samples lost.

``stop`` closes the source: its last blocks and the end-of-stream flush still go through
the chain, so replies held in the demodulator's tail and the tracker's reorder window
are not lost at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from sensord.chain import Chain, ChainOutput
from sensord.frames import frame_json
from sensord.fusion.publishing import DetectionStream
from sensord.geo import Site
from sensord.publish.mqtt import Publisher
from sensord.source.base import IQSource
from sensord.tracker.tracker import TrackerConfig

log = logging.getLogger(__name__)

RESULT_QUEUE_MAX = 64


@dataclass
class PipelineStats:
    """Counters of the pipeline itself (the stages keep their own)."""

    blocks: int = 0
    results_dropped: int = 0
    samples_per_s: float = 0.0


class Pipeline:
    """One receiver's pipeline. ``run`` returns when a file source ends or ``stop`` is called."""

    def __init__(
        self,
        source: IQSource,
        site: Site,
        publisher: Publisher | None,
        fix_bits: int = 1,
        max_range_m: float = 400e3,
        tracker_config: TrackerConfig | None = None,
        publish_frames: bool = False,
        publish_detections: bool = False,
        on_step: Callable[[ChainOutput], None] | None = None,
        detection_stream: DetectionStream | None = None,
        stall_grace_s: float = 10.0,
        lossless: bool = False,
    ) -> None:
        self.source = source
        self.publisher = publisher
        self.chain = Chain(
            source.rate_hz,
            site,
            detection_stream.node if detection_stream is not None else "rx0",
            fix_bits=fix_bits,
            max_range_m=max_range_m,
            tracker_config=tracker_config,
        )
        self.publish_frames = publish_frames
        self.detection_stream = detection_stream if publish_detections else None
        self.on_step = on_step
        self.stall_grace_s = stall_grace_s
        self.lossless = lossless
        self.stats = PipelineStats()
        self.last_block_monotonic: float | None = None
        self.first_samples = asyncio.Event()
        self._queue: asyncio.Queue | None = None

    def healthy(self) -> bool:
        """Samples arrived within the grace period."""
        last = self.last_block_monotonic
        return last is not None and time.monotonic() - last < self.stall_grace_s

    def stop(self) -> None:
        """Close the source; ``run`` returns once what it still held is through the chain."""
        self.source.close()

    def statistics(self) -> dict:
        """Everything the status topic reports."""
        d = self.chain.demod.stats
        t = self.chain.tracker
        by_state: dict[str, int] = {}
        for track in t.tracks.values():
            by_state[track.status.value] = by_state.get(track.status.value, 0) + 1
        source_stats = getattr(self.source, "stats", None)  # a live source's counters
        return {
            **({"source": asdict(source_stats)} if source_stats is not None else {}),
            "cpu_s": round(time.process_time(), 3),
            "samples": d.samples,
            "sample_clock_s": round(d.samples / self.source.rate_hz, 3),
            "frames": d.frames,
            "frames_by_df": {str(k): v for k, v in sorted(d.frames_by_df.items())},
            "corrected": d.corrected,
            "gaps": d.gaps,
            "gap_samples": d.gap_samples,
            "noise_dbfs": round(d.noise_dbfs, 1) if d.noise_dbfs == d.noise_dbfs else None,
            "signal_dbfs": round(d.last_signal_dbfs, 1)
            if d.last_signal_dbfs == d.last_signal_dbfs
            else None,
            "tracks_by_state": by_state,
            "tracker": {
                "gated": t.stats.gated,
                "reinitialised": t.stats.reinitialised,
                "late_dropped": t.stats.late_dropped,
            },
            "pipeline": {
                **asdict(self.stats),
                "queue_depth": self._queue.qsize() if self._queue else 0,
            },
        }

    async def run(self) -> None:
        """Run until the source ends or ``stop``; results are handed to the publisher."""
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(maxsize=RESULT_QUEUE_MAX)
        worker = loop.run_in_executor(None, self._work, loop)
        consumer = asyncio.create_task(self._consume())
        try:
            await worker
        finally:
            await self._queue.put(None)
            await consumer

    def _hand_over(self, item) -> None:
        assert self._queue is not None
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.stats.results_dropped += 1

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        started = time.monotonic()
        samples = 0
        try:
            for step in self.chain.run(self.source):
                self.last_block_monotonic = time.monotonic()
                self.stats.blocks += 1
                samples = self.chain.demod.stats.samples
                self.stats.samples_per_s = samples / max(time.monotonic() - started, 1e-9)
                if self.stats.blocks == 1:
                    loop.call_soon_threadsafe(self.first_samples.set)
                if self.lossless:  # a file waits for the loop; a live source cannot
                    asyncio.run_coroutine_threadsafe(self._queue.put(step), loop).result()
                else:
                    loop.call_soon_threadsafe(self._hand_over, step)
        finally:
            loop.call_soon_threadsafe(self.first_samples.set)

    async def _consume(self) -> None:
        assert self._queue is not None
        while (step := await self._queue.get()) is not None:
            if self.on_step:
                self.on_step(step)
            if self.publisher is None:
                continue
            if step.updates:
                self.publisher.track_updates(step.updates)
            if self.publish_frames and len(step.frames):
                self.publisher.stream("frames", [frame_json(f) for f in step.frames])
            if self.detection_stream is not None:
                for message in self.detection_stream.messages(step.detections, step.end_utc):
                    self.publisher.stream(message.kind, [message.payload])
