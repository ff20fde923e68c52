"""What a receiver node publishes for fusion nodes: its ``info`` and its detections.

``DetectionStream`` turns one block's detections into MQTT messages: the v2 batch (one
message per block, or one per shard when ``shards`` > 0: ``detections/<k>``), or with
``schema = 1`` the v1 form, one message per detection. Shards spread the fusion load over
several ``sensord fuse`` workers through the broker: a detection with an ICAO address goes
to shard ``icao % shards``; an anonymous one (a radar) to the shard of its 1-degree
latitude/longitude cell, the same cell for every node. See docs/fusion.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from sensord import __version__
from sensord.detections import Detection, detection_dict
from sensord.fusion.wire import NodeInfo, batch_json
from sensord.geo import Site


@dataclass(frozen=True)
class Message:
    """A stream message: ``kind`` is the topic under the node's base."""

    kind: str
    payload: str


def node_info(node: str, site: Site, clock_type: str, rate_hz: float, utc_source: str) -> str:
    """The retained ``info`` payload of a receiver node."""
    info = NodeInfo(
        node, site.lat_deg, site.lon_deg, site.alt_m, clock_type, rate_hz, 12e6, utc_source,
        __version__,
    )  # fmt: skip
    return json.dumps(info.to_dict())


class DetectionStream:
    """One node's detections as MQTT messages (v2 batches, sharded or not, or v1)."""

    def __init__(self, node: str, site: Site, schema: int = 2, shards: int = 0) -> None:
        if schema not in (1, 2) or shards < 0:
            raise ValueError("schema is 1 or 2, shards >= 0")
        self.node = node
        self.site = site
        self.schema = schema
        self.shards = shards

    def messages(self, detections: list[Detection], utc: float | None) -> list[Message]:
        if not detections:
            return []
        if self.schema == 1:
            return [Message("detections", json.dumps(detection_dict(d))) for d in detections]
        if not self.shards:
            return [Message("detections", batch_json(self.node, utc, detections))]
        by_shard: dict[int, list[Detection]] = {}
        for d in detections:
            by_shard.setdefault(self.shard_of(d), []).append(d)
        return [
            Message(f"detections/{k}", batch_json(self.node, utc, dets))
            for k, dets in sorted(by_shard.items())
        ]

    def shard_of(self, d: Detection) -> int:
        """ICAO address modulo shards; an anonymous detection by its lat/lon cell."""
        if d.icao is not None:
            return d.icao % self.shards
        if d.observes[:2] == ("e", "n") and len(d.z) >= 3:
            lat, lon, _ = self.site.to_geodetic(d.z[:3])
            return (math.floor(float(lat)) * 360 + math.floor(float(lon))) % self.shards
        return 0
