"""Prometheus metrics of a running sensor, served over HTTP (127.0.0.1 by default)."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from sensord.errors import UserError
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
        self._state_by_track: dict[str, TrackStatus] = {}
        self._max_range_seen_m = 0.0

    def observe_samples(self, n_samples: int) -> None:
        self.samples.inc(n_samples)

    def observe_frames(self, frames: np.ndarray) -> None:
        """Count a batch of frames by DF and correction; histogram their levels."""
        for df, n in zip(*np.unique(frames["df"], return_counts=True), strict=True):
            self.frames.labels(df=str(int(df))).inc(int(n))
        for bits, n in zip(*np.unique(frames["corrected_bits"], return_counts=True), strict=True):
            if bits:
                self.corrected.labels(bits=str(int(bits))).inc(int(n))
        for level in frames["signal_dbfs"]:
            self.signal_dbfs.observe(float(level))

    def observe_updates(self, updates: list[TrackUpdate], ranges_m: list[float | None]) -> None:
        """Track states and the largest range seen (``ranges_m`` aligned with ``updates``)."""
        for u, range_m in zip(updates, ranges_m, strict=True):
            if u.status is TrackStatus.DROPPED:
                self._state_by_track.pop(u.track_id, None)
            else:
                self._state_by_track[u.track_id] = u.status
            if range_m is not None and range_m > self._max_range_seen_m:
                self._max_range_seen_m = range_m
                self.max_range_m.set(range_m)
        for state in (TrackStatus.TENTATIVE, TrackStatus.CONFIRMED, TrackStatus.COASTING):
            n = sum(1 for s in self._state_by_track.values() if s is state)
            self.tracks.labels(state=state.value).set(n)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread; returns the bound port."""
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise UserError(
                f"metrics: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        return server.server_address[1]
