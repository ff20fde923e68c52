"""``sensord fuse -c fuse.toml``: the fusion node as an MQTT service.

Subscribes under ``[mqtt] prefix`` to every node's ``info``, ``status`` and detections
(``+`` for every node, or the ``[fusion] nodes`` list; ``detections/<k>`` for the
``[fusion] shards`` this worker takes) and to radar nodes' ``radar/detections`` and
``radar/map`` (the picture for the web page; radar CPIs go to shard 0's worker). It feeds
them to a ``Fuser`` and hands the fused track updates to the same sinks a receiver has,
through one fan-out: MQTT (tracks, events and status under ``<prefix>/<[mqtt] node>/``)
and whatever ``[outputs]`` asks for (aircraft.json, SBS, Beast, metrics, Home
Assistant). Its clock starts at this host's UTC and is then the data's: the newest UTC
taken plus the wall time since. Each node's UTC is checked against it (a node off by more
than ``[fusion] max_clock_offset_s`` is refused, ``Fuser``); if no node agrees with it
before anything was taken (a replay of old recordings, or this host's clock is off), it
moves to the nodes' UTC. aiomqtt does not reconnect by itself: the subscription is
re-made with backoff, logged once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt

from sensord import config as config_mod
from sensord.daemon.outputs import daemon_sinks
from sensord.errors import UserError
from sensord.fusion.fuser import Fuser, FusionConfig
from sensord.geo import Site
from sensord.publish.mqtt import BACKOFF_S, MqttSettings
from sensord.publish.transport import mqtt_client
from sensord.radar.map_image import PNG_SIGNATURE
from sensord.radar.publishing import DETECTIONS_KIND, MAP_MAX_BYTES, MAP_TOPIC
from sensord.sinks.base import Step
from sensord.sinks.fanout import FanOut
from sensord.sinks.files import MetricsSink
from sensord.sinks.mqtt import MqttSink
from sensord.sinks.table import TrackTable
from sensord.web.picture import Receiver
from sensord.web.wiring import WebOutputs

log = logging.getLogger(__name__)


TICK_S = 0.05  # releases and coasting with a reorder window
TICK_NO_WINDOW_S = 0.02
FLUSH_DEADLINE_S = 5.0


def _site(text: str) -> Site | None:
    if not text:
        return None
    try:
        lat, lon, alt = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"[fusion] site: expected 'LAT,LON,ALT_M', got {text!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and math.isfinite(alt)):
        raise UserError(f"[fusion] site: position out of range: {text!r}")
    return Site(lat, lon, alt)


def subscriptions(
    prefix: str, nodes: list[str], shards: list[int], mlat: bool = False
) -> list[str]:
    """The topic filters of a fusion worker (with ``mlat``, the nodes' frames too)."""
    who = nodes or ["+"]
    detections = [f"detections/{k}" for k in shards] if shards else ["detections"]
    radar = () if shards and 0 not in shards else (DETECTIONS_KIND, MAP_TOPIC)
    kinds = ("info", "status", *detections, *radar, *(("frames",) if mlat else ()))
    return [f"{prefix}/{n}/{kind}" for n in who for kind in kinds]


@dataclass
class DataClock:
    """The fusion clock: newest UTC seen, advanced by wall time while nothing newer comes."""

    newest_utc: float = -math.inf
    at_monotonic: float = 0.0
    wall: Callable[[], float] = time.monotonic  # seconds, any epoch (a test's simulated one)

    def seen(self, utc: float) -> None:
        if utc > self.newest_utc:
            self.newest_utc = utc
            self.at_monotonic = self.wall()

    def restart(self, utc: float) -> None:
        """The clock is ``utc`` now (it may go back: ``Fuser.on_clock_restart``)."""
        self.newest_utc = utc
        self.at_monotonic = self.wall()

    def now(self) -> float:
        if self.newest_utc == -math.inf:
            return -math.inf
        return self.newest_utc + (self.wall() - self.at_monotonic)


class FusionService:
    """Subscriber, fuser and publisher of one fusion worker."""

    def __init__(
        self, cfg: config_mod.Config, password: str | None, web_listen: str | None = None
    ) -> None:
        fc, tr, mq = cfg["fusion"], cfg["tracker"], cfg["mqtt"]
        if not all(isinstance(n, str) and n and "/" not in n for n in fc["nodes"]):
            raise UserError("[fusion] nodes: a list of node names")
        if not all(isinstance(k, int) and k >= 0 for k in fc["shards"]):
            raise UserError("[fusion] shards: a list of shard numbers (0, 1, ...)")
        self.fuser = Fuser(
            FusionConfig(
                site=_site(fc["site"]),
                reorder_window_s=fc["reorder_window_s"],
                dedup_window_s=fc["dedup_window_s"],
                max_node_range_km=fc["max_node_range_km"],
                max_target_range_km=fc["max_target_range_km"],
                max_clock_offset_s=fc["max_clock_offset_s"],
            ),
            tr,  # the configuration's [tracker]: the tracker's own TrackerConfig
        )
        self.settings = MqttSettings.from_config(mq, password)
        self.topics = subscriptions(self.settings.prefix, fc["nodes"], fc["shards"], fc["mlat"])
        self.mlat = None
        if fc["mlat"]:
            from sensord.mlat.engine import MlatConfig
            from sensord.mlat.feed import MlatFeed

            hold_s = min(1.0, max(fc["reorder_window_s"] / 2, 0.2))
            self.mlat = MlatFeed(self.fuser, MlatConfig(hold_s=hold_s))
            self.mlat.admit = self.fuser.clock_agrees  # no frames of a node with a wrong clock
        self.table = TrackTable()
        # the fused picture republishes no detections; range metrics are from the site
        sink_cfg = {**cfg, "mqtt": {**mq, "publish_detections": False, "publish_frames": False}}
        metrics_site = self.fuser.config.site or Site(0.0, 0.0, 0.0)
        sinks = daemon_sinks(sink_cfg, metrics_site, self.table, password, self.statistics)
        publisher = next((s.publisher for s in sinks if isinstance(s, MqttSink)), None)
        metrics = next((s.metrics for s in sinks if isinstance(s, MetricsSink)), None)
        # the air picture ([web], --web) and the watched zones ([zones])
        self.web = WebOutputs.from_config(
            cfg, web_listen, metrics_site, mq["node"], publisher, metrics and metrics.registry
        )
        self.fanout = FanOut(sinks + self.web.sinks, self.table)
        self._receivers_shown_at = 0.0
        self.clock = DataClock()
        self.clock.restart(time.time())  # this host's UTC, until the nodes' says otherwise
        self.fuser.on_clock_restart = self.clock.restart
        self.fuser.step(self.clock.now())  # the nodes' UTCs are checked from the first message
        # without a reorder window detections go out at the next tick: a short one
        self.tick_s = TICK_S if fc["reorder_window_s"] > 0 else TICK_NO_WINDOW_S
        self.messages = 0
        self.subscriber_connected = False
        self._stopping = asyncio.Event()

    def statistics(self) -> dict:
        return {
            "role": "fusion",
            "messages": self.messages,
            "subscribed": self.subscriber_connected,
            **self.fuser.statistics(),
            "sinks": self.fanout.status(),
            **({"mlat": self.mlat.status()} if self.mlat is not None else {}),
        }

    def on_message(self, topic: str, payload: bytes) -> None:
        """One message of the subscription: info, status or detections of a node."""
        self.messages += 1
        parts = topic.split("/")
        prefix_len = len(self.settings.prefix.split("/"))
        if len(parts) < prefix_len + 2:
            return
        node, kind = parts[prefix_len], parts[prefix_len + 1]
        if node == self.settings.node:
            return  # our own status
        if kind == "info":
            if payload:
                self.fuser.node_info(node, payload)
                if self.mlat is not None:
                    self.mlat.node_info_payload(node, payload)
        elif kind == "frames":
            if self.mlat is not None and self.mlat.frames_payload(node, payload):
                self.clock.seen(self.fuser.newest_utc)
        elif kind == "status":
            if payload:
                self.fuser.node_status(node, payload)
        elif kind == "detections" and self.fuser.ingest(node, payload):
            self.clock.seen(self.fuser.newest_utc)
        elif kind == "radar" and len(parts) == prefix_len + 3:
            self._radar_message(node, parts[-1], payload)

    def _radar_message(self, node: str, what: str, payload: bytes) -> None:
        """A radar node's CPI, or its range-Doppler picture for the web page."""
        if what == "detections":
            if self.fuser.ingest_radar(node, payload):
                self.clock.seen(self.fuser.newest_utc)
        elif what == "map" and self.web.web is not None and payload:
            if len(payload) > MAP_MAX_BYTES or not payload.startswith(PNG_SIGNATURE):
                self.fuser.nodes.get(node).fault("invalid", "radar map is not a PNG (or too big)")
                return
            self.web.web.set_range_doppler(node, payload)

    async def tick(self) -> None:
        """Release what the reorder window lets go; coast and drop tracks."""
        while not self._stopping.is_set():
            now = self.clock.now()
            if now > -math.inf:
                updates = self.fuser.step(now)
                if updates:
                    self.fanout.submit(Step(updates=updates, utc=now))
            self._show_receivers()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.tick_s)

    async def subscribe(self) -> None:
        """Receive until stopped; reconnect with backoff (logged once per outage)."""
        attempt = 0
        while not self._stopping.is_set():
            try:
                async with mqtt_client(self.settings, role="in") as client:
                    for topic in self.topics:
                        await client.subscribe(topic, qos=1)
                    attempt = 0
                    self.subscriber_connected = True
                    log.info("fusion: subscribed to %s", ", ".join(self.topics))
                    async for message in client.messages:
                        payload = message.payload
                        if not isinstance(payload, (bytes, bytearray)):
                            payload = str(payload or "").encode()
                        self.on_message(str(message.topic), bytes(payload))
            except aiomqtt.MqttError as exc:
                if self.subscriber_connected or attempt == 0:
                    log.warning("fusion: subscription lost (%s); retrying with backoff", exc)
                self.subscriber_connected = False
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    def _show_receivers(self) -> None:
        """Once a second: every node on the picture, online or not, with its MLAT sync."""
        if self.web.web is None or time.monotonic() - self._receivers_shown_at < 1.0:
            return
        self._receivers_shown_at = time.monotonic()
        sync = self.mlat.status().get("receivers", {}) if self.mlat is not None else {}
        for name, state in self.fuser.nodes.nodes.items():
            if state.site is None or name == "mlat":
                continue
            shown = self.web.web.picture.receivers.get(name)
            radar = self.fuser.radar.nodes.get(name) if self.fuser.radar else None
            receiver = shown or Receiver(
                name, state.site.lat_deg, state.site.lon_deg, state.site.alt_m
            )
            receiver.lat_deg, receiver.lon_deg = state.site.lat_deg, state.site.lon_deg
            if radar is not None:  # its transmitter: the baseline on the map
                receiver.kind = "radar"
                receiver.tx_lat_deg = radar.bistatic.tx.lat_deg
                receiver.tx_lon_deg = radar.bistatic.tx.lon_deg
            receiver.online = state.online is not False
            receiver.sync = sync.get(name, {}).get("state")
            self.web.web.set_receiver(receiver)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        await self.fanout.start()
        subscriber_task = asyncio.create_task(self.subscribe())
        await self.tick()
        subscriber_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscriber_task
        final = self.fuser.flush()
        if final:
            self.fanout.submit(Step(updates=final, utc=self.clock.now()))
        await self.fanout.close(FLUSH_DEADLINE_S)
        stats = self.fuser.statistics()
        log.info(
            "fusion stopped: %d messages, %d nodes, %d tracks live",
            self.messages,
            len(stats["nodes"]),
            sum(stats["tracks_by_state"].values()),
        )
        return 0


def serve(config_path: str, web_listen: str | None = None) -> int:
    """Load the configuration and run the service until SIGTERM/SIGINT."""
    cfg = config_mod.load(config_path, required=frozenset())
    logging.getLogger().setLevel(getattr(logging, cfg["logging"]["level"].upper()))
    logging.getLogger("mqtt").setLevel(logging.CRITICAL)
    service = FusionService(cfg, config_mod.mqtt_password(cfg["mqtt"]), web_listen)
    return asyncio.run(service.run())
