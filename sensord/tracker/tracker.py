"""The multi-target tracker: detections in, track updates out, on the sample clock.

``Tracker`` composes the roles of a tracker (Stone Soup's shape, batch-shaped so the C
kernels step many tracks per call), each in its module:

- predictor and updater: a ``bank.FilterBank`` (``kalman.CVBank``: every CV track a row of
  one array, C kernels; or ``imm.IMMBank``), whose ``updater.Updater`` applies a group of
  measurements of one model: linear (C), EKF (C) or UKF;
- gate (hypothesiser): ``gate.Gate``, chi-square on the innovation, speed limit,
  manoeuvres;
- associator: ``associate``: ICAO first (in rounds), GNN for anonymous detections gated on
  h(x) of each track's prediction;
- initiator: ``initiator.Initiator``: tracks from positions, identity remembered before
  one, restarts after two agreeing gated-out positions;
- deleter: ``lifecycle.Lifecycle``: tentative, confirmed, coasting, dropped;
- update writer: ``writer.UpdateWriter``: the ``TrackUpdate``s, predicted by the bank.

A detection's measurement model is its own (``Detection.model``) or the components it
``observes`` (``measurement.model_of``). Detections are processed in time order within
``reorder_window_s``; older ones are dropped and counted.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import numpy as np

from sensord.detections import Detection
from sensord.geo import Site
from sensord.tracker import associate
from sensord.tracker.associate import Associator
from sensord.tracker.bank import make_bank
from sensord.tracker.gate import Gate
from sensord.tracker.initiator import IDENTITY, Initiator
from sensord.tracker.lifecycle import Lifecycle
from sensord.tracker.measurement import MeasurementModel, model_of
from sensord.tracker.track import Track
from sensord.tracker.update import TrackStatus, TrackUpdate
from sensord.tracker.updater import Measurements
from sensord.tracker.writer import Touch, UpdateWriter

Numbered = tuple[int, Touch]  # a touch and the position of the detection that made it
Kinematic = tuple[int, Track, Detection, MeasurementModel]


@dataclass
class TrackerConfig:
    """Tracker parameters (all times on the sample clock)."""

    sigma_accel_h_mps2: float = 2.0
    sigma_accel_v_mps2: float = 1.0
    imm: bool = False  # IMM of CV + CA (filterpy) instead of the CV filter
    nonlinear_filter: str = "auto"  # non-linear measurements: "ekf", "ukf", "auto" (updater.py)
    imm_cv_sigma_accel_h_mps2: float = 0.5
    imm_cv_sigma_accel_v_mps2: float = 1.0
    imm_ca_sigma_jerk_h_mps3: float = 4.0
    imm_ca_sigma_jerk_v_mps3: float = 1.0
    gate_chi2: float = 16.27  # 3 degrees of freedom, 99.9%
    max_speed_mps: float = 600.0
    max_accel_mps2: float = 20.0
    confirm_m: int = 3
    confirm_n: int = 5
    coast_after_s: float = 10.0
    drop_after_s: float = 60.0
    tentative_drop_after_s: float = 10.0
    reorder_window_s: float = 0.0
    pending_velocity_max_age_s: float = 2.0


@dataclass
class TrackerStats:
    """Counters; the daemon publishes them."""

    detections: int = 0
    updates: int = 0
    gated: dict[str, int] = field(default_factory=dict)
    reinitialised: int = 0
    late_dropped: int = 0
    tracks_created: int = 0
    tracks_dropped: int = 0
    unassociated: int = 0  # kinematic detections no track took and none could start from

    def gate(self, reason: str, n: int = 1) -> None:
        self.gated[reason] = self.gated.get(reason, 0) + n


class TrackerObserver(Protocol):
    """Told which track took each anonymous non-linear measurement (a radar's, say): the
    fusion node's radar stage calibrates on those and tracks the rest in range-Doppler."""

    def measured(self, track: Track, d: Detection, z_predicted: np.ndarray) -> None:
        """``track`` took ``d``; ``z_predicted`` is h(x) of its state before the update."""


class Tracker:
    """Fuses detections from any sensor into tracks in the ENU frame of ``site``."""

    def __init__(self, site: Site, config: TrackerConfig | None = None) -> None:
        self.site = site
        self.config = config or TrackerConfig()
        self.stats = TrackerStats()
        self.tracks: dict[str, Track] = {}
        self._by_icao: dict[int, Track] = {}
        self._buffer: list[tuple[float, int, Detection]] = []
        self._seq = itertools.count()
        self._latest_s = -math.inf
        self._models: dict[tuple[str, ...], MeasurementModel | None] = {}
        cfg = self.config
        self.bank = make_bank(cfg)
        self.gate = Gate(cfg, self.stats)
        self.associator = Associator(self.bank, cfg.gate_chi2, self.model_of)
        self.initiator = Initiator(cfg, self.bank, self.stats)
        self.lifecycle = Lifecycle(cfg)
        self.writer = UpdateWriter(site, self.bank)
        self.observer: TrackerObserver | None = None

    def model_of(self, d: Detection) -> MeasurementModel | None:
        """The detection's measurement model (None: identity only)."""
        if d.model is not None:
            return d.model
        try:
            return self._models[d.observes]
        except KeyError:
            model = self._models[d.observes] = model_of(d, self.site)
            return model

    # ---- public API ------------------------------------------------------------
    def process(self, detections: Iterable[Detection]) -> list[TrackUpdate]:
        """Feed detections (roughly in time order); return the updates they cause."""
        for d in detections:
            self.stats.detections += 1
            heapq.heappush(self._buffer, (d.t_s, next(self._seq), d))
            self._latest_s = max(self._latest_s, d.t_s)
        return self._drain(self._latest_s - self.config.reorder_window_s)

    def flush(self) -> list[TrackUpdate]:
        """Process everything still held in the reorder window."""
        return self._drain(math.inf)

    def advance(self, t_s: float) -> list[TrackUpdate]:
        """Time passes: coast and drop tracks; return their status changes."""
        changed = self.lifecycle.due(list(self.tracks.values()), t_s)
        out = self.writer.updates([(track, t_s, True) for track, _ in changed])
        for update, (track, dropped) in zip(out, changed, strict=True):
            if dropped:
                update.status = TrackStatus.DROPPED
                self._drop(track)
        return out

    def clock(self, t_s: float) -> list[TrackUpdate]:
        """The sample clock reached ``t_s``: ``advance`` to it, behind the reorder window
        (detections still held there may yet update a track)."""
        return self.advance(t_s - self.config.reorder_window_s)

    def snapshot(self, t_s: float) -> list[TrackUpdate]:
        """Every live track's state predicted to t_s (for a republish after reconnecting)."""
        return self.writer.updates([(t, t_s, True) for t in self.tracks.values()])

    def predicted_position(self, icao: int, t_s: float) -> tuple[float, float] | None:
        """WGS84 position the track of icao predicts at t_s: the decoder's CPR reference
        (a straight-line extrapolation: a reference needs kilometres, not the model)."""
        track = self._by_icao.get(icao)
        if track is None or not track.has_position:
            return None
        x = track.x
        dt = t_s - track.t_s
        lat, lon, _ = self.site.to_geodetic(x[:3] + x[3:] * dt)
        return float(lat), float(lon)

    # ---- processing ------------------------------------------------------------
    def _drain(self, horizon_s: float) -> list[TrackUpdate]:
        """Process buffered detections up to horizon_s; one update per track touched.

        A batch that touches a track several times yields its latest state only: what a
        subscriber needs, and most of the tracker's cost saved. Drops come last.
        """
        out: list[Touch] = []
        identified: list[Detection] = []
        scan: list[Detection] = []
        while self._buffer and self._buffer[0][0] <= horizon_s:
            _, _, d = heapq.heappop(self._buffer)
            if d.icao is None:
                if scan and (scan[0].t_s != d.t_s or scan[0].sensor_id != d.sensor_id):
                    out += self._process_identified(identified) + self._process_scan(scan)
                    identified, scan = [], []
                scan.append(d)
                continue
            identified.append(d)
        out += self._process_identified(identified)
        if scan:
            out += self._process_scan(scan)
        latest: dict[str, Touch] = {}
        for touch in out:
            latest[touch[0].track_id] = touch
        updates = self.writer.updates(list(latest.values()))
        if self._latest_s > -math.inf:
            updates += self.advance(min(horizon_s, self._latest_s))
        return updates

    def _process_identified(self, dets: list[Detection]) -> list[Touch]:
        """Mode S detections (time order) by ICAO address, filtered in rounds.

        Touches come back in the order of the detections that made them, as if the
        detections had been processed one by one.
        """
        out: list[Numbered] = []
        for batch in associate.rounds(dets):
            kinematic: list[Kinematic] = []
            for i, d in batch:
                track = self._by_icao.get(d.icao)  # type: ignore[arg-type]
                model = self.model_of(d)
                if track is not None:
                    self._arrive(i, track, d, model, out, kinematic)
                elif self.initiator.can_start(model):
                    out.append((i, self._start(d, model)))  # type: ignore[arg-type]
                else:
                    if model is not None and d.model is not None:
                        self.stats.unassociated += 1
                    self.initiator.remember(d)
            out += self._update(kinematic)
        out.sort(key=lambda numbered: numbered[0])
        return [touch for _, touch in out]

    def _process_scan(self, scan: list[Detection]) -> list[Touch]:
        """Anonymous detections of one scan: gate, then global nearest neighbour."""
        assignment = self.associator.scan(scan, list(self.tracks.values()))
        out: list[Numbered] = []
        kinematic: list[Kinematic] = []
        for i, track in assignment.pairs:
            self._arrive(i, track, scan[i], self.model_of(scan[i]), out, kinematic)
        out += self._update(kinematic)
        out.sort(key=lambda numbered: numbered[0])
        touches = [touch for _, touch in out]
        for i in assignment.unassigned:
            model = self.model_of(scan[i])
            if self.initiator.can_start(model):
                touches.append(self._start(scan[i], model))  # type: ignore[arg-type]
            elif model is not None:
                self.stats.unassociated += 1
        return touches

    def _start(self, d: Detection, model: MeasurementModel) -> Touch:
        track = self.initiator.initiate(d, model)
        self.lifecycle.watch(track)
        self.tracks[track.track_id] = track
        if d.icao is not None:
            self._by_icao[d.icao] = track
        return (track, d.t_s, False)

    def _arrive(
        self,
        i: int,
        track: Track,
        d: Detection,
        model: MeasurementModel | None,
        touches: list[Numbered],
        kinematic: list[Kinematic],
    ) -> None:
        """Detection i for track: late (counted), identity only (a touch), or kinematic."""
        if d.t_s < track.t_s:
            self.stats.late_dropped += 1
            return
        track.last_seen_s = d.t_s
        track.heard(d.sensor_id, d.t_s)
        for key in IDENTITY:
            if getattr(d, key):
                setattr(track, key, getattr(d, key))
        if d.alt_geom_ft is not None and d.alt_baro_ft is not None:
            track.geo_minus_baro_ft = d.alt_geom_ft - d.alt_baro_ft
        if model is not None:
            kinematic.append((i, track, d, model))
        else:
            touches.append((i, (track, d.t_s, True)))

    def _update(self, items: list[Kinematic]) -> list[Numbered]:
        """Kinematic detections of distinct tracks: predict, gate and update as one batch."""
        if not items:
            return []
        self.bank.predict(
            [track.filt for _, track, _, _ in items],
            np.array([d.t_s - track.t_s for _, track, d, _ in items]),
        )
        for _, track, d, _ in items:
            track.t_s = d.t_s
        groups: dict[MeasurementModel, list[int]] = {}
        for k, item in enumerate(items):
            groups.setdefault(item[3], []).append(k)
        out: list[Numbered] = []
        for model, ks in groups.items():
            dets = [items[k][2] for k in ks]
            tracks = [items[k][1] for k in ks]
            filters = [track.filt for track in tracks]
            meas = Measurements(model, np.array([d.z for d in dets]), np.array([d.R for d in dets]))
            d2 = self.bank.distances(filters, meas)
            passed = self.gate.admitted(tracks, dets, meas, d2, partial(self._states, filters))
            if not passed.all():
                for row in np.flatnonzero(~passed).tolist():
                    track, d = tracks[row], dets[row]
                    if self.gate.manoeuvre(track, d, model):
                        passed[row] = True
                    elif self.initiator.challenge(track, d, model):
                        out.append((items[ks[row]][0], (track, d.t_s, False)))
            if self.observer is not None and not model.linear:
                self._observe(model, filters, tracks, dets, passed)
            accepted: Sequence[int]
            if passed.all():
                accepted = range(len(ks))
                self.bank.update(filters, meas)
            else:
                accepted = np.flatnonzero(passed).tolist()
                if accepted:
                    self.bank.update(
                        [filters[a] for a in accepted],
                        Measurements(model, meas.z[accepted], meas.r[accepted]),
                    )
            for a in accepted:
                out.append((items[ks[a]][0], self._accepted(tracks[a], dets[a])))
        return out

    def _observe(self, model: MeasurementModel, filters: list, tracks: list[Track],
                 dets: list[Detection], passed: np.ndarray) -> None:  # fmt: skip
        """Tell the observer each accepted anonymous non-linear measurement with its
        prediction (identified ones, a Mode S altitude, are not its business)."""
        rows = [r for r in np.flatnonzero(passed).tolist() if dets[r].icao is None]
        if not rows or self.observer is None:
            return
        x, _ = self._states([filters[r] for r in rows])
        z_predicted = np.atleast_2d(model.function(x))
        for k, r in enumerate(rows):
            self.observer.measured(tracks[r], dets[r], z_predicted[k])

    def _states(self, filters: list) -> tuple[np.ndarray, np.ndarray]:
        """The filters' current states and covariances (copies)."""
        return self.bank.predicted(filters, np.zeros(len(filters)))

    def _accepted(self, track: Track, d: Detection) -> Touch:
        """Bookkeeping of a measurement the filter took."""
        self.stats.updates += 1
        track.n_updates += 1
        track.hits.append(1)
        track.last_update_s = d.t_s
        track.took(d.source)
        track.challenger = None
        track.rejected_in_row = 0
        self.lifecycle.accepted(track)
        return (track, d.t_s, False)

    def _drop(self, track: Track) -> None:
        self.bank.release(track.filt)
        del self.tracks[track.track_id]
        if track.icao is not None and self._by_icao.get(track.icao) is track:
            del self._by_icao[track.icao]
        self.stats.tracks_dropped += 1
