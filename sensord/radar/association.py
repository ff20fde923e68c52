"""Radar detections against cooperative tracks, and radar-only tracks in range-Doppler.

Each CPI's detections are first offered to the cooperative (ADS-B/MLAT) tracks: a
track's last state is flown on at constant velocity to the CPI centre and turned into
its predicted bistatic range and range rate; a detection within the chi-square gate
(range and range rate, detection variance plus the prediction's) is that aircraft's echo,
pairs chosen by global nearest neighbour. The pairs confirm the radar and calibrate it:
``BiasReport`` keeps the running mean and spread of the measured-minus-predicted range
and Doppler.

What no cooperative track explains starts or feeds a radar-only track. One bistatic
pair cannot fix a position, so such a track lives in range-Doppler: state (bistatic range,
range rate), constant-velocity Kalman filter, GNN association, confirmed after
``confirm_hits`` of ``confirm_window`` CPIs, dropped after ``max_misses`` CPIs without
a detection. Its id is ``radar:<node>:<n>``; it is published as non-cooperative.

This module does not update the fusion tracker's ADS-B tracks with radar measurements
(that needs the fusion node's non-linear bistatic model); it gates, pairs and calibrates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from sensord.geo import FPM_MPS, FT_M, KT_MPS, geodetic_to_ecef, rotation_ecef_to_enu
from sensord.radar.detections import RadarDetection
from sensord.radar.geometry import Bistatic
from sensord.tracker.update import TrackUpdate

GATE_CHI2_2DOF = 13.8  # 99.9 % of a 2-dof chi-square
STALE_S = 10.0  # a cooperative state older than this predicts nothing
VEL_SIGMA_MPS = 10.0


@dataclass(frozen=True)
class CooperativeState:
    """A cooperative track's state in ECEF, from its last update."""

    track_id: str
    icao: str | None
    t: float
    pos_ecef_m: np.ndarray
    vel_ecef_mps: np.ndarray
    pos_sigma_m: float
    vel_sigma_mps: float

    @classmethod
    def from_update(cls, u: TrackUpdate, t: float) -> CooperativeState | None:
        """None when the update has no position or no measured velocity yet (a track's
        first states carry a zero velocity until a velocity message arrives)."""
        if u.lat_deg is None or u.lon_deg is None or u.gs_kt is None or u.track_deg is None:
            return None
        if u.gs_kt < 1.0 or u.status.value != "confirmed":
            return None
        alt_ft = u.alt_geom_ft if u.alt_geom_ft is not None else u.alt_baro_ft
        if alt_ft is None:
            return None
        pos = geodetic_to_ecef(u.lat_deg, u.lon_deg, alt_ft * FT_M)
        trk = math.radians(u.track_deg)
        v_enu = np.array(
            [
                u.gs_kt * KT_MPS * math.sin(trk),
                u.gs_kt * KT_MPS * math.cos(trk),
                (u.vrate_fpm or 0.0) * FPM_MPS,
            ]
        )
        vel = rotation_ecef_to_enu(u.lat_deg, u.lon_deg).T @ v_enu
        sigma = (u.h_err95_m or 50.0) / 2.45
        # 10 m/s: a velocity reported as airspeed and heading is off the ground velocity by
        # the wind, which the aircraft does not report
        return cls(u.track_id, u.icao, t, pos, vel, max(sigma, 5.0), VEL_SIGMA_MPS)


@dataclass(frozen=True)
class Prediction:
    """A cooperative track's expected bistatic range and range rate at one instant."""

    track_id: str
    icao: str | None
    range_m: float
    range_rate_mps: float
    range_var_m2: float
    rate_var_m2s2: float


def predict(bistatic: Bistatic, st: CooperativeState, t: float) -> Prediction:
    """Fly the state to t at constant velocity; variances through the geometry's gradient
    (|u_tx + u_rx| for range; the same for range rate from the velocity error)."""
    dt = t - st.t
    pos = st.pos_ecef_m + st.vel_ecef_mps * dt
    rng = float(bistatic.range_m(pos))
    rate = float(bistatic.range_rate_mps(pos, st.vel_ecef_mps))
    u_tx = pos - bistatic.tx_ecef_m
    u_rx = pos - bistatic.rx_ecef_m
    g2 = float(np.sum((u_tx / np.linalg.norm(u_tx) + u_rx / np.linalg.norm(u_rx)) ** 2))
    pos_var = st.pos_sigma_m**2 + (st.vel_sigma_mps * dt) ** 2 + (0.5 * 3.0 * dt * dt) ** 2
    rate_var = g2 * (st.vel_sigma_mps**2 + (3.0 * dt) ** 2)
    return Prediction(st.track_id, st.icao, rng, rate, g2 * pos_var, rate_var)


@dataclass(frozen=True)
class Pair:
    """A detection explained by a cooperative track."""

    detection: RadarDetection
    track_id: str
    icao: str | None
    d2: float
    range_residual_m: float
    doppler_residual_hz: float


@dataclass
class BiasReport:
    """Running mean and spread of measured minus predicted range and Doppler."""

    n: int = 0
    _sum: np.ndarray = field(default_factory=lambda: np.zeros(2))
    _sum2: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def add(self, pairs: list[Pair]) -> None:
        for p in pairs:
            self.add_residual(p.range_residual_m, p.doppler_residual_hz)

    def add_residual(self, range_m: float, doppler_hz: float) -> None:
        """One detection's measured minus predicted range (m) and Doppler (Hz)."""
        r = np.array([range_m, doppler_hz])
        self.n += 1
        self._sum += r
        self._sum2 += r * r

    def to_dict(self) -> dict:
        if not self.n:
            return {"pairs": 0}
        mean = self._sum / self.n
        std = np.sqrt(np.maximum(self._sum2 / self.n - mean**2, 0.0))
        return {
            "pairs": self.n,
            "range_bias_m": round(float(mean[0]), 1),
            "range_spread_m": round(float(std[0]), 1),
            "doppler_bias_hz": round(float(mean[1]), 3),
            "doppler_spread_hz": round(float(std[1]), 3),
        }


def associate(
    dets: list[RadarDetection], preds: list[Prediction], lam_m: float,
    gate: float = GATE_CHI2_2DOF, range_bias_m: float = 0.0,
) -> tuple[list[Pair], list[RadarDetection]]:  # fmt: skip
    """GNN pairs of detections and predictions inside the gate; the detections left over."""
    if not dets or not preds:
        return [], list(dets)
    from scipy.optimize import linear_sum_assignment

    cost = np.full((len(dets), len(preds)), 1e9)
    for i, d in enumerate(dets):
        for j, p in enumerate(preds):
            dr = d.bistatic_range_m - range_bias_m - p.range_m
            dv = d.range_rate_mps - p.range_rate_mps
            d2 = dr * dr / (d.bistatic_range_var_m2 + p.range_var_m2 + 75.0**2) + dv * dv / (
                d.range_rate_var_m2s2 + p.rate_var_m2s2 + 1.0
            )
            if d2 <= gate:
                cost[i, j] = d2
    rows, cols = linear_sum_assignment(cost)
    pairs, used = [], set()
    for i, j in zip(rows, cols, strict=True):
        if cost[i, j] >= 1e9:
            continue
        d, p = dets[i], preds[j]
        used.add(i)
        pairs.append(
            Pair(
                d,
                p.track_id,
                p.icao,
                float(cost[i, j]),
                d.bistatic_range_m - p.range_m,
                d.doppler_hz + p.range_rate_mps / lam_m,
            )
        )
    return pairs, [d for i, d in enumerate(dets) if i not in used]


@dataclass
class RadarTrack:
    """A radar-only track in range-Doppler: x = (bistatic range m, range rate m/s)."""

    track_id: str
    t: float
    x: np.ndarray
    p: np.ndarray
    hits: list[bool] = field(default_factory=list)
    misses: int = 0
    confirmed: bool = False
    n_updates: int = 1
    last_detection: RadarDetection | None = None  # what updated it this CPI, if anything

    def to_dict(self, lam_m: float, utc: float | None = None) -> dict:
        """The payload of a non-cooperative track (``cooperative`` false, ``radar`` true)."""
        return {
            "track_id": self.track_id,
            "t_s": round(self.t, 3),
            "utc": None if utc is None else round(utc, 3),
            "status": "confirmed" if self.confirmed else "tentative",
            "cooperative": False,
            "radar_only": True,
            "bistatic_range_m": round(float(self.x[0]), 1),
            "range_rate_mps": round(float(self.x[1]), 2),
            "doppler_hz": round(float(-self.x[1] / lam_m), 3),
            "bistatic_range_sigma_m": round(math.sqrt(self.p[0, 0]), 1),
            "range_rate_sigma_mps": round(math.sqrt(self.p[1, 1]), 2),
            "n_updates": self.n_updates,
        }


@dataclass
class RangeDopplerTracker:
    """Radar-only tracks in range-Doppler (see the module doc)."""

    node: str = "radar0"
    accel_sigma_mps2: float = 5.0
    gate: float = GATE_CHI2_2DOF
    confirm_hits: int = 3
    confirm_window: int = 4
    max_misses: int = 3
    tracks: list[RadarTrack] = field(default_factory=list)
    _next_id: int = 1

    def _predict(self, tr: RadarTrack, t: float) -> tuple[np.ndarray, np.ndarray]:
        dt = t - tr.t
        f = np.array([[1.0, dt], [0.0, 1.0]])
        q = self.accel_sigma_mps2**2 * np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]])
        return f @ tr.x, f @ tr.p @ f.T + q

    def update(self, t: float, dets: list[RadarDetection]) -> list[RadarTrack]:
        """One CPI's leftover detections; returns the live tracks after it."""
        from scipy.optimize import linear_sum_assignment

        preds = [self._predict(tr, t) for tr in self.tracks]
        cost = np.full((len(dets), len(self.tracks)), 1e9)
        for i, d in enumerate(dets):
            z = np.array([d.bistatic_range_m, d.range_rate_mps])
            r = np.diag([d.bistatic_range_var_m2 + 30.0**2, d.range_rate_var_m2s2 + 0.3**2])
            for j, (x, p) in enumerate(preds):
                s = p + r
                y = z - x
                d2 = float(y @ np.linalg.solve(s, y))
                if d2 <= self.gate:
                    cost[i, j] = d2
        assigned: dict[int, int] = {}
        if len(dets) and len(self.tracks):
            for i, j in zip(*linear_sum_assignment(cost), strict=True):
                if cost[i, j] < 1e9:
                    assigned[j] = i
        for j, tr in enumerate(self.tracks):
            x, p = preds[j]
            if j in assigned:
                d = dets[assigned[j]]
                z = np.array([d.bistatic_range_m, d.range_rate_mps])
                r = np.diag([d.bistatic_range_var_m2 + 30.0**2, d.range_rate_var_m2s2 + 0.3**2])
                k = p @ np.linalg.inv(p + r)
                x = x + k @ (z - x)
                p = (np.eye(2) - k) @ p
                tr.misses = 0
                tr.n_updates += 1
                tr.hits.append(True)
                tr.last_detection = d
            else:
                tr.misses += 1
                tr.hits.append(False)
                tr.last_detection = None
            tr.x, tr.p, tr.t = x, p, t
            window = tr.hits[-self.confirm_window :]
            if not tr.confirmed and sum(window) >= self.confirm_hits:
                tr.confirmed = True
        self.tracks = [
            tr for tr in self.tracks
            if tr.misses < self.max_misses and (tr.confirmed or len(tr.hits) < self.confirm_window
                                                 or sum(tr.hits[-self.confirm_window:]) > 1)
        ]  # fmt: skip
        used = set(assigned.values())
        for i, d in enumerate(dets):
            if i in used:
                continue
            x = np.array([d.bistatic_range_m, d.range_rate_mps])
            p = np.diag([d.bistatic_range_var_m2 + 150.0**2, d.range_rate_var_m2s2 + 2.0**2])
            self.tracks.append(
                RadarTrack(f"radar:{self.node}:{self._next_id}", t, x, p, [True], last_detection=d)
            )
            self._next_id += 1
        return self.tracks


@dataclass
class CpiFusion:
    """One CPI's outcome: cooperative pairs and the radar-only tracks after it."""

    pairs: list[Pair]
    leftover: list[RadarDetection]
    radar_tracks: list[RadarTrack]
    cooperative_icaos: set[int] = field(default_factory=set)  # with a usable state


@dataclass
class CooperativeRadar:
    """Cooperative tracks in, radar detections per CPI in: pairs, bias, radar-only tracks."""

    bistatic: Bistatic
    node: str = "radar0"
    states: dict[str, CooperativeState] = field(default_factory=dict)
    bias: BiasReport = field(default_factory=BiasReport)
    tracker: RangeDopplerTracker = field(default_factory=RangeDopplerTracker)

    def __post_init__(self) -> None:
        self.tracker.node = self.node

    def track_update(self, u: TrackUpdate, t: float | None = None) -> None:
        """Take a cooperative track's update (t: its time on the radar's clock)."""
        st = CooperativeState.from_update(u, u.t_s if t is None else t)
        if st is not None:
            self.states[u.track_id] = st

    def cpi(self, t: float, dets: list[RadarDetection]) -> CpiFusion:
        fresh = [st for st in self.states.values() if abs(t - st.t) <= STALE_S]
        preds = [predict(self.bistatic, st, t) for st in fresh]
        pairs, left = associate(dets, preds, self.bistatic.wavelength_m)
        self.bias.add(pairs)
        tracks = [  # snapshots: the tracker goes on changing its own
            replace(tr, x=tr.x.copy(), p=tr.p.copy(), hits=list(tr.hits))
            for tr in self.tracker.update(t, left)
        ]
        icaos = {int(st.icao, 16) for st in fresh if st.icao}
        return CpiFusion(pairs, left, tracks, icaos)
