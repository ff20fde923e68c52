"""Beast binary output (TCP 30005): the format dump1090/readsb/tar1090 feeders read.

Each frame: ``0x1a``, type ``'2'`` (56-bit) or ``'3'`` (112-bit), 6-byte big-endian
12 MHz timestamp, 1-byte signal level, the reply's bytes; every ``0x1a`` after the
leading one is doubled.
"""

from __future__ import annotations

import math

import numpy as np

from sensord.frames import TS_MASK

ESC = 0x1A
TYPE_BY_NBITS = {56: ord("2"), 112: ord("3")}


def signal_byte(signal_dbfs: float) -> int:
    """dBFS power as the Beast signal byte (amplitude scaled to 0..255)."""
    if not math.isfinite(signal_dbfs):
        return 0
    return max(0, min(255, round(255 * 10 ** (signal_dbfs / 20))))


def encode_frame(frame: np.void) -> bytes:
    """One frame as a Beast record."""
    nbits = int(frame["nbits"])
    body = (
        (int(frame["ts_12mhz"]) & TS_MASK).to_bytes(6, "big")
        + bytes((signal_byte(float(frame["signal_dbfs"])),))
        + bytes(frame["msg"][: nbits // 8])
    )
    return bytes((ESC, TYPE_BY_NBITS[nbits])) + body.replace(b"\x1a", b"\x1a\x1a")


def encode_frames(frames: np.ndarray) -> bytes:
    """A batch of frames as concatenated Beast records (other lengths are skipped)."""
    return b"".join(encode_frame(f) for f in frames if int(f["nbits"]) in TYPE_BY_NBITS)


def decode_stream(data: bytes) -> list[tuple[int, int, bytes]]:
    """Parse Beast records back into ``(ts_12mhz, signal, msg)``; a truncated tail is ignored."""
    lengths = {ord("2"): 7, ord("3"): 14}
    out: list[tuple[int, int, bytes]] = []
    i = 0
    while i + 1 < len(data):
        if data[i] != ESC or data[i + 1] not in lengths:
            i += 1
            continue
        need = 7 + lengths[data[i + 1]]
        body = bytearray()
        j = i + 2
        while len(body) < need and j < len(data):
            if data[j] == ESC:
                if j + 1 >= len(data) or data[j + 1] != ESC:
                    break  # unescaped 0x1a: a new record starts, this one is broken
                j += 1
            body.append(data[j])
            j += 1
        if len(body) == need:
            out.append((int.from_bytes(body[:6], "big"), body[6], bytes(body[7:])))
        i = j
    return out
