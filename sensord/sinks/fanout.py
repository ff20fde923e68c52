"""The fan-out: every step to every sink, each sink in its own task behind its own bounded
queue, so no sink can stall the chain or another sink.

- ``submit`` never waits: the step's updates go into the shared ``TrackTable`` and the
  step into each sink's queue; a full queue drops its oldest step (counted).
- ``put`` is the lossless form for file replays: it waits (up to ``wait_s``) for room in
  the queues of sinks that are keeping up, then submits.
- A sink whose ``handle`` raises is logged once (WARNING, then DEBUG until it recovers),
  counted, and retried with backoff on the next steps; after ``disable_after`` failures
  in a row (if set) it is disabled. Its recovery is logged at INFO.
- ``stalled`` names the sinks stuck in one ``handle`` longer than a grace period (the
  watchdog's evidence that steps are no longer getting through).

Usage::

    fanout = FanOut([mqtt_sink, aircraft_json_sink, ...])
    await fanout.start()          # starts the sinks (an error there is fatal) and their tasks
    fanout.submit(step)           # from the event loop, per step
    fanout.status()               # {"sinks": {name: {...counters...}}, "tracks": n}
    await fanout.close()          # drains within a deadline, then closes the sinks
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, replace

from sensord.sinks.base import Sink, Step
from sensord.sinks.table import TrackTable

log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
CLOSE_DEADLINE_S = 5.0


@dataclass
class SinkCounters:
    """One sink's counters, reported in the status topic under ``sinks``."""

    handled: int = 0
    dropped: int = 0  # steps dropped from its full queue (oldest first)
    errors: int = 0
    last_error: str = ""
    failing: bool = False
    disabled: bool = False


class _Lane:
    """One sink with its queue and task."""

    def __init__(self, sink: Sink, backoff_s: tuple[float, ...], disable_after: int | None):
        self.sink = sink
        self.queue: deque[Step] = deque()
        self.queue_max = max(1, int(sink.queue_max))
        self.counters = SinkCounters()
        self.wake = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.closing = False
        self.busy_since: float | None = None  # monotonic start of the handle in progress
        self.backoff_until = 0.0
        self.failures_in_a_row = 0
        self.backoff_s = backoff_s
        self.disable_after = disable_after
        self.task: asyncio.Task | None = None

    def offer(self, step: Step) -> None:
        if self.counters.disabled:
            return
        if len(self.queue) >= self.queue_max:
            self.queue.popleft()
            self.counters.dropped += 1
        self.queue.append(step)
        if len(self.queue) >= self.queue_max:
            self.room.clear()
        self.wake.set()

    def keeping_up(self, stuck_after_s: float) -> bool:
        """Worth waiting for in a lossless replay: not failing, not stuck in one step."""
        busy = self.busy_since
        stuck = busy is not None and time.monotonic() - busy > stuck_after_s
        return not (stuck or self.counters.failing or self.counters.disabled or self.closing)

    async def run(self) -> None:
        while True:
            while not self.queue:
                if self.closing:
                    return
                self.wake.clear()
                await self.wake.wait()
            step = self.queue.popleft()
            if len(self.queue) < self.queue_max:
                self.room.set()
            self.busy_since = time.monotonic()
            try:
                await self.sink.handle(step)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any sink fault is counted, never fatal
                self._failed(exc)
            else:
                self._succeeded()
            finally:
                self.busy_since = None
            if self.counters.disabled:
                self.queue.clear()
                self.room.set()
                return
            if self.counters.failing and not self.closing:
                delay = self.backoff_s[min(self.failures_in_a_row - 1, len(self.backoff_s) - 1)]
                self.backoff_until = time.monotonic() + delay
                await asyncio.sleep(delay)

    def _failed(self, exc: Exception) -> None:
        c = self.counters
        c.errors += 1
        c.last_error = str(exc) or type(exc).__name__
        self.failures_in_a_row += 1
        if not c.failing:
            log.warning("output %s failed: %s; retrying with backoff", self.sink.name, c.last_error)
        else:
            log.debug("output %s still failing: %s", self.sink.name, c.last_error)
        c.failing = True
        if self.disable_after is not None and self.failures_in_a_row >= self.disable_after:
            c.disabled = True
            log.warning("output %s disabled after %d failures in a row", self.sink.name, c.errors)

    def _succeeded(self) -> None:
        c = self.counters
        c.handled += 1
        if c.failing:
            log.info("output %s recovered after %d errors", self.sink.name, c.errors)
        c.failing = False
        self.failures_in_a_row = 0


class FanOut:
    """Hands every step to every sink; owns the shared track table."""

    def __init__(
        self,
        sinks: list[Sink],
        table: TrackTable | None = None,
        backoff_s: tuple[float, ...] = BACKOFF_S,
        disable_after: int | None = None,
    ) -> None:
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique: {names}")
        self.table = table if table is not None else TrackTable()
        self._lanes = [_Lane(s, backoff_s, disable_after) for s in sinks]
        self.steps = 0
        self.last_step_monotonic: float | None = None
        self._started: list[_Lane] = []

    @property
    def sinks(self) -> list[Sink]:
        return [lane.sink for lane in self._lanes]

    async def start(self) -> None:
        """Start every sink (an error is fatal: the started ones are closed again), then their
        tasks."""
        for lane in self._lanes:
            try:
                await lane.sink.start()
            except BaseException:
                for started in reversed(self._started):
                    with contextlib.suppress(Exception):
                        await started.sink.close()
                self._started.clear()
                raise
            self._started.append(lane)
        for lane in self._lanes:
            lane.task = asyncio.create_task(lane.run(), name=f"sink-{lane.sink.name}")

    def submit(self, step: Step) -> Step:
        """Update the table and queue the step for every sink; never waits. Returns the step as
        the sinks get it (with its status changes)."""
        step = replace(step, changes=self.table.apply(step.updates))
        self.steps += 1
        self.last_step_monotonic = time.monotonic()
        for lane in self._lanes:
            lane.offer(step)
        return step

    async def put(self, step: Step, wait_s: float = 1.0) -> Step:
        """Lossless submit: wait up to ``wait_s`` for room in the queues of the sinks that are
        keeping up (a failing sink, or one busy with one step for longer than ``wait_s``, is
        not waited for: it drops, counted)."""
        deadline = time.monotonic() + wait_s
        for lane in self._lanes:
            while not lane.room.is_set() and lane.keeping_up(wait_s):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.room.wait(), left)
        return self.submit(step)

    def stalled(self, grace_s: float) -> list[str]:
        """Sinks stuck in one ``handle`` for longer than ``grace_s``."""
        now = time.monotonic()
        return [
            lane.sink.name
            for lane in self._lanes
            if lane.busy_since is not None and now - lane.busy_since > grace_s
        ]

    def pending(self) -> int:
        """Steps waiting in all queues."""
        return sum(len(lane.queue) for lane in self._lanes)

    def status(self) -> dict:
        """Per-sink counters and queue depths, for the status topic."""
        return {
            "tracks": len(self.table),
            "sinks": {
                lane.sink.name: {**asdict(lane.counters), "queue_depth": len(lane.queue)}
                for lane in self._lanes
            },
        }

    async def close(self, deadline_s: float = CLOSE_DEADLINE_S) -> None:
        """Let the queues drain (within the deadline), stop the tasks, close the sinks (in
        reverse order of start: a sink may feed an earlier one, as Home Assistant feeds MQTT)."""
        for lane in self._lanes:
            lane.closing = True
            lane.wake.set()
        tasks = [lane.task for lane in self._lanes if lane.task is not None]
        if tasks:
            _done, late = await asyncio.wait(tasks, timeout=deadline_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
            for lane in self._lanes:
                if lane.task in late:
                    lane.counters.dropped += len(lane.queue)
                    log.warning(
                        "output %s did not drain within %.0f s: %d steps dropped",
                        lane.sink.name,
                        deadline_s,
                        len(lane.queue),
                    )
                    lane.queue.clear()
        for lane in reversed(self._started):
            try:
                await asyncio.wait_for(lane.sink.close(), deadline_s)
            except Exception as exc:  # one sink's fault must not stop the others
                reason = str(exc) or type(exc).__name__
                log.warning("output %s: close failed: %s", lane.sink.name, reason)
        self._started.clear()
