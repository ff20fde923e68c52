"""rtl_tcp client: raw cu8 IQ from an ``rtl_tcp`` server, with reconnect on loss.

Protocol (rtl_tcp from librtlsdr): the server sends a 12-byte header, ``b"RTL0"``, tuner
type (u32 BE) and gain count (u32 BE), then raw interleaved u8 IQ. The client sends
5-byte commands: one command byte and a u32 BE parameter.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator

import numpy as np

from sensord.errors import SourceError
from sensord.source.base import IQBlock
from sensord.source.live import Backoff, LiveClockMixin, SampleClock

log = logging.getLogger(__name__)

HEADER_MAGIC = b"RTL0"
HEADER_LEN = 12

CMD_FREQUENCY = 0x01
CMD_SAMPLE_RATE = 0x02
CMD_GAIN_MODE = 0x03  # 0 automatic, 1 manual
CMD_GAIN = 0x04  # tenths of dB
CMD_FREQ_CORRECTION = 0x05  # ppm, signed
CMD_AGC_MODE = 0x08  # RTL2832 digital AGC on/off
CMD_BIAS_TEE = 0x0E


def command_bytes(cmd: int, param: int) -> bytes:
    """One 5-byte rtl_tcp command; negative parameters are sent as two's complement."""
    return struct.pack(">BI", cmd, param & 0xFFFFFFFF)


def parse_rtltcp_spec(spec: str) -> tuple[str, int]:
    """``rtltcp://HOST:PORT`` -> (host, port); port 1234 when omitted."""
    rest = spec.removeprefix("rtltcp://").rstrip("/")
    host, sep, port_text = rest.rpartition(":")
    if not sep:
        host, port_text = rest, "1234"
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SourceError(f"bad rtl_tcp source {spec!r}: expected rtltcp://HOST:PORT")
    return host, int(port_text)


class RtlTcpSource(LiveClockMixin):
    """IQ blocks (cu8) from an rtl_tcp server.

    Tunes the server on each connection (frequency, rate, gain, ppm, bias tee). When the
    server goes away the loss is logged once, ``blocks`` pauses and reconnects with
    backoff, and the stream resumes with a ``start_sample`` jump equal to the outage at
    ``rate_hz``. ``stats`` counts samples, dropped samples, gaps and reconnects;
    ``healthy()`` and ``last_sample_monotonic`` tell a watchdog whether samples flow.
    """

    def __init__(
        self,
        spec: str,
        center_hz: float = 1090e6,
        rate_hz: float = 2.4e6,
        gain_db: float | str | None = None,
        ppm: int = 0,
        bias_tee: bool = False,
        block_samples: int = 65536,
        connect_timeout_s: float = 3.0,
        backoff_max_s: float = 8.0,
    ) -> None:
        self.host, self.port = parse_rtltcp_spec(spec)
        self.center_hz = float(center_hz)
        self.rate_hz = float(rate_hz or 2.4e6)
        self.gain_db = None if gain_db in (None, "auto") else float(gain_db)
        self.ppm = int(ppm)
        self.bias_tee = bool(bias_tee)
        self.block_samples = int(block_samples)
        if self.block_samples <= 0:
            raise SourceError("block_samples must be positive")
        self.connect_timeout_s = connect_timeout_s
        self.tuner_type: int | None = None
        self.gain_count: int | None = None
        self._clock = SampleClock(self.rate_hz)
        self._backoff = Backoff(max_s=backoff_max_s)
        self._closed = threading.Event()
        self._sock: socket.socket | None = None
        self._lost_at: float | None = None  # monotonic time the stream was lost, if it was

    def tuning_commands(self) -> list[bytes]:
        """The commands sent after each connect, in order."""
        cmds = [
            command_bytes(CMD_SAMPLE_RATE, round(self.rate_hz)),
            command_bytes(CMD_FREQUENCY, round(self.center_hz)),
            command_bytes(CMD_FREQ_CORRECTION, self.ppm),
        ]
        if self.gain_db is None:
            cmds += [command_bytes(CMD_GAIN_MODE, 0), command_bytes(CMD_AGC_MODE, 1)]
        else:
            cmds += [
                command_bytes(CMD_AGC_MODE, 0),
                command_bytes(CMD_GAIN_MODE, 1),
                command_bytes(CMD_GAIN, round(self.gain_db * 10)),
            ]
        cmds.append(command_bytes(CMD_BIAS_TEE, int(self.bias_tee)))
        return cmds

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        try:
            header = self._recv_exact(sock, HEADER_LEN)
            if header is None:
                raise ConnectionError("closed before the rtl_tcp header")
            if header[:4] != HEADER_MAGIC:
                raise SourceError(
                    f"{self.host}:{self.port} is not an rtl_tcp server (header {header!r})"
                )
            self.tuner_type, self.gain_count = struct.unpack(">II", header[4:])
            sock.sendall(b"".join(self.tuning_commands()))
            sock.settimeout(0.5)
        except BaseException:
            sock.close()
            raise
        return sock

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _connect_with_backoff(self) -> socket.socket | None:
        """Connect, retrying with backoff until it works or the source is closed."""
        reported = False
        while not self._closed.is_set():
            try:
                sock = self._connect()
            except OSError as exc:
                if not reported:
                    log.warning(
                        "rtl_tcp %s:%d unreachable (%s); retrying",
                        self.host,
                        self.port,
                        exc.strerror or exc,
                    )
                    reported = True
                self._closed.wait(self._backoff.next_delay_s())
                continue
            if reported:
                log.warning("rtl_tcp %s:%d connected again", self.host, self.port)
            return sock
        return None

    def blocks(self) -> Iterator[IQBlock]:
        """cu8 blocks of up to ``block_samples`` samples until ``close``.

        A connection that ends before any samples came (a server that accepts and hangs
        up) counts as a failed attempt: backoff, logged once, no hot reconnect loop.
        """
        block_bytes = 2 * self.block_samples
        empty_reported = False
        while not self._closed.is_set():
            sock = self._connect_with_backoff()
            if sock is None:
                return
            self._sock = sock
            samples_before = self.stats.samples
            yield from self._stream(sock, block_bytes)
            sock.close()
            self._sock = None
            if self._closed.is_set():
                return
            if self.stats.samples > samples_before:
                self._lost_at = time.monotonic()
                empty_reported = False
                log.warning("rtl_tcp %s:%d lost; reconnecting", self.host, self.port)
                continue
            if not empty_reported:
                log.warning(
                    "rtl_tcp %s:%d closed the connection before sending samples; retrying",
                    self.host,
                    self.port,
                )
                empty_reported = True
            self._closed.wait(self._backoff.next_delay_s())

    def _stream(self, sock: socket.socket, block_bytes: int) -> Iterator[IQBlock]:
        """Blocks from one connection until it ends or the source is closed."""
        buf = np.empty(block_bytes, dtype=np.uint8)
        view = memoryview(buf.data)
        filled = 0
        while not self._closed.is_set():
            try:
                n = sock.recv_into(view[filled:])
            except TimeoutError:
                if filled >= 2:  # a stalled stream does not hold samples back
                    keep = filled % 2
                    yield self._block(buf, filled - keep)
                    buf[0] = buf[filled - 1]
                    filled = keep
                continue
            except OSError:
                n = 0
            if n == 0:
                break
            filled += n
            if filled == block_bytes:
                yield self._block(buf, filled)
                filled = 0
        if filled >= 2:
            yield self._block(buf, filled - filled % 2)

    def _block(self, buf: np.ndarray, n_bytes: int) -> IQBlock:
        self._backoff.reset()  # samples flow: the connection works
        if self._lost_at is not None:  # the first samples after an outage: it ends here
            self.stats.reconnects += 1
            self._clock.drop_outage(time.monotonic() - self._lost_at)
            self._lost_at = None
        start = self._clock.take(n_bytes // 2)
        return IQBlock(buf[:n_bytes].copy(), "cu8", start, self.rate_hz, self._clock.utc(start))

    def close(self) -> None:
        """Stop ``blocks`` and close the connection."""
        self._closed.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
