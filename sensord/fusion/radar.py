"""Radar nodes in the fusion node: bistatic detections into the one tracker.

Each CPI of a radar node (``radar_wire``) becomes anonymous tracker measurements with the
node's ``BistaticRangeRate`` model in the fusion frame (``RadarMeasurements``), released
in UTC order with everything else. The tracker gates them against every track's
predicted bistatic range and rate:

1. **Cooperative targets.** A detection an ADS-B or MLAT track takes updates it (EKF or
   UKF); its residual against the track's prediction feeds the node's bias report, which
   confirms and calibrates the radar.
2. **Radar-only tracks.** What no track takes feeds the node's range-Doppler tracker
   (``RangeDopplerTracker``): one bistatic pair cannot fix a position, so those tracks
   are published as such once confirmed, ``non_cooperative`` with their ``bistatic``
   range and rate, id ``radar:<node>:<n>``.
3. **Geolocation.** When range-Doppler tracks of two or more radar nodes fit one
   trajectory (``sensord.radar.locate``), they become one track of the fusion tracker
   with a position (id ``R<n>``, ``non_cooperative``), which the nodes' detections then
   update like any other track; the range-Doppler tracks it came from are dropped.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from sensord.detections import STATE, Detection
from sensord.fusion.radar_wire import RadarCpiMessage
from sensord.geo import Site
from sensord.radar.association import BiasReport, RadarTrack, RangeDopplerTracker
from sensord.radar.detections import RadarDetection
from sensord.radar.fusion import RadarMeasurements
from sensord.radar.geometry import Bistatic
from sensord.radar.locate import PairHistory, locate
from sensord.tracker.track import Track
from sensord.tracker.tracker import Tracker
from sensord.tracker.update import TrackStatus, TrackUpdate

log = logging.getLogger(__name__)

HISTORY_S = 8.0  # the range-Doppler measurements a geolocation fits
FIT_RANGE_FLOOR_M = 30.0  # added to a detection's variances in a fit (the range-Doppler
FIT_RATE_FLOOR_MPS = 0.3  # track is its own prediction: no model lag to allow for)
MIN_HISTORY = 8  # detections of each track before a fit is tried
RETRY_S = 1.0  # between fits of the same tracks
EXPLAINED_M = 3000.0  # a located target this close to a live track is that track
SHADOW_RANGE_M = 1000.0  # a range-Doppler track this close to a positioned track's echo
SHADOW_RATE_MPS = 5.0  # (range and rate) is that track's, not a new target


def _pair_history(node: RadarNodeState, tr: RadarTrack) -> PairHistory:
    """A range-Doppler track's recent measurements, for the locator."""
    hist = node.history[tr.track_id]
    return PairHistory(
        node.measurements.model,
        np.array([h[0] for h in hist]),
        np.array([h[1] for h in hist]),
        np.array([h[2] for h in hist]),
    )


def _forget(node: RadarNodeState, track_id: str) -> None:
    """A dropped range-Doppler track's history and start time."""
    node.history.pop(track_id, None)
    node.first_utc.pop(track_id, None)


def _shadows(tr: RadarTrack, known: np.ndarray | None) -> bool:
    """Whether a range-Doppler track sits on a positioned track's predicted echo."""
    if known is None or not len(known):
        return False
    near = (np.abs(known[:, 0] - tr.x[0]) < SHADOW_RANGE_M) & (
        np.abs(known[:, 1] - tr.x[1]) < SHADOW_RATE_MPS
    )
    return bool(near.any())


@dataclass
class RadarCpi:
    """One CPI released to the tracker: its measurements and the detections behind them."""

    node: str
    utc: float
    measurements: list[Detection]
    detections: list[RadarDetection]
    discarded: str | None


@dataclass
class RadarNodeState:
    """One radar node: geometry in the fusion frame, its range-Doppler tracks, counters."""

    name: str
    bistatic: Bistatic
    measurements: RadarMeasurements
    rd: RangeDopplerTracker
    bias: BiasReport = field(default_factory=BiasReport)
    cpis: int = 0
    discarded: dict[str, int] = field(default_factory=dict)
    detections: int = 0
    cooperative: int = 0  # taken by an ADS-B or MLAT track
    radar_tracks: int = 0  # taken by a geolocated radar-only track
    range_doppler: int = 0  # left to the range-Doppler tracker
    history: dict[str, deque] = field(default_factory=dict)  # RD track id -> (utc, z, var)
    first_utc: dict[str, float] = field(default_factory=dict)

    def to_status(self) -> dict:
        return {
            "cpis": self.cpis,
            "discarded": dict(self.discarded),
            "detections": self.detections,
            "cooperative": self.cooperative,
            "radar_tracks": self.radar_tracks,
            "range_doppler": self.range_doppler,
            "range_doppler_tracks": len(self.rd.tracks),
            "bias": self.bias.to_dict(),
        }


class RadarFusion:
    """Every radar node's CPIs through the fusion tracker (see the module doc)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.nodes: dict[str, RadarNodeState] = {}
        self.located = 0
        self.locate_failures: dict[str, int] = {}
        self._taken: dict[int, Track] = {}  # id(measurement) -> the track that took it
        self._predicted: dict[int, np.ndarray] = {}
        self._tried_at: dict[tuple[str, ...], float] = {}

    def node_info(self, node: str, bistatic: Bistatic) -> None:
        """A radar node's geometry (from its ``info``); a changed one restarts its tracks."""
        state = self.nodes.get(node)
        if state is not None and state.bistatic == bistatic:
            return
        measurements = RadarMeasurements(bistatic, self.site, sensor_id=node)
        self.nodes[node] = RadarNodeState(node, bistatic, measurements, RangeDopplerTracker(node))
        log.info(
            "radar node %s: tx %.4f,%.4f rx %.4f,%.4f, %.2f MHz, baseline %.1f km",
            node, bistatic.tx.lat_deg, bistatic.tx.lon_deg, bistatic.rx.lat_deg,
            bistatic.rx.lon_deg, bistatic.carrier_hz / 1e6, bistatic.baseline_m / 1e3,
        )  # fmt: skip

    def cpi(self, msg: RadarCpiMessage) -> RadarCpi:
        """A parsed CPI message as measurements in the fusion frame (the node is known)."""
        node = self.nodes[msg.node]
        measurements = node.measurements.detections(msg.detections, use_utc=True)
        return RadarCpi(msg.node, msg.utc, measurements, msg.detections, msg.discarded)

    # ---- the tracker's observer ------------------------------------------------------
    def measured(self, track: Track, d: Detection, z_predicted: np.ndarray) -> None:
        self._taken[id(d)] = track
        self._predicted[id(d)] = z_predicted

    # ---- one CPI ---------------------------------------------------------------------
    def process(self, tracker: Tracker, cpi: RadarCpi) -> list[TrackUpdate]:
        """The CPI through the tracker, its leftovers through the range-Doppler tracker,
        then geolocation; every resulting track update."""
        node = self.nodes.get(cpi.node)
        if node is None:
            return []
        node.cpis += 1
        if cpi.discarded is not None:
            node.discarded[cpi.discarded] = node.discarded.get(cpi.discarded, 0) + 1
            return []  # not looking: the range-Doppler tracks wait, no miss counted
        node.detections += len(cpi.measurements)
        self._taken.clear()
        self._predicted.clear()
        tracker.observer = self
        try:
            updates = tracker.process(cpi.measurements)
        finally:
            tracker.observer = None
        leftover = []
        lam_m = node.bistatic.wavelength_m
        for m, det in zip(cpi.measurements, cpi.detections, strict=True):
            track = self._taken.get(id(m))
            if track is None:
                leftover.append(det)
            elif track.icao is not None:
                node.cooperative += 1
                z = self._predicted[id(m)]
                node.bias.add_residual(det.bistatic_range_m - z[0], det.doppler_hz + z[1] / lam_m)
            else:
                node.radar_tracks += 1
        node.range_doppler += len(leftover)
        updates += self._range_doppler(node, cpi.utc, leftover)
        updates += self._geolocate(tracker, cpi.utc)
        return updates

    def _range_doppler(self, node: RadarNodeState, utc: float, dets: list[RadarDetection]
                       ) -> list[TrackUpdate]:  # fmt: skip
        before = {tr.track_id: tr for tr in node.rd.tracks}
        live = node.rd.update(utc, dets)
        out = []
        for tr in live:
            if tr.last_detection is not None:
                d = tr.last_detection
                hist = node.history.setdefault(tr.track_id, deque())
                var = (d.bistatic_range_var_m2 + FIT_RANGE_FLOOR_M**2,
                       d.range_rate_var_m2s2 + FIT_RATE_FLOOR_MPS**2)  # fmt: skip
                hist.append((utc, (d.bistatic_range_m, d.range_rate_mps), var))
                while hist and hist[0][0] < utc - HISTORY_S:
                    hist.popleft()
                node.first_utc.setdefault(tr.track_id, utc)
            if tr.confirmed:  # a tentative one is a detection or two: not published
                out.append(self._rd_update(node, tr, utc))
        alive = {tr.track_id for tr in live}
        for track_id, tr in before.items():
            if track_id not in alive:
                if tr.confirmed:
                    out.append(self._rd_update(node, tr, utc, dropped=True))
                _forget(node, track_id)
        return out

    def _rd_update(self, node: RadarNodeState, tr: RadarTrack, utc: float,
                   dropped: bool = False) -> TrackUpdate:  # fmt: skip
        """A range-Doppler track as a position-less, non-cooperative track update."""
        first = node.first_utc.get(tr.track_id, utc)
        if dropped:
            status = TrackStatus.DROPPED
        else:
            status = TrackStatus.CONFIRMED if tr.confirmed else TrackStatus.TENTATIVE
        hist = node.history.get(tr.track_id)
        last_s = hist[-1][0] if hist else tr.t
        b = node.bistatic
        return TrackUpdate(
            track_id=tr.track_id,
            t_s=utc,
            status=status,
            n_updates=tr.n_updates,
            age_s=utc - first,
            last_update_s=last_s,
            sensors=(node.name,),
            utc=utc,
            sensor_last_s={node.name: last_s},
            source="radar",
            non_cooperative=True,
            bistatic={
                "node": node.name,
                "tx": [b.tx.lat_deg, b.tx.lon_deg, b.tx.alt_m],
                "rx": [b.rx.lat_deg, b.rx.lon_deg, b.rx.alt_m],
                "bistatic_range_m": round(float(tr.x[0]), 1),
                "bistatic_range_sigma_m": round(math.sqrt(max(tr.p[0, 0], 0.0)), 1),
                "range_rate_mps": round(float(tr.x[1]), 2),
                "range_rate_sigma_mps": round(math.sqrt(max(tr.p[1, 1], 0.0)), 2),
                "doppler_hz": round(float(-tr.x[1] / b.wavelength_m), 3),
            },
        )

    # ---- geolocation -----------------------------------------------------------------
    def _candidates(self, tracker: Tracker, utc: float
                    ) -> list[tuple[tuple[RadarNodeState, RadarTrack], ...]]:  # fmt: skip
        """Confirmed range-Doppler tracks with enough history, one per node, paired; not
        those a positioned track already explains (its echoes that missed its gate)."""
        positioned = [t for t in tracker.tracks.values() if t.has_position]
        states = (
            tracker.writer.states(positioned, [utc] * len(positioned))[0] if positioned else None
        )
        ready = []
        for node in self.nodes.values():
            known = node.measurements.model.function(states) if states is not None else None
            ready.append([
                (node, tr) for tr in node.rd.tracks
                if tr.confirmed and len(node.history.get(tr.track_id, ())) >= MIN_HISTORY
                and not _shadows(tr, known)
            ])  # fmt: skip
        ready = [r for r in ready if r]
        combos: list[tuple[tuple[RadarNodeState, RadarTrack], ...]] = []
        for a, b in itertools.combinations(range(len(ready)), 2):
            combos += list(itertools.product(ready[a], ready[b]))
        return combos

    def _geolocate(self, tracker: Tracker, utc: float) -> list[TrackUpdate]:
        """Fit every due pairing; start a track from each fit whose range-Doppler tracks
        fit nothing else (two partners for one track: ambiguous, wait)."""
        fits = []
        for combo in self._candidates(tracker, utc):
            ids = tuple(tr.track_id for _, tr in combo)
            if utc - self._tried_at.get(ids, -math.inf) < RETRY_S:
                continue
            self._tried_at[ids] = utc
            outcome = locate([_pair_history(node, tr) for node, tr in combo], utc)
            if outcome.location is None:
                self._failed(outcome.reason)
            elif self._explained(tracker, outcome.location.x, utc):
                self._failed("near a live track")
            else:
                fits.append((combo, ids, outcome.location))
        partners: dict[str, int] = {}
        for _, ids, _ in fits:
            for track_id in ids:
                partners[track_id] = partners.get(track_id, 0) + 1
        out: list[TrackUpdate] = []
        for combo, ids, loc in fits:
            if any(partners[track_id] > 1 for track_id in ids):
                self._failed("ambiguous: a track fits with two partners")
                continue
            out += self._start_track(tracker, combo, loc.x, loc.P, utc)
        self._tried_at = {k: v for k, v in self._tried_at.items() if utc - v < 10 * RETRY_S}
        return out

    def _failed(self, reason: str) -> None:
        self.locate_failures[reason] = self.locate_failures.get(reason, 0) + 1

    def _explained(self, tracker: Tracker, x: np.ndarray, utc: float) -> bool:
        """Whether a live track with a position is already there (its echo was missed)."""
        tracks = [t for t in tracker.tracks.values() if t.has_position]
        if not tracks:
            return False
        states, _ = tracker.writer.states(tracks, [utc] * len(tracks))
        return bool(np.any(np.linalg.norm(states[:, :2] - x[:2], axis=1) < EXPLAINED_M))

    def _start_track(self, tracker: Tracker, combo, x: np.ndarray, p: np.ndarray,
                     utc: float) -> list[TrackUpdate]:  # fmt: skip
        """A located target as a new track of the fusion tracker; its RD tracks dropped."""
        self.located += 1
        names = [node.name for node, _ in combo]
        d = Detection(
            t_s=utc,
            sensor_id=names[0],
            observes=STATE,
            z=x.copy(),
            R=0.5 * (p + p.T),
            source="radar-located",
            utc=utc,
        )
        updates = tracker.process([d])
        for u in updates:
            track = tracker.tracks.get(u.track_id)
            if track is not None and track.t_s == utc and u.source == "radar":
                for name in names[1:]:
                    track.heard(name, utc)
                u.sensors = tuple(sorted(track.sensors))
                u.sensor_last_s = dict(track.sensors)
                log.info(
                    "radar: %s located from %s (%.4f, %.4f)",
                    u.track_id, " + ".join(tr.track_id for _, tr in combo), u.lat_deg, u.lon_deg,
                )  # fmt: skip
        for node, tr in combo:
            node.rd.tracks = [t for t in node.rd.tracks if t is not tr]
            updates.append(self._rd_update(node, tr, utc, dropped=True))
            _forget(node, tr.track_id)
        return updates

    def status(self) -> dict:
        return {
            "nodes": {name: n.to_status() for name, n in sorted(self.nodes.items())},
            "located": self.located,
            "locate_failures": dict(self.locate_failures),
        }
