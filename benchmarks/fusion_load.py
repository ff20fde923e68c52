"""Synthetic load for the fusion node: N receivers hearing M aircraft (shared by the
fusion benchmark and its test).

Aircraft fly straight at 200-250 m/s, 8-12 km up, spread over 300 km about the fusion
site; receivers sit on a 150 km ring. Each aircraft sends a position and a velocity every
0.5 s; every receiver within 180 km hears each reply (its own copy: the same bytes, its
own arrival UTC, the measurement in its ENU frame with the noise its covariance states).
Each receiver's detections of a 0.1 s block become one v2 batch, as ``sensord run``
publishes them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sensord.detections import POSITION, VELOCITY, Detection
from sensord.fusion.wire import NodeInfo, batch_json
from sensord.geo import Site

CENTER = Site(52.0, 4.5, 10.0)
C_MPS = 299_792_458.0 / 1.0003
POS_SIGMA_M = 15.0
VEL_SIGMA_MPS = 2.0


@dataclass
class Load:
    """Receivers and aircraft; ``batches`` yields (send UTC, node, payload) in time order."""

    n_receivers: int
    n_aircraft: int
    coverage_m: float = 180e3
    block_s: float = 0.1
    seed: int = 1

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.rng = rng
        angles = np.linspace(0, 2 * math.pi, self.n_receivers, endpoint=False)
        self.sites = []
        for a in angles:
            lat, lon, _ = CENTER.to_geodetic(
                np.array([150e3 * math.sin(a), 150e3 * math.cos(a), 0.0])
            )
            self.sites.append(Site(float(lat), float(lon), 20.0))
        self.names = [f"rx{k + 1}" for k in range(self.n_receivers)]
        self.rx_enu = np.array([CENTER.to_enu(s.lat_deg, s.lon_deg, s.alt_m) for s in self.sites])
        r = 300e3 * np.sqrt(rng.random(self.n_aircraft))
        b = rng.uniform(0, 2 * math.pi, self.n_aircraft)
        self.p0 = np.stack(
            [r * np.sin(b), r * np.cos(b), rng.uniform(8e3, 12e3, self.n_aircraft)], 1
        )
        heading = rng.uniform(0, 2 * math.pi, self.n_aircraft)
        speed = rng.uniform(200, 250, self.n_aircraft)
        self.v = np.stack(
            [speed * np.sin(heading), speed * np.cos(heading), np.zeros(self.n_aircraft)], 1
        )
        self.icao = rng.choice(np.arange(0x100000, 0xFFFFFF), self.n_aircraft, replace=False)
        self.rot = [
            CENTER.rot_ecef_to_enu @ s.rot_ecef_to_enu.T for s in self.sites
        ]  # rx -> fusion
        self.trans = [CENTER.rot_ecef_to_enu @ (s.ecef_m - CENTER.ecef_m) for s in self.sites]
        self.phase = rng.uniform(0, 0.5, self.n_aircraft)

    def infos(self) -> list[tuple[str, dict]]:
        return [
            (n, NodeInfo(n, s.lat_deg, s.lon_deg, s.alt_m).to_dict())
            for n, s in zip(self.names, self.sites, strict=True)
        ]

    def detections_in(
        self, t0_s: float, t1_s: float, epoch_utc: float
    ) -> dict[str, list[Detection]]:
        """Every receiver's detections of replies sent in [t0, t1)."""
        out: dict[str, list[Detection]] = {n: [] for n in self.names}
        for i in range(self.n_aircraft):
            k0 = math.ceil((t0_s - self.phase[i]) / 0.5)
            t = self.phase[i] + 0.5 * k0
            while t < t1_s:
                pos = self.p0[i] + self.v[i] * t
                for kind in (POSITION, VELOCITY):
                    frame = self.rng.bytes(14)
                    dist = np.linalg.norm(self.rx_enu - pos, axis=1)
                    for k in np.flatnonzero(dist < self.coverage_m):
                        m, tr = self.rot[k], self.trans[k]
                        if kind == POSITION:
                            z_f = pos + self.rng.normal(0, POS_SIGMA_M, 3)
                            z = m.T @ (z_f - tr)
                            r = np.eye(3) * POS_SIGMA_M**2
                        else:
                            z = m.T @ (self.v[i] + self.rng.normal(0, VEL_SIGMA_MPS, 3))
                            r = np.eye(3) * VEL_SIGMA_MPS**2
                        utc = epoch_utc + t + dist[k] / C_MPS
                        out[self.names[k]].append(
                            Detection(
                                utc - epoch_utc,
                                self.names[k],
                                kind,
                                z,
                                r,
                                icao=int(self.icao[i]),
                                source="adsb-pos" if kind == POSITION else "adsb-vel",
                                utc=utc,
                                frame=frame,
                                signal_dbfs=-20.0,
                            )
                        )
                t += 0.5
        return out

    def batches(self, duration_s: float, epoch_utc: float) -> Iterator[tuple[float, str, str, int]]:
        """(UTC at the block's end, node, v2 payload, detections in it), block by block."""
        t = 0.0
        while t < duration_s:
            block = self.detections_in(t, t + self.block_s, epoch_utc)
            end_utc = epoch_utc + t + self.block_s
            for node in self.names:
                dets = sorted(block[node], key=lambda d: d.utc or 0.0)
                if dets:
                    yield end_utc, node, batch_json(node, end_utc, dets), len(dets)
            t += self.block_s
