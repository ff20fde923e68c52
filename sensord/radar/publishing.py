"""The radar as a node: detections on ``<prefix>/<node>/radar/detections``, one message
per CPI, and a retained ``<prefix>/<node>/info`` saying where the receiver is and which
transmitter and carrier it uses.

``info`` is the fusion node's schema 1 (position = the receiver) plus ``radar``::

    {"schema": 1, "node": "radar0", "lat_deg": .., "lon_deg": .., "alt_m": ..,
     "clock": {"type": "file" | "rtlsdr-pair" | "kraken", "rate_hz": 2e6},
     "utc_source": "...", "version": "...",
     "radar": {"tx": {"lat_deg", "lon_deg", "alt_m"}, "rx": {...}, "carrier_hz": 98e6,
               "baseline_m": .., "cpi_s": 0.5, "range_cell_m": 149.9, "pfa": 1e-4,
               "map_every_s": 2.0}}

A CPI's message (schema ``RADAR_SCHEMA``)::

    {"schema": 1, "node": "radar0", "cpi": 12, "t_s": 6.25, "utc": ..,
     "detections": [<the objects sensord radar --jsonl prints>], "discarded": null}

With cooperative tracks (``sensord radar --tracks``) each detection also carries the
``track_id`` it pairs with (``cooperative: true``) or the radar-only track it feeds
(``radar:<node>:<n>``, ``cooperative: false``, ``radar_only: true``, ``confirmed``).
``discarded`` names why a CPI gave nothing (a drop, channels not coherent, ...), so a
consumer can tell "no target" from "not looking".

The latest map goes, retained, to ``<prefix>/<node>/radar/map`` (``MAP_TOPIC``) as a PNG
(``map_image``: range along x, Doppler along y, detections and track marks on it) at most
every ``--map-every`` seconds of wall clock. A CPI keeps its map only when one is due, so
the other CPIs cost nothing more; while the broker is away the newest map waits for it
in one slot (``LatestMap``).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from sensord import __version__
from sensord.publish.mqtt import MqttSettings, Publisher
from sensord.radar.geometry import Bistatic
from sensord.radar.map_image import TrackMark, map_png
from sensord.radar.pipeline import RunStats
from sensord.radar.processor import CpiResult, RadarParams

RADAR_SCHEMA = 1
DETECTIONS_KIND = "radar/detections"
MAP_TOPIC = "radar/map"  # under <prefix>/<node>/: the latest map PNG, retained
MAP_MAX_BYTES = 256 * 1024  # what a consumer should accept (a 400 x 200 map is ~20 kB)


@dataclass
class MapSchedule:
    """When a CPI keeps its map for ``MAP_TOPIC``: at most every ``every_s`` seconds of
    ``clock`` (wall clock: a file runs faster than real time, a live source does not)."""

    every_s: float
    clock: Callable[[], float] = time.monotonic
    next_s: float = -math.inf

    def due(self) -> bool:
        """Asked before each CPI; True commits the CPI to keeping its map."""
        if self.every_s <= 0:
            return False
        now = self.clock()
        if now < self.next_s:
            return False
        self.next_s = now + self.every_s
        return True


class LatestMap:
    """One slot for the newest map, handed to the publisher while the broker is
    connected: maps never pile up behind a lost link, and the one that waits is the
    newest (event loop thread only)."""

    def __init__(self, pub: Publisher, topic: str) -> None:
        self.pub = pub
        self.topic = topic
        self.png: bytes | None = None
        self.published = 0
        self.replaced = 0  # maps that never went out: a newer one took the slot

    def offer(self, png: bytes) -> None:
        self.replaced += self.png is not None
        self.png = png
        self.hand_over()

    def hand_over(self) -> None:
        if self.png is not None and self.pub.stats.connected:
            message: tuple[str, str | bytes, bool] = (self.topic, self.png, True)
            self.pub.extra([message])
            self.png = None
            self.published += 1


def map_payload(res: CpiResult, params: RadarParams, utc0: float,
                marks: Sequence[TrackMark] = ()) -> bytes:  # fmt: skip
    """A kept map as the node publishes it: the PNG with the CPI's time in its text."""
    if res.cmap is None:
        raise ValueError(f"CPI {res.cpi} kept no map")
    power = res.cmap.real**2 + res.cmap.imag**2
    text = {"cpi": res.cpi, "t_s": round(res.t_s, 6), "utc": round(utc0 + res.t_s, 6)}
    return map_png(power, params.range_cell_m, params.cpi_s, res.detections, marks,
                   res.noise_floor, text=text)  # fmt: skip


def info_payload(node: str, bistatic: Bistatic, params: RadarParams, clock_type: str,
                 utc_source: str, map_every_s: float = 0.0) -> dict:  # fmt: skip
    """The retained ``info`` of a radar node (``map_every_s`` 0: no map published)."""
    rx = bistatic.rx
    return {
        "schema": 1,
        "node": node,
        "lat_deg": rx.lat_deg,
        "lon_deg": rx.lon_deg,
        "alt_m": rx.alt_m,
        "clock": {"type": clock_type, "rate_hz": params.rate_hz},
        "utc_source": utc_source,
        "version": __version__,
        "radar": {
            **bistatic.to_dict(),
            "cpi_s": params.cpi_s,
            "range_cell_m": round(params.range_cell_m, 3),
            "n_range": params.n_range,
            "n_doppler": params.n_doppler,
            "pfa": params.cfar.pfa,
            "map_every_s": map_every_s,
        },
    }


def cpi_payload(node: str, res: CpiResult, utc0: float, labels: dict | None = None) -> str:
    """One CPI's detections as the node publishes them."""
    return json.dumps(
        {
            "schema": RADAR_SCHEMA,
            "node": node,
            "cpi": res.cpi,
            "t_s": round(res.t_s, 6),
            "utc": round(utc0 + res.t_s, 6),
            "detections": [
                {**d.to_dict(), **(labels or {}).get(id(d), {})} for d in res.detections
            ],
            "discarded": res.discarded,
        },
        separators=(",", ":"),
    )


async def publish(
    results: Iterator[CpiResult],
    settings: MqttSettings,
    info: dict,
    stats: RunStats,
    utc0: float,
    on_result=None,
    maps: MapSchedule | None = None,
    params: RadarParams | None = None,
    marks: Callable[[CpiResult], Sequence[TrackMark]] | None = None,
) -> None:
    """Process in a worker thread, publish from the event loop, flush and go offline.

    With ``maps`` (the schedule ``results`` asks through ``keep_map``) and ``params``,
    every kept map goes to ``MAP_TOPIC`` with ``marks(res)`` drawn on it.
    """
    slot: LatestMap | None = None
    pub = Publisher(settings, stats_source=lambda: {
        "radar": {"cpis": stats.cpis, "processed": stats.processed,
                  "detections": stats.detections, "discarded": dict(stats.discarded),
                  "maps": slot.published if slot else 0},
    })  # fmt: skip
    runner = asyncio.create_task(pub.run())
    pub.extra([(f"{settings.base}/info", json.dumps(info).encode(), True)])
    loop = asyncio.get_running_loop()
    if maps is not None and params is not None:
        slot = LatestMap(pub, f"{settings.base}/{MAP_TOPIC}")

    def work() -> None:
        for res in results:
            labels = on_result(res) if on_result is not None else None
            payload = cpi_payload(settings.node, res, utc0, labels)
            loop.call_soon_threadsafe(pub.stream, DETECTIONS_KIND, [payload])
            if slot is not None and params is not None and res.cmap is not None:
                png = map_payload(res, params, utc0, marks(res) if marks else ())
                loop.call_soon_threadsafe(slot.offer, png)

    async def hand_over_when_connected() -> None:
        while slot is not None:
            await asyncio.sleep(0.25)
            slot.hand_over()

    watcher = asyncio.create_task(hand_over_when_connected())
    try:
        await loop.run_in_executor(None, work)  # its offers ran before this returns (FIFO)
        if slot is not None:
            slot.hand_over()
    finally:
        watcher.cancel()
        await pub.stop()
        if not runner.done():
            runner.cancel()
