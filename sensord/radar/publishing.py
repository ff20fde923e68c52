"""The radar as a node: detections on ``<prefix>/<node>/radar/detections``, one message
per CPI, and a retained ``<prefix>/<node>/info`` saying where the receiver is and which
transmitter and carrier it uses.

``info`` is the fusion node's schema 1 (position = the receiver) plus ``radar``::

    {"schema": 1, "node": "radar0", "lat_deg": .., "lon_deg": .., "alt_m": ..,
     "clock": {"type": "file" | "rtlsdr-pair" | "kraken", "rate_hz": 2e6},
     "utc_source": "...", "version": "...",
     "radar": {"tx": {"lat_deg", "lon_deg", "alt_m"}, "rx": {...}, "carrier_hz": 98e6,
               "baseline_m": .., "cpi_s": 0.5, "range_cell_m": 149.9, "pfa": 1e-4}}

A CPI's message (schema ``RADAR_SCHEMA``)::

    {"schema": 1, "node": "radar0", "cpi": 12, "t_s": 6.25, "utc": ..,
     "detections": [<the objects sensord radar --jsonl prints>], "discarded": null}

With cooperative tracks (``sensord radar --tracks``) each detection also carries the
``track_id`` it pairs with (``cooperative: true``) or the radar-only track it feeds
(``radar:<node>:<n>``, ``cooperative: false``, ``radar_only: true``, ``confirmed``).
``discarded`` names why a CPI gave nothing (a drop, channels not coherent, ...), so a
consumer can tell "no target" from "not looking".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

from sensord import __version__
from sensord.publish.mqtt import MqttSettings, Publisher
from sensord.radar.geometry import Bistatic
from sensord.radar.pipeline import RunStats
from sensord.radar.processor import CpiResult, RadarParams

RADAR_SCHEMA = 1
DETECTIONS_KIND = "radar/detections"


def info_payload(node: str, bistatic: Bistatic, params: RadarParams, clock_type: str,
                 utc_source: str) -> dict:  # fmt: skip
    """The retained ``info`` of a radar node."""
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
) -> None:
    """Process in a worker thread, publish from the event loop, flush and go offline."""
    pub = Publisher(settings, stats_source=lambda: {
        "radar": {"cpis": stats.cpis, "processed": stats.processed,
                  "detections": stats.detections, "discarded": dict(stats.discarded)},
    })  # fmt: skip
    runner = asyncio.create_task(pub.run())
    pub.extra([(f"{settings.base}/info", json.dumps(info).encode(), True)])
    loop = asyncio.get_running_loop()

    def work() -> None:
        for res in results:
            labels = on_result(res) if on_result is not None else None
            payload = cpi_payload(settings.node, res, utc0, labels)
            loop.call_soon_threadsafe(pub.stream, DETECTIONS_KIND, [payload])

    try:
        await loop.run_in_executor(None, work)
    finally:
        await pub.stop()
        if not runner.done():
            runner.cancel()
