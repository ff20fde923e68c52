"""A network of receivers hearing one scenario: one recording per site, with truth.

Sites sit 30-60 km apart around the scenario's site (the fusion site), each with its own
start time (so its sample clock is offset from the others'), independent noise and
fading, and a coverage radius beyond which replies lose 30 dB: aircraft near the middle
are heard by every receiver, those far out by one or two. The scenario time 0 is
``epoch_utc``; each recording's SigMF ``core:datetime`` is the true UTC of its first
sample. ``network.json`` lists the receivers and their files; ``sensord fuse
--recording`` reads them as ``NODE=PATH@LAT,LON,ALT_M``.

A receiver's ``local_s`` (true arrival time -> its sample-clock seconds) is where a clock
model (offset, ppm error, jitter, sample-loss jumps: ``sensord.sim.clock``) plugs in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensord.geo import Site
from sensord.sim.recording import Receiver, record
from sensord.sim.scenario import Scenario, random_scenario

DEFAULT_EPOCH_UTC = 1_796_040_000.0  # 2026-11-30T12:00:00Z


@dataclass(frozen=True)
class NetworkSite:
    """One receiver of a simulated network."""

    name: str
    site: Site
    start_s: float
    coverage_m: float
    local_s: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)


@dataclass
class NetworkRecording:
    """What ``record_network`` wrote: per receiver its data path and truth frames."""

    sites: list[NetworkSite]
    paths: dict[str, Path]
    truth: dict[str, np.ndarray]
    epoch_utc: float
    manifest: Path

    def recording_args(self) -> list[str]:
        """``NODE=PATH@LAT,LON,ALT_M`` for each receiver (``sensord fuse --recording``)."""
        return [
            f"{s.name}={self.paths[s.name]}@{s.site.lat_deg:.6f},{s.site.lon_deg:.6f},"
            f"{s.site.alt_m:.1f}"
            for s in self.sites
        ]


def network_scenario(
    n_aircraft: int, center: Site, max_range_m: float = 150e3, seed: int = 1, **options
) -> Scenario:
    """A random scenario whose positions carry GNSS noise consistent with what they claim:
    TC 10 (NUCp 25 m containment, about 10.6 m per axis assumed) and 10 m of white noise."""
    scenario = random_scenario(n_aircraft, center, max_range_m, seed=seed, **options)
    for ac in scenario.aircraft:
        if not ac.on_ground:
            ac.position_typecode = 10
            ac.gnss_sigma_m = 10.0
    return scenario


def network_sites(
    center: Site,
    n: int,
    seed: int = 1,
    ring_km: float = 30.0,
    coverage_km: float = 120.0,
    max_start_s: float = 2.0,
) -> list[NetworkSite]:
    """``n`` sites on a ring about ``center``: neighbours 30-60 km apart for 3 to 6 sites
    (a jittered ring of radius ``ring_km``; one site alone sits at the centre)."""
    rng = np.random.default_rng([seed, 11])
    sites = []
    for k in range(n):
        if n == 1:
            e_m = n_m = 0.0
        else:
            bearing = 2 * math.pi * k / n + rng.uniform(-0.15, 0.15)
            radius_m = ring_km * 1e3 * rng.uniform(0.9, 1.1)
            e_m, n_m = radius_m * math.sin(bearing), radius_m * math.cos(bearing)
        lat, lon, _ = center.to_geodetic(np.array([e_m, n_m, 0.0]))
        h = center.alt_m + rng.uniform(0, 40)  # a mast on flat ground
        start_s = 0.0 if k == 0 else float(rng.uniform(0, max_start_s))
        sites.append(
            NetworkSite(
                f"rx{k + 1}", Site(float(lat), float(lon), float(h)), start_s, coverage_km * 1e3
            )
        )
    return sites


def record_network(
    scenario: Scenario,
    stem: str | Path,
    sites: list[NetworkSite],
    rate_hz: float = 2.4e6,
    duration_s: float = 60.0,
    seed: int = 1,
    epoch_utc: float = DEFAULT_EPOCH_UTC,
    progress: Callable[[str], None] | None = None,
) -> NetworkRecording:
    """Write ``STEM_<name>.sigmf-data/-meta`` and ``.truth.npz`` per site, and
    ``STEM.network.json``. Every receiver hears the same replies (one plan seed)."""
    stem = Path(stem)
    paths: dict[str, Path] = {}
    truth: dict[str, np.ndarray] = {}
    for k, s in enumerate(sites):
        enu = scenario.site.to_enu(s.site.lat_deg, s.site.lon_deg, s.site.alt_m)
        receiver = Receiver(
            (float(enu[0]), float(enu[1]), float(enu[2])),
            s.start_s,
            s.coverage_m,
            local_s=s.local_s,
            plan_span_s=duration_s + max(x.start_s for x in sites) + 1.0,
        )
        written, frames = record(
            scenario,
            stem.with_name(f"{stem.name}_{s.name}"),
            rate_hz,
            duration_s,
            seed=seed * 1000 + k + 1,
            fmt="sigmf",
            receiver=receiver,
            plan_seed=seed,
            start_utc=epoch_utc + s.start_s,
        )
        paths[s.name], truth[s.name] = written[0], frames
        if progress is not None:
            progress(f"{s.name}: {len(frames)} replies heard, {written[0]}")
    manifest = stem.with_name(f"{stem.name}.network.json")
    manifest.write_text(
        json.dumps(
            {
                "epoch_utc": epoch_utc,
                "fusion_site": _site_dict(scenario.site),
                "receivers": [
                    {
                        "name": s.name,
                        **_site_dict(s.site),
                        "start_s": s.start_s,
                        "coverage_km": s.coverage_m / 1e3,
                        "path": str(paths[s.name]),
                    }
                    for s in sites
                ],
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    return NetworkRecording(sites, paths, truth, epoch_utc, manifest)


def _site_dict(site: Site) -> dict:
    return {"lat_deg": site.lat_deg, "lon_deg": site.lon_deg, "alt_m": site.alt_m}
