"""aircraft.json (tar1090) and Prometheus metrics as sinks."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sensord.geo import Site
from sensord.sinks.base import Step
from sensord.sinks.table import TrackTable
from sensord.tracker.update import TrackUpdate

if TYPE_CHECKING:  # prometheus_client (10 MB) is imported only when metrics are served
    from sensord.metrics import SensorMetrics
    from sensord.outputs.aircraft_json import AircraftJsonWriter

WRITE_PERIOD_S = 1.0


def range_m(site: Site, u: TrackUpdate) -> float | None:
    """Horizontal distance from the site to the track's position, m."""
    if u.lat_deg is None or u.lon_deg is None:
        return None
    east_m, north_m, _ = site.to_enu(u.lat_deg, u.lon_deg, site.alt_m)
    return float((east_m**2 + north_m**2) ** 0.5)


def step_time_s(step: Step, now_s: float) -> float:
    """The sample clock after ``step``: its newest frame or update, never going back."""
    if len(step.frames):
        now_s = max(now_s, float(step.frames["t_s"][-1]))
    if step.updates:
        now_s = max(now_s, max(u.t_s for u in step.updates))
    return now_s


class AircraftJsonSink:
    """Rewrites ``aircraft.json`` at most once per ``period_s`` from the shared track table
    (the writer must be built with it: ``AircraftJsonWriter(directory, table)``).

    A write error (directory removed, disk full) raises: the fan-out counts it, logs it
    once and retries with backoff; the chain and the other sinks go on.
    """

    name = "aircraft_json"
    queue_max = 64

    def __init__(self, writer: AircraftJsonWriter, period_s: float = WRITE_PERIOD_S) -> None:
        self.writer = writer
        self.period_s = period_s
        self.now_s = 0.0
        self._last_write = 0.0

    async def start(self) -> None:
        return None

    async def handle(self, step: Step) -> None:
        self.now_s = step_time_s(step, self.now_s)
        if len(step.frames):
            self.writer.add_frames(
                [int(i) for i in step.frames["icao"]],
                [float(v) for v in step.frames["signal_dbfs"]],
            )
        if time.monotonic() - self._last_write >= self.period_s:
            self._last_write = time.monotonic()
            self.writer.write(self.now_s)

    async def close(self) -> None:
        self.writer.write(self.now_s)


class MetricsSink:
    """Prometheus counters live: samples, frames, ranges; tracks by state from the table."""

    name = "metrics"
    queue_max = 64

    def __init__(
        self,
        metrics: SensorMetrics,
        site: Site,
        table: TrackTable,
        port: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.metrics = metrics
        self.site = site
        self.table = table
        self.port = port
        self.host = host

    async def start(self) -> None:
        """Serve ``/metrics`` on ``host:port`` when a port is given (0: any free port, kept in
        ``self.port``); a port in use is a ``UserError``."""
        if self.port is not None:
            self.port = self.metrics.serve(self.port, self.host)

    async def handle(self, step: Step) -> None:
        self.metrics.observe_samples_total(step.samples)
        if len(step.frames):
            self.metrics.observe_frames(step.frames)
        if step.updates:
            self.metrics.observe_ranges([range_m(self.site, u) for u in step.updates])
            self.metrics.observe_tracks(self.table)

    async def close(self) -> None:
        return None
