"""Clock synchronisation without GPS: pairs of receivers, then one network timebase.

Reference events are ADS-B airborne position messages heard by two receivers a and b.
The message's own position gives each receiver's propagation delay (``C_AIR_MPS``), so
``y = (t_b - delay_b) - (t_a - delay_a)`` measures b's counter minus a's at the instant
``tau = t_a - delay_a`` of a's counter (seconds of nominal rate).

``PairClock`` runs a Kalman filter on (offset, drift) of that difference. An innovation
outside the gate is an outlier and never enters the filter. Consecutive outliers that
agree with each other are a step (a lost USB transfer jumps one counter by ms): the pair
re-initialises on them, so the step is never smeared into the estimate. While a pair
has unexplained outliers it is ``suspect`` and leaves the network.

``ClockNetwork`` keeps a ``PairClock`` per pair and puts every receiver on the timebase
of one reference receiver through a minimum-variance spanning tree (Dijkstra on pair
variances): ``to_reference(node, t_s)`` converts a counter time and gives its variance.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

C_AIR_MPS = 299_792_458.0 / 1.0003

SYNCING, SYNCED, SUSPECT = "syncing", "synced", "suspect"


@dataclass
class PairConfig:
    """Tuning of the pair filter (seconds; drift dimensionless)."""

    event_sigma_s: float = 100e-9  # one reference event's offset measurement
    drift_walk_per_sqrt_s: float = 5e-9  # random walk of the relative frequency
    offset_walk_s_per_sqrt_s: float = 5e-9  # white frequency noise
    initial_drift_sigma: float = 200e-6  # +-100 ppm each
    gate_sigmas: float = 5.0
    min_gate_s: float = 1e-6
    step_outliers: int = 3  # consecutive agreeing outliers that make a step
    step_agree_s: float = 2e-6
    synced_updates: int = 6
    synced_sigma_s: float = 300e-9
    timeout_s: float = 60.0  # no event for this long (pair's local time): start again
    min_interval_s: float = 0.05  # a synced pair takes at most one event per this


@dataclass
class _Outlier:
    tau_s: float
    y_s: float


@dataclass
class PairClock:
    """Offset and drift of b's counter relative to a's, from reference events."""

    a: str
    b: str
    cfg: PairConfig = field(default_factory=PairConfig)
    state: str = SYNCING
    updates: int = 0
    outliers: int = 0
    steps: int = 0
    base_s: float = 0.0  # the offset at initialisation; x0 is relative to it
    tau_s: float = 0.0  # a's counter time of the state
    x0: float = 0.0  # offset - base_s, s
    x1: float = 0.0  # drift (b's rate / a's rate - 1)
    p00: float = 0.0  # covariance of (x0, x1), plain floats: this runs per event and pair
    p01: float = 0.0
    p11: float = 0.0
    _pending: list[_Outlier] = field(default_factory=list)
    _innov: deque = field(default_factory=lambda: deque(maxlen=64))
    _outcomes: deque = field(default_factory=lambda: deque(maxlen=64))  # 1 = outlier
    _started: bool = False
    stale: bool = False  # no event for a while (set by ClockNetwork.rebuild)
    last_step_tau_s: float | None = None
    synced_since_tau_s: float | None = None

    def _init(self, tau_s: float, y_s: float, drift: float, drift_var: float) -> None:
        self.base_s, self.tau_s = y_s, tau_s
        self.x0, self.x1 = 0.0, drift
        self.p00, self.p01, self.p11 = self.cfg.event_sigma_s**2, 0.0, drift_var
        self.updates = 1
        self.state = SYNCING
        self.synced_since_tau_s = None
        self._pending.clear()
        self._innov.clear()
        self._started = True

    def _predicted(self, tau_s: float) -> tuple[float, float, float, float, float]:
        """(x0, x1, p00, p01, p11) predicted to a's time tau_s."""
        dt = tau_s - self.tau_s
        adt = abs(dt)
        qd = self.cfg.drift_walk_per_sqrt_s**2
        qo = self.cfg.offset_walk_s_per_sqrt_s**2
        p00 = self.p00 + 2 * dt * self.p01 + dt * dt * self.p11 + qd * adt**3 / 3 + qo * adt
        p01 = self.p01 + dt * self.p11 + qd * adt * adt / 2
        p11 = self.p11 + qd * adt
        return self.x0 + self.x1 * dt, self.x1, p00, p01, p11

    def update(self, tau_s: float, y_s: float) -> bool:
        """Feed one event (a's time, b minus a); True if it entered the filter."""
        cfg = self.cfg
        if not self._started or tau_s - self.tau_s > cfg.timeout_s:
            drift = self.x1 if self._started else 0.0
            self._init(tau_s, y_s, drift, cfg.initial_drift_sigma**2)
            return True
        x0, x1, p00, p01, p11 = self._predicted(tau_s)
        nu = (y_s - self.base_s) - x0
        S = p00 + cfg.event_sigma_s**2
        if abs(nu) > max(cfg.gate_sigmas * math.sqrt(S), cfg.min_gate_s):
            return self._outlier(tau_s, y_s)
        k0, k1 = p00 / S, p01 / S
        self.x0, self.x1 = x0 + k0 * nu, x1 + k1 * nu
        self.p00, self.p01, self.p11 = p00 - k0 * p00, p01 - k0 * p01, p11 - k1 * p01
        self.tau_s = tau_s
        self.updates += 1
        self._pending.clear()
        self._innov.append(nu)
        self._outcomes.append(0)
        if self.state != SYNCED and (
            self.updates >= cfg.synced_updates and math.sqrt(self.p00) < cfg.synced_sigma_s
        ):
            self.state = SYNCED
            self.synced_since_tau_s = tau_s
        return True

    def _outlier(self, tau_s: float, y_s: float) -> bool:
        """Count it; several that agree with each other (after drift) are a step."""
        self.outliers += 1
        self._outcomes.append(1)
        self._pending.append(_Outlier(tau_s, y_s))
        if len(self._pending) >= 2:  # one outlier may be a bad event; two are a fault
            self.state = SUSPECT
        if len(self._pending) < self.cfg.step_outliers:
            return False
        drift = self.x1
        first = self._pending[0]
        spread = [abs(o.y_s - first.y_s - drift * (o.tau_s - first.tau_s)) for o in self._pending]
        if max(spread) < self.cfg.step_agree_s:
            self.steps += 1
            self.last_step_tau_s = tau_s
            self._init(tau_s, y_s, drift, (self.cfg.drift_walk_per_sqrt_s * 10) ** 2)
            return True
        self._pending.pop(0)
        return False

    def offset_s(self, tau_s: float) -> float:
        """b's counter minus a's at a's counter time ``tau_s``."""
        return self.base_s + self.x0 + self.x1 * (tau_s - self.tau_s)

    def a_time_s(self, b_time_s: float) -> float:
        """a's counter time at b's counter time (the inverse of ``offset_s``)."""
        return (b_time_s - self.base_s - self.x0 + self.x1 * self.tau_s) / (1.0 + self.x1)

    def variance_s2(self, tau_s: float) -> float:
        """Variance of ``offset_s(tau_s)`` (grows with the time since the last event)."""
        return self._predicted(tau_s)[2]

    @property
    def recent_events(self) -> int:
        """How many accepted events ``residual_rms_s`` is over (at most 64)."""
        return len(self._innov)

    def residual_rms_s(self) -> float | None:
        """RMS of the recent innovations (the pair's sync error), None before any."""
        if not self._innov:
            return None
        return float(np.sqrt(np.mean(np.square(self._innov))))

    def outlier_rate(self) -> float | None:
        """Fraction of the recent events that were outliers (None before 16 events)."""
        if len(self._outcomes) < 16:
            return None
        return sum(self._outcomes) / len(self._outcomes)

    def forget(self) -> None:
        """Start again (a receiver's position changed)."""
        self._started = False
        self._outcomes.clear()
        self._innov.clear()
        self.state = SYNCING

    @property
    def usable(self) -> bool:
        return self.state == SYNCED


@dataclass(frozen=True)
class _Hop:
    pair: PairClock
    forward: bool  # True: convert a -> b


@dataclass
class ClockNetwork:
    """Every pair's clock and the tree that puts each receiver on the reference's timebase."""

    cfg: PairConfig = field(default_factory=PairConfig)
    pairs: dict[tuple[str, str], PairClock] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)
    reference: str | None = None
    _paths: dict[str, list[_Hop]] = field(default_factory=dict)

    def pair(self, a: str, b: str) -> tuple[PairClock, bool]:
        """The pair of two nodes and whether (a, b) is its own order."""
        key = (a, b) if a < b else (b, a)
        p = self.pairs.get(key)
        if p is None:
            p = self.pairs[key] = PairClock(key[0], key[1], self.cfg)
        return p, key[0] == a

    def add_event(self, node_times: list[tuple[str, float]]) -> int:
        """A reference event: (node, counter time minus propagation delay, s) of each copy.

        Returns how many pair updates entered their filters.
        """
        entered = 0
        for i in range(len(node_times)):
            na, ta = node_times[i]
            for j in range(i + 1, len(node_times)):
                nb, tb = node_times[j]
                p, own = self.pair(na, nb)
                tau = ta if own else tb
                if p.state == SYNCED and 0 <= tau - p.tau_s < self.cfg.min_interval_s:
                    continue
                entered += p.update(ta, tb - ta) if own else p.update(tb, ta - tb)
        return entered

    def rebuild(self, now_s: dict[str, float] | None = None, stale_s: float = 30.0) -> None:
        """Choose the reference (most synced pairs) and the minimum-variance path of each node.

        ``now_s`` (each node's latest counter time) leaves out pairs with no event for
        ``stale_s``: a receiver that went offline drops out of the timebase.
        """
        links: dict[str, list[tuple[str, PairClock, bool]]] = {}
        now_s = now_s or {}
        for p in self.pairs.values():
            tau_b = p.tau_s + p.offset_s(p.tau_s)  # the last event on b's counter
            if max(now_s.get(p.a, p.tau_s) - p.tau_s, now_s.get(p.b, tau_b) - tau_b) > stale_s:
                p.stale = True
                continue
            p.stale = False
            if p.usable and p.a not in self.excluded and p.b not in self.excluded:
                links.setdefault(p.a, []).append((p.b, p, True))
                links.setdefault(p.b, []).append((p.a, p, False))
        self._paths = {}
        if not links:
            self.reference = None
            return
        # keep the reference while it is connected: a new one would re-time every node
        if self.reference not in links:
            self.reference = max(links, key=lambda n: (len(links[n]), n))
        ref = self.reference
        dist = {ref: 0.0}
        paths: dict[str, list[_Hop]] = {ref: []}
        heap = [(0.0, ref)]
        while heap:
            d, node = heapq.heappop(heap)
            if d > dist[node]:
                continue
            for other, p, forward in links[node]:
                nd = d + p.variance_s2(p.tau_s) + 1e-18
                if nd < dist.get(other, math.inf):
                    dist[other] = nd
                    # the path converts other -> ... -> ref: first hop other -> node
                    paths[other] = [_Hop(p, not forward), *paths[node]]
                    heapq.heappush(heap, (nd, other))
        self._paths = paths

    def synced_nodes(self) -> set[str]:
        return set(self._paths)

    def to_reference(self, node: str, t_s: float) -> tuple[float, float] | None:
        """A node's counter time on the reference's timebase, and its variance (s^2)."""
        path = self._paths.get(node)
        if path is None:
            return None
        var = 0.0
        for hop in path:
            p = hop.pair
            if hop.forward:  # t is on a's counter: b = a + offset(a)
                var += p.variance_s2(t_s)
                t_s = t_s + p.offset_s(t_s)
            else:  # t is on b's counter: a = b - offset(a), solved for a
                t_s = p.a_time_s(t_s)
                var += p.variance_s2(t_s)
        return t_s, var

    def inconsistent_nodes(
        self, max_rate: float = 0.25, others_rate: float = 0.1
    ) -> dict[str, str]:
        """Receivers whose pairs reject many events while the other pairs do not.

        A receiver at a wrong surveyed position gives each event a delay error that depends
        on the aircraft's direction: its pairs see outliers all the time; a step (a jump)
        makes only a few.
        """
        rates: dict[str, list[float]] = {}
        for p in self.pairs.values():
            r = p.outlier_rate()
            if r is not None:
                rates.setdefault(p.a, []).append(r)
                rates.setdefault(p.b, []).append(r)
        node_rate = {n: float(np.median(v)) for n, v in rates.items() if len(v) >= 2}
        out = {}
        for node, rate in node_rate.items():
            others = [r for n, r in node_rate.items() if n != node]
            typical = float(np.median(others)) if others else 1.0
            if rate > max_rate and typical < others_rate:
                out[node] = (
                    f"{rate:.0%} of its reference events are outliers vs {typical:.0%} for the"
                    " others: wrong surveyed position or an unstable clock"
                )
        return out

    def forget(self, node: str) -> None:
        """Restart every pair of a receiver (its surveyed position changed)."""
        for p in self.pairs.values():
            if node in (p.a, p.b):
                p.forget()

    def pair_status(self) -> dict[str, dict]:
        """Per pair: state, sync error (ns rms of recent innovations), sigma, counters."""
        out = {}
        for (a, b), p in sorted(self.pairs.items()):
            rms = p.residual_rms_s()
            out[f"{a}~{b}"] = {
                "state": "stale" if p.stale else p.state,
                "error_ns_rms": None if rms is None else round(rms * 1e9, 1),
                "sigma_ns": round(math.sqrt(max(p.variance_s2(p.tau_s), 0.0)) * 1e9, 1),
                "drift_ppm": round(p.x1 * 1e6, 3),
                "updates": p.updates,
                "outliers": p.outliers,
                "steps": p.steps,
            }
        return out
