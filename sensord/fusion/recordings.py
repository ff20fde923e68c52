"""Several recordings through one fusion node, without a broker (``sensord fuse --recording``).

Each receiver's recording runs through its own receive chain, as ``sensord run`` would on
its node, and each radar's two-channel recording through the radar processor, as
``sensord radar`` would; what they deliver takes the same path as over MQTT (the v2
payload then ``Fuser.ingest``; the radar's CPI message then ``Fuser.ingest_radar``), and
the deliveries of all recordings are taken in UTC order, so the fusion node sees what it
would see live with every node on time.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sensord import __version__
from sensord.chain import Chain, ChainOutput
from sensord.errors import UserError
from sensord.fusion.fuser import Fuser
from sensord.fusion.wire import NodeInfo, batch_json
from sensord.geo import Site
from sensord.mlat.feed import MlatFeed
from sensord.radar.geometry import Bistatic, parse_site
from sensord.radar.pipeline import RunStats, results
from sensord.radar.processor import CpiResult, RadarParams
from sensord.radar.publishing import cpi_payload, info_payload, map_payload
from sensord.radar.source import TwoChannelFile
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


@dataclass(frozen=True)
class RadarRecordingSpec:
    """``NODE=PATH@TX_LAT,TX_LON,TX_ALT_M@RX_LAT,RX_LON,RX_ALT_M@CARRIER_HZ``: one radar
    node's two-channel recording, its transmitter, receiver and carrier."""

    node: str
    path: Path
    bistatic: Bistatic

    @classmethod
    def parse(cls, text: str) -> RadarRecordingSpec:
        node, sep, rest = text.partition("=")
        parts = rest.rsplit("@", 3)
        if not sep or not node or len(parts) != 4 or not parts[0]:
            raise UserError(
                f"--radar-recording {text!r}: expected NODE=PATH@TX_LAT,TX_LON,TX_ALT_M"
                "@RX_LAT,RX_LON,RX_ALT_M@CARRIER_HZ"
            )
        path, tx, rx, fc = parts
        try:
            carrier_hz = float(fc)
        except ValueError:
            raise UserError(f"--radar-recording {text!r}: carrier {fc!r} is not Hz") from None
        bistatic = Bistatic(parse_site(tx, "the transmitter"), parse_site(rx, "the receiver"),
                            carrier_hz)  # fmt: skip
        return cls(node, Path(path), bistatic)


Event = tuple[float, Callable[[], None]]  # (UTC by which it is known, what it delivers)


def _receiver_events(
    spec: RecordingSpec, fuser: Fuser, fix_bits: int, max_range_m: float, mlat: MlatFeed | None
) -> Iterator[Event]:
    """A receiver's blocks through its own chain: detections (and frames for MLAT)."""
    source = IQFileSource(spec.path)
    info = NodeInfo(spec.node, spec.site.lat_deg, spec.site.lon_deg, spec.site.alt_m, "file",
                    source.rate_hz, utc_source=source.utc_source, version=__version__)  # fmt: skip
    fuser.node_info(spec.node, info.to_dict())
    if mlat is not None:
        mlat.node_info(spec.node, info.lat_deg, info.lon_deg, info.alt_m, info.counter_hz)
    chain = Chain(source.rate_hz, spec.site, spec.node, fix_bits, max_range_m)

    def deliver(step: ChainOutput) -> None:
        if step.detections:
            fuser.ingest(spec.node, batch_json(spec.node, step.end_utc, step.detections))
        if mlat is not None and step.end_utc is not None and len(step.frames):
            mlat.frames(spec.node, step.frames, step.end_utc, step.end_s)

    for step in chain.run(source):
        yield (step.end_utc or 0.0, partial(deliver, step))


def _radar_events(
    spec: RadarRecordingSpec, fuser: Fuser, on_map: Callable[[str, bytes], None] | None,
    map_every_cpis: int,
) -> Iterator[Event]:  # fmt: skip
    """A radar's CPIs through the radar processor: one detections message per CPI (and,
    with ``on_map``, every ``map_every_cpis``-th CPI's range-Doppler picture)."""
    src = TwoChannelFile(spec.path)
    params = RadarParams(rate_hz=src.rate_hz, carrier_hz=spec.bistatic.carrier_hz)
    fuser.node_info(spec.node, info_payload(spec.node, spec.bistatic, params, "file",
                                            src.start_utc_from))  # fmt: skip
    counter = itertools.count()

    def keep_map() -> bool:
        return on_map is not None and next(counter) % map_every_cpis == 0

    def deliver(res: CpiResult) -> None:
        fuser.ingest_radar(spec.node, cpi_payload(spec.node, res, src.start_utc))
        if on_map is not None and res.cmap is not None:
            on_map(spec.node, map_payload(res, params, src.start_utc))

    for res in results(src.blocks(), params, RunStats(), src.start_utc, keep_map=keep_map):
        yield (src.start_utc + res.t_s + params.cpi_s / 2, partial(deliver, res))


def fuse_recordings(
    specs: list[RecordingSpec],
    fuser: Fuser,
    fix_bits: int = 1,
    max_range_m: float = 400e3,
    mlat: MlatFeed | None = None,
    radars: Sequence[RadarRecordingSpec] = (),
    on_radar_map: Callable[[str, bytes], None] | None = None,
    map_every_cpis: int = 4,
) -> Iterator[list[TrackUpdate]]:
    """Fused track updates, one list (maybe empty) per block or CPI taken, in UTC order
    across the recordings; the fuser has released every detection up to
    ``fuser.released_utc``.

    With ``mlat``, every block's frames also go to multilateration (``sensord.mlat``);
    ``radars`` are radar nodes' two-channel recordings, processed CPI by CPI.
    """
    names = [s.node for s in specs] + [r.node for r in radars]
    if len(set(names)) != len(names):
        raise UserError(f"--recording: node names must differ, got {names}")
    streams: list[tuple[str, Iterator[Event]]] = [
        (spec.node, _receiver_events(spec, fuser, fix_bits, max_range_m, mlat)) for spec in specs
    ]
    streams += [(r.node, _radar_events(r, fuser, on_radar_map, map_every_cpis)) for r in radars]
    # (UTC of the node's next delivery, order, node, its iterator, the delivery)
    heap: list[tuple[float, int, str, Iterator[Event], Callable[[], None]]] = []
    for k, (node, it) in enumerate(streams):
        first = next(it, None)
        if first is not None:
            heapq.heappush(heap, (first[0], k, node, it, first[1]))
    # every node has delivered all it measured up to its last delivery: the fusion clock
    # is the least of those over the nodes still running
    delivered = {node: -math.inf for node in names}
    while heap:
        end_utc, k, node, it, deliver = heapq.heappop(heap)
        deliver()
        following = next(it, None)
        if following is not None:
            heapq.heappush(heap, (following[0], k, node, it, following[1]))
            delivered[node] = end_utc
        else:
            delivered.pop(node, None)
        yield fuser.step(min(delivered.values(), default=end_utc))
    if mlat is not None:
        mlat.flush()
    yield fuser.flush()
