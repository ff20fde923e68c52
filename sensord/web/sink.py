"""The web picture as a ``Sink``: feeds the page state from each step and runs the server.

``handle`` (or ``feed``, for a caller without a fan-out) only updates in-memory state; a
flush task on the event loop pushes the due track states to the pages every
``FLUSH_PERIOD_S`` (each track at most once per second), and the receivers' state every
``RECEIVERS_PERIOD_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from sensord.outputs.aircraft_json import AircraftJsonWriter, receiver_document
from sensord.sinks.base import Step
from sensord.web.clients import ClientFanout
from sensord.web.picture import AirPicture, Receiver
from sensord.web.server import MALFORMED, DataSources, WebServer
from sensord.web.settings import WebSettings
from sensord.web.zones import Zone, ZoneEvent

log = logging.getLogger("sensord.web")

FLUSH_PERIOD_S = 0.25
RECEIVERS_PERIOD_S = 2.0
DRAIN_S = 1.0


class WebSink:
    """The air picture for browsers, and aircraft.json/receiver.json for tar1090."""

    name = "web"
    queue_max = 256

    def __init__(
        self,
        settings: WebSettings,
        node: str,
        receivers: list[Receiver],
        zones: list[Zone] | None = None,
        announce: bool = True,
    ) -> None:
        self.settings = settings
        self.announce = announce  # log the address at start (the daemon); demo prints it
        self.node = node
        self.picture = AirPicture(receivers, local=node)  # other sensors: set_receiver
        self.zones = zones or []
        self.aircraft = AircraftJsonWriter(None)
        self._range_doppler: dict[str, bytes] = {}
        self._utc: float | None = None
        self.fanout = ClientFanout(
            self._snapshot_message,
            queue_max=settings.client_queue_max,
            max_clients=settings.max_clients,
        )
        sources = DataSources(
            aircraft=lambda: self.aircraft.document(self.picture.now_s, self._utc),
            receiver=self._receiver_json,
            picture=lambda: self.picture.snapshot(time.monotonic()),
            config=self._config,
            stats=self.stats,
            range_doppler=self._range_doppler.get,
        )
        self.server = WebServer(
            settings.host,
            settings.port,
            sources,
            self.fanout,
            settings.tile_url,
            settings.any_port_if_taken,
        )
        self._flusher: asyncio.Task | None = None
        self._started = self._closed = False

    # ---- Sink -----------------------------------------------------------------------
    async def start(self) -> None:
        """Listen (once: a second call, e.g. by a fan-out after the caller, does nothing)."""
        if self._started:
            return
        self._started = True
        await self.server.start()
        self._flusher = asyncio.create_task(self._flush_loop())
        if self.announce:  # at the default level, like the MQTT connection state
            log.warning("air picture on %s", self.url)

    async def handle(self, step: Step) -> None:
        self.feed(step)

    async def close(self) -> None:
        """Push what is due (the last drops), let the pages read it, then close (once)."""
        if not self._started or self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        self.flush(force=True)
        deadline = time.monotonic() + DRAIN_S
        while any(c.queue for c in self.fanout.clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await self.server.close()

    # ---- input ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.server.url

    def feed(self, step: Step) -> None:
        """Take one step (frames for the message counts, updates for the picture)."""
        frames = step.frames
        if len(frames):
            self.aircraft.add_frames(
                frames["icao"].astype(int).tolist(), frames["signal_dbfs"].astype(float).tolist()
            )
        if step.updates:
            self.aircraft.add_updates(step.updates)
        self.picture.apply(step.updates, time.monotonic())
        self._utc = getattr(step, "utc", None)

    def zone_events(self, events: list[ZoneEvent]) -> None:
        """Show zone entries and exits in the tracks' details and on the pages."""
        for e in events:
            self.picture.add_event(
                e.track_id, {"event": e.event, "zone": e.zone, "t_s": round(e.t_s, 3)}
            )
        if events and self.fanout.clients:
            message = {"type": "zone_events", "events": [e.to_dict() for e in events]}
            self.fanout.broadcast(json.dumps(message, separators=(",", ":")))

    def set_receiver(self, receiver: Receiver) -> None:
        """Add or replace a receiver or radar node (the fusion node's sensors)."""
        self.picture.receivers[receiver.name] = receiver

    def set_range_doppler(self, node: str, png: bytes) -> None:
        """A radar node's latest range-Doppler map, served as a PNG."""
        self._range_doppler[node] = png

    # ---- output ---------------------------------------------------------------------
    def flush(self, force: bool = False) -> None:
        """Push the due track states and drops to every page."""
        tracks, dropped = self.picture.due(float("inf") if force else time.monotonic())
        if not (tracks or dropped) or not self.fanout.clients:
            return
        message = {
            "type": "tracks",
            "now_s": round(self.picture.now_s, 3),
            "tracks": tracks,
            "dropped": dropped,
        }
        self.fanout.broadcast(json.dumps(message, separators=(",", ":")))

    async def _flush_loop(self) -> None:
        next_receivers = 0.0
        while True:
            await asyncio.sleep(FLUSH_PERIOD_S)
            self.flush()
            now = time.monotonic()
            if now >= next_receivers and self.fanout.clients:
                next_receivers = now + RECEIVERS_PERIOD_S
                message = {"type": "receivers", "receivers": self.picture.receiver_dicts(now)}
                self.fanout.broadcast(json.dumps(message, separators=(",", ":")))

    def _snapshot_message(self) -> str:
        snapshot = self.picture.snapshot(time.monotonic())
        snapshot["type"] = "snapshot"
        snapshot["config"] = self._config()
        return json.dumps(snapshot, separators=(",", ":"))

    def _config(self) -> dict:
        return {
            "node": self.node,
            "tile_url": self.settings.tile_url,
            "zones": [z.to_dict() for z in self.zones],
            "range_doppler": sorted(self._range_doppler),
        }

    def _receiver_json(self) -> dict:
        first = next(iter(self.picture.receivers.values()), None)
        return receiver_document(
            None if first is None else first.lat_deg, None if first is None else first.lon_deg
        )

    def stats(self) -> dict:
        """The server's counters: pages, messages, drops, requests."""
        s = self.fanout.stats
        return {
            "clients": s.clients,
            "connections": s.connections,
            "refused": s.refused,
            "messages_sent": s.messages_sent,
            "messages_dropped": s.messages_dropped,
            "resyncs": s.resyncs,
            "slow_closed": s.slow_closed,
            "inbound_ignored": s.inbound_ignored,
            "requests": self.server.requests,
            "malformed_requests": MALFORMED.count,  # answered 400 by the HTTP parser
            "tracks": len(self.picture.tracks),
        }
