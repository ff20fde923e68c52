"""The MQTT sinks: the publisher (track states, events, status, streams) and Home Assistant
discovery through it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sensord.frames import TICKS_PER_S, frame_json
from sensord.publish.mqtt import MqttSettings, Publisher
from sensord.sinks.base import Step
from sensord.sinks.table import TrackTable

if TYPE_CHECKING:  # the optional streams' and outputs' modules: imported when configured
    from sensord.fusion.publishing import DetectionStream
    from sensord.outputs.hass import HassDiscovery

FLUSH_DEADLINE_S = 5.0


class MqttSink:
    """Feeds the publisher; its connection loop runs in a task of its own from ``start``.

    ``table`` must be the fan-out's (``FanOut(sinks, table)``): the publisher republishes
    its states after a reconnection and makes events of the steps' status changes.
    ``handle`` only queues (no I/O), so a slow broker never slows this sink down: the
    publisher's own bounded queues absorb it, states and status ahead of the streams.
    """

    name = "mqtt"
    queue_max = 256

    def __init__(
        self,
        settings: MqttSettings,
        table: TrackTable,
        stats_source=None,
        stats_interval_s: float = 10.0,
        publish_frames: bool = False,
        frames_schema: int = 2,
        detection_stream: DetectionStream | None = None,
        clear_on_stop: bool = False,
        flush_deadline_s: float = FLUSH_DEADLINE_S,
    ) -> None:
        self.publisher = Publisher(settings, stats_source, table, clear_on_stop)
        self.stats_interval_s = stats_interval_s
        self.publish_frames = publish_frames
        self.frames_schema = frames_schema
        self.detection_stream = detection_stream  # None: detections are not published
        self.flush_deadline_s = flush_deadline_s
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.publisher.run(self.stats_interval_s))

    async def handle(self, step: Step) -> None:
        if step.updates:
            self.publisher.track_updates(step.updates, step.changes)
        if self.publish_frames and len(step.frames):
            self.publisher.stream("frames", self._frames(step))
        if self.detection_stream is not None:
            for message in self.detection_stream.messages(step.detections, step.utc):
                self.publisher.stream(message.kind, [message.payload])

    def _frames(self, step: Step) -> list[str]:
        """v2: one message for the block (what MLAT reads); v1: one per frame."""
        if self.frames_schema == 1 or step.utc is None:
            return [frame_json(f) for f in step.frames]
        from sensord.mlat.payload import frames_payload

        node = self.publisher.settings.node
        return [frames_payload(node, step.frames, step.utc, round(step.end_s * TICKS_PER_S))]

    async def close(self) -> None:
        await self.publisher.stop(self.flush_deadline_s)
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])


class HassSink:
    """Home Assistant discovery messages, published through the MQTT sink's publisher."""

    name = "hass"
    queue_max = 256

    def __init__(self, hass: HassDiscovery, publisher: Publisher) -> None:
        self.hass = hass
        self.publisher = publisher

    async def start(self) -> None:
        return None

    async def handle(self, step: Step) -> None:
        if step.updates:
            messages = self.hass.messages(step.updates)
            if messages:
                self.publisher.extra(list(messages))

    async def close(self) -> None:
        return None
