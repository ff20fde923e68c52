"""Frames: the demodulator's output, one row per verified Mode S reply.

A batch of frames is a numpy structured array of ``FRAME_DTYPE``. Fields:

``msg``            the reply's bytes; a 56-bit reply uses ``msg[:7]``, the rest are zero
``nbits``          56 or 112
``df``             downlink format (first 5 bits)
``icao``           the 24-bit address: the AA field (DF11/17/18) or the address
                   recovered from the address/parity field (DF0/4/5/16/20/21)
``sample_idx``     index, on the source's sample clock, of the preamble's first sample
``ts_12mhz``       the same instant on a 12 MHz counter (the Beast format's clock)
``t_s``            the same instant in seconds of sample clock (``sample_idx / rate``)
``toa_12mhz``      arrival of the preamble's first pulse leading edge on the 12 MHz counter
                   (the ``ts_12mhz`` clock), with its sub-sample fraction: the estimate
                   multilateration uses (an early-late gate over every pulse edge)
``signal_dbfs``    mean power of the reply's pulses relative to full scale, dB
``corrected_bits`` bits flipped by error correction (0 to 3)
``addr_confirmed`` the address had been verified before this frame (see ``sensord.demod``)

Time is always the sample clock, never the wall clock, so a replay at any speed
gives the same frames and the same tracks.
"""

from __future__ import annotations

import json

import numpy as np

from sensord._crc import syndrome

AP_FORMATS = frozenset((0, 4, 5, 16, 20, 21))  # address/parity: the syndrome is the address

FRAME_DTYPE = np.dtype(
    [
        ("msg", "u1", (14,)),
        ("nbits", "u1"),
        ("df", "u1"),
        ("icao", "<u4"),
        ("sample_idx", "<i8"),
        ("ts_12mhz", "<u8"),
        ("t_s", "<f8"),
        ("toa_12mhz", "<f8"),
        ("signal_dbfs", "<f4"),
        ("corrected_bits", "u1"),
        ("addr_confirmed", "?"),
    ]
)

TICKS_PER_S = 12_000_000
TS_MASK = (1 << 48) - 1  # the Beast format's timestamp is 48 bits


def frame_hex(frame: np.void) -> str:
    """The reply as upper-case hex (14 or 28 digits)."""
    return bytes(frame["msg"][: int(frame["nbits"]) // 8]).hex().upper()


def raw_line(frame: np.void) -> str:
    """dump1090 raw line: ``@`` + 12 hex digits of the 12 MHz clock + frame hex + ``;``."""
    return f"@{int(frame['ts_12mhz']) & TS_MASK:012X}{frame_hex(frame)};"


def frame_dict(frame: np.void) -> dict:
    """The frame as a JSON-ready dict (the ``--json`` and MQTT ``frames`` payload)."""
    return {
        "hex": frame_hex(frame),
        "df": int(frame["df"]),
        "icao": f"{int(frame['icao']):06X}",
        "sample_idx": int(frame["sample_idx"]),
        "ts_12mhz": int(frame["ts_12mhz"]),
        "t_s": round(float(frame["t_s"]), 7),
        "toa_12mhz": round(float(frame["toa_12mhz"]), 3),
        "signal_dbfs": round(float(frame["signal_dbfs"]), 1),
        "corrected_bits": int(frame["corrected_bits"]),
        "addr_confirmed": bool(frame["addr_confirmed"]),
    }


def frame_json(frame: np.void) -> str:
    """One JSON object per frame, compact."""
    return json.dumps(frame_dict(frame), separators=(",", ":"))


def frames_from_hex(hexes: list[str], t_s: list[float] | None = None) -> np.ndarray:
    """Build a frame array from hex strings (tests, and re-reading saved raw lines).

    ``icao`` is the AA field for DF11/17/18 and the CRC syndrome (the address) for the
    address/parity formats DF0/4/5/16/20/21; 0 for other formats or odd lengths.
    """
    out = np.zeros(len(hexes), dtype=FRAME_DTYPE)
    for i, h in enumerate(hexes):
        b = bytes.fromhex(h)
        out["msg"][i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
        out["nbits"][i] = len(b) * 8
        out["df"][i] = min(b[0] >> 3, 24)
        out["icao"][i] = _address(b)
        if t_s is not None:
            out["t_s"][i] = t_s[i]
            out["ts_12mhz"][i] = round(t_s[i] * TICKS_PER_S)
            out["toa_12mhz"][i] = t_s[i] * TICKS_PER_S
    return out


def _address(msg: bytes) -> int:
    """The sender's address of a raw reply: AA field or address/parity syndrome, else 0."""
    df = msg[0] >> 3
    if len(msg) not in (7, 14):
        return 0
    if df in (11, 17, 18):
        return int.from_bytes(msg[1:4], "big")
    if df in AP_FORMATS:
        return syndrome(msg, len(msg) * 8)
    return 0
