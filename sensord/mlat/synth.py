"""Synthetic MLAT input from truth: each receiver's frame batches, no IQ (tests, benchmarks).

A scenario's replies (``sensord.sim.schedule.plan_frames``) reach each receiver after the
propagation delay (``C_AIR_MPS``) when the aircraft is within its range and above its
radio horizon, minus a random loss; each receiver's ``ReceiverClock`` turns the true
arrival into its 12 MHz counter (jitter, quantisation, drift, jumps). Blocks of
``block_s`` become ``FrameBatch`` es stamped with the node's UTC (true UTC plus a
per-node NTP error). The truth keeps every aircraft's ECEF position at each reply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sensord.geo import FT_M, Site
from sensord.mlat.clocksync import C_AIR_MPS
from sensord.mlat.payload import FrameBatch
from sensord.sim.clock import ReceiverClock
from sensord.sim.scenario import Scenario
from sensord.sim.schedule import plan_frames

UTC0 = 1_795_000_000.0  # 2026-11-17, the synthetic recordings' start


@dataclass
class SynthReceiver:
    """A receiver: true site, the site its owner surveyed, and its clock."""

    node: str
    site: Site
    clock: ReceiverClock
    surveyed: Site | None = None
    max_range_m: float = 400e3
    ntp_error_s: float = 0.0
    offline_after_s: float | None = None

    @property
    def reported(self) -> Site:
        return self.surveyed or self.site


@dataclass
class Reply:
    """One transmitted reply: truth for scoring."""

    t_s: float
    icao: int
    msg: bytes
    ecef_m: np.ndarray
    adsb: bool


@dataclass
class SynthNetwork:
    """Batches in arrival order, as (node, FrameBatch), and the truth."""

    batches: list[tuple[str, FrameBatch]]
    replies: list[Reply]
    receivers: list[SynthReceiver]
    heard_by: dict[int, list[int]] = field(default_factory=dict)  # reply index -> receivers

    def true_position(self, icao: int, t_s: float) -> np.ndarray:
        """ECEF of an aircraft at the reply nearest t_s."""
        best = min((r for r in self.replies if r.icao == icao), key=lambda r: abs(r.t_s - t_s))
        return best.ecef_m


def horizon_m(alt_ac_m: float, alt_rx_m: float) -> float:
    """Radio horizon for a 4/3 earth, m."""
    return 4120.0 * (math.sqrt(max(alt_ac_m, 0.0)) + math.sqrt(max(alt_rx_m, 0.0)))


def synth_network(
    scenario: Scenario,
    receivers: list[SynthReceiver],
    duration_s: float,
    seed: int = 1,
    block_s: float = 0.1,
    loss: float = 0.05,
) -> SynthNetwork:
    """Every receiver's frames of the scenario, batched per block, with the truth."""
    rng = np.random.default_rng(seed)
    planned = plan_frames(scenario, duration_s, rng)
    aircraft = {ac.icao: ac for ac in scenario.aircraft}
    rot, origin = scenario.site.rot_ecef_to_enu, scenario.site.ecef_m
    rx_ecef = np.array([r.site.ecef_m for r in receivers])
    replies: list[Reply] = []
    per_rx: list[list[tuple[float, int]]] = [[] for _ in receivers]  # (arrival true s, reply)
    heard: dict[int, list[int]] = {}
    for f in planned:
        st = aircraft[f.icao].state_at(f.t_s)
        ecef = st.enu_m @ rot + origin
        i = len(replies)
        replies.append(Reply(f.t_s, f.icao, f.msg, ecef, aircraft[f.icao].adsb))
        dist = np.linalg.norm(rx_ecef - ecef, axis=1)
        lost = rng.random(len(receivers)) < loss
        for k, r in enumerate(receivers):
            if dist[k] > min(r.max_range_m, horizon_m(st.alt_baro_ft * FT_M, r.site.alt_m + 10)):
                continue
            if lost[k] or (r.offline_after_s is not None and f.t_s > r.offline_after_s):
                continue
            per_rx[k].append((f.t_s + dist[k] / C_AIR_MPS, i))
            heard.setdefault(i, []).append(k)
    batches: list[tuple[float, str, FrameBatch]] = []
    for k, r in enumerate(receivers):
        arrivals = sorted(per_rx[k])
        if not arrivals:
            continue
        t_true = np.array([a[0] for a in arrivals])
        toa = r.clock.toa_12mhz(t_true)
        ts = np.round(toa).astype(np.int64)
        block = np.floor(t_true / block_s).astype(np.int64)
        for b in np.unique(block):
            sel = np.flatnonzero(block == b)
            t_block = float(b * block_s)
            msg = np.zeros((sel.size, 14), dtype=np.uint8)
            icao = np.zeros(sel.size, dtype=np.uint32)
            for j, s in enumerate(sel.tolist()):
                rep = replies[arrivals[s][1]]
                msg[j, : len(rep.msg)] = np.frombuffer(rep.msg, dtype=np.uint8)
                icao[j] = rep.icao
            batch = FrameBatch(
                utc=UTC0 + t_block + r.ntp_error_s,
                ts0_12mhz=int(r.clock.ticks_12mhz(t_block, jitter=False)),
                msg=msg,
                icao=icao,
                ts_12mhz=ts[sel],
                signal_dbfs=np.full(sel.size, -20.0, dtype=np.float32),
                toa_12mhz=toa[sel],
            )
            # a block is published when it ends
            batches.append((t_block + block_s, r.node, batch))
    batches.sort(key=lambda b: (b[0], b[1]))
    return SynthNetwork([(n, b) for _, n, b in batches], replies, receivers, heard)


def ring_of_receivers(
    center: Site,
    n: int,
    rng: np.random.Generator,
    spacing_m: tuple[float, float] = (30e3, 60e3),
    jitter_s: float = 50e-9,
    duration_s: float = 120.0,
    kind: str = "dongle",
) -> list[SynthReceiver]:
    """n receivers: one at the center, the others on a ring, neighbours 30-60 km apart."""
    out = [SynthReceiver("rx0", center, ReceiverClock.random(rng, kind, jitter_s, duration_s))]
    ring_m = float(rng.uniform(*spacing_m))
    for k in range(1, n):
        ang = 2 * math.pi * (k - 1) / max(n - 1, 1) + float(rng.uniform(-0.2, 0.2))
        r_m = ring_m * float(rng.uniform(0.9, 1.1))
        lat, lon, _ = center.to_geodetic(np.array([r_m * math.sin(ang), r_m * math.cos(ang), 0.0]))
        site = Site(float(lat), float(lon), float(rng.uniform(5, 60)))
        clock = ReceiverClock.random(rng, kind, jitter_s, duration_s)
        out.append(SynthReceiver(f"rx{k}", site, clock, ntp_error_s=float(rng.normal(0, 3e-3))))
    return out


def match_replies(net: SynthNetwork, dets: list) -> list[int]:
    """Per detection (t_s = UTC of transmission): index of the reply it located."""
    by_icao: dict[int, list[int]] = {}
    for i, r in enumerate(net.replies):
        by_icao.setdefault(r.icao, []).append(i)
    return [
        min(by_icao[d.icao], key=lambda i: abs(net.replies[i].t_s - (d.t_s - UTC0))) for d in dets
    ]


def horizontal_errors_m(net: SynthNetwork, dets: list, site: Site) -> np.ndarray:
    """Per detection: horizontal distance to the truth, m."""
    out = np.zeros(len(dets))
    for k, (d, i) in enumerate(zip(dets, match_replies(net, dets), strict=True)):
        err = site.rot_ecef_to_enu @ (net.replies[i].ecef_m - site.ecef_m) - d.z
        out[k] = math.hypot(err[0], err[1])
    return out


def modes_only_heard(net: SynthNetwork, min_receivers: int = 4) -> set[int]:
    """ADS-B-off aircraft with at least one reply heard by ``min_receivers`` receivers."""
    return {
        net.replies[i].icao
        for i, ks in net.heard_by.items()
        if len(ks) >= min_receivers and not net.replies[i].adsb
    }


def grid_of_receivers(
    center: Site,
    rows: int,
    cols: int,
    rng: np.random.Generator,
    spacing_m: float = 40e3,
    jitter_s: float = 50e-9,
    duration_s: float = 120.0,
) -> list[SynthReceiver]:
    """rows x cols receivers on a jittered grid around the center (dongle clocks)."""
    out = []
    for k in range(rows * cols):
        e = (k % cols - (cols - 1) / 2) * spacing_m + float(rng.uniform(-3e3, 3e3))
        n = (k // cols - (rows - 1) / 2) * spacing_m + float(rng.uniform(-3e3, 3e3))
        lat, lon, _ = center.to_geodetic(np.array([e, n, 0.0]))
        site = Site(float(lat), float(lon), float(rng.uniform(5, 60)))
        clock = ReceiverClock.random(rng, "dongle", jitter_s, duration_s)
        out.append(SynthReceiver(f"rx{k}", site, clock, ntp_error_s=float(rng.normal(0, 3e-3))))
    return out


def network_radius_m(center: Site, receivers: list[SynthReceiver]) -> float:
    """Horizontal distance from the center to the farthest receiver."""
    return max(
        float(np.linalg.norm(center.to_enu(r.site.lat_deg, r.site.lon_deg, 0.0)[:2]))
        for r in receivers
    )


def modes_only_scenario(
    center: Site,
    radius_m: float,
    rng: np.random.Generator,
    n_adsb: int = 40,
    n_modes: int = 20,
    outside_km: float | None = None,
    seed: int = 1,
    adsb_range_m: float = 100e3,
    n_adsb_inside: int = 10,
) -> Scenario:
    """Mode S-only aircraft (icao 0xA000xx) and ADS-B ones: reference events and self-check.

    The Mode S-only aircraft fly inside 0.8 of ``radius_m``, or ``outside_km`` beyond it;
    ``n_adsb`` ADS-B aircraft fly anywhere out to ``adsb_range_m`` and ``n_adsb_inside``
    more (icao 0xB000xx) inside the network.
    """
    from sensord.sim.scenario import Aircraft, random_scenario

    def placed(i: int, icao: int, adsb: bool, r_m: float) -> Aircraft:
        ang = float(rng.uniform(0, 2 * math.pi))
        lat, lon, _ = center.to_geodetic(np.array([r_m * math.sin(ang), r_m * math.cos(ang), 0]))
        return Aircraft.at(
            center, float(lat), float(lon), float(rng.uniform(8000, 38000)),
            icao=icao, callsign=f"{'ADS' if adsb else 'MIL'}{i}", squawk="7001",
            gs_kt=float(rng.uniform(200, 450)), track_deg=float(rng.uniform(0, 360)),
            adsb=adsb,
        )  # fmt: skip

    def inside_m() -> float:
        return radius_m * 0.8 * math.sqrt(float(rng.random()))

    base = random_scenario(n_adsb, center, max_range_m=adsb_range_m, seed=seed)
    modes = [
        placed(
            i,
            0xA00000 + i,
            False,
            inside_m() if outside_km is None else radius_m + outside_km * 1e3,
        )
        for i in range(n_modes)
    ]
    adsb = [placed(i, 0xB00000 + i, True, inside_m()) for i in range(n_adsb_inside)]
    return Scenario(center, base.aircraft + modes + adsb)


def batch_payload(node: str, batch: FrameBatch) -> str:
    """The frames-topic message (schema 2) a node would publish for this batch."""
    from sensord.frames import FRAME_DTYPE
    from sensord.mlat.payload import frames_payload

    frames = np.zeros(len(batch), dtype=FRAME_DTYPE)
    frames["msg"] = batch.msg
    frames["nbits"] = np.where(batch.msg[:, 0] >> 3 >= 16, 112, 56)
    frames["df"] = batch.msg[:, 0] >> 3
    frames["icao"] = batch.icao
    frames["ts_12mhz"] = batch.ts_12mhz
    frames["signal_dbfs"] = batch.signal_dbfs
    # no sub-tick arrival: the tick itself (what a node without the estimate would send)
    frames["toa_12mhz"] = batch.toa_12mhz if batch.toa_12mhz is not None else batch.ts_12mhz
    return frames_payload(node, frames, batch.utc, batch.ts0_12mhz)
