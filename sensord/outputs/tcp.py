"""A TCP server that sends the same bytes to every connected client (SBS, Beast)."""

from __future__ import annotations

import asyncio
import logging

from sensord.errors import UserError

log = logging.getLogger(__name__)


class BroadcastServer:
    """Accepts clients on ``host:port`` and writes each broadcast chunk to all of them.

    A client that falls more than ``max_buffer_bytes`` behind is disconnected (counted in
    ``dropped_clients``) so a stalled reader never grows memory.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, max_buffer_bytes: int = 1 << 20):
        self.host = host
        self.port = port
        self.max_buffer_bytes = max_buffer_bytes
        self.dropped_clients = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        """Start listening; returns the bound port (useful with port 0).

        A port that cannot be bound is a ``UserError`` naming the address.
        """
        try:
            self._server = await asyncio.start_server(self._accept, self.host, self.port)
        except OSError as exc:
            raise UserError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def n_clients(self) -> int:
        return len(self._writers)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while await reader.read(4096):  # clients only listen; drain anything they send
                pass
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()

    def broadcast(self, data: bytes) -> None:
        """Queue ``data`` to every client (non-blocking)."""
        if not data:
            return
        for writer in list(self._writers):
            if writer.transport.get_write_buffer_size() > self.max_buffer_bytes:
                log.warning("output client on port %d too slow; disconnected", self.port)
                self.dropped_clients += 1
                self._writers.discard(writer)
                writer.close()
                continue
            writer.write(data)

    async def close(self) -> None:
        """Stop listening and disconnect every client; their handlers end before this returns
        (a handler still pending at loop shutdown would be cancelled and logged as an error)."""
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=2.0)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
