"""The initiator role: tracks born from detections, and re-born when they were wrong.

A track starts from a detection that measures the horizontal position (a linear model
with e, n): its measured components from z, R, the rest from wide priors, and a
velocity the same aircraft reported shortly before (identity and velocity heard
before a position are remembered per ICAO address). A non-linear detection alone
(a bistatic range) does not fix a position and starts nothing; it is counted.

Two consecutive gated-out positions of a track that agree with each other but not with
the track re-initialise it (``challenge``): a wrong first fix, or a real jump after a
long gap, cannot hold a track off the truth, while a single bad position is rejected.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from sensord.detections import STATE, VELOCITY, Detection
from sensord.tracker.bank import FilterBank
from sensord.tracker.gate import position_index
from sensord.tracker.measurement import ALT, MeasurementModel
from sensord.tracker.track import Track, initial_state, position_kind

if TYPE_CHECKING:
    from sensord.tracker.tracker import TrackerConfig, TrackerStats

IDENTITY = ("callsign", "squawk", "category")
CHALLENGER_SLACK_M = 2000.0


class Initiator:
    """Creates tracks from detections and restarts tracks that lost the truth."""

    def __init__(self, config: TrackerConfig, bank: FilterBank, stats: TrackerStats) -> None:
        self.config = config
        self.bank = bank
        self.stats = stats
        self._pending: dict[int, dict] = {}  # identity and velocity seen before a position
        self._anon_ids = itertools.count(1)

    @staticmethod
    def can_start(model: MeasurementModel | None) -> bool:
        """Whether a detection of this model fixes a horizontal position."""
        return model is not None and position_index(model) is not None

    def remember(self, d: Detection) -> None:
        """Identity and velocity of an address without a track yet."""
        pending = self._pending.setdefault(d.icao, {})  # type: ignore[arg-type]
        for key in IDENTITY:
            if getattr(d, key):
                pending[key] = getattr(d, key)
        if d.model is None and d.observes == VELOCITY:
            pending["velocity"] = d

    def initiate(self, d: Detection, model: MeasurementModel) -> Track:
        """A new tentative track at d (whose model ``can_start``)."""
        x, p = initial_state(d.z, d.R, _components(model))
        pending = self._pending.pop(d.icao, {}) if d.icao is not None else {}
        vel = pending.get("velocity")
        if vel is not None and d.t_s - vel.t_s <= self.config.pending_velocity_max_age_s:
            idx = vel.state_indices()
            x[idx] = vel.z
            p[np.ix_(idx, idx)] = vel.R
        track_id = self._track_id(d)
        track = Track(
            track_id,
            d.t_s,
            self.bank.new(x, p),
            icao=d.icao,
            first_s=d.t_s,
            last_update_s=d.t_s,
            last_seen_s=d.t_s,
        )
        for key in IDENTITY:
            setattr(track, key, getattr(d, key) or pending.get(key))
        track.n_updates = 1
        track.hits.append(1)
        track.has_position = True
        track.took(d.source)
        track.heard(d.sensor_id, d.t_s)
        self.stats.tracks_created += 1
        return track

    def _track_id(self, d: Detection) -> str:
        """The ICAO address; an anonymous track ``T<n>``, a radar-only one ``R<n>``."""
        if d.icao is not None:
            return f"{d.icao:06X}"
        letter = "R" if position_kind(d.source) == "radar" else "T"
        return f"{letter}{next(self._anon_ids):06d}"

    def challenge(self, track: Track, d: Detection, model: MeasurementModel) -> bool:
        """d was gated out of track; True if it and the previous challenger restarted it."""
        track.hits.append(0)
        track.rejected_in_row += 1
        i = position_index(model)
        if i is None:
            return False
        pos = d.z[i : i + 3]
        prev = track.challenger
        track.challenger = (d.t_s, pos.copy(), d)
        if prev is None:
            return False
        dt = d.t_s - prev[0]
        apart_m = float(np.linalg.norm(pos[:2] - prev[1][:2]))
        if apart_m > self.config.max_speed_mps * dt + CHALLENGER_SLACK_M:
            return False
        # two consecutive rejected positions agree with each other: the track was wrong
        x, p = initial_state(d.z, d.R, _components(model))
        if dt > 0 and apart_m <= self.config.max_speed_mps * dt:
            x[3:5] = (pos[:2] - prev[1][:2]) / dt
        self.bank.release(track.filt)
        track.filt = self.bank.new(x, p)
        track.t_s = d.t_s
        track.last_update_s = d.t_s
        track.challenger = None
        track.hits.append(1)
        self.stats.reinitialised += 1
        return True


def _components(model: MeasurementModel) -> list[int]:
    """State components of a model that measures components (height "alt" taken as u)."""
    return [STATE.index("u" if name == ALT else name) for name in model.observes]  # type: ignore[attr-defined]
