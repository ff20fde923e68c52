"""A test rtl_tcp server on 127.0.0.1: streams a cu8 recording, records received commands.

Real TCP, the standard rtl_tcp protocol: a 12-byte header (``RTL0``, tuner type, gain
count, big-endian), then raw u8 IQ; commands are 5 bytes (cmd u8, param u32 BE).
``cut_after_bytes`` closes the first connection after that many IQ bytes and refuses
service for ``outage_s`` seconds (a server that went away); the next connection
continues the recording where the cut left it, as a live stream would.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

R820T = 5
R820T_GAIN_COUNT = 29


class RtlTcpTestServer:
    """Serve ``path`` (cu8) once over the connections that come, recording commands."""

    def __init__(
        self,
        path: Path,
        chunk_bytes: int = 32768,
        cut_after_bytes: int | None = None,
        outage_s: float = 0.0,
    ) -> None:
        self.data = Path(path).read_bytes()
        self.chunk_bytes = chunk_bytes
        self.cut_after_bytes = cut_after_bytes
        self.outage_s = outage_s
        self.commands: list[tuple[int, int]] = []
        self.connections = 0
        self.sent_bytes = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RtlTcpTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(5)

    @property
    def spec(self) -> str:
        """The source spec that reaches this server."""
        return f"rtltcp://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        conn.sendall(b"RTL0" + struct.pack(">II", R820T, R820T_GAIN_COUNT))
        reader = threading.Thread(target=self._read_commands, args=(conn,), daemon=True)
        reader.start()
        limit = len(self.data)
        if self.cut_after_bytes is not None and self.connections == 1:
            limit = min(limit, self.cut_after_bytes)
        try:
            while self.sent_bytes < limit and not self._stop.is_set():
                end = min(self.sent_bytes + self.chunk_bytes, limit)
                conn.sendall(self.data[self.sent_bytes : end])
                self.sent_bytes = end
            if self.sent_bytes < len(self.data):
                conn.shutdown(socket.SHUT_WR)  # graceful: everything sent arrives
                self._refuse_for(self.outage_s)
                return
            self._stop.wait()  # recording done: stay connected and idle, like a quiet band
        except OSError:
            return

    def _refuse_for(self, outage_s: float) -> None:
        """Accept nothing for ``outage_s`` seconds: connections queue or are refused."""
        deadline = time.monotonic() + outage_s
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
                conn.close()
            except TimeoutError:
                continue
            except OSError:
                return

    def _read_commands(self, conn: socket.socket) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(64)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while len(buf) >= 5:
                cmd, param = struct.unpack(">BI", buf[:5])
                self.commands.append((cmd, param))
                buf = buf[5:]
