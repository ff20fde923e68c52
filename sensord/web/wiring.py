"""The web picture and the watched zones as one bundle for a command to wire in.

``WebOutputs.sinks`` are plain ``Sink``s for a fan-out; ``on_step`` feeds them directly
for a caller without one (they only update in-memory state, nothing blocks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sensord.geo import Site
from sensord.sinks.base import Step
from sensord.web.settings import WebSettings

if TYPE_CHECKING:  # the picture's and the zones' modules: imported when configured
    from sensord.web.picture import Receiver
    from sensord.web.zone_sink import ZoneSink
    from sensord.web.zones import Zone


class WebOutputs:
    """The zone watcher (if zones are configured) and the web sink (if it is served)."""

    def __init__(
        self,
        settings: WebSettings | None,
        zones: list[Zone],
        site: Site,
        node: str,
        publisher=None,
        registry=None,
        announce: bool = True,
        receivers: list[Receiver] | None = None,
    ) -> None:
        """``receivers``: the sensors drawn on the map (default: the node itself at site)."""
        self.web = None
        self.zones: ZoneSink | None = None
        if zones:
            from sensord.web.zone_sink import ZoneSink

            self.zones = ZoneSink(zones, registry)
        if settings is not None:
            from sensord.web.picture import Receiver
            from sensord.web.sink import WebSink  # aiohttp only when served

            if receivers is None:
                receivers = [Receiver(node, site.lat_deg, site.lon_deg, site.alt_m)]
            self.web = WebSink(settings, node, receivers, zones, announce)
            if registry is not None:
                registry.register(WebCollector(self.web))
        if self.zones is not None:
            if publisher is not None:
                from sensord.web.zone_sink import mqtt_listener

                self.zones.listeners.append(mqtt_listener(publisher))
            if self.web is not None:
                self.zones.listeners.append(self.web.zone_events)

    @classmethod
    def from_config(
        cls, cfg: Any, listen: str | None, site: Site, node: str, publisher=None, registry=None
    ) -> WebOutputs:
        """From ``[web]`` and ``[zones]``; ``listen`` is the ``--web`` flag."""
        settings = WebSettings.from_config(cfg.get("web", {}), listen)
        return cls(settings, cfg.get("zones", []), site, node, publisher, registry)

    @property
    def sinks(self) -> list:
        return [s for s in (self.zones, self.web) if s is not None]

    async def start(self) -> None:
        for sink in self.sinks:
            await sink.start()

    def on_step(self, step) -> None:
        """Feed a chain step (``ChainOutput`` or ``Step``) to the zones and the picture."""
        if not self.sinks:
            return
        if not isinstance(step, Step):
            step = Step(frames=step.frames, detections=step.detections, updates=step.updates)
        if self.web is not None:
            self.web.feed(step)
        if self.zones is not None:
            self.zones.feed(step)

    async def close(self) -> None:
        for sink in self.sinks:
            await sink.close()


class WebCollector:
    """The web server's counters as Prometheus metrics (``sensord_web_*``)."""

    def __init__(self, sink) -> None:
        self.sink = sink

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self.sink.stats()
        yield GaugeMetricFamily("sensord_web_pages", "pages connected now", stats["clients"])
        for key, doc in (
            ("messages_sent", "messages sent to pages"),
            ("messages_dropped", "messages dropped for pages too slow to read them"),
            ("resyncs", "snapshots sent to pages that fell behind"),
            ("refused", "pages refused over max_clients"),
            ("requests", "HTTP requests served"),
            ("malformed_requests", "requests the HTTP parser rejected (400)"),
        ):
            yield CounterMetricFamily(f"sensord_web_{key}", doc, stats[key])
