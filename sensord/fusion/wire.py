"""What nodes publish for the fusion node, and its strict parser.

``<prefix>/<node>/info`` (retained), published once a node starts::

    {"schema": 1, "node": "rx1", "lat_deg": 52.1, "lon_deg": 4.6, "alt_m": 12.0,
     "clock": {"type": "rtlsdr" | "rtltcp" | "file", "rate_hz": 2.4e6, "counter_hz": 12e6},
     "utc_source": "sigmf" | "start-utc" | "mtime" | "fit", "version": "0.1.0"}

``<prefix>/<node>/detections`` (or ``detections/<shard>``), one message per block::

    {"schema": 2, "node": "rx1", "utc": <UTC at the block's end>,
     "detections": [<detection>, ...]}

A detection is the v1 object (``t_s``, ``sensor_id``, ``source``, ``observes``, ``z``,
``R``, ``icao``, identity fields) plus ``utc`` (UTC of ``t_s``), ``frame`` (the reply's
bytes, hex: copies heard by several receivers are recognised by it) and ``signal_dbfs``.
``z`` and ``R`` are in the ENU frame of the node's position in ``info``: a consumer turns
them into its own frame through ECEF (``sensord.fusion.transform``). v1 consumers read each
element of ``detections`` as they read a v1 message (``[mqtt] detections_schema = 1``
keeps the v1 one-detection-per-message form; see docs/mqtt.md).

``parse_*`` raise ``PayloadError`` with a short reason for anything malformed, non-finite
or of an unknown schema; the fusion node counts it per node and logs it once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from sensord.detections import STATE, Detection

DETECTIONS_SCHEMA = 2
INFO_SCHEMA = 1
_MEASURED = frozenset((*STATE, "alt"))
_IDENTITY = ("callsign", "squawk", "category", "alt_baro_ft", "alt_geom_ft", "on_ground")
MAX_DETECTIONS_PER_BATCH = 100_000


class PayloadError(ValueError):
    """A payload the fusion node cannot use; the message says why (one line)."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node's retained ``info``: where it is and what its clock is."""

    node: str
    lat_deg: float
    lon_deg: float
    alt_m: float
    clock_type: str = "file"
    rate_hz: float = 2.4e6
    counter_hz: float = 12e6
    utc_source: str = ""
    version: str = ""

    def to_dict(self) -> dict:
        return {
            "schema": INFO_SCHEMA,
            "node": self.node,
            "lat_deg": self.lat_deg,
            "lon_deg": self.lon_deg,
            "alt_m": self.alt_m,
            "clock": {
                "type": self.clock_type,
                "rate_hz": self.rate_hz,
                "counter_hz": self.counter_hz,
            },
            "utc_source": self.utc_source,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class DetectionBatch:
    """One node's detections of one block, as parsed JSON objects: ``parse_detection``
    turns one into a ``Detection`` (the fusion node parses only first copies of a reply)."""

    node: str
    utc: float
    items: list[dict]


@dataclass(frozen=True, slots=True)
class CopyKey:
    """What recognises a copy of a reply, read cheaply off a detection object."""

    frame: bytes | None
    utc: float
    signal_dbfs: float | None
    kinematic: bool  # it measures something (not identity only)


def detection_v2(d: Detection) -> dict:
    """The v2 object of one detection (v1 fields plus utc, frame, signal_dbfs)."""
    out: dict = {
        "t_s": round(d.t_s, 7),
        "utc": round(d.utc, 7) if d.utc is not None else None,
        "sensor_id": d.sensor_id,
        "source": d.source,
        "observes": list(d.observes),
        "z": [round(float(v), 3) for v in d.z],
        "R": [[round(float(v), 3) for v in row] for row in d.R],
        "icao": f"{d.icao:06X}" if d.icao is not None else None,
    }
    if d.frame is not None:
        out["frame"] = d.frame.hex().upper()
    if d.signal_dbfs is not None and math.isfinite(d.signal_dbfs):
        out["signal_dbfs"] = round(d.signal_dbfs, 1)
    for key in _IDENTITY:
        value = getattr(d, key)
        if value is not None:
            out[key] = value
    return out


def batch_json(node: str, utc: float | None, detections: list[Detection]) -> str:
    """The v2 ``detections`` payload of one block."""
    return json.dumps(
        {
            "schema": DETECTIONS_SCHEMA,
            "node": node,
            "utc": utc,
            "detections": [detection_v2(d) for d in detections],
        },
        separators=(",", ":"),
    )


def json_object(payload: bytes | str | dict) -> dict:
    if isinstance(payload, dict):
        return payload
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("not JSON") from None
    if not isinstance(doc, dict):
        raise PayloadError("not a JSON object")
    return doc


def finite_number(doc: dict, key: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError(f"{key} missing or not a number")
    value = float(value)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise PayloadError(f"{key} = {value} out of range")
    return value


def node_of(doc: dict, schema: int, what: str) -> str:
    """The node name of a payload of the ``what`` kind, after checking its schema."""
    if doc.get("schema") != schema:
        raise PayloadError(f"unknown {what} schema {doc.get('schema')!r}")
    node = doc.get("node")
    if not isinstance(node, str) or not node:
        raise PayloadError(f"{what} without a node name")
    return node


def parse_info(payload: bytes | str | dict) -> NodeInfo:
    """A node's ``info``; PayloadError for a bad schema, position or clock."""
    doc = json_object(payload)
    node = node_of(doc, INFO_SCHEMA, "info")
    clock_doc = doc.get("clock")
    clock: dict = clock_doc if isinstance(clock_doc, dict) else {}
    return NodeInfo(
        node=node,
        lat_deg=finite_number(doc, "lat_deg", -90.0, 90.0),
        lon_deg=finite_number(doc, "lon_deg", -180.0, 180.0),
        alt_m=finite_number(doc, "alt_m", -500.0, 9000.0),
        clock_type=str(clock.get("type", "")),
        rate_hz=finite_number(clock, "rate_hz", 1e3, 1e9) if "rate_hz" in clock else 2.4e6,
        counter_hz=finite_number(clock, "counter_hz", 1e3, 1e10) if "counter_hz" in clock else 12e6,
        utc_source=str(doc.get("utc_source", "")),
        version=str(doc.get("version", "")),
    )


def parse_batch(payload: bytes | str | dict) -> DetectionBatch:
    """A v2 ``detections`` payload; the detections' ``sensor_id`` is the batch's node."""
    doc = json_object(payload)
    node = node_of(doc, DETECTIONS_SCHEMA, "detections")
    items = doc.get("detections")
    if not isinstance(items, list) or len(items) > MAX_DETECTIONS_PER_BATCH:
        raise PayloadError("detections is not a list (or is absurdly long)")
    utc = finite_number(doc, "utc", 0.0) if doc.get("utc") is not None else math.nan
    return DetectionBatch(node, utc, items)


def parse_detections(payload: bytes | str | dict) -> tuple[str, list[Detection]]:
    """A whole v2 payload as Detections (every item parsed): (node, detections)."""
    batch = parse_batch(payload)
    return batch.node, [parse_detection(item, batch.node) for item in batch.items]


def copy_key(item: object) -> CopyKey:
    """The frame bytes, UTC and level of a detection object; PayloadError if unusable."""
    if not isinstance(item, dict):
        raise PayloadError("a detection is not an object")
    frame = item.get("frame")
    if frame is not None:
        try:
            frame = bytes.fromhex(frame)
        except (TypeError, ValueError):
            raise PayloadError("frame is not hex") from None
        if len(frame) not in (7, 14):
            raise PayloadError("frame is not 56 or 112 bits")
    signal = item.get("signal_dbfs")
    signal = float(signal) if isinstance(signal, (int, float)) and math.isfinite(signal) else None
    return CopyKey(frame, finite_number(item, "utc", 0.0), signal, bool(item.get("observes")))


MAX_ABS_VALUE = 1e8  # m, m/s, m^2: beyond any real measurement or variance


def _vector(value: object, m: int) -> list[float]:
    if not isinstance(value, list) or len(value) != m:
        raise PayloadError("z/R do not match observes")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise PayloadError("z or R not finite")
        if abs(v) > MAX_ABS_VALUE:
            raise PayloadError("z or R out of range")
        out.append(float(v))
    return out


def parse_detection(item: object, node: str) -> Detection:
    """One v2 detection object; PayloadError if anything is malformed or not finite."""
    if not isinstance(item, dict):
        raise PayloadError("a detection is not an object")
    observes = item.get("observes", [])
    if not isinstance(observes, list) or not all(
        isinstance(o, str) and o in _MEASURED for o in observes
    ):
        raise PayloadError(f"unknown observes {observes!r}")
    m = len(observes)
    z = _vector(item.get("z", []), m)
    rows = item.get("R", [])
    if not isinstance(rows, list) or len(rows) != m:
        raise PayloadError("z/R do not match observes")
    r = [_vector(row, m) for row in rows]
    for i in range(m):
        if r[i][i] <= 0 or any(
            abs(r[i][j] - r[j][i]) > 1e-6 * (1 + abs(r[i][j])) for j in range(i)
        ):
            raise PayloadError("R is not a covariance")
    r_array = np.array(r).reshape(m, m)
    if m > 1:
        try:
            np.linalg.cholesky(r_array)
        except np.linalg.LinAlgError:
            raise PayloadError("R is not positive definite") from None
    icao = item.get("icao")
    if icao is not None:
        try:
            icao = int(icao, 16)
        except (TypeError, ValueError):
            raise PayloadError(f"icao {icao!r} is not hex") from None
        if not 0 <= icao <= 0xFFFFFF:
            raise PayloadError("icao out of range")
    heard = copy_key(item)
    kw = {k: item[k] for k in _IDENTITY if item.get(k) is not None}
    for key in ("alt_baro_ft", "alt_geom_ft"):
        if key in kw:
            kw[key] = finite_number(kw, key, -2000.0, 200_000.0)
    for key in ("callsign", "squawk", "category"):
        if key in kw and not isinstance(kw[key], str):
            raise PayloadError(f"{key} is not a string")
    return Detection(
        t_s=finite_number(item, "t_s"),
        sensor_id=node,
        observes=tuple(observes),
        z=np.array(z),
        R=r_array,
        icao=icao,
        source=str(item.get("source", "")),
        utc=heard.utc,
        frame=heard.frame,
        signal_dbfs=heard.signal_dbfs,
        **kw,
    )
