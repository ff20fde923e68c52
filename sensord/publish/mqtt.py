"""MQTT publisher: retained track state, events, status with last will, streams.

Topics under ``<prefix>/<node>/``:
- ``tracks/<track_id>``: retained JSON track state (``TrackUpdate.to_dict``); an empty
  retained message clears it when the track is dropped;
- ``events``: ``{"event": "new"|"confirmed"|"lost", ...}``;
- ``status``: retained ``{"state": "online", ...statistics}``; the broker publishes the
  last will ``{"state": "offline"}`` if the daemon vanishes, the daemon itself on a
  clean shutdown, after a last ``"final": true`` status with the counters at the end;
- ``frames`` and ``detections`` (optional, high rate, QoS 0 by default).

The publisher is the glue of two parts: ``policy.PublishPolicy`` (pure: what to send and
in which order; rate limiting, events, the latest-state buffer, republish after a
reconnection, states and status ahead of the streams) and ``transport`` (the aiomqtt
adapter). aiomqtt does not reconnect by itself; this loop does, with backoff, logging
once per change of the broker's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from sensord.config import broker_error_hint
from sensord.publish import transport
from sensord.publish.policy import Message, MqttSettings, PublisherStats, PublishPolicy
from sensord.sinks.table import StatusChange, TrackTable
from sensord.tracker.update import TrackUpdate

__all__ = ["BACKOFF_S", "MqttSettings", "Publisher", "PublisherStats"]

log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class Publisher:
    """Owns the broker connection; the MQTT sink hands it updates, frames and statistics.

    ``table`` is the fan-out's shared track table (the latest state of every live track,
    republished after a reconnection); without one the publisher keeps its own.
    ``clear_on_stop`` clears every retained track state at a clean stop (the demo).
    """

    def __init__(
        self,
        settings: MqttSettings,
        stats_source: Callable[[], dict] | None = None,
        table: TrackTable | None = None,
        clear_on_stop: bool = False,
    ) -> None:
        self.settings = settings
        self.policy = PublishPolicy(settings, table, stats_source)
        self.stats: PublisherStats = self.policy.stats
        self.clear_on_stop = clear_on_stop
        self._wake = asyncio.Event()
        self._stopping = False
        self._final_status_sent = False
        self._stopped = asyncio.Event()
        self._task: asyncio.Task | None = None

    # ---- input (event loop thread) -------------------------------------------------
    def track_updates(
        self, updates: list[TrackUpdate], changes: list[StatusChange] | None = None
    ) -> None:
        """Take the tracker's updates (see ``PublishPolicy.track_updates``)."""
        self.policy.track_updates(updates, changes)
        self._wake.set()

    def stream(self, kind: str, payloads: list[str]) -> None:
        """High-rate messages (frames, detections): oldest dropped first when full."""
        self.policy.stream(kind, payloads)
        self._wake.set()

    def extra(self, messages: list[tuple[str, str | bytes, bool]]) -> None:
        """Messages for topics outside the node's own (Home Assistant discovery)."""
        self.policy.extra(messages)
        self._wake.set()

    def pending(self) -> int:
        """Messages waiting for the broker."""
        return self.policy.pending()

    def status(self) -> dict:
        """The status payload."""
        return self.policy.status()

    # ---- the connection loop -----------------------------------------------------
    async def run(self, stats_interval_s: float = 10.0) -> None:
        """Connect, publish, reconnect with backoff until ``stop``; logs once per state change."""
        self._task = asyncio.current_task()
        self.policy.stats_interval_s = stats_interval_s
        attempt = 0
        while not self._stopping:
            try:
                async with transport.connect(self.settings, self.policy.offline()) as link:
                    attempt = 0
                    self.stats.connects += 1
                    if not self.stats.connected:
                        log.info(
                            "connected to MQTT broker %s:%d", self.settings.host, self.settings.port
                        )
                    self.stats.connected = True
                    self.policy.connected()
                    await self._serve(link)
                    return
            except transport.TransportError as exc:
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

    async def _serve(self, link: transport.MqttTransport) -> None:
        while True:
            msg = self.policy.next_message(time.monotonic())
            if msg is not None:
                await self._send(link, msg)
                continue
            if self._stopping:
                if self.clear_on_stop:
                    self.clear_on_stop = False
                    self.policy.clear_all()
                    continue
                if not self._final_status_sent:  # the counters after the last flush
                    self._final_status_sent = True
                    await self._send(link, self.policy.final_status())
                    continue
                await self._send(link, self.policy.offline())
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(),
                    timeout=max(0.05, self.policy.seconds_to_status(time.monotonic())),
                )

    async def _send(self, link: transport.MqttTransport, msg: Message) -> None:
        try:
            await link.publish(msg)
        except BaseException:
            self.policy.unsent(msg)
            raise
        self.policy.sent(msg)

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
