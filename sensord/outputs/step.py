"""The optional file/metrics outputs fed from every chain step, shared by ``replay`` and the
daemon: aircraft.json (rewritten at most once a second) and Prometheus metrics."""

from __future__ import annotations

import time

from sensord.chain import ChainOutput
from sensord.geo import Site
from sensord.metrics import SensorMetrics
from sensord.outputs.aircraft_json import AircraftJsonWriter
from sensord.tracker.update import TrackUpdate

WRITE_PERIOD_S = 1.0


def range_m(site: Site, u: TrackUpdate) -> float | None:
    """Horizontal distance from the site to the track's position, m."""
    if u.lat_deg is None or u.lon_deg is None:
        return None
    east_m, north_m, _ = site.to_enu(u.lat_deg, u.lon_deg, site.alt_m)
    return float((east_m**2 + north_m**2) ** 0.5)


class StepOutputs:
    """aircraft.json and metrics from chain steps; either may be absent."""

    def __init__(
        self, site: Site, writer: AircraftJsonWriter | None, metrics: SensorMetrics | None
    ) -> None:
        self.site = site
        self.writer = writer
        self.metrics = metrics
        self.now_s = 0.0
        self._last_write = 0.0

    def on_step(self, step: ChainOutput) -> None:
        """Feed one step's frames and updates; rewrite aircraft.json when a second has passed."""
        if len(step.frames):
            self.now_s = max(self.now_s, float(step.frames["t_s"][-1]))
        if step.updates:
            self.now_s = max(self.now_s, max(u.t_s for u in step.updates))
        if self.writer:
            self.writer.add_frames(
                [int(i) for i in step.frames["icao"]],
                [float(v) for v in step.frames["signal_dbfs"]],
            )
            self.writer.add_updates(step.updates)
            if time.monotonic() - self._last_write >= WRITE_PERIOD_S:
                self.writer.write(self.now_s)
                self._last_write = time.monotonic()
        if self.metrics:
            self.metrics.observe_frames(step.frames)
            self.metrics.observe_updates(
                step.updates, [range_m(self.site, u) for u in step.updates]
            )

    def finish(self, samples: int) -> None:
        """Last aircraft.json and the sample count."""
        if self.writer:
            self.writer.write(self.now_s)
        if self.metrics:
            self.metrics.observe_samples(samples)
