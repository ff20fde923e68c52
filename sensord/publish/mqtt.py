"""MQTT publisher (aiomqtt): retained track state, events, status with last will, streams.

Topics under ``<prefix>/<node>/``:
- ``tracks/<track_id>``: retained JSON track state (``TrackUpdate.to_dict``); an empty
  retained message clears it when the track is dropped;
- ``events``: ``{"event": "new"|"confirmed"|"lost", ...}``;
- ``status``: retained ``{"state": "online", ...statistics}``; the broker publishes the
  last will ``{"state": "offline"}`` if the daemon vanishes, the daemon itself on a
  clean shutdown;
- ``frames`` and ``detections`` (optional, high rate, QoS 0 by default).

aiomqtt does not reconnect by itself and raises when publishing while disconnected, so
the publisher keeps its own state: the latest update of every live track (republished
in full after every reconnection, so a subscriber loses nothing it needs), a queue of
events, and bounded queues for the high-rate topics whose oldest entries are dropped
first, and counted, when the broker is slow or away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiomqtt

from sensord.config import broker_error_hint
from sensord.tracker.update import SCHEMA_VERSION, TrackStatus, TrackUpdate

log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
RATE_LIMIT_ALT_FT = 500.0
RATE_LIMIT_TRACK_DEG = 15.0


@dataclass
class PublisherStats:
    """What the publisher did; part of the status payload."""

    connected: bool = False
    connects: int = 0
    published: int = 0
    rate_limited: int = 0
    stream_dropped: int = 0
    publish_errors: int = 0
    last_error: str = ""


@dataclass
class MqttSettings:
    """Connection and topic settings (the [mqtt] section of the configuration)."""

    host: str = "127.0.0.1"
    port: int = 1883
    protocol: int = 5
    prefix: str = "sensord"
    node: str = "rx0"
    qos_state: int = 1
    qos_stream: int = 0
    rate_limit_s: float = 1.0
    stream_queue_max: int = 10000
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def from_config(cls, mqtt: dict, password: str | None) -> MqttSettings:
        names = set(cls.__dataclass_fields__) - {"password"}
        kw = {
            k: (mqtt[k] or None)
            if k in ("username", "ca_file", "cert_file", "key_file")
            else mqtt[k]
            for k in names
            if k in mqtt
        }
        return cls(password=password, **kw)

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.node}"


class Publisher:
    """Owns the broker connection; the pipeline hands it updates, frames and statistics."""

    def __init__(self, settings: MqttSettings, stats_source: Callable[[], dict] | None = None):
        self.settings = settings
        self.stats = PublisherStats()
        self._stats_source = stats_source or dict
        self._live: dict[str, TrackUpdate] = {}  # latest update of every live track
        self._published: dict[str, TrackUpdate] = {}  # what subscribers last got, per track
        self._dirty: dict[str, TrackUpdate | None] = {}  # to publish (None: clear)
        self._events: deque[dict] = deque(maxlen=10000)
        self._extra: deque[tuple[str, bytes, bool]] = deque(maxlen=10000)  # other topics
        self._stream: deque[tuple[str, str]] = deque(maxlen=settings.stream_queue_max)
        self._wake = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._resync = False
        self._task: asyncio.Task | None = None

    # ---- input from the pipeline (event loop thread) ----------------------------
    def track_updates(self, updates: list[TrackUpdate]) -> None:
        """Take the tracker's updates: rate-limited retained state plus events."""
        for u in updates:
            previous = self._live.get(u.track_id)
            if u.status == TrackStatus.DROPPED:
                self._live.pop(u.track_id, None)
                self._published.pop(u.track_id, None)
                self._dirty[u.track_id] = None
                self._event("lost", u)
                continue
            self._live[u.track_id] = u
            if previous is None:
                self._event("new", u)
            if u.status == TrackStatus.CONFIRMED and (
                previous is None or previous.status == TrackStatus.TENTATIVE
            ):
                self._event("confirmed", u)
            if self._due(u) or u.track_id in self._dirty:  # a waiting state: the newest wins
                self._dirty[u.track_id] = u
            else:
                self.stats.rate_limited += 1
        self._wake.set()

    def stream(self, kind: str, payloads: list[str]) -> None:
        """High-rate messages (frames, detections): oldest dropped first when full."""
        topic = f"{self.settings.base}/{kind}"
        for payload in payloads:
            if len(self._stream) == self._stream.maxlen:
                self.stats.stream_dropped += 1
            self._stream.append((topic, payload))
        self._wake.set()

    def pending(self) -> int:
        """Messages waiting for the broker."""
        return len(self._dirty) + len(self._events) + len(self._extra) + len(self._stream)

    def extra(self, messages: list[tuple[str, bytes, bool]]) -> None:
        """Messages for topics outside the node's own (Home Assistant discovery), at the
        state QoS: ``(topic, payload, retain)``."""
        self._extra.extend(messages)
        self._wake.set()

    def _due(self, u: TrackUpdate) -> bool:
        last = self._published.get(u.track_id)
        if last is None or last.status != u.status:
            return True
        if u.t_s - last.t_s >= self.settings.rate_limit_s:
            return True
        if (
            None not in (u.alt_baro_ft, last.alt_baro_ft)
            and abs(u.alt_baro_ft - last.alt_baro_ft) > RATE_LIMIT_ALT_FT
        ):
            return True
        if None not in (u.track_deg, last.track_deg):
            turn = abs((u.track_deg - last.track_deg + 180.0) % 360.0 - 180.0)
            return turn > RATE_LIMIT_TRACK_DEG
        return False

    def _event(self, name: str, u: TrackUpdate) -> None:
        self._events.append(
            {
                "event": name,
                "track_id": u.track_id,
                "icao": u.icao,
                "callsign": u.callsign,
                "t_s": round(u.t_s, 3),
                "status": u.status.value,
                "schema": SCHEMA_VERSION,
            }
        )

    # ---- the connection loop ----------------------------------------------------
    def _client(self) -> aiomqtt.Client:
        s = self.settings
        will = aiomqtt.Will(
            f"{s.base}/status", json.dumps(self._offline()), qos=s.qos_state, retain=True
        )
        protocol = aiomqtt.ProtocolVersion.V5 if s.protocol == 5 else aiomqtt.ProtocolVersion.V311
        tls = None
        if s.tls:
            tls = aiomqtt.TLSParameters(
                ca_certs=s.ca_file,
                certfile=s.cert_file,
                keyfile=s.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=f"sensord-{s.node}",
            protocol=protocol,
            will=will,
            keepalive=s.keepalive_s,
            tls_params=tls,
            timeout=10,
        )

    def _offline(self) -> dict:
        return {"state": "offline", "node": self.settings.node, "schema": SCHEMA_VERSION}

    async def run(self, stats_interval_s: float = 10.0) -> None:
        """Connect, publish, reconnect with backoff until ``stop``; logs once per state change."""
        self._task = asyncio.current_task()
        attempt = 0
        while not self._stopping:
            try:
                async with self._client() as client:
                    attempt = 0
                    self.stats.connects += 1
                    if not self.stats.connected:
                        log.info(
                            "connected to MQTT broker %s:%d", self.settings.host, self.settings.port
                        )
                    self.stats.connected = True
                    self._resync = True
                    await self._serve(client, stats_interval_s)
                    return
            except aiomqtt.MqttError as exc:
                message = str(exc) or type(exc).__name__
                if self.stats.connected or (self.stats.connects == 0 and not self.stats.last_error):
                    hint = broker_error_hint(message, self.settings)
                    log.warning(
                        "MQTT broker %s:%d unavailable (%s); retrying with backoff%s",
                        self.settings.host,
                        self.settings.port,
                        message,
                        f"; {hint}" if hint else "",
                    )
                else:
                    log.debug("MQTT broker still unavailable: %s", message)
                self.stats.connected = False
                self.stats.last_error = message
            if self._stopping:
                return
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=delay)

    async def _serve(self, client: aiomqtt.Client, stats_interval_s: float) -> None:
        s = self.settings
        next_stats = 0.0
        while True:
            if self._resync:
                # after (re)connecting: every live track's latest state, so nothing is missed
                self._resync = False
                for track_id, u in self._live.items():
                    self._dirty.setdefault(track_id, u)
            now = time.monotonic()
            if now >= next_stats:
                await self._publish(
                    client, f"{s.base}/status", json.dumps(self.status()), s.qos_state, True
                )
                next_stats = now + stats_interval_s
            while self._dirty:
                # taken before the await: a newer state arriving meanwhile waits its turn
                track_id = next(iter(self._dirty))
                u = self._dirty.pop(track_id)
                payload = "" if u is None else json.dumps(u.to_dict(), separators=(",", ":"))
                try:
                    await self._publish(
                        client, f"{s.base}/tracks/{track_id}", payload, s.qos_state, True
                    )
                except BaseException:
                    self._dirty.setdefault(track_id, u)  # unsent: again, unless a newer waits
                    raise
                if u is not None:
                    self._published[track_id] = u
            while self._events:
                await self._publish(
                    client, f"{s.base}/events", json.dumps(self._events[0]), s.qos_state, False
                )
                self._events.popleft()
            while self._extra:
                topic, payload, retain = self._extra[0]
                await self._publish(client, topic, payload, s.qos_state, retain)
                self._extra.popleft()
            while self._stream:
                topic, payload = self._stream[0]
                await self._publish(client, topic, payload, s.qos_stream, False)
                self._stream.popleft()
            if self._stopping:
                if self.pending():  # arrived while the later queues were going out
                    continue
                await self._publish(
                    client, f"{s.base}/status", json.dumps(self._offline()), s.qos_state, True
                )
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=max(0.05, next_stats - time.monotonic())
                )

    async def _publish(self, client, topic: str, payload: str, qos: int, retain: bool) -> None:
        """Publish one message; fail as soon as the connection drops.

        aiomqtt alone keeps waiting for the acknowledgement of a message in flight until
        its timeout when the broker goes away, and leaves the disconnection's error
        unretrieved; so the publish races the client's disconnection future (what
        aiomqtt's own message iterator waits on).
        """
        sending = asyncio.ensure_future(client.publish(topic, payload, qos=qos, retain=retain))
        lost = client._disconnected
        try:
            await asyncio.wait({sending, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sending.done():
                sending.cancel()
        if not sending.done() or sending.cancelled():
            cause = lost.exception() if lost.done() and not lost.cancelled() else None
            raise aiomqtt.MqttError("connection lost with a message in flight") from cause
        sending.result()
        self.stats.published += 1

    def status(self) -> dict:
        """The status payload: online plus the pipeline's and the publisher's statistics."""
        return {
            "state": "online",
            "node": self.settings.node,
            "schema": SCHEMA_VERSION,
            "tracks": len(self._live),
            "mqtt": {
                "published": self.stats.published,
                "rate_limited": self.stats.rate_limited,
                "stream_dropped": self.stats.stream_dropped,
                "queue_depth": self.pending(),
                "connects": self.stats.connects,
            },
            **self._stats_source(),
        }

    async def stop(self, deadline_s: float = 5.0) -> None:
        """Flush what is pending (within the deadline), publish offline, disconnect."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        if self._task is None or self._task.done():
            return
        if not self.stats.connected:  # nothing can be flushed: do not wait for an absent broker
            self._task.cancel()
            await asyncio.wait([self._task])
            if self.pending():
                log.warning(
                    "shutting down without a broker: %d MQTT messages unsent", self.pending()
                )
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=deadline_s)
        except TimeoutError:
            log.warning("MQTT flush deadline passed with %d messages unsent", self.pending())
            self._task.cancel()
