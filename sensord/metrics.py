"""Prometheus metrics of a running sensor, served over HTTP (127.0.0.1 by default)."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from sensord.errors import UserError
from sensord.sinks.table import TrackTable
from sensord.tracker.update import TrackStatus, TrackUpdate


class SensorMetrics:
    """The sensor's counters and gauges in their own registry (no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.samples = Counter("sensord_samples", "IQ samples processed", registry=r)
        self.frames = Counter(
            "sensord_frames", "Mode S frames with a valid CRC", ["df"], registry=r
        )
        self.corrected = Counter(
            "sensord_corrected_frames", "frames repaired by error correction", ["bits"], registry=r
        )
        self.drops = Counter("sensord_drops", "items dropped", ["stage"], registry=r)
        self.tracks = Gauge("sensord_tracks", "tracks by state", ["state"], registry=r)
        self.queue_depth = Gauge(
            "sensord_queue_depth", "items waiting in a queue", ["queue"], registry=r
        )
        self.max_range_m = Gauge(
            "sensord_max_range_m", "largest range of a tracked position, m", registry=r
        )
        self.signal_dbfs = Histogram(
            "sensord_signal_dbfs",
            "frame signal level, dBFS",
            buckets=(-40, -35, -30, -25, -20, -15, -10, -5, -3, -1, 0),
            registry=r,
        )
        self._own_table = TrackTable()  # only for observe_updates without a shared table
        self._max_range_seen_m = 0.0
        self._samples_seen = 0

    def observe_samples(self, n_samples: int) -> None:
        """``n_samples`` more samples went through the chain."""
        self.samples.inc(n_samples)
        self._samples_seen += n_samples

    def observe_samples_total(self, total: int) -> None:
        """The chain's running sample count (a step's ``samples``): the counter follows it."""
        if total > self._samples_seen:
            self.observe_samples(total - self._samples_seen)

    def observe_frames(self, frames: np.ndarray) -> None:
        """Count a batch of frames by DF and correction; histogram their levels."""
        for df, n in zip(*np.unique(frames["df"], return_counts=True), strict=True):
            self.frames.labels(df=str(int(df))).inc(int(n))
        for bits, n in zip(*np.unique(frames["corrected_bits"], return_counts=True), strict=True):
            if bits:
                self.corrected.labels(bits=str(int(bits))).inc(int(n))
        for level in frames["signal_dbfs"]:
            self.signal_dbfs.observe(float(level))

    def observe_ranges(self, ranges_m: list[float | None]) -> None:
        """The largest range of a tracked position seen so far."""
        for range_m in ranges_m:
            if range_m is not None and range_m > self._max_range_seen_m:
                self._max_range_seen_m = range_m
                self.max_range_m.set(range_m)

    def observe_tracks(self, table: TrackTable) -> None:
        """Live tracks by state, from the shared track table."""
        counts = table.count_by_status()
        for state in (TrackStatus.TENTATIVE, TrackStatus.CONFIRMED, TrackStatus.COASTING):
            self.tracks.labels(state=state.value).set(counts.get(state, 0))

    def observe_updates(self, updates: list[TrackUpdate], ranges_m: list[float | None]) -> None:
        """Track states (into this metrics' own table) and ranges, without a fan-out."""
        self._own_table.apply(updates)
        self.observe_tracks(self._own_table)
        self.observe_ranges(ranges_m)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread; returns the bound port."""
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise UserError(
                f"metrics: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        return server.server_address[1]
