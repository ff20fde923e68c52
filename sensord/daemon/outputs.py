"""The daemon's sinks from its configuration: MQTT ([mqtt]) and the optional outputs
([outputs]: SBS and Beast over TCP, aircraft.json, Prometheus metrics, Home Assistant
discovery). All share one track table, the fan-out's."""

from __future__ import annotations

from collections.abc import Callable

from sensord.config import Config
from sensord.errors import UserError
from sensord.fusion.publishing import DetectionStream
from sensord.geo import Site
from sensord.outputs.aircraft_json import AircraftJsonWriter
from sensord.outputs.hass import HassDiscovery
from sensord.outputs.tcp import BroadcastServer
from sensord.publish.mqtt import MqttSettings
from sensord.sinks.base import Sink
from sensord.sinks.files import AircraftJsonSink, MetricsSink
from sensord.sinks.mqtt import HassSink, MqttSink
from sensord.sinks.table import TrackTable
from sensord.sinks.tcp import BeastSink, SbsSink


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
        mqtt = MqttSink(
            MqttSettings.from_config(mq, mqtt_password),
            table,
            stats_source,
            stats_interval_s=mq["stats_interval_s"],
            publish_frames=mq["publish_frames"],
            frames_schema=mq["frames_schema"],
            detection_stream=DetectionStream(
                mq["node"], site, mq["detections_schema"], mq["detection_shards"]
            )
            if mq["publish_detections"]
            else None,
        )
        sinks.append(mqtt)
    if out["hass_discovery"]:
        if mqtt is None:
            raise UserError("[outputs] hass_discovery needs [mqtt] enabled")
        hass = HassDiscovery(mq["node"], out["hass_max_trackers"], out["hass_prefix"], mq["prefix"])
        sinks.append(HassSink(hass, mqtt.publisher))
    bind = out["bind"]
    if out["sbs_port"]:
        sinks.append(SbsSink(BroadcastServer(bind, out["sbs_port"])))
    if out["beast_port"]:
        sinks.append(BeastSink(BroadcastServer(bind, out["beast_port"])))
    if out["aircraft_json_dir"]:
        sinks.append(AircraftJsonSink(AircraftJsonWriter(out["aircraft_json_dir"], table)))
    if out["metrics_port"]:
        from sensord.metrics import SensorMetrics  # prometheus_client: only when served

        sinks.append(MetricsSink(SensorMetrics(), site, table, out["metrics_port"], bind))
    return sinks
