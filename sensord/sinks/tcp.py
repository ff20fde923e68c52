"""SBS (BaseStation lines from track updates) and Beast (binary frames) served over TCP."""

from __future__ import annotations

from sensord.outputs import beast, sbs
from sensord.outputs.tcp import BroadcastServer
from sensord.sinks.base import Step


class _BroadcastSink:
    """A TCP broadcast server as a sink; a slow client is disconnected by the server."""

    name = "tcp"
    queue_max = 256

    def __init__(self, server: BroadcastServer) -> None:
        self.server = server

    async def start(self) -> None:
        await self.server.start()

    async def close(self) -> None:
        await self.server.close()


class SbsSink(_BroadcastSink):
    name = "sbs"

    async def handle(self, step: Step) -> None:
        if step.updates:
            self.server.broadcast(sbs.encode_updates(step.updates))


class BeastSink(_BroadcastSink):
    name = "beast"

    async def handle(self, step: Step) -> None:
        if len(step.frames):
            self.server.broadcast(beast.encode_frames(step.frames))
