"""What the publisher sends, and in which order: pure, with no broker and no I/O.

- Track states are retained, one per track, rate limited on the sample clock (at most one
  per ``rate_limit_s`` unless the status changes, the altitude moves > 500 ft or the
  track turns > 15 deg); a state waiting to go out is replaced by a newer one.
- Events (new, confirmed, lost) come from the track table's status changes.
- After every (re)connection, every live track's latest state (from the shared track
  table) is sent again, so a subscriber loses nothing it needs.
- ``next_message`` hands out one message at a time by priority: the status when due,
  then track states, events, other topics (Home Assistant), and only then the high-rate
  streams (frames, detections), whose bounded queue drops its oldest first. A state
  therefore waits behind at most the one stream message in flight: its lag is bounded
  by one round trip, however many frames are queued.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sensord.sinks.table import StatusChange, TrackTable
from sensord.tracker.update import SCHEMA_VERSION, TrackStatus, TrackUpdate

RATE_LIMIT_ALT_FT = 500.0
RATE_LIMIT_TRACK_DEG = 15.0
EVENT_QUEUE_MAX = 10000
EXTRA_QUEUE_MAX = 10000


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
        kw: dict[str, Any] = {
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

    @property
    def status_topic(self) -> str:
        return f"{self.base}/status"


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message to send; ``kind`` says which queue it came from."""

    kind: str  # "status", "state", "event", "extra", "stream"
    topic: str
    payload: str | bytes
    qos: int
    retain: bool
    track_id: str | None = None
    update: TrackUpdate | None = None  # a state's update (None for a clear)


class PublishPolicy:
    """The publisher's queues and rules; the transport asks it for the next message."""

    def __init__(
        self,
        settings: MqttSettings,
        table: TrackTable | None = None,
        stats_source: Callable[[], dict] | None = None,
        stats_interval_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self.stats = PublisherStats()
        self.owns_table = table is None
        self.table = TrackTable() if table is None else table
        self.stats_interval_s = stats_interval_s
        self._stats_source = stats_source or dict
        self._published: dict[str, TrackUpdate] = {}  # what subscribers last got, per track
        self._dirty: dict[str, TrackUpdate | None] = {}  # to publish (None: clear)
        self._events: deque[dict] = deque(maxlen=EVENT_QUEUE_MAX)
        self._extra: deque[tuple[str, str | bytes, bool]] = deque(maxlen=EXTRA_QUEUE_MAX)
        self._stream: deque[tuple[str, str]] = deque(maxlen=settings.stream_queue_max)
        self._status_due_s = 0.0  # monotonic time the next status is due

    # ---- input ---------------------------------------------------------------------
    def track_updates(
        self, updates: list[TrackUpdate], changes: list[StatusChange] | None = None
    ) -> None:
        """Take the tracker's updates: events from their status changes, rate-limited state.

        ``changes`` come from the shared table (the fan-out applied it); without them the
        policy applies its own table.
        """
        if changes is None:
            changes = self.table.apply(updates)
        for change in changes:
            self._event_of(change)
        for u in updates:
            if u.status is TrackStatus.DROPPED:
                # cleared even if no state is known to have gone out: one may be in flight
                self._published.pop(u.track_id, None)
                self._dirty[u.track_id] = None
                continue
            if self._due(u) or u.track_id in self._dirty:  # a waiting state: the newest wins
                self._dirty[u.track_id] = u
            else:
                self.stats.rate_limited += 1

    def stream(self, kind: str, payloads: list[str]) -> None:
        """High-rate messages (frames, detections): oldest dropped first when full."""
        topic = f"{self.settings.base}/{kind}"
        for payload in payloads:
            if len(self._stream) == self._stream.maxlen:
                self.stats.stream_dropped += 1
            self._stream.append((topic, payload))

    def extra(self, messages: list[tuple[str, str | bytes, bool]]) -> None:
        """Messages for topics outside the node's own (Home Assistant discovery), at the
        state QoS: ``(topic, payload, retain)``."""
        self._extra.extend(messages)

    def connected(self) -> None:
        """A (re)connection: every live track's latest state again, and the status now."""
        for track_id, u in self.table.tracks.items():
            self._dirty.setdefault(track_id, u)
        self._status_due_s = 0.0

    def clear_all(self) -> None:
        """Clear every retained track state (a demo that ends: no stale tracks stay)."""
        for track_id in list(self._published) + list(self.table.tracks):
            self._dirty[track_id] = None
        self._published.clear()

    # ---- output --------------------------------------------------------------------
    def pending(self) -> int:
        """Messages waiting for the broker."""
        return len(self._dirty) + len(self._events) + len(self._extra) + len(self._stream)

    def seconds_to_status(self, now_s: float) -> float:
        return max(0.0, self._status_due_s - now_s)

    def next_message(self, now_s: float) -> Message | None:
        """The most urgent message, taken off its queue (``unsent`` puts it back)."""
        s = self.settings
        if now_s >= self._status_due_s:
            self._status_due_s = now_s + self.stats_interval_s
            return Message("status", s.status_topic, json.dumps(self.status()), s.qos_state, True)
        if self._dirty:
            track_id = next(iter(self._dirty))
            u = self._dirty.pop(track_id)
            payload = "" if u is None else json.dumps(u.to_dict(), separators=(",", ":"))
            topic = f"{s.base}/tracks/{track_id}"
            return Message("state", topic, payload, s.qos_state, True, track_id, u)
        if self._events:
            event = self._events.popleft()
            return Message("event", f"{s.base}/events", json.dumps(event), s.qos_state, False)
        if self._extra:
            other_topic, body, retain = self._extra.popleft()
            return Message("extra", other_topic, body, s.qos_state, retain)
        if self._stream:
            topic, text = self._stream.popleft()
            return Message("stream", topic, text, s.qos_stream, False)
        return None

    def sent(self, msg: Message) -> None:
        """The broker has it."""
        self.stats.published += 1
        if msg.kind != "state" or msg.track_id is None:
            return
        if msg.update is None:  # a clear: nothing of the track is left with subscribers
            self._published.pop(msg.track_id, None)
        elif self._dirty.get(msg.track_id, msg.update) is not None:  # not dropped meanwhile
            self._published[msg.track_id] = msg.update

    def unsent(self, msg: Message) -> None:
        """It did not go out: back at the head of its queue (a newer state wins)."""
        if msg.kind == "status":
            self._status_due_s = 0.0
        elif msg.kind == "state" and msg.track_id is not None:
            if msg.track_id not in self._dirty:
                self._dirty = {msg.track_id: msg.update, **self._dirty}
        elif msg.kind == "event":
            self._events.appendleft(json.loads(msg.payload))
        elif msg.kind == "extra":
            self._extra.appendleft((msg.topic, msg.payload, msg.retain))
        elif msg.kind == "stream":
            text = msg.payload if isinstance(msg.payload, str) else msg.payload.decode()
            self._stream.appendleft((msg.topic, text))

    def offline(self) -> Message:
        """The retained offline status (also the last will)."""
        s = self.settings
        payload = {"state": "offline", "node": s.node, "schema": SCHEMA_VERSION}
        return Message("status", s.status_topic, json.dumps(payload), s.qos_state, True)

    def final_status(self) -> Message:
        """The last statistics, sent on a clean stop just before offline."""
        s = self.settings
        payload = {**self.status(), "final": True}
        return Message("status", s.status_topic, json.dumps(payload), s.qos_state, True)

    def status(self) -> dict:
        """The status payload: online plus the pipeline's and the publisher's statistics."""
        return {
            "state": "online",
            "node": self.settings.node,
            "schema": SCHEMA_VERSION,
            "tracks": len(self.table),
            "mqtt": {
                "published": self.stats.published,
                "rate_limited": self.stats.rate_limited,
                "stream_dropped": self.stats.stream_dropped,
                "queue_depth": self.pending(),
                "connects": self.stats.connects,
                "tracks_published": len(self._published),  # per-track state, for the soak
            },
            **self._stats_source(),
        }

    # ---- rules ---------------------------------------------------------------------
    def _due(self, u: TrackUpdate) -> bool:
        last = self._published.get(u.track_id)
        if last is None or last.status != u.status:
            return True
        if u.t_s - last.t_s >= self.settings.rate_limit_s:
            return True
        if (
            u.alt_baro_ft is not None
            and last.alt_baro_ft is not None
            and abs(u.alt_baro_ft - last.alt_baro_ft) > RATE_LIMIT_ALT_FT
        ):
            return True
        if u.track_deg is not None and last.track_deg is not None:
            turn = abs((u.track_deg - last.track_deg + 180.0) % 360.0 - 180.0)
            return turn > RATE_LIMIT_TRACK_DEG
        return False

    def _event_of(self, change: StatusChange) -> None:
        u = change.update
        if u.status is TrackStatus.DROPPED:
            self._event("lost", u)
            return
        if change.previous is None:
            self._event("new", u)
        if u.status is TrackStatus.CONFIRMED and change.previous in (None, TrackStatus.TENTATIVE):
            self._event("confirmed", u)

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
