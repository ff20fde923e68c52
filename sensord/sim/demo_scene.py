"""The demo's sky and sensors: every kind of sensor the fusion node takes, simulated.

The bundled scenario's aircraft plus three whose transponders send Mode S but no ADS-B
(the receivers locate them by multilateration), heard by five receivers on a 35 km ring;
and a passive radar at the centre, on an FM transmitter 22 km to the north, which sees
the nearer aircraft, two aircraft with their transponder off and a drone. Every
recording starts at one epoch, as live nodes would, and goes to ``directory``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sensord.fusion.recordings import RadarRecordingSpec, RecordingSpec
from sensord.geo import Site
from sensord.sim.network import DEFAULT_EPOCH_UTC, network_sites, record_network
from sensord.sim.radar import radar_scene, record_radar
from sensord.sim.scenario import Aircraft, Scenario

N_RECEIVERS = 5
RING_KM = 35.0
MODE_S_ONLY = 3
TX_NORTH_M = 22e3
CARRIER_HZ = 98.0e6


@dataclass(frozen=True)
class DemoScene:
    """What the demo replays: receivers' and radars' recordings of one sky."""

    scenario: Scenario  # what the receivers hear (the radar also sees its dark targets)
    receivers: list[RecordingSpec]
    radars: list[RadarRecordingSpec]
    epoch_utc: float


def with_mode_s_only(scenario: Scenario, n: int = MODE_S_ONLY, seed: int = 3) -> Scenario:
    """The scenario plus ``n`` aircraft inside the ring that send Mode S but no ADS-B."""
    rng = np.random.default_rng([seed, 21])
    site = scenario.site
    extra = []
    for i in range(n):
        r_m, bearing = float(rng.uniform(5e3, 20e3)), float(rng.uniform(0, 2 * math.pi))
        lat, lon, _ = site.to_geodetic(
            np.array([r_m * math.sin(bearing), r_m * math.cos(bearing), 0])
        )
        extra.append(
            Aircraft.at(
                site,
                float(lat),
                float(lon),
                float(rng.uniform(6000, 30000)),
                icao=0xE00000 + i,
                callsign=f"MODES{i}",
                squawk="7000",
                gs_kt=float(rng.uniform(220, 420)),
                track_deg=float(rng.uniform(0, 360)),
                adsb=False,
            )
        )
    return replace(scenario, aircraft=[*scenario.aircraft, *extra])


def record_demo(base: Scenario, directory: Path, duration_s: float, seed: int = 3) -> DemoScene:
    """Record the demo's receivers and radar into ``directory`` (a few seconds of CPU per
    second of recording)."""
    scenario = with_mode_s_only(base, seed=seed)
    center = scenario.site
    sites = [replace(s, start_s=0.0) for s in network_sites(center, N_RECEIVERS, seed, RING_KM)]
    rec = record_network(scenario, directory / "rx", sites, 2.4e6, duration_s, seed)
    tx_lat, tx_lon, _ = center.to_geodetic(np.array([0.0, TX_NORTH_M, 0.0]))
    tx = Site(float(tx_lat), float(tx_lon), 150.0)
    scene = radar_scene(center, tx, CARRIER_HZ, n_dark=2, n_drones=1, seed=seed,
                        scenario=scenario)  # fmt: skip
    paths = record_radar(scene, directory / "radar", duration_s, seed, sigmf=True,
                         start_utc=DEFAULT_EPOCH_UTC)  # fmt: skip
    receivers = [RecordingSpec(s.name, rec.paths[s.name], s.site) for s in rec.sites]
    radars = [RadarRecordingSpec("radar1", paths[0], scene.bistatic)]
    return DemoScene(scenario, receivers, radars, rec.epoch_utc)
