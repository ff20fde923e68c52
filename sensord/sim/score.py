"""Track updates scored against a scenario's truth (tests and benchmarks).

Each confirmed update with a position is compared with the aircraft's true position at
the update's time: horizontal error (m), and whether the truth lies inside the reported
95% radius ``h_err95_m``. Tracks are matched to aircraft by ICAO address; an address
seen under several track ids, or a track id carrying several addresses, is a swap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from sensord.geo import great_circle_m
from sensord.sim.scenario import Scenario
from sensord.tracker.update import TrackUpdate


@dataclass
class AircraftScore:
    """One aircraft's published errors."""

    icao: int
    errors_m: list[float] = field(default_factory=list)
    inside95: list[bool] = field(default_factory=list)
    track_ids: set[str] = field(default_factory=set)

    @property
    def median_m(self) -> float:
        return float(np.median(self.errors_m)) if self.errors_m else float("nan")


@dataclass
class Score:
    """Every aircraft's score, and what no aircraft explains."""

    aircraft: dict[int, AircraftScore]
    unknown_tracks: set[str]
    id_swaps: int

    def errors_m(self) -> np.ndarray:
        return np.array([e for a in self.aircraft.values() for e in a.errors_m])

    def inside95_fraction(self) -> float:
        flags = [f for a in self.aircraft.values() for f in a.inside95]
        return float(np.mean(flags)) if flags else float("nan")


def score_updates(
    updates: Iterable[TrackUpdate | dict], scenario: Scenario, epoch_utc: float | None = None
) -> Score:
    """Score updates; with ``epoch_utc`` their time is ``utc - epoch_utc``, else ``t_s``."""
    aircraft = {a.icao: a for a in scenario.aircraft}
    scores: dict[int, AircraftScore] = {}
    unknown: set[str] = set()
    ids_of_track: dict[str, set[str]] = {}
    for item in updates:
        u = item.to_dict() if isinstance(item, TrackUpdate) else item
        icao_hex = u.get("icao")
        if icao_hex is None:
            unknown.add(u["track_id"])
            continue
        ids_of_track.setdefault(u["track_id"], set()).add(icao_hex)
        icao = int(icao_hex, 16)
        ac = aircraft.get(icao)
        if ac is None:
            unknown.add(u["track_id"])
            continue
        score = scores.setdefault(icao, AircraftScore(icao))
        score.track_ids.add(u["track_id"])
        if u["status"] != "confirmed" or u.get("lat_deg") is None:
            continue
        t_s = u["utc"] - epoch_utc if epoch_utc is not None else u["t_s"]
        truth = ac.state_at(t_s)
        err = float(great_circle_m(truth.lat_deg, truth.lon_deg, u["lat_deg"], u["lon_deg"]))
        score.errors_m.append(err)
        score.inside95.append(err <= (u.get("h_err95_m") or 0.0))
    swaps = sum(len(a.track_ids) - 1 for a in scores.values())
    swaps += sum(len(ids) - 1 for ids in ids_of_track.values())
    return Score(scores, unknown, swaps)
