"""What a node publishes for MLAT: one batched frames message per IQ block, and its parser.

``<prefix>/<node>/frames`` v2 (``docs/schema/frame.v2.json``; v1 is one frame per message)::

    {"schema": 2, "node": "rx1",
     "utc": 1795000000.123456,    # the node's UTC at the instant ts0 (e.g. the block's end)
     "ts0": 123456789,            # the 12 MHz counter at that same instant
     "hex": ["8D4840D6...", ...], # each frame's bytes
     "icao": ["4840D6", ...],     # AA field or the address recovered from parity
     "dts": [1200, 4711, ...],    # ts_12mhz - ts0 (ticks), preamble of each frame
     "toa": [0.37, -0.12, ...],   # optional: toa_12mhz - ts_12mhz (sub-sample arrival)
     "sig": [-12.5, ...]}         # signal level, dBFS

A frame's UTC is ``utc + dts / 12e6``: the node's wall-clock estimate, good to NTP's few
ms; MLAT uses it only to pair copies before the clocks are synchronised.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from sensord.errors import UserError
from sensord.frames import TICKS_PER_S

SCHEMA = 2
MAX_FRAMES = 100_000


@dataclass
class FrameBatch:
    """One node's frames of one block, as MLAT needs them (arrays of equal length)."""

    utc: float  # the node's UTC at ts0_12mhz
    ts0_12mhz: int
    msg: np.ndarray  # (n, 14) uint8, 56-bit replies in msg[:, :7]
    icao: np.ndarray  # (n,) uint32
    ts_12mhz: np.ndarray  # (n,) int64
    signal_dbfs: np.ndarray  # (n,) float32
    toa_12mhz: np.ndarray | None = None  # (n,) float64, sub-sample arrival when measured
    node: str = ""

    def __len__(self) -> int:
        return int(self.ts_12mhz.size)

    def frame_utc(self, clock_hz: float = TICKS_PER_S) -> np.ndarray:
        """Each frame's UTC from the block's (node wall clock)."""
        return self.utc + (self.ts_12mhz - self.ts0_12mhz) / clock_hz

    def arrival_ticks(self, use_toa: bool = True) -> np.ndarray:
        """Arrival on the counter (float ticks): ``toa_12mhz`` when present and asked for."""
        if use_toa and self.toa_12mhz is not None:
            return self.toa_12mhz
        return self.ts_12mhz.astype(np.float64)


def batch_from_frames(
    frames: np.ndarray, block_utc: float, block_ts_12mhz: int, node: str = ""
) -> FrameBatch:
    """A FrameBatch from a FRAME_DTYPE array (``toa_12mhz`` used when the dtype has it);
    ``block_utc`` is the node's UTC at counter value ``block_ts_12mhz``."""
    toa = None
    if frames.dtype.names is not None and "toa_12mhz" in frames.dtype.names:
        toa = np.asarray(frames["toa_12mhz"], dtype=np.float64)
    return FrameBatch(
        utc=float(block_utc),
        ts0_12mhz=int(block_ts_12mhz),
        msg=np.asarray(frames["msg"], dtype=np.uint8),
        icao=np.asarray(frames["icao"], dtype=np.uint32),
        ts_12mhz=np.asarray(frames["ts_12mhz"], dtype=np.int64),
        signal_dbfs=np.asarray(frames["signal_dbfs"], dtype=np.float32),
        toa_12mhz=toa,
        node=node,
    )


def frames_payload(node: str, frames: np.ndarray, block_utc: float, block_ts_12mhz: int) -> str:
    """The frames-topic JSON of one block (FRAME_DTYPE array, the block's UTC and counter)."""
    b = batch_from_frames(frames, block_utc, block_ts_12mhz, node)
    nbytes = (np.asarray(frames["nbits"], dtype=np.int64) // 8).tolist()
    doc: dict = {
        "schema": SCHEMA,
        "node": node,
        "utc": round(b.utc, 6),
        "ts0": b.ts0_12mhz,
        "hex": [bytes(row[:n]).hex().upper() for row, n in zip(b.msg, nbytes, strict=True)],
        "icao": [f"{int(a):06X}" for a in b.icao],
        "dts": (b.ts_12mhz - b.ts0_12mhz).tolist(),
        "sig": [round(float(s), 1) for s in b.signal_dbfs],
    }
    if b.toa_12mhz is not None:
        doc["toa"] = [round(float(v), 3) for v in b.toa_12mhz - b.ts_12mhz]
    return json.dumps(doc, separators=(",", ":"))


def parse_frames_payload(payload: bytes | str) -> FrameBatch:
    """The FrameBatch of a frames-topic message; a one-line ``UserError`` if it is malformed."""
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"mlat frames: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise UserError(f"mlat frames: schema is not {SCHEMA}")
    node = doc.get("node", "")
    if not isinstance(node, str):
        raise UserError("mlat frames: node is not a string")
    try:
        utc, ts0 = float(doc["utc"]), int(doc["ts0"])
        hexes, icaos, dts = list(doc["hex"]), list(doc["icao"]), list(doc["dts"])
        sig = list(doc.get("sig") or [0.0] * len(hexes))
        toa = doc.get("toa")
        n = len(hexes)
        if not (len(icaos) == len(dts) == len(sig) == n) or (toa is not None and len(toa) != n):
            raise ValueError("arrays of different lengths")
        if n > MAX_FRAMES or not math.isfinite(utc) or ts0 < 0:
            raise ValueError("too many frames, or a bad utc/ts0")
        msg = np.zeros((n, 14), dtype=np.uint8)
        for i, h in enumerate(hexes):
            raw = bytes.fromhex(h)
            if len(raw) not in (7, 14):
                raise ValueError(f"frame {i} is {len(raw)} bytes")
            msg[i, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        ts = ts0 + np.asarray(dts, dtype=np.int64)
        toa_arr = None if toa is None else ts + np.asarray(toa, dtype=np.float64)
        sig_arr = np.asarray(sig, dtype=np.float32)
        if (toa_arr is not None and not np.all(np.isfinite(toa_arr))) or not np.all(
            np.isfinite(sig_arr)
        ):
            raise ValueError("NaN or inf")
        return FrameBatch(
            utc, ts0, msg, np.array([int(a, 16) for a in icaos], dtype=np.uint32), ts,
            sig_arr, toa_arr, node,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise UserError(f"mlat frames: malformed payload ({e})") from None
