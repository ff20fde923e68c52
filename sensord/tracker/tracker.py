"""The multi-target tracker: detections in, track updates out, on the sample clock.

Association: a Mode S detection goes to the track of its ICAO address; an anonymous one
(a radar, no identity) to a track by Mahalanobis gating and global nearest neighbour over
the detections of one scan (scipy's linear_sum_assignment). Every kinematic measurement
passes the gate: its Mahalanobis distance to the prediction and, for positions, a speed
limit; what fails is counted and kept as a challenger. Two consecutive challengers that
agree with each other but not with the track re-initialise it: a wrong first fix (or a
real jump after a long gap) cannot hold a track off the truth, while a single spoofed or
mis-decoded position is rejected.

Filtering: the CV filters of all tracks are rows of one ``kalman.CVBank``; the tracks a
batch of detections touches are predicted, gated and updated together (C kernels). Mode S
detections are taken in rounds, the k-th detection of every address in round k, so each
track still sees its own detections one by one in time order. The IMM option steps its
filterpy filters one by one behind the same interface (``imm.IMMBank``).

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
from scipy.optimize import linear_sum_assignment

from sensord.detections import HORIZONTAL_POSITION, Detection
from sensord.geo import FPM_MPS, FT_M, KT_MPS, Site
from sensord.tracker import kalman
from sensord.tracker.kalman import CVBank
from sensord.tracker.track import Track, initial_state
from sensord.tracker.update import TrackStatus, TrackUpdate

CHI2_2D_95 = 5.991
Touch = tuple[Track, float, bool]  # a track changed at t_s (True: state must be predicted)
Numbered = tuple[int, Touch]  # a touch and the position of the detection that made it


@dataclass
class TrackerConfig:
    """Tracker parameters (all times on the sample clock)."""

    sigma_accel_h_mps2: float = 2.0
    sigma_accel_v_mps2: float = 1.0
    imm: bool = False  # IMM of CV + CA (filterpy) instead of the CV filter
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
        cfg = self.config
        if cfg.imm:
            from sensord.tracker.imm import IMMBank  # filterpy: imported only when used

            self._bank: CVBank | IMMBank = IMMBank(
                cfg.imm_cv_sigma_accel_h_mps2,
                cfg.imm_cv_sigma_accel_v_mps2,
                cfg.imm_ca_sigma_jerk_h_mps3,
                cfg.imm_ca_sigma_jerk_v_mps3,
            )
        else:
            self._bank = CVBank(cfg.sigma_accel_h_mps2, cfg.sigma_accel_v_mps2)

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
        changed: list[tuple[Track, bool]] = []  # (track, dropped)
        for track in list(self.tracks.values()):
            silent = t_s - track.last_seen_s
            if (
                track.status == TrackStatus.TENTATIVE and silent > cfg.tentative_drop_after_s
            ) or silent > cfg.drop_after_s:
                changed.append((track, True))
            elif (
                track.status == TrackStatus.CONFIRMED
                and t_s - track.last_update_s > cfg.coast_after_s
            ):
                track.status = TrackStatus.COASTING
                changed.append((track, False))
        out = self._updates_of([(track, t_s, True) for track, _ in changed])
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
        return self._updates_of([(t, t_s, True) for t in self.tracks.values()])

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
        updates = self._updates_of(list(latest.values()))
        if self._latest_s > -math.inf:
            updates += self.advance(min(horizon_s, self._latest_s))
        return updates

    def _process_identified(self, dets: list[Detection]) -> list[Touch]:
        """Mode S detections (time order) by ICAO address, filtered in rounds.

        Round k holds the k-th detection of every address: different tracks, so one
        batched filter step serves the whole round while each address keeps its own
        order. Touches come back in the order of the detections that made them, as if the
        detections had been processed one by one.
        """
        rounds: list[list[tuple[int, Detection]]] = []
        seen: dict[int, int] = {}
        for i, d in enumerate(dets):
            k = seen.get(d.icao, 0)
            seen[d.icao] = k + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append((i, d))
        out: list[Numbered] = []
        for batch in rounds:
            kinematic: list[tuple[int, Track, Detection]] = []
            for i, d in batch:
                track = self._by_icao.get(d.icao)
                if track is not None:
                    self._arrive(i, track, d, out, kinematic)
                elif HORIZONTAL_POSITION[0] in d.observes:
                    out.append((i, self._create(d)))
                else:
                    self._remember(d)
            out += self._update(kinematic)
        out.sort(key=lambda numbered: numbered[0])
        return [touch for _, touch in out]

    def _process_scan(self, scan: list[Detection]) -> list[Touch]:
        """Anonymous detections of one scan: gate, then global nearest neighbour."""
        tracks = list(self.tracks.values())
        cost = np.full((len(scan), len(tracks)), 1e9)
        for i, d in enumerate(scan):
            candidates = [j for j, tr in enumerate(tracks) if d.t_s >= tr.t_s and d.observes]
            if not candidates:
                continue
            x, p = self._predicted([tracks[j] for j in candidates], [d.t_s] * len(candidates))
            idx = _index(d)
            z = np.tile(d.z, (len(candidates), 1))
            r = np.tile(d.R, (len(candidates), 1, 1))
            d2 = kalman.distances(x, p, z, r, idx)
            for j, dist2 in zip(candidates, d2.tolist(), strict=True):
                if dist2 <= self.config.gate_chi2:
                    cost[i, j] = dist2
        rows, cols = linear_sum_assignment(cost) if tracks else ([], [])
        out: list[Numbered] = []
        kinematic: list[tuple[int, Track, Detection]] = []
        assigned = set()
        for i, j in zip(rows, cols, strict=True):
            if cost[i, j] < 1e9:
                self._arrive(i, tracks[j], scan[i], out, kinematic)
                assigned.add(i)
        out += self._update(kinematic)
        out.sort(key=lambda numbered: numbered[0])
        touches = [touch for _, touch in out]
        for i, d in enumerate(scan):
            if i not in assigned and HORIZONTAL_POSITION[0] in d.observes:
                touches.append(self._create(d))
        return touches

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
            self._bank.new(x, p),
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

    def _predicted(self, tracks: list[Track], t_s: list[float]) -> tuple[np.ndarray, np.ndarray]:
        """States (n, 6) and covariances (n, 6, 6) of tracks at t_s, the tracks unchanged."""
        x = np.stack([tr.x for tr in tracks])
        p = np.stack([tr.P for tr in tracks])
        dt = np.array(t_s) - np.array([tr.t_s for tr in tracks])
        ahead = np.flatnonzero(dt > 0)
        if len(ahead):
            cfg = self.config
            x[ahead], p[ahead] = kalman.predicted(
                x[ahead], p[ahead], dt[ahead], cfg.sigma_accel_h_mps2, cfg.sigma_accel_v_mps2
            )
        return x, p

    def _arrive(
        self,
        i: int,
        track: Track,
        d: Detection,
        touches: list[Numbered],
        kinematic: list[tuple[int, Track, Detection]],
    ) -> None:
        """Detection i for track: late (counted), identity only (a touch), or kinematic."""
        if d.t_s < track.t_s:
            self.stats.late_dropped += 1
            return
        track.last_seen_s = d.t_s
        track.sensors.add(d.sensor_id)
        for key in ("callsign", "squawk", "category"):
            if getattr(d, key):
                setattr(track, key, getattr(d, key))
        if d.alt_geom_ft is not None and d.alt_baro_ft is not None:
            track.geo_minus_baro_ft = d.alt_geom_ft - d.alt_baro_ft
        if d.observes:
            kinematic.append((i, track, d))
        else:
            touches.append((i, (track, d.t_s, True)))

    def _update(self, items: list[tuple[int, Track, Detection]]) -> list[Numbered]:
        """Kinematic detections of distinct tracks: predict, gate and update as one batch."""
        if not items:
            return []
        tracks = [track for _, track, _ in items]
        self._bank.predict(
            [track.filt for track in tracks],
            np.array([d.t_s - track.t_s for _, track, d in items]),
        )
        for _, track, d in items:
            track.t_s = d.t_s
        dets = self._altitudes_as_up(items)
        groups: dict[tuple[str, ...], list[int]] = {}
        for k, d in enumerate(dets):
            groups.setdefault(d.observes, []).append(k)
        out: list[Numbered] = []
        for rows in groups.values():
            idx = _index(dets[rows[0]])
            z = np.stack([dets[k].z for k in rows])
            r = np.stack([dets[k].R for k in rows])
            d2 = self._bank.distances([tracks[k].filt for k in rows], z, r, idx)
            accepted = []
            for row, (k, dist2) in enumerate(zip(rows, d2.tolist(), strict=True)):
                track, d = tracks[k], dets[k]
                if self._passes_gate(track, d, dist2) or self._manoeuvre(track, d):
                    accepted.append(row)
                else:
                    out += [(items[k][0], touch) for touch in self._challenge(track, d)]
            if accepted:
                self._bank.update(
                    [tracks[rows[a]].filt for a in accepted], z[accepted], r[accepted], idx
                )
            for a in accepted:
                k = rows[a]
                out.append((items[k][0], self._accepted(tracks[k], dets[k])))
        return out

    def _accepted(self, track: Track, d: Detection) -> Touch:
        """Bookkeeping of a measurement the filter took."""
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
        return (track, d.t_s, False)

    def _altitudes_as_up(self, items: list[tuple[int, Track, Detection]]) -> list[Detection]:
        """Map heights above the ellipsoid onto u at each track's position (dh/du = 1 locally)."""
        dets = [d for _, _, d in items]
        alt = [k for k, d in enumerate(dets) if "alt" in d.observes]
        if not alt:
            return dets
        up = np.stack([items[k][1].x[:3] for k in alt])
        _, _, h_est = self.site.to_geodetic(up)
        for k, u_m, h_m in zip(alt, up[:, 2].tolist(), np.atleast_1d(h_est).tolist(), strict=True):
            d = dets[k]
            i = d.observes.index("alt")
            z = d.z.copy()
            z[i] = u_m + (d.z[i] - h_m)
            observes = tuple("u" if o == "alt" else o for o in d.observes)
            dets[k] = replace(d, z=z, observes=observes)
        return dets

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
        track.filt.widen(y, dt)
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
        self._bank.release(track.filt)
        track.filt = self._bank.new(x, p)
        track.t_s = d.t_s
        track.last_update_s = d.t_s
        track.challenger = None
        track.hits.append(1)
        self.stats.reinitialised += 1
        return [(track, d.t_s, False)]

    def _drop(self, track: Track) -> None:
        self._bank.release(track.filt)
        del self.tracks[track.track_id]
        if track.icao is not None and self._by_icao.get(track.icao) is track:
            del self._by_icao[track.icao]
        self.stats.tracks_dropped += 1

    # ---- output ----------------------------------------------------------------
    def _updates_of(self, touches: list[Touch]) -> list[TrackUpdate]:
        """The TrackUpdate of each touch, computed for all at once."""
        if not touches:
            return []
        tracks = [track for track, _, _ in touches]
        t_s = [t if predict else track.t_s for track, t, predict in touches]
        x, p = self._predicted(tracks, t_s)
        lat, lon, h = self.site.to_geodetic(x[:, :3])
        # the aircraft reports its track against its own north, which far from the site is
        # turned by the meridians' convergence: (lon - lon_site) * sin(lat)
        convergence_deg = ((lon - self.site.lon_deg + 180.0) % 360.0 - 180.0) * np.sin(
            np.radians(lat)
        )
        a, b, c = p[:, 0, 0], p[:, 0, 1], p[:, 1, 1]
        lambda_max = (a + c) / 2 + np.sqrt(((a - c) / 2) ** 2 + b * b)
        columns = zip(
            touches,
            lat.tolist(),
            lon.tolist(),
            (h / FT_M).tolist(),
            np.sqrt(CHI2_2D_95 * np.maximum(lambda_max, 0.0)).tolist(),
            (1.96 * np.sqrt(np.maximum(p[:, 2, 2], 0.0))).tolist(),
            (np.hypot(x[:, 3], x[:, 4]) / KT_MPS).tolist(),
            ((np.degrees(np.arctan2(x[:, 3], x[:, 4])) + convergence_deg) % 360.0).tolist(),
            (x[:, 5] / FPM_MPS).tolist(),
            strict=True,
        )
        return [
            TrackUpdate(
                track_id=track.track_id,
                t_s=t,
                status=track.status,
                lat_deg=lat_deg,
                lon_deg=lon_deg,
                alt_baro_ft=alt_ft,
                alt_geom_ft=alt_ft + track.geo_minus_baro_ft
                if track.geo_minus_baro_ft is not None
                else None,
                h_err95_m=h_err95_m,
                v_err95_m=v_err95_m,
                gs_kt=gs_kt,
                track_deg=track_deg,
                vrate_fpm=vrate_fpm,
                icao=f"{track.icao:06X}" if track.icao is not None else None,
                callsign=track.callsign,
                squawk=track.squawk,
                category=track.category,
                n_updates=track.n_updates,
                age_s=t - track.first_s,
                last_update_s=track.last_update_s,
                sensors=tuple(sorted(track.sensors)),
            )
            for (
                (track, t, _),
                lat_deg,
                lon_deg,
                alt_ft,
                h_err95_m,
                v_err95_m,
                gs_kt,
                track_deg,
                vrate_fpm,
            ) in columns
        ]


_INDICES: dict[tuple[str, ...], np.ndarray] = {}


def _index(d: Detection) -> np.ndarray:
    """The measured state components (H's rows), one array per kind of detection."""
    idx = _INDICES.get(d.observes)
    if idx is None:
        idx = _INDICES[d.observes] = np.array(d.state_indices(), dtype=np.intp)
    return idx
