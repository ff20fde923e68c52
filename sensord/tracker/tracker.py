"""The multi-target tracker: detections in, track updates out, on the sample clock.

Association: a Mode S detection goes to the track of its ICAO address; an anonymous one
(a radar, no identity) to a track by Mahalanobis gating and global nearest neighbour over
the detections of one scan (scipy's linear_sum_assignment). Every kinematic measurement
passes the gate: its Mahalanobis distance to the prediction and, for positions, a speed
limit; what fails is counted and kept as a challenger. Two consecutive challengers that
agree with each other but not with the track re-initialise it: a wrong first fix (or a
real jump after a long gap) cannot hold a track off the truth, while a single spoofed or
mis-decoded position is rejected.

Lifecycle: tentative -> confirmed after M accepted measurements among the last N
(position included) -> coasting when no kinematic measurement arrived for
``coast_after_s`` -> dropped after ``drop_after_s`` without any detection. Detections
are processed in time order within ``reorder_window_s``; older ones are dropped and
counted.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
from filterpy.kalman import IMMEstimator
from scipy.optimize import linear_sum_assignment

from sensord.detections import HORIZONTAL_POSITION, Detection
from sensord.geo import FPM_MPS, FT_M, KT_MPS, Site
from sensord.tracker import models
from sensord.tracker.kalman import CVFilter
from sensord.tracker.track import Track, initial_state, new_filter
from sensord.tracker.update import TrackStatus, TrackUpdate

CHI2_2D_95 = 5.991
Touch = tuple[Track, float, bool]  # a track changed at t_s (True: state must be predicted)


@dataclass
class TrackerConfig:
    """Tracker parameters (all times on the sample clock)."""

    sigma_accel_h_mps2: float = 2.0
    sigma_accel_v_mps2: float = 1.0
    imm: bool = False
    imm_sigma_accel_mps2: tuple[float, float] = (0.5, 8.0)
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

    def gate(self, reason: str) -> None:
        self.gated[reason] = self.gated.get(reason, 0) + 1


class Tracker:
    """Fuses detections from any sensor into tracks in the ENU frame of ``site``."""

    def __init__(self, site: Site, config: TrackerConfig | None = None) -> None:
        self.site = site
        self.config = config or TrackerConfig()
        self.stats = TrackerStats()
        self.tracks: dict[str, Track] = {}
        self._by_icao: dict[int, Track] = {}
        self._pending: dict[int, dict] = {}  # identity and velocity seen before a position
        self._buffer: list[tuple[float, int, Detection]] = []
        self._seq = itertools.count()
        self._anon_ids = itertools.count(1)
        self._latest_s = -math.inf
        self._rot = site.rot_ecef_to_enu

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
        cfg = self.config
        out = []
        for track in list(self.tracks.values()):
            silent = t_s - track.last_seen_s
            if (
                track.status == TrackStatus.TENTATIVE and silent > cfg.tentative_drop_after_s
            ) or silent > cfg.drop_after_s:
                out.append(self._drop(track, t_s))
            elif (
                track.status == TrackStatus.CONFIRMED
                and t_s - track.last_update_s > cfg.coast_after_s
            ):
                track.status = TrackStatus.COASTING
                out.append(self._update_of(track, t_s, predict=True))
        return out

    def clock(self, t_s: float) -> list[TrackUpdate]:
        """The sample clock reached ``t_s``: ``advance`` to it, behind the reorder window
        (detections still held there may yet update a track)."""
        return self.advance(t_s - self.config.reorder_window_s)

    def snapshot(self, t_s: float) -> list[TrackUpdate]:
        """Every live track's state predicted to t_s (for a republish after reconnecting)."""
        return [self._update_of(t, t_s, predict=True) for t in self.tracks.values()]

    def predicted_position(self, icao: int, t_s: float) -> tuple[float, float] | None:
        """WGS84 position the track of icao predicts at t_s: the decoder's CPR reference."""
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
        scan: list[Detection] = []
        while self._buffer and self._buffer[0][0] <= horizon_s:
            _, _, d = heapq.heappop(self._buffer)
            if d.icao is None:
                if scan and (scan[0].t_s != d.t_s or scan[0].sensor_id != d.sensor_id):
                    out += self._process_scan(scan)
                    scan = []
                scan.append(d)
                continue
            out += self._process_identified(d)
        if scan:
            out += self._process_scan(scan)
        latest: dict[str, Touch] = {}
        for touch in out:
            latest[touch[0].track_id] = touch
        updates = [self._update_of(*touch) for touch in latest.values()]
        if self._latest_s > -math.inf:
            updates += self.advance(min(horizon_s, self._latest_s))
        return updates

    def _process_identified(self, d: Detection) -> list[Touch]:
        assert d.icao is not None
        track = self._by_icao.get(d.icao)
        if track is None:
            if HORIZONTAL_POSITION[0] in d.observes:
                return [self._create(d)]
            self._remember(d)
            return []
        return self._update(track, d)

    def _process_scan(self, scan: list[Detection]) -> list[Touch]:
        """Anonymous detections of one scan: gate, then global nearest neighbour."""
        tracks = list(self.tracks.values())
        out: list[Touch] = []
        cost = np.full((len(scan), len(tracks)), 1e9)
        for i, d in enumerate(scan):
            for j, track in enumerate(tracks):
                if d.t_s < track.t_s or not d.observes:
                    continue
                x, p = self._predicted(track, d.t_s)
                d2 = _mahalanobis2(d, x, p)
                if d2 <= self.config.gate_chi2:
                    cost[i, j] = d2
        rows, cols = linear_sum_assignment(cost) if tracks else ([], [])
        assigned = set()
        for i, j in zip(rows, cols, strict=True):
            if cost[i, j] < 1e9:
                out += self._update(tracks[j], scan[i])
                assigned.add(i)
        for i, d in enumerate(scan):
            if i not in assigned and HORIZONTAL_POSITION[0] in d.observes:
                out.append(self._create(d))
        return out

    def _remember(self, d: Detection) -> None:
        pending = self._pending.setdefault(d.icao, {})
        for key in ("callsign", "squawk", "category"):
            if getattr(d, key):
                pending[key] = getattr(d, key)
        if d.observes == ("ve", "vn", "vu"):
            pending["velocity"] = d

    def _create(self, d: Detection) -> Touch:
        x, p = initial_state(d.z, d.R, d.state_indices())
        pending = self._pending.pop(d.icao, {}) if d.icao is not None else {}
        vel = pending.get("velocity")
        if vel is not None and d.t_s - vel.t_s <= self.config.pending_velocity_max_age_s:
            idx = vel.state_indices()
            x[idx] = vel.z
            p[np.ix_(idx, idx)] = vel.R
        track_id = f"{d.icao:06X}" if d.icao is not None else f"T{next(self._anon_ids):06d}"
        track = Track(
            track_id,
            d.t_s,
            self._make_filter(x, p),
            icao=d.icao,
            first_s=d.t_s,
            last_update_s=d.t_s,
            last_seen_s=d.t_s,
        )
        for key in ("callsign", "squawk", "category"):
            setattr(track, key, getattr(d, key) or pending.get(key))
        track.n_updates = 1
        track.hits.append(1)
        track.has_position = True
        track.sensors.add(d.sensor_id)
        self.tracks[track_id] = track
        if d.icao is not None:
            self._by_icao[d.icao] = track
        self.stats.tracks_created += 1
        return (track, d.t_s, False)

    def _make_filter(self, x: np.ndarray, p: np.ndarray):
        if not self.config.imm:
            return CVFilter(x, p)
        filters = [new_filter(x, p) for _ in self.config.imm_sigma_accel_mps2]
        trans = np.array([[0.97, 0.03], [0.10, 0.90]])
        return IMMEstimator(filters, np.array([0.9, 0.1]), trans)

    def _predict(self, track: Track, t_s: float) -> None:
        dt = t_s - track.t_s
        if dt <= 0:
            return
        cfg = self.config
        if isinstance(track.filt, IMMEstimator):
            F = models.transition(dt)
            for f, sigma in zip(track.filt.filters, cfg.imm_sigma_accel_mps2, strict=True):
                f.F = F
                f.Q = models.process_noise(dt, sigma, cfg.sigma_accel_v_mps2)
            track.filt.predict()
        else:
            track.filt.predict(dt, cfg.sigma_accel_h_mps2, cfg.sigma_accel_v_mps2)
        track.t_s = t_s

    def _predicted(self, track: Track, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """State and covariance at t_s without changing the track."""
        dt = max(t_s - track.t_s, 0.0)
        F = models.transition(dt)
        sigma_h = (
            max(self.config.imm_sigma_accel_mps2)
            if self.config.imm
            else self.config.sigma_accel_h_mps2
        )
        Q = models.process_noise(dt, sigma_h, self.config.sigma_accel_v_mps2)
        return F @ track.x, F @ track.P @ F.T + Q

    def _update(self, track: Track, d: Detection) -> list[Touch]:
        if d.t_s < track.t_s:
            self.stats.late_dropped += 1
            return []
        track.last_seen_s = d.t_s
        track.sensors.add(d.sensor_id)
        for key in ("callsign", "squawk", "category"):
            if getattr(d, key):
                setattr(track, key, getattr(d, key))
        if d.alt_geom_ft is not None and d.alt_baro_ft is not None:
            track.geo_minus_baro_ft = d.alt_geom_ft - d.alt_baro_ft
        if not d.observes:
            return [(track, d.t_s, True)]
        self._predict(track, d.t_s)
        if "alt" in d.observes:
            d = self._altitude_as_up(track, d)
        idx = _index(d)
        cv = isinstance(track.filt, CVFilter)
        d2 = track.filt.innovation(d.z, d.R, idx) if cv else _mahalanobis2(d, track.x, track.P)
        if not self._passes_gate(track, d, d2):
            if not self._manoeuvre(track, d):
                return self._challenge(track, d)
            if cv:
                track.filt.innovation(d.z, d.R, idx)
        if cv:
            track.filt.update()
        else:
            H = np.eye(models.DIM)[d.state_indices()]
            for f in track.filt.filters:
                f.H, f.R, f.dim_z = H, d.R, len(d.observes)
            track.filt.update(d.z)
        self.stats.updates += 1
        track.n_updates += 1
        track.hits.append(1)
        track.last_update_s = d.t_s
        track.challenger = None
        track.rejected_in_row = 0
        cfg = self.config
        if (
            track.status == TrackStatus.TENTATIVE
            and sum(list(track.hits)[-cfg.confirm_n :]) >= cfg.confirm_m
        ) or track.status == TrackStatus.COASTING:
            track.status = TrackStatus.CONFIRMED
        return [(track, d.t_s, False)]

    def _altitude_as_up(self, track: Track, d: Detection) -> Detection:
        """Map a height above the ellipsoid onto u at the track's position (dh/du = 1 locally)."""
        _, _, h_est = self.site.to_geodetic(track.x[:3])
        i = d.observes.index("alt")
        z = d.z.copy()
        z[i] = track.x[2] + (d.z[i] - float(h_est))
        return replace(d, z=z, observes=tuple("u" if o == "alt" else o for o in d.observes))

    def _manoeuvre(self, track: Track, d: Detection) -> bool:
        """A velocity outside the gate that an aircraft could have reached: take it.

        The nearly-constant-velocity model lags a turn or the start of a climb; rejecting
        the velocities that show it would make the lag permanent. If the change since the
        last velocity is within ``max_accel_mps2``, the velocity covariance is widened by
        the innovation (adaptive process noise) and the measurement is used.
        """
        if d.observes != ("ve", "vn", "vu") or d.icao is None:
            return False
        y = d.z - track.x[3:6]
        dt = max(d.t_s - track.last_update_s, 0.5)
        if np.linalg.norm(y) > self.config.max_accel_mps2 * dt + 3 * math.sqrt(np.trace(d.R)):
            return False
        filters = track.filt.filters if isinstance(track.filt, IMMEstimator) else [track.filt]
        for f in [*filters, track.filt]:
            f.P[3:6, 3:6] += np.outer(y, y)
            f.P[0:3, 0:3] += np.outer(y, y) * dt * dt
        self.stats.gate("manoeuvre-accepted")
        return True

    def _passes_gate(self, track: Track, d: Detection, d2: float) -> bool:
        if d2 > self.config.gate_chi2:
            self.stats.gate(f"mahalanobis-{d.source or '-'.join(d.observes)}")
            return False
        if "e" in d.observes:
            i = d.observes.index("e")
            jump = math.hypot(d.z[i] - track.x[0], d.z[i + 1] - track.x[1])
            dt = max(d.t_s - track.last_update_s, 0.0)
            if jump > self.config.max_speed_mps * dt + 3 * math.sqrt(track.P[0, 0] + track.P[1, 1]):
                self.stats.gate("speed")
                return False
        return True

    def _challenge(self, track: Track, d: Detection) -> list[Touch]:
        track.hits.append(0)
        track.rejected_in_row += 1
        if "e" not in d.observes:
            return []
        i = d.observes.index("e")
        pos = d.z[i : i + 3]
        prev = track.challenger
        track.challenger = (d.t_s, pos.copy(), d)
        if prev is None:
            return []
        dt = d.t_s - prev[0]
        if np.linalg.norm(pos[:2] - prev[1][:2]) > self.config.max_speed_mps * dt + 2000.0:
            return []
        # two consecutive rejected positions agree with each other: the track was wrong
        x, p = initial_state(d.z, d.R, d.state_indices())
        if dt > 0 and np.linalg.norm(pos[:2] - prev[1][:2]) <= self.config.max_speed_mps * dt:
            x[3:5] = (pos[:2] - prev[1][:2]) / dt
        track.filt = self._make_filter(x, p)
        track.t_s = d.t_s
        track.last_update_s = d.t_s
        track.challenger = None
        track.hits.append(1)
        self.stats.reinitialised += 1
        return [(track, d.t_s, False)]

    def _drop(self, track: Track, t_s: float) -> TrackUpdate:
        update = self._update_of(track, t_s, predict=True)
        update.status = TrackStatus.DROPPED
        del self.tracks[track.track_id]
        if track.icao is not None and self._by_icao.get(track.icao) is track:
            del self._by_icao[track.icao]
        self.stats.tracks_dropped += 1
        return update

    # ---- output ----------------------------------------------------------------
    def _update_of(self, track: Track, t_s: float, predict: bool = False) -> TrackUpdate:
        x, p = self._predicted(track, t_s) if predict else (track.x, track.P)
        lat, lon, h = self.site.to_geodetic(x[:3])
        # the aircraft reports its track against its own north, which far from the site is
        # turned by the meridians' convergence: (lon - lon_site) * sin(lat)
        convergence_deg = ((lon - self.site.lon_deg + 180.0) % 360.0 - 180.0) * math.sin(
            math.radians(lat)
        )
        a, b, c = p[0, 0], p[0, 1], p[1, 1]
        lambda_max = (a + c) / 2 + math.sqrt(((a - c) / 2) ** 2 + b * b)
        alt_ft = float(h) / FT_M
        return TrackUpdate(
            track_id=track.track_id,
            t_s=t_s,
            status=track.status,
            lat_deg=float(lat),
            lon_deg=float(lon),
            alt_baro_ft=alt_ft,
            alt_geom_ft=alt_ft + track.geo_minus_baro_ft
            if track.geo_minus_baro_ft is not None
            else None,
            h_err95_m=math.sqrt(CHI2_2D_95 * max(float(lambda_max), 0.0)),
            v_err95_m=1.96 * math.sqrt(max(float(p[2, 2]), 0.0)),
            gs_kt=math.hypot(x[3], x[4]) / KT_MPS,
            track_deg=(math.degrees(math.atan2(x[3], x[4])) + convergence_deg) % 360.0,
            vrate_fpm=float(x[5]) / FPM_MPS,
            icao=f"{track.icao:06X}" if track.icao is not None else None,
            callsign=track.callsign,
            squawk=track.squawk,
            category=track.category,
            n_updates=track.n_updates,
            age_s=t_s - track.first_s,
            last_update_s=track.last_update_s,
            sensors=tuple(sorted(track.sensors)),
        )


def _index(d: Detection) -> slice | np.ndarray:
    """The measured state components: a slice when contiguous (all of sensord's)."""
    idx = d.state_indices()
    if idx == list(range(idx[0], idx[-1] + 1)):
        return slice(idx[0], idx[-1] + 1)
    return np.array(idx)


def _mahalanobis2(d: Detection, x: np.ndarray, p: np.ndarray) -> float:
    idx = d.state_indices()
    y = d.z - x[idx]
    s = p[np.ix_(idx, idx)] + d.R
    return float(y @ np.linalg.solve(s, y))
