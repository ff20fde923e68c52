"""KrakenSDR (heimdall DAQ firmware) IQ frames over TCP, as a two-channel source.

The protocol, from heimdall_daq_fw's public source (``Firmware/_daq_core/iq_header.h``,
``eth_server.h``, ``iq_server.c``): the client connects to the DAQ's IQ server (TCP port
5000 on KrakenSDR images; 8000 in the firmware's own ``eth_server.h``), sends the ASCII
command ``streaming``, then receives frames, each a 1,024-byte header followed by the
payload, and sends ``IQDownload`` to ask for the next one. The header is the C struct
``iq_header_struct`` with natural alignment, little-endian on the Pi: sync word
0x2bf7b95a, frame type (0 data, 1 dummy, 2 ramp, 3 calibration, 4 trigger wait),
channel count, centre frequency, sampling rate, ``cpi_length`` (samples per channel),
a Unix-epoch timestamp in ms, the CPI index, and the delay/IQ synchronisation flags.
The payload is ``cpi_length`` complex float32 samples per channel, channel after
channel.

Only data frames whose delay and IQ synchronisation flags are set carry coherent
samples; anything else (dummy, calibration, not yet synchronised) or a skipped CPI
index is a gap on the sample clock, which discards the CPIs it touches (counted).
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from sensord.errors import SourceError
from sensord.radar.source import TwoChannelBlock

log = logging.getLogger(__name__)

SYNC_WORD = 0x2BF7B95A
HEADER_BYTES = 1024
FRAME_TYPE_DATA = 0
MAX_PAYLOAD_BYTES = 1 << 28
# iq_header_struct with the C compiler's padding made explicit (4x before each uint64
# that follows an odd number of uint32s)
HEADER = struct.Struct("<II16sIII4xQQQI4xQIIQIII32I4I768xI")
assert HEADER.size == HEADER_BYTES


@dataclass(frozen=True)
class DaqHeader:
    """The fields of a heimdall IQ frame header that the radar uses."""

    sync_word: int
    frame_type: int
    hardware_id: str
    unit_id: int
    channels: int
    center_hz: int
    adc_rate_hz: int
    rate_hz: int
    cpi_length: int
    time_stamp_ms: int
    daq_block_index: int
    cpi_index: int
    data_type: int
    sample_bit_depth: int
    delay_sync: int
    iq_sync: int

    @classmethod
    def parse(cls, raw: bytes) -> DaqHeader:
        f = HEADER.unpack(raw)
        return cls(
            sync_word=f[0], frame_type=f[1],
            hardware_id=f[2].split(b"\0", 1)[0].decode("ascii", "replace"),
            unit_id=f[3], channels=f[4], center_hz=f[6], adc_rate_hz=f[7], rate_hz=f[8],
            cpi_length=f[9], time_stamp_ms=f[10], daq_block_index=f[11], cpi_index=f[12],
            data_type=f[14], sample_bit_depth=f[15], delay_sync=f[49], iq_sync=f[50],
        )  # fmt: skip

    def pack(self) -> bytes:
        """The header as the DAQ sends it (for test servers)."""
        gains = [0] * 32
        return HEADER.pack(
            self.sync_word, self.frame_type, self.hardware_id.encode()[:16], self.unit_id,
            self.channels, 0, self.center_hz, self.adc_rate_hz, self.rate_hz, self.cpi_length,
            self.time_stamp_ms, self.daq_block_index, self.cpi_index, 0, self.data_type,
            self.sample_bit_depth, 0, *gains, self.delay_sync, self.iq_sync, 0, 0, 7,
        )  # fmt: skip


@dataclass
class DaqStats:
    """What the client counted."""

    frames: int = 0
    data_frames: int = 0
    skipped_frames: int = 0  # dummy, calibration, not synchronised
    lost_cpis: int = 0  # CPI indices that never came
    last_header: DaqHeader | None = field(default=None, repr=False)


class KrakenDaqSource:
    """Reference and surveillance channels from a KrakenSDR DAQ's IQ server."""

    def __init__(self, host: str, port: int = 5000, ref_channel: int = 0, surv_channel: int = 1,
                 timeout_s: float = 10.0) -> None:  # fmt: skip
        self.host, self.port = host, port
        self.ref_channel, self.surv_channel = ref_channel, surv_channel
        self.timeout_s = timeout_s
        self.stats = DaqStats()
        self.rate_hz: float | None = None
        self.center_hz: float | None = None
        self._sock: socket.socket | None = None

    def _recv(self, n: int) -> bytes:
        assert self._sock is not None
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self._sock.recv_into(view[got:], n - got)
            if k == 0:
                raise ConnectionError("the DAQ closed the connection")
            got += k
        return bytes(buf)

    def blocks(self) -> Iterator[TwoChannelBlock]:
        """Blocks of the two channels until the DAQ hangs up; a skipped frame is a gap."""
        try:
            self._sock = socket.create_connection((self.host, self.port), self.timeout_s)
        except OSError as exc:
            raise SourceError(f"KrakenSDR DAQ at {self.host}:{self.port}: {exc}") from None
        try:
            self._sock.sendall(b"streaming")
            sample = 0
            last_cpi: int | None = None
            while True:
                try:
                    head = DaqHeader.parse(self._recv(HEADER_BYTES))
                except (ConnectionError, OSError) as exc:
                    log.info("KrakenSDR DAQ stream ended: %s", exc)
                    return
                if head.sync_word != SYNC_WORD:
                    raise SourceError(
                        f"KrakenSDR DAQ at {self.host}:{self.port}: bad sync word "
                        f"{head.sync_word:#010x} (not a heimdall IQ stream?)"
                    )
                self.stats.frames += 1
                self.stats.last_header = head
                size = head.cpi_length * head.channels * 8
                if size > MAX_PAYLOAD_BYTES:
                    raise SourceError(
                        f"KrakenSDR DAQ at {self.host}:{self.port}: frame of {head.channels} x "
                        f"{head.cpi_length} samples is implausible"
                    )
                payload = self._recv(size)  # every frame type carries cpi_length x channels
                self._sock.sendall(b"IQDownload")
                usable = (
                    head.frame_type == FRAME_TYPE_DATA
                    and head.delay_sync == 1
                    and head.iq_sync == 1
                    and head.channels > max(self.ref_channel, self.surv_channel)
                    and head.cpi_length > 0
                )
                if last_cpi is not None and head.cpi_index > last_cpi + 1:
                    lost = head.cpi_index - last_cpi - 1
                    self.stats.lost_cpis += lost
                    sample += lost * head.cpi_length
                if not usable:
                    self.stats.skipped_frames += 1
                    sample += max(head.cpi_length, 1)  # not coherent samples: a gap
                    last_cpi = head.cpi_index
                    continue
                self.rate_hz, self.center_hz = float(head.rate_hz), float(head.center_hz)
                iq = np.frombuffer(payload, dtype="<c8").reshape(head.channels, head.cpi_length)
                self.stats.data_frames += 1
                last_cpi = head.cpi_index
                yield TwoChannelBlock(
                    iq[self.ref_channel].astype(np.complex64),
                    iq[self.surv_channel].astype(np.complex64),
                    sample,
                )
                sample += head.cpi_length
        finally:
            self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
