"""The daemon's optional outputs ([outputs] in the configuration): SBS and Beast over TCP,
aircraft.json, Prometheus metrics, Home Assistant discovery through the publisher. They
run on the event loop beside the publisher."""

from __future__ import annotations

from sensord.chain import ChainOutput
from sensord.errors import UserError
from sensord.geo import Site
from sensord.metrics import SensorMetrics
from sensord.outputs import beast, sbs
from sensord.outputs.aircraft_json import AircraftJsonWriter
from sensord.outputs.hass import HassDiscovery
from sensord.outputs.step import StepOutputs
from sensord.outputs.tcp import BroadcastServer
from sensord.publish.mqtt import Publisher


class DaemonOutputs:
    """What ``[outputs]`` asks for; ``on_step`` is the pipeline's hook."""

    def __init__(
        self, cfg: dict, site: Site, publisher: Publisher | None = None, node: str = ""
    ) -> None:
        bind = cfg["bind"]
        self.publisher = publisher
        self.hass = None
        if cfg["hass_discovery"]:
            if publisher is None:
                raise UserError("[outputs] hass_discovery needs [mqtt] enabled")
            self.hass = HassDiscovery(node, cfg["hass_max_trackers"], cfg["hass_prefix"])
        self.sbs = BroadcastServer(bind, cfg["sbs_port"]) if cfg["sbs_port"] else None
        self.beast = BroadcastServer(bind, cfg["beast_port"]) if cfg["beast_port"] else None
        writer = AircraftJsonWriter(cfg["aircraft_json_dir"]) if cfg["aircraft_json_dir"] else None
        metrics = None
        if cfg["metrics_port"]:
            metrics = SensorMetrics()
            metrics.serve(cfg["metrics_port"], bind)
        self.step_outputs = StepOutputs(site, writer, metrics)

    async def start(self) -> None:
        for server in (self.sbs, self.beast):
            if server is not None:
                await server.start()

    def on_step(self, step: ChainOutput) -> None:
        self.step_outputs.on_step(step)
        if self.sbs is not None and step.updates:
            self.sbs.broadcast(sbs.encode_updates(step.updates))
        if self.beast is not None and len(step.frames):
            self.beast.broadcast(beast.encode_frames(step.frames))
        if self.hass is not None and self.publisher is not None and step.updates:
            self.publisher.extra(self.hass.messages(step.updates))

    async def close(self, samples: int) -> None:
        self.step_outputs.finish(samples)
        for server in (self.sbs, self.beast):
            if server is not None:
                await server.close()
