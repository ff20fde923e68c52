"""A simulated receiver network for the fusion tests: recordings, truth, per-receiver pictures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sensord.chain import Chain
from sensord.fusion.fuser import Fuser
from sensord.geo import Site
from sensord.sim.network import NetworkRecording, network_scenario, network_sites, record_network
from sensord.sim.scenario import Scenario
from sensord.sim.score import Score, score_updates
from sensord.source.iqfile import IQFileSource
from sensord.tracker.update import TrackUpdate

CENTER = Site(52.0, 4.5, 10.0)
GRID_S = 0.5  # accuracy is compared on a common clock: every track at these instants
GRID_START_S = 3.0


@dataclass
class Network:
    """Recordings of one scenario by several receivers, and what each tracks alone."""

    rec: NetworkRecording
    scenario: Scenario
    alone: dict[str, Score]  # each receiver's own picture, scored at publish time
    alone_grid: dict[str, Score]  # the same tracks every GRID_S, scored

    @property
    def epoch_utc(self) -> float:
        return self.rec.epoch_utc

    def tracked_alone(self) -> set[int]:
        """Aircraft some receiver confirms a track of by itself."""
        return {i for s in self.alone.values() for i, a in s.aircraft.items() if a.errors_m}

    def heard_by(self, icao: int) -> list[str]:
        return [
            n for n, s in self.alone.items() if icao in s.aircraft and s.aircraft[icao].errors_m
        ]

    def score(self, updates: list[TrackUpdate | dict]) -> Score:
        return score_updates(updates, self.scenario, self.epoch_utc)


def make_network(
    directory: Path,
    n_receivers: int = 3,
    n_aircraft: int = 16,
    duration_s: float = 20.0,
    seed: int = 5,
) -> Network:
    scenario = network_scenario(n_aircraft, CENTER, 140e3, seed=seed)
    sites = network_sites(CENTER, n_receivers, seed)
    rec = record_network(scenario, directory / "net", sites, 2.4e6, duration_s, seed)
    alone, alone_grid = {}, {}
    for s in sites:
        source = IQFileSource(rec.paths[s.name])
        chain = Chain(source.rate_hz, s.site, s.name)
        updates, grid = [], []
        next_utc = rec.epoch_utc + GRID_START_S
        for step in chain.run(source):
            updates += step.updates
            assert step.end_utc is not None and chain.utc_minus_t_s is not None
            while step.end_utc >= next_utc:
                snapshot = chain.tracker.snapshot(next_utc - chain.utc_minus_t_s)
                for u in snapshot:
                    u.utc = next_utc
                grid += snapshot
                next_utc += GRID_S
        alone[s.name] = score_updates(updates, scenario, rec.epoch_utc)
        alone_grid[s.name] = score_updates(grid, scenario, rec.epoch_utc)
    return Network(rec, scenario, alone, alone_grid)


def fused_grid(
    fuser: Fuser, batches: Iterator[list[TrackUpdate]], epoch_utc: float
) -> tuple[list[TrackUpdate], list[TrackUpdate]]:
    """(every update, every track every GRID_S once the fuser has released up to then)."""
    updates, grid = [], []
    next_utc = epoch_utc + GRID_START_S
    for batch in batches:
        updates += batch
        while fuser.released_utc >= next_utc:
            if fuser.released_utc - next_utc < 0.1:  # not when the release jumped (an end)
                grid += fuser.snapshot(next_utc)
            next_utc += GRID_S
    return updates, grid


def node_config(path: Path, port: int, site: Site, recording: Path, node: str, **mqtt) -> Path:
    """A receiver node replaying ``recording`` to the broker on ``port``."""
    extra = "\n".join(f"{k} = {json.dumps(v)}" for k, v in mqtt.items())
    path.write_text(f"""
[receiver]
lat_deg = {site.lat_deg}
lon_deg = {site.lon_deg}
alt_m = {site.alt_m}
[source]
spec = "{recording}"
[mqtt]
port = {port}
node = "{node}"
stats_interval_s = 1.0
{extra}
""")
    return path


def fusion_config(path: Path, port: int, protocol: int = 5, **fusion) -> Path:
    """A fusion node ``fusion`` on the broker on ``port``; [fusion] keys from ``fusion``."""
    tracker = fusion.pop("tracker", {})
    outputs = fusion.pop("outputs", {})
    output_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in outputs.items())
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in fusion.items())
    tracker_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in tracker.items())
    path.write_text(f"""
[mqtt]
port = {port}
protocol = {protocol}
node = "fusion"
rate_limit_s = 0.0
stats_interval_s = 1.0
[fusion]
site = "{CENTER.lat_deg},{CENTER.lon_deg},{CENTER.alt_m}"
{lines}
[tracker]
{tracker_lines}
[outputs]
{output_lines}
[logging]
level = "info"
""")
    return path
