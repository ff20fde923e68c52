"""Watched zones as a ``Sink``: entering and leaving are events on MQTT, counted in metrics,
and shown on the web picture."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from sensord.sinks.base import Step
from sensord.web.zones import Zone, ZoneEvent, ZoneWatcher

log = logging.getLogger("sensord.zones")


class ZoneSink:
    """Runs the ``ZoneWatcher`` on every step and hands its events to the listeners."""

    name = "zones"
    queue_max = 256

    def __init__(self, zones: list[Zone], registry=None) -> None:
        self.watcher = ZoneWatcher(zones)
        self.listeners: list[Callable[[list[ZoneEvent]], None]] = []
        self._counter = self._gauge = None
        if registry is not None:
            from prometheus_client import Counter, Gauge

            self._counter = Counter(
                "sensord_zone_events",
                "tracks entering/leaving a zone",
                ["zone", "event"],
                registry=registry,
            )
            self._gauge = Gauge(
                "sensord_zone_tracks", "tracks inside a zone now", ["zone"], registry=registry
            )
            for z in zones:
                self._gauge.labels(zone=z.name).set(0)

    async def start(self) -> None:
        return None

    async def handle(self, step: Step) -> None:
        self.feed(step)

    async def close(self) -> None:
        return None

    def feed(self, step: Step) -> list[ZoneEvent]:
        """The zone events of one step, handed to the listeners and counted."""
        events = self.watcher.update(step.updates)
        if not events:
            return events
        for e in events:
            log.info("%s %s %s", e.event, e.zone, e.icao or e.track_id)
            if self._counter is not None:
                self._counter.labels(zone=e.zone, event=e.event).inc()
        if self._gauge is not None:
            for zone, n in self.watcher.counts.inside.items():
                self._gauge.labels(zone=zone).set(n)
        for listener in self.listeners:
            listener(events)
        return events


def mqtt_listener(publisher) -> Callable[[list[ZoneEvent]], None]:
    """Zone events to ``<prefix>/<node>/events`` through the publisher's queue."""
    topic = f"{publisher.settings.base}/events"

    def publish(events: list[ZoneEvent]) -> None:
        publisher.extra(
            [
                (topic, json.dumps(e.to_dict(), separators=(",", ":")).encode(), False)
                for e in events
            ]
        )

    return publish
