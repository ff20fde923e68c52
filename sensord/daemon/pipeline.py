"""The daemon's pipeline: source -> DSP -> decode -> tracker in a worker thread, the sinks'
fan-out on the event loop.

The worker thread reads blocks, demodulates them (the Cython loops release the GIL),
decodes and tracks, and hands each block's ``Step`` to the fan-out on the event loop.
A live source cannot wait: if the loop falls behind by more than ``HANDOVER_MAX`` steps,
steps are dropped and counted (track state is idempotent: the next update carries it).
A file replay is ``lossless``: the worker waits for the sinks that keep up (never for a
failing or stuck one). No sink can stop the chain: the fan-out isolates each in its own
task and queue.

Health, for the watchdog: ``healthy`` is true while samples keep arriving (a block
within ``stall_grace_s``) and have gone through the fan-out (the newest step was handed
over within the grace too), and no sink is stuck in one step for longer than the grace.

``stop`` closes the source: its last blocks and the end-of-stream flush still go through
the chain, so replies held in the demodulator's tail and the tracker's reorder window
are not lost at shutdown.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import asdict, dataclass

from sensord.chain import Chain
from sensord.geo import Site
from sensord.sinks.base import Step
from sensord.sinks.fanout import FanOut
from sensord.source.base import IQSource
from sensord.tracker.tracker import TrackerConfig

HANDOVER_MAX = 64  # steps in flight to the event loop before a live source's are dropped
LOSSLESS_WAIT_S = 1.0  # a file replay waits this long at most for a sink's queue


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
        fanout: FanOut,
        fix_bits: int = 1,
        max_range_m: float = 400e3,
        tracker_config: TrackerConfig | None = None,
        stall_grace_s: float = 10.0,
        lossless: bool = False,
        sensor_id: str = "rx0",
    ) -> None:
        self.source = source
        self.fanout = fanout
        self.chain = Chain(
            source.rate_hz,
            site,
            sensor_id=sensor_id,
            fix_bits=fix_bits,
            max_range_m=max_range_m,
            tracker_config=tracker_config,
        )
        self.stall_grace_s = stall_grace_s
        self.lossless = lossless
        self.stats = PipelineStats()
        self.last_block_monotonic: float | None = None
        self.first_samples = asyncio.Event()
        self._in_flight = 0
        self._lock = threading.Lock()

    def healthy(self) -> bool:
        """Samples arrived, went through the fan-out recently, and no sink is stuck."""
        now = time.monotonic()
        last_block = self.last_block_monotonic
        last_step = self.fanout.last_step_monotonic
        return (
            last_block is not None
            and now - last_block < self.stall_grace_s
            and last_step is not None
            and now - last_step < self.stall_grace_s
            and not self.fanout.stalled(self.stall_grace_s)
        )

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
            "pipeline": {**asdict(self.stats), "queue_depth": self.fanout.pending()},
            "sinks": self.fanout.status()["sinks"],
        }

    async def run(self) -> None:
        """Run until the source ends or ``stop``; every step goes to the fan-out."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._work, loop)
        # the worker's last hand-overs are callbacks still queued on the loop: let them run
        while self._in_flight:
            await asyncio.sleep(0.01)

    def _submit(self, step: Step) -> None:
        try:
            self.fanout.submit(step)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        started = time.monotonic()
        try:
            for step in self.chain.run(self.source):
                self.last_block_monotonic = time.monotonic()
                self.stats.blocks += 1
                self.stats.samples_per_s = step.samples / max(time.monotonic() - started, 1e-9)
                if self.stats.blocks == 1:
                    loop.call_soon_threadsafe(self.first_samples.set)
                if self.lossless:  # a file waits for the sinks that keep up; a live source cannot
                    asyncio.run_coroutine_threadsafe(
                        self.fanout.put(step, LOSSLESS_WAIT_S), loop
                    ).result()
                    continue
                with self._lock:
                    if self._in_flight >= HANDOVER_MAX:
                        self.stats.results_dropped += 1
                        continue
                    self._in_flight += 1
                loop.call_soon_threadsafe(self._submit, step)
        finally:
            loop.call_soon_threadsafe(self.first_samples.set)
