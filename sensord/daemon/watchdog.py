"""The watchdog: a heartbeat that only beats while samples go all the way through.

A thread of its own (it must work when the event loop itself is stuck) checks, every
tick, that blocks keep coming from the source, that their steps reached the sinks'
fan-out, that no sink is stuck in one step, and that the event loop still answers. It
sends READY=1 once that holds the first time and WATCHDOG=1 at every tick while it does:
a daemon that stops delivering loses its heartbeat, and systemd (``WatchdogSec``)
restarts it.

A source outage (a dongle unplugged) may heal by itself: the heartbeat stops and systemd
decides. An internal stall (a sink stuck in one step, or the event loop not answering) cannot:
the heartbeat stops after the grace, and after twice the grace the daemon logs it and
exits with ``EXIT_STALLED``, so ``Restart=on-failure`` restarts it even without a
watchdog.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

from sensord.daemon.notify import Notifier
from sensord.daemon.pipeline import Pipeline

log = logging.getLogger(__name__)

EXIT_STALLED = 70  # EX_SOFTWARE


def _exit_now(code: int) -> None:
    for stream in (sys.stderr, sys.stdout):
        stream.flush()
    os._exit(code)


class Watchdog:
    """Heartbeat and stall exit for one pipeline; ``start`` from the event loop's thread."""

    def __init__(
        self,
        notifier: Notifier,
        pipeline: Pipeline,
        exit_on_stall: Callable[[int], None] = _exit_now,
    ) -> None:
        self.notifier = notifier
        self.pipeline = pipeline
        self.grace_s = pipeline.stall_grace_s
        beat = notifier.watchdog_interval_s  # half of WatchdogSec: beat twice as often
        self.tick_s = min(beat / 2 if beat is not None else 1.0, self.grace_s / 4)
        self.exit_on_stall = exit_on_stall
        self.ready = False
        self.last_pong = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.last_pong = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _pong(self) -> None:
        self.last_pong = time.monotonic()

    def internal_stall(self, limit_s: float) -> str | None:
        """What has been stuck inside the daemon for more than ``limit_s``, or None."""
        if time.monotonic() - self.last_pong > limit_s:  # first: it also stops every sink
            return f"event loop unresponsive for more than {limit_s:g} s"
        stuck = self.pipeline.fanout.stalled(limit_s)
        if stuck:
            return f"output {', '.join(stuck)} stuck in one step for more than {limit_s:g} s"
        return None

    def check(self) -> bool:
        """One tick: beat if healthy; exit on an internal stall. Returns healthy."""
        stall = self.internal_stall(2 * self.grace_s)
        if stall is not None:
            log.error("stalled: %s; exiting so that the service manager restarts sensord", stall)
            self.exit_on_stall(EXIT_STALLED)
            return False
        healthy = self.pipeline.healthy() and self.internal_stall(self.grace_s) is None
        if healthy and not self.ready:
            self.ready = True
            self.notifier.ready("samples flowing")
        elif healthy and self.notifier.watchdog_interval_s is not None:
            self.notifier.watchdog()
        return healthy

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            loop = self._loop
            if loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(self._pong)
                except RuntimeError:  # the loop closed meanwhile
                    return
            self.check()
