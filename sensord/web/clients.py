"""Fan-out of the page's messages to connected WebSockets; slow clients lose messages, counted.

Each message is encoded once and queued for every client. A client's queue holds at most
``queue_max`` messages: when it is full the queued messages are dropped (counted) and the
client is marked for a fresh snapshot, so it catches up with one message instead of a
backlog. A send that does not complete within ``send_timeout_s`` closes the client. The
tracker never waits for a page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger(__name__)


@dataclass
class FanoutStats:
    """What the fan-out did (served on /data/stats.json and as metrics)."""

    clients: int = 0
    connections: int = 0
    refused: int = 0  # over max_clients
    messages_sent: int = 0
    messages_dropped: int = 0  # queued for a slow client and thrown away
    resyncs: int = 0  # snapshots sent to a client that had fallen behind
    slow_closed: int = 0  # clients closed because a send stalled
    inbound_ignored: int = 0  # messages from pages (the server reads none)


class Client:
    """One connected page: its queue and whether it needs a snapshot first."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: deque[str] = deque()
        self.needs_snapshot = True
        self.wake = asyncio.Event()
        self.wake.set()


class ClientFanout:
    """The connected pages; ``broadcast`` never blocks."""

    def __init__(
        self,
        snapshot: Callable[[], str],
        queue_max: int = 16,
        max_clients: int = 200,
        send_timeout_s: float = 10.0,
    ) -> None:
        self.snapshot = snapshot
        self.queue_max = queue_max
        self.max_clients = max_clients
        self.send_timeout_s = send_timeout_s
        self.clients: set[Client] = set()
        self.stats = FanoutStats()

    def broadcast(self, message: str) -> None:
        """Queue one encoded message for every client."""
        for client in self.clients:
            if client.needs_snapshot:
                continue  # the snapshot it is about to get includes this
            if len(client.queue) >= self.queue_max:
                self.stats.messages_dropped += len(client.queue)
                self.stats.resyncs += 1
                client.queue.clear()
                client.needs_snapshot = True
            else:
                client.queue.append(message)
            client.wake.set()

    async def serve(self, ws: web.WebSocketResponse) -> None:
        """Run one client until it goes away: a writer task, and a reader that discards."""
        if len(self.clients) >= self.max_clients:
            self.stats.refused += 1
            await ws.close(code=1013, message=b"too many pages open")
            return
        client = Client(ws)
        self.clients.add(client)
        self.stats.connections += 1
        self.stats.clients = len(self.clients)
        writer = asyncio.create_task(self._write(client))
        try:
            async for _msg in ws:  # a page sends nothing the server acts on
                self.stats.inbound_ignored += 1
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self.clients.discard(client)
            self.stats.clients = len(self.clients)

    async def _write(self, client: Client) -> None:
        try:
            while not client.ws.closed:
                await client.wake.wait()
                client.wake.clear()
                if client.needs_snapshot:
                    client.needs_snapshot = False
                    client.queue.clear()
                    await self._send(client, self.snapshot())
                while client.queue and not client.needs_snapshot:
                    await self._send(client, client.queue.popleft())
        except (ConnectionError, RuntimeError):
            pass  # the page went away; the reader ends the client
        except TimeoutError:
            self.stats.slow_closed += 1
            await client.ws.close(code=1008, message=b"too slow")

    async def _send(self, client: Client, message: str) -> None:
        await asyncio.wait_for(client.ws.send_str(message), self.send_timeout_s)
        self.stats.messages_sent += 1

    async def close(self) -> None:
        """Close every client (going away: the page reconnects to the next daemon)."""
        for client in list(self.clients):
            with contextlib.suppress(Exception):
                await client.ws.close(code=1001, message=b"server shutting down")
