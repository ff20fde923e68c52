"""The MLAT engine the fusion node feeds: frames of every receiver in, position detections out.

    engine = MlatEngine(site)                       # the fusion node's ENU frame
    engine.receiver("rx1", 52.1, 4.4, 12.0)         # from each node's retained info
    dets = engine.add_frames("rx1", batch)          # FrameBatch of one block (payload.py)
    engine.status()                                 # sync, solver, self-check, exclusions

``add_frames`` sorts each frame into one of three streams, with vectorised masks:

- **sync**: ADS-B airborne positions, a deterministic sample chosen by the frame's own
  parity bytes (so every receiver picks the same replies; thinned automatically when
  each pair would see more than ``pair_updates_per_s``): reference events for the pairs;
- **check**: another sample of ADS-B positions, solved as if they had no position and
  compared with their own (``SelfCheck``);
- **mlat**: Mode S replies (DF0/4/5/11/16/20/21) of aircraft with no ADS-B position.

Copies of one reply are gathered by their bytes and held ``hold_s`` of UTC (the newest
block's UTC of any node) so slower nodes catch up; then copies are grouped per
transmission (by UTC for sync, on the network timebase within the light-time window for
mlat) and handled. ``flush()`` handles everything still held (end of a recording).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sensord.detections import POSITION, Detection
from sensord.errors import UserError
from sensord.frames import TICKS_PER_S
from sensord.geo import FT_M, Site, geodetic_to_ecef
from sensord.mlat.clocksync import C_AIR_MPS, ClockNetwork, PairConfig
from sensord.mlat.grouping import Copy, Group, split_by_time, split_by_utc, subset
from sensord.mlat.modes import MODES_ONLY_DFS, AdsbPositions
from sensord.mlat.modes import reply_altitude_ft as _reply_alt_ft
from sensord.mlat.payload import FrameBatch
from sensord.mlat.selfcheck import SelfCheck, SelfCheckConfig
from sensord.mlat.solver import Solution, SolverConfig, solve

Predictor = Callable[[int, float], "np.ndarray | None"]  # (icao, utc) -> ENU (3,) or None
_SYNC, _CHECK, _MLAT = 0, 1, 2
MAX_SPEED_MPS = 400.0  # faster between two fixes: one of them is wrong, no extrapolation
_MODES_LUT = np.array([df in MODES_ONLY_DFS for df in range(32)])


@dataclass
class MlatConfig:
    """Engine settings (times in UTC seconds)."""

    hold_s: float = 1.0
    use_toa: bool = True  # use toa_12mhz when a node sends it
    solve_interval_s: float = 1.0  # at most one solution per aircraft per this
    selfcheck_interval_s: float = 2.0  # per aircraft ...
    selfcheck_per_s: float = 4.0  # ... and for the whole network
    selfcheck_fraction: float = 1 / 8
    pair_updates_per_s: float = 10.0  # reference events per pair (the sample is thinned)
    max_pair_updates_per_s: float = 600.0  # ... and for the network (large networks)
    timestamp_sigma_s: float = 80e-9  # until estimated from the pairs
    alt_sigma_m: float = 75.0  # barometric altitude vs geometric height
    alt_climb_mps: float = 15.0  # how fast a remembered altitude loses value
    alt_max_age_s: float = 20.0
    adsb_timeout_s: float = 60.0
    utc_group_s: float = 0.2  # node wall clocks agree to NTP's few ms
    max_range_m: float = 500e3
    pair: PairConfig = field(default_factory=PairConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    selfcheck: SelfCheckConfig = field(default_factory=SelfCheckConfig)


@dataclass
class Receiver:
    """A receiver as MLAT knows it: surveyed position and counter rate."""

    node: str
    site: Site
    clock_hz: float
    clock_type: str
    ecef_m: np.ndarray


@dataclass(slots=True)
class _Pending:
    kind: int
    icao: int
    first_utc: float
    copies: list[Copy] = field(default_factory=list)


@dataclass(slots=True)
class _Fix:
    """An aircraft's last MLAT position (the next solution's starting point)."""

    ecef_m: np.ndarray
    utc: float
    vel_mps: np.ndarray | None = None


class MlatEngine:
    """Clock sync, grouping, solving and self-check for one fusion node."""

    def __init__(
        self,
        site: Site,
        config: MlatConfig | None = None,
        predict: Predictor | None = None,
    ) -> None:
        self.site = site
        self.cfg = config or MlatConfig()
        self.predict = predict
        self.receivers: dict[str, Receiver] = {}
        self.network = ClockNetwork(self.cfg.pair)
        self.selfcheck = SelfCheck(self.cfg.selfcheck)
        self.excluded: dict[str, str] = {}
        self.adsb = AdsbPositions(site.lat_deg, site.lon_deg, self.cfg.max_range_m)
        self.counters: dict[str, int] = {}
        self.now_utc = -math.inf
        self._pending: dict[bytes, _Pending] = {}
        self._order: deque[tuple[float, bytes]] = deque()
        self._adsb_seen: dict[int, float] = {}
        self._last_solve: dict[int, float] = {}
        self._last_check: dict[int, float] = {}
        self._last_any_check = -math.inf
        self._last_alt: dict[int, tuple[float, float]] = {}  # icao -> (alt_m, utc)
        self._last_fix: dict[int, _Fix] = {}
        self._jitter_s2: dict[str, float] = {}
        self._last_t_s: dict[str, float] = {}
        self._window_s = 1e-3
        self._centroid = site.ecef_m
        self._radius_m = 0.0
        self._sync_keep = 64  # of 256: the share of ADS-B positions used as sync events
        self._adsb_array = np.zeros(0, dtype=np.uint32)
        self._adsb_dirty = False
        self._updates_at_last = 0
        self._last_housekeeping = -math.inf
        self._next_housekeeping = -math.inf
        self._ticks = 0
        self._rot = site.rot_ecef_to_enu

    # -- receivers -------------------------------------------------------------------------

    def receiver(
        self,
        node: str,
        lat_deg: float,
        lon_deg: float,
        alt_m: float,
        clock_hz: float = TICKS_PER_S,
        clock_type: str = "dongle",
    ) -> None:
        """Add a receiver, or change its surveyed position (its self-check starts over)."""
        if not (-90 <= lat_deg <= 90 and -180 <= lon_deg <= 180 and -500 <= alt_m <= 10000):
            raise UserError(f"mlat: receiver {node}: position {lat_deg}, {lon_deg}, {alt_m} m")
        if not 1e6 <= clock_hz <= 1e9:
            raise UserError(f"mlat: receiver {node}: clock rate {clock_hz} Hz")
        old = self.receivers.get(node)
        site = Site(lat_deg, lon_deg, alt_m)
        self.receivers[node] = Receiver(node, site, clock_hz, clock_type, site.ecef_m)
        if old is not None and old.site != site:
            self.selfcheck.forget(node)
            self.network.forget(node)
            self.excluded.pop(node, None)
            self.network.excluded.discard(node)
        pos = np.array([r.ecef_m for r in self.receivers.values()])
        span = max((float(np.linalg.norm(a - b)) for a in pos for b in pos), default=0.0)
        self._window_s = span / C_AIR_MPS + 50e-6
        self._centroid = pos.mean(axis=0)
        self._radius_m = max(self._horizontal_m(p, self._centroid) for p in pos)

    def _horizontal_m(self, a: np.ndarray, b: np.ndarray) -> float:
        d = self._rot @ (a - b)
        return math.hypot(d[0], d[1])

    def _count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    # -- input -----------------------------------------------------------------------------

    def add_frames(self, node: str, batch: FrameBatch) -> list[Detection]:
        """One node's frames of one block; returns the MLAT detections now complete."""
        rx = self.receivers.get(node)
        if rx is None:
            self._count("frames_unknown_node", len(batch))
            return []
        if batch.node and batch.node != node:
            self._count("frames_wrong_node", len(batch))
            return []
        self._count("frames_in", len(batch))
        if len(batch):
            self._sort(node, rx, batch)
        self.now_utc = max(self.now_utc, batch.utc)
        out = self._flush_before(self.now_utc - self.cfg.hold_s)
        if self.now_utc >= self._next_housekeeping:
            self._housekeeping()
            self._next_housekeeping = self.now_utc + 1.0
        return out

    def flush(self) -> list[Detection]:
        """Handle everything still held (end of input)."""
        return self._flush_before(math.inf)

    def _sort(self, node: str, rx: Receiver, batch: FrameBatch) -> None:
        msg = batch.msg
        df = msg[:, 0] >> 3
        tc = msg[:, 4] >> 3
        pos = ((df == 17) | (df == 18)) & (tc >= 9) & (tc <= 18)
        n_pos = int(np.count_nonzero(pos))
        if n_pos:
            for a in set(batch.icao[pos].tolist()):
                if a not in self._adsb_seen:
                    self._adsb_dirty = True
                self._adsb_seen[a] = batch.utc
            sync = pos & ((msg[:, 11] ^ msg[:, 13]) < self._sync_keep)
            check = pos & ~sync & (msg[:, 12] < int(256 * self.cfg.selfcheck_fraction))
            idx = np.flatnonzero(sync | check | self._modes_only(df, batch.icao))
            kinds = np.where(sync, _SYNC, np.where(check, _CHECK, _MLAT))[idx].tolist()
        else:
            idx = np.flatnonzero(self._modes_only(df, batch.icao))
            kinds = [_MLAT] * idx.size
        if idx.size == 0:
            return
        t_s = (batch.arrival_ticks(self.cfg.use_toa)[idx] / rx.clock_hz).tolist()
        self._last_t_s[node] = t_s[-1]
        utc = batch.frame_utc(rx.clock_hz)[idx].tolist()
        icaos = batch.icao[idx].tolist()
        blob = msg[idx].tobytes()
        ends = np.where(df[idx] >= 16, 14, 7).tolist()
        pending, last_solve = self._pending, self._last_solve
        interval = self.cfg.solve_interval_s
        for k in range(idx.size):
            if kinds[k] == _MLAT:  # rate limit early: most Mode S replies are not solved
                last = last_solve.get(icaos[k])
                if last is not None and utc[k] - last < interval:
                    continue
            key = blob[14 * k : 14 * k + ends[k]]
            entry = pending.get(key)
            if entry is None:
                entry = pending[key] = _Pending(kinds[k], icaos[k], utc[k])
                self._order.append((utc[k], key))
            entry.copies.append(Copy(node, t_s[k], utc[k]))

    def _modes_only(self, df: np.ndarray, icao: np.ndarray) -> np.ndarray:
        """Mask of Mode S replies (DF0/4/5/11/16/20/21) from aircraft without ADS-B position."""
        mask = _MODES_LUT[df]
        if not mask.any():
            return mask
        if self._adsb_dirty:
            self._adsb_array = np.sort(np.fromiter(self._adsb_seen, dtype=np.uint32))
            self._adsb_dirty = False
        known = self._adsb_array
        if known.size == 0:
            return mask
        at = np.minimum(np.searchsorted(known, icao), known.size - 1)
        return mask & (known[at] != icao)

    def _flush_before(self, utc: float) -> list[Detection]:
        out: list[Detection] = []
        while self._order and self._order[0][0] < utc:
            _, key = self._order.popleft()
            entry = self._pending.pop(key, None)
            if entry is None:
                continue
            if entry.kind == _MLAT:
                out += self._handle_mlat(key, entry)
            else:
                self._handle_adsb(key, entry)
        return out

    # -- ADS-B: sync and self-check -----------------------------------------------------------

    def _handle_adsb(self, key: bytes, entry: _Pending) -> None:
        for cluster in split_by_utc(entry.copies, self.cfg.utc_group_s):
            utc = cluster[0].utc
            fix = self.adsb.resolve(entry.icao, key, utc)
            if fix is None:
                self._count("adsb_unresolved")
                continue
            p = geodetic_to_ecef(fix.lat_deg, fix.lon_deg, fix.alt_m)
            self._last_alt[entry.icao] = (fix.alt_m, utc)
            if entry.kind == _SYNC:
                times = [
                    (c.node, c.t_s - float(np.linalg.norm(p - self.receivers[c.node].ecef_m))
                     / C_AIR_MPS)
                    for c in cluster
                ]  # fmt: skip
                if len(times) >= 2:
                    self._count("sync_events")
                    self._count("sync_pair_updates", self.network.add_event(times))
            elif (
                utc - self._last_check.get(entry.icao, -math.inf) >= self.cfg.selfcheck_interval_s
                and utc - self._last_any_check >= 1.0 / self.cfg.selfcheck_per_s
            ):
                self._self_check(key, entry.icao, cluster, p, fix.alt_m)

    def _self_check(
        self, key: bytes, icao: int, cluster: list[Copy], p: np.ndarray, alt_m: float
    ) -> None:
        group = self._normalise(icao, key, cluster, include_excluded=True)
        if group is None or len(group.nodes) < 3:
            return
        self._last_check[icao] = self._last_any_check = group.utc
        rx = np.array([self.receivers[n].ecef_m for n in group.nodes])
        rho = group.t_s * C_AIR_MPS - np.linalg.norm(rx - p, axis=1)
        self.selfcheck.record_residuals(group.nodes, rho - np.median(rho))
        keep = [i for i, n in enumerate(group.nodes) if n not in self.excluded]
        if len(keep) < 3:
            return
        sol = self._solve(subset(group, keep), alt_m)
        if sol is not None:
            d = self._rot @ (sol.ecef_m - p)
            inside = self._horizontal_m(p, self._centroid) <= self._radius_m
            self.selfcheck.record_solution(
                [group.nodes[i] for i in keep], math.hypot(d[0], d[1]), inside
            )
            self._count("selfcheck_solutions")

    # -- MLAT ----------------------------------------------------------------------------------

    def _normalise(
        self, icao: int, key: bytes, copies: list[Copy], include_excluded: bool = False
    ) -> Group | None:
        nodes, t, var, utc = [], [], [], []
        for c in copies:
            if c.node in self.excluded and not include_excluded:
                continue
            conv = self.network.to_reference(c.node, c.t_s)
            if conv is None:
                continue
            nodes.append(c.node)
            t.append(conv[0])
            var.append(conv[1] + self._jitter_s2.get(c.node, self.cfg.timestamp_sigma_s**2))
            utc.append(c.utc)
        if not nodes:
            return None
        return Group(icao, key, nodes, np.array(t), np.array(var), min(utc))

    def _handle_mlat(self, key: bytes, entry: _Pending) -> list[Detection]:
        self._count("mlat_replies")
        last = self._last_solve.get(entry.icao, -math.inf)
        if max(c.utc for c in entry.copies) - last < self.cfg.solve_interval_s:
            self._count("mlat_rate_limited")
            return []
        convertible = [c for c in entry.copies if c.node not in self.excluded]
        group = self._normalise(entry.icao, key, convertible, include_excluded=False)
        if group is None:
            self._count("mlat_unsynced")
            return []
        out = []
        for g in split_by_time(group, self._window_s):
            det = self._locate(g)
            if det is not None:
                out.append(det)
        return out

    def _altitude(self, group: Group) -> tuple[float | None, float | None]:
        """(alt_m, sigma_m) of a reply: its own, else the aircraft's recent one."""
        alt_ft = _reply_alt_ft(group.msg)
        if alt_ft is not None:
            self._last_alt[group.icao] = (alt_ft * FT_M, group.utc)
            return alt_ft * FT_M, self.cfg.alt_sigma_m
        last = self._last_alt.get(group.icao)
        if last is None or group.utc - last[1] > self.cfg.alt_max_age_s:
            return None, None
        age = group.utc - last[1]
        return last[0], math.hypot(self.cfg.alt_sigma_m, self.cfg.alt_climb_mps * age)

    def _locate(self, group: Group) -> Detection | None:
        alt_m, alt_sigma_m = self._altitude(group)
        n = len(group.nodes)
        if n < 3 or (n < 4 and alt_m is None):
            self._count("mlat_too_few_receivers")
            return None
        if group.utc - self._last_solve.get(group.icao, -math.inf) < self.cfg.solve_interval_s:
            self._count("mlat_rate_limited")
            return None
        sol = self._solve(group, alt_m, alt_sigma_m)
        if sol is None:
            return None
        self._last_solve[group.icao] = group.utc
        prev = self._last_fix.get(group.icao)
        vel = None
        if prev is not None and 0.2 < group.utc - prev.utc < 10.0:
            vel = (sol.ecef_m - prev.ecef_m) / (group.utc - prev.utc)
            vel = vel if float(np.linalg.norm(vel)) < MAX_SPEED_MPS else None
        self._last_fix[group.icao] = _Fix(sol.ecef_m, group.utc, vel)
        self._count("mlat_solutions")
        enu = self._rot @ (sol.ecef_m - self.site.ecef_m)
        first = int(np.argmin(group.t_s))
        rng_first = float(np.linalg.norm(sol.ecef_m - self.receivers[group.nodes[first]].ecef_m))
        return Detection(
            t_s=group.utc - rng_first / C_AIR_MPS,
            sensor_id="mlat",
            observes=POSITION,
            z=enu,
            R=sol.cov_enu_m2(self._rot),
            icao=group.icao,
            alt_baro_ft=None if alt_m is None else round(alt_m / FT_M),
            source="mlat",
        )

    def _guess(self, group: Group, alt_m: float | None, rx: np.ndarray) -> np.ndarray:
        if self.predict is not None:
            enu = self.predict(group.icao, group.utc)
            if enu is not None:
                return np.asarray(enu, dtype=float) @ self._rot + self.site.ecef_m
        last = self._last_fix.get(group.icao)
        if last is not None and group.utc - last.utc < 60.0:
            age = group.utc - last.utc
            if last.vel_mps is not None and age < 10.0:  # fewer solver steps from closer
                return last.ecef_m + last.vel_mps * age
            return last.ecef_m
        c = rx.mean(axis=0)
        up = c / np.linalg.norm(c)
        return c + up * (alt_m if alt_m is not None else 9000.0)

    def _solve(
        self, group: Group, alt_m: float | None, alt_sigma_m: float | None = None
    ) -> Solution | None:
        """Solve, and once more without the worst receiver if the residual is too large."""
        rx = np.array([self.receivers[n].ecef_m for n in group.nodes])
        guess = self._guess(group, alt_m, rx)
        sigma = np.sqrt(group.var_s2)
        alt_sigma = alt_sigma_m or self.cfg.alt_sigma_m
        sol = solve(rx, group.t_s, sigma, guess, alt_m, alt_sigma, self.cfg.solver)
        min_n = 3 if alt_m is not None else 4
        if not sol.ok and sol.reason == "residual" and len(group.nodes) > min_n + 1:
            worst = int(np.argmax(np.abs(sol.residuals_m) / (sigma * C_AIR_MPS)))
            keep = [i for i in range(len(group.nodes)) if i != worst]
            self._count("mlat_retry_without_worst")
            sol = solve(rx[keep], group.t_s[keep], sigma[keep], guess, alt_m, alt_sigma,
                        self.cfg.solver)  # fmt: skip
        if not sol.ok:
            self._count(f"mlat_rejected_{sol.reason}")
            return None
        return sol

    # -- housekeeping and status ---------------------------------------------------------------

    def _housekeeping(self) -> None:
        """Once a second of UTC: sampling rate, the clock tree, stale state; every 5 s the
        exclusions and the timestamp noise estimates."""
        now = self.now_utc
        self._ticks += 1
        if self._ticks % 5 == 1:  # the slow statistics every 5 s
            self.excluded = {
                **self.network.inconsistent_nodes(),
                **self.selfcheck.suspects(),
            }
            self.network.excluded = set(self.excluded)
            self._estimate_jitter()
        self.network.rebuild(self._last_t_s)
        # thin the sync sample so each pair sees about pair_updates_per_s events
        updates = self.counters.get("sync_pair_updates", 0)
        per_s = (updates - self._updates_at_last) / max(now - self._last_housekeeping, 1e-3)
        self._updates_at_last, self._last_housekeeping = updates, now
        target = min(
            self.cfg.pair_updates_per_s * max(len(self.network.pairs), 1),
            self.cfg.max_pair_updates_per_s,
        )
        if per_s > 0 and math.isfinite(per_s):
            keep = self._sync_keep * min(max(target / per_s, 0.1), 2.0)
            self._sync_keep = int(min(256, max(4, round(keep))))
        stale = [a for a, t in self._adsb_seen.items() if now - t > self.cfg.adsb_timeout_s]
        for a in stale:
            del self._adsb_seen[a]
        self._adsb_dirty |= bool(stale)
        for d in (self._last_solve, self._last_check):
            for a in [a for a, t in d.items() if now - t > 120.0]:
                del d[a]
        for a in [a for a, v in self._last_fix.items() if now - v.utc > 120.0]:
            del self._last_fix[a]
        self.adsb.forget_older_than(now - 300.0)

    def _estimate_jitter(self) -> None:
        """Each node's timestamp variance from the pairs' residuals: v_ab = j_a^2 + j_b^2."""
        nodes = sorted(self.receivers)
        index = {n: i for i, n in enumerate(nodes)}
        rows, vals = [], []
        for p in self.network.pairs.values():
            rms = p.residual_rms_s()
            if p.usable and rms is not None and p.recent_events >= 16:
                row = np.zeros(len(nodes))
                row[index[p.a]] = row[index[p.b]] = 1.0
                rows.append(row)
                vals.append(rms**2)
        if len(rows) < len(nodes):
            return
        sol = np.linalg.lstsq(np.array(rows), np.array(vals), rcond=None)[0]
        floor = (5e-9) ** 2
        self._jitter_s2 = {n: max(float(v), floor) for n, v in zip(nodes, sol, strict=True)}

    def status(self) -> dict:
        """Clock sync per pair and receiver, solver counters, self-check, exclusions."""
        synced = self.network.synced_nodes()
        receivers = {}
        for node in sorted(self.receivers):
            last_t = self._last_t_s.get(node)
            conv = None if last_t is None else self.network.to_reference(node, last_t)
            jitter = self._jitter_s2.get(node)
            receivers[node] = {
                "state": "excluded" if node in self.excluded
                else "synced" if node in synced else "unsynced",
                "reason": self.excluded.get(node),
                "timestamp_sigma_ns": None if jitter is None else round(math.sqrt(jitter) * 1e9, 1),
                "timebase_sigma_ns": None if conv is None else round(math.sqrt(conv[1]) * 1e9, 1),
            }  # fmt: skip
        return {
            "reference": self.network.reference,
            "receivers": receivers,
            "pairs": self.network.pair_status(),
            "selfcheck": self.selfcheck.status(),
            "counters": dict(sorted(self.counters.items())),
        }
