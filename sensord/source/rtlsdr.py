"""RTL-SDR dongle source through pyrtlsdr: raw cu8 from librtlsdr's async reads.

librtlsdr hands each callback a USB buffer it reuses, so every buffer is copied into a
bounded queue at once; when the consumer falls behind the newest buffer is dropped and
counted (a ``start_sample`` jump). A dongle that is unplugged ends the async read: the
loss is logged once and the device is reopened with backoff.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from sensord.errors import SourceError
from sensord.source.base import IQBlock
from sensord.source.live import Backoff, LiveClockMixin, SampleClock

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'sensord[rtlsdr]'"


def import_pyrtlsdr() -> ModuleType:
    """The ``rtlsdr`` module, or a SourceError naming the extra that installs it."""
    try:
        import rtlsdr
    except (ImportError, AttributeError, OSError) as exc:
        raise SourceError(
            f"RTL-SDR support needs pyrtlsdr and a matching librtlsdr ({exc}): {INSTALL_HINT}"
        ) from None
    return rtlsdr


def nearest_gain_db(gain_db: float, gains_db: list[float]) -> float:
    """The tuner gain closest to ``gain_db`` (tuners only offer discrete steps)."""
    return min(gains_db, key=lambda g: abs(g - gain_db))


def resolve_device(spec: str, rtlsdr_module: ModuleType) -> int:
    """``rtlsdr`` -> 0, ``rtlsdr:N`` -> N, ``rtlsdr:SERIAL`` -> the index of that serial."""
    _, _, dev = spec.partition(":")
    if not dev:
        return 0
    if dev.isdigit():
        return int(dev)
    try:
        return int(rtlsdr_module.RtlSdr.get_device_index_by_serial(dev))
    except OSError:
        raise SourceError(f"no RTL-SDR with serial {dev!r} attached") from None


class RtlSdrSource(LiveClockMixin):
    """IQ blocks (cu8) from an RTL-SDR dongle; see the module docstring for faults."""

    def __init__(
        self,
        spec: str = "rtlsdr",
        center_hz: float = 1090e6,
        rate_hz: float = 2.4e6,
        gain_db: float | str | None = None,
        ppm: int = 0,
        bias_tee: bool = False,
        block_samples: int = 65536,
        queue_blocks: int = 32,
        backoff_max_s: float = 8.0,
    ) -> None:
        self._rtlsdr = import_pyrtlsdr()
        self.spec = spec
        self.center_hz = float(center_hz)
        self.rate_hz = float(rate_hz or 2.4e6)
        self.gain_db = None if gain_db in (None, "auto") else float(gain_db)
        self.ppm = int(ppm)
        self.bias_tee = bool(bias_tee)
        # librtlsdr wants async buffers in multiples of 512 bytes
        self.block_samples = max(256, int(block_samples) // 256 * 256)
        self._clock = SampleClock(self.rate_hz)
        self._backoff = Backoff(max_s=backoff_max_s)
        self._queue: queue.Queue[IQBlock | None] = queue.Queue(maxsize=queue_blocks)
        self._closed = threading.Event()
        self._sdr: Any = None  # pyrtlsdr.RtlSdr while open (pyrtlsdr has no types)
        self._lost_at: float | None = None  # monotonic time of the last loss, while unmended
        self._reopened_at = 0.0  # monotonic time of the last read started
        self.applied_gain_db: float | None = None

    def _open(self):
        index = resolve_device(self.spec, self._rtlsdr)
        sdr = self._rtlsdr.RtlSdr(device_index=index)
        try:
            sdr.sample_rate = self.rate_hz
            sdr.center_freq = self.center_hz
            if self.ppm:
                sdr.freq_correction = self.ppm
            if self.gain_db is None:
                sdr.gain = "auto"
            else:
                self.applied_gain_db = nearest_gain_db(
                    self.gain_db, [g / 10 for g in sdr.get_gains()]
                )
                sdr.gain = self.applied_gain_db
            sdr.set_bias_tee(self.bias_tee)
        except BaseException:
            sdr.close()
            raise
        return sdr

    def _on_buffer(self, buffer, _context) -> None:
        """librtlsdr callback: copy the reused USB buffer now, or count it dropped."""
        if self._closed.is_set():
            self._sdr.cancel_read_async()
            return
        if self._lost_at is not None:  # streaming again: the outage is a counted gap
            outage_s = self._reopened_at - self._lost_at
            self.stats.reconnects += 1
            self._clock.drop_outage(outage_s)
            self._lost_at = None
            log.warning("RTL-SDR %s streaming again after %.1f s", self.spec, outage_s)
        data = np.frombuffer(buffer, dtype=np.uint8).copy()
        n = data.shape[0] // 2
        if self._queue.full():
            self._clock.drop(n)
            return
        start = self._clock.take(n)
        self._queue.put(IQBlock(data[: 2 * n], "cu8", start, self.rate_hz, self._clock.utc(start)))

    def _read_device(self) -> None:
        """Reader thread: open, stream until the device fails or close, reopen with backoff.

        A loss is logged once: a device that opens but delivers nothing is the same outage,
        retried with growing delays; the backoff restarts once samples flowed.
        """
        reported = False  # the current outage has been logged
        while not self._closed.is_set():
            try:
                self._sdr = self._open()
            except (OSError, SourceError) as exc:
                if not reported:
                    log.warning("RTL-SDR %s unavailable (%s); retrying", self.spec, exc)
                    reported = True
                self._closed.wait(self._backoff.next_delay_s())
                continue
            received = self.stats.samples + self.stats.drops
            self._reopened_at = time.monotonic()
            error: OSError | None = None
            try:
                self._sdr.read_bytes_async(self._on_buffer, 2 * self.block_samples)
            except OSError as exc:
                error = exc
            self._close_device()
            if self._closed.is_set():
                break
            if self.stats.samples + self.stats.drops > received:
                self._lost_at = time.monotonic()
                self._backoff.reset()
                log.warning("RTL-SDR %s lost (%s); reopening", self.spec, error or "read ended")
                reported = True
                continue
            if not reported:
                log.warning("RTL-SDR %s delivers no samples (%s); retrying", self.spec, error)
                reported = True
            self._closed.wait(self._backoff.next_delay_s())
        self._close_device()
        self._queue.put(None)

    def _close_device(self) -> None:
        sdr, self._sdr = self._sdr, None
        if sdr is not None:
            try:
                sdr.close()
            except OSError as exc:
                log.debug("closing RTL-SDR: %s", exc)

    def blocks(self) -> Iterator[IQBlock]:
        """cu8 blocks of ``block_samples`` samples until ``close``."""
        reader = threading.Thread(target=self._read_device, name="rtlsdr-reader", daemon=True)
        reader.start()
        while True:
            block = self._queue.get()
            if block is None:
                return
            yield block

    def close(self) -> None:
        """Stop the async read (from the next callback) and end ``blocks``."""
        self._closed.set()
