"""Several recordings through one fusion node, without a broker (``sensord fuse --recording``).

Each recording runs through its own receive chain, as ``sensord run`` would on its node;
each block's detections take the same path as over MQTT (the v2 payload, then
``Fuser.ingest``), and the blocks of all recordings are taken in UTC order, so the
fusion node sees what it would see live with every node on time.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sensord import __version__
from sensord.chain import Chain, ChainOutput
from sensord.errors import UserError
from sensord.fusion.fuser import Fuser
from sensord.fusion.wire import NodeInfo, batch_json
from sensord.geo import Site
from sensord.mlat.feed import MlatFeed
from sensord.source.iqfile import IQFileSource
from sensord.tracker.update import TrackUpdate


@dataclass(frozen=True)
class RecordingSpec:
    """``NODE=PATH@LAT,LON,ALT_M``: one node's recording and where it was made."""

    node: str
    path: Path
    site: Site

    @classmethod
    def parse(cls, text: str) -> RecordingSpec:
        node, sep, rest = text.partition("=")
        path, at, where = rest.rpartition("@")
        if not sep or not at or not node or not path:
            raise UserError(f"--recording {text!r}: expected NODE=PATH@LAT,LON,ALT_M")
        try:
            lat, lon, alt = (float(v) for v in where.split(","))
        except ValueError:
            raise UserError(f"--recording {text!r}: position is LAT,LON,ALT_M") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and -500 <= alt <= 9000) or not all(
            math.isfinite(v) for v in (lat, lon, alt)
        ):
            raise UserError(f"--recording {text!r}: position out of range")
        return cls(node, Path(path), Site(lat, lon, alt))


def fuse_recordings(
    specs: list[RecordingSpec],
    fuser: Fuser,
    fix_bits: int = 1,
    max_range_m: float = 400e3,
    mlat: MlatFeed | None = None,
) -> Iterator[list[TrackUpdate]]:
    """Fused track updates, one list (maybe empty) per block taken, in UTC order across the
    recordings; the fuser has released every detection up to ``fuser.released_utc``.

    With ``mlat``, every block's frames also go to multilateration (``sensord.mlat``).
    """
    names = [s.node for s in specs]
    if len(set(names)) != len(names):
        raise UserError(f"--recording: node names must differ, got {names}")
    streams = []
    for spec in specs:
        source = IQFileSource(spec.path)
        info = NodeInfo(
            spec.node,
            spec.site.lat_deg,
            spec.site.lon_deg,
            spec.site.alt_m,
            "file",
            source.rate_hz,
            utc_source=source.utc_source,
            version=__version__,
        )
        fuser.node_info(spec.node, info.to_dict())
        if mlat is not None:
            mlat.node_info(spec.node, info.lat_deg, info.lon_deg, info.alt_m, info.counter_hz)
        chain = Chain(source.rate_hz, spec.site, spec.node, fix_bits, max_range_m)
        streams.append((spec.node, source, iter(chain.run(source))))
    # (UTC at the end of the node's next block, order, node, its step iterator)
    heap: list[tuple[float, int, str, Iterator[ChainOutput], ChainOutput]] = []
    for k, (node, _, it) in enumerate(streams):
        first = next(it, None)
        if first is not None:
            heapq.heappush(heap, (first.end_utc or 0.0, k, node, it, first))
    # every node has delivered all its detections up to its last block's end: the fusion
    # clock is the least of those over the nodes still running
    delivered = {node: -math.inf for node in names}
    while heap:
        end_utc, k, node, it, step = heapq.heappop(heap)
        if step.detections:
            fuser.ingest(node, batch_json(node, step.end_utc, step.detections))
        if mlat is not None and step.end_utc is not None and len(step.frames):
            mlat.frames(node, step.frames, step.end_utc, step.end_s)
        following = next(it, None)
        if following is not None:
            heapq.heappush(heap, (following.end_utc or 0.0, k, node, it, following))
            delivered[node] = end_utc
        else:
            del delivered[node]
        yield fuser.step(min(delivered.values(), default=end_utc))
    if mlat is not None:
        mlat.flush()
    yield fuser.flush()
