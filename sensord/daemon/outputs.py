"""The daemon's sinks from its configuration: MQTT ([mqtt]) and the optional outputs
([outputs]: SBS and Beast over TCP, aircraft.json, Prometheus metrics, Home Assistant
discovery). All share one track table, the fan-out's. An optional output's modules are
imported only when it is configured (each costs resident memory for the daemon's life)."""

from __future__ import annotations

from collections.abc import Callable

from sensord.config import Config
from sensord.errors import UserError
from sensord.geo import Site
from sensord.publish.mqtt import MqttSettings
from sensord.sinks.base import Sink
from sensord.sinks.files import MetricsSink
from sensord.sinks.mqtt import HassSink, MqttSink
from sensord.sinks.table import TrackTable


def daemon_sinks(
    cfg: Config | dict,
    site: Site,
    table: TrackTable,
    mqtt_password: str | None = None,
    stats_source: Callable[[], dict] | None = None,
) -> list[Sink]:
    """The sinks ``cfg`` asks for, MQTT first (Home Assistant publishes through it)."""
    mq, out = cfg["mqtt"], cfg["outputs"]
    sinks: list[Sink] = []
    mqtt = None
    if mq["enabled"]:
        detections = None
        if mq["publish_detections"]:
            from sensord.fusion.publishing import DetectionStream

            detections = DetectionStream(
                mq["node"], site, mq["detections_schema"], mq["detection_shards"]
            )
        mqtt = MqttSink(
            MqttSettings.from_config(mq, mqtt_password),
            table,
            stats_source,
            stats_interval_s=mq["stats_interval_s"],
            publish_frames=mq["publish_frames"],
            frames_schema=mq["frames_schema"],
            detection_stream=detections,
        )
        sinks.append(mqtt)
    if out["hass_discovery"]:
        if mqtt is None:
            raise UserError("[outputs] hass_discovery needs [mqtt] enabled")
        from sensord.outputs.hass import HassDiscovery

        hass = HassDiscovery(mq["node"], out["hass_max_trackers"], out["hass_prefix"], mq["prefix"])
        sinks.append(HassSink(hass, mqtt.publisher))
    bind = out["bind"]
    sinks += _tcp_sinks(bind, out["sbs_port"], out["beast_port"])
    if out["aircraft_json_dir"]:
        from sensord.outputs.aircraft_json import AircraftJsonWriter
        from sensord.sinks.files import AircraftJsonSink

        sinks.append(AircraftJsonSink(AircraftJsonWriter(out["aircraft_json_dir"], table)))
    if out["metrics_port"]:
        from sensord.metrics import SensorMetrics  # prometheus_client: only when served

        sinks.append(MetricsSink(SensorMetrics(), site, table, out["metrics_port"], bind))
    return sinks


def _tcp_sinks(bind: str, sbs_port: int, beast_port: int) -> list[Sink]:
    """The SBS and Beast servers whose port is set (0: not served)."""
    if not (sbs_port or beast_port):
        return []
    from sensord.outputs.tcp import BroadcastServer
    from sensord.sinks.tcp import BeastSink, SbsSink

    servers = ((sbs_port, SbsSink), (beast_port, BeastSink))
    return [sink(BroadcastServer(bind, port)) for port, sink in servers if port]
