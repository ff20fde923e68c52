"""Cramer-Rao bound of an MLAT position for a geometry and a timestamp jitter.

Unknowns: the aircraft's ECEF position and the transmission time (as a range, m). Each
receiver's arrival has Gaussian noise sigma_i (s); its Fisher information is
h_i h_i^T / (c sigma_i)^2 with h_i = [unit vector receiver -> aircraft, 1]. An altitude
constraint with sigma_alt adds up up^T / sigma_alt^2 (up: the local vertical). The bound
is the inverse of the summed information; its horizontal block, in the aircraft's ENU
frame, gives the best achievable horizontal error.

Run: ``python benchmarks/mlat_crb.py`` prints the bound of the benchmark's 5-receiver
network (one receiver at the center, four on a ring, 30-60 km apart) over a grid of
aircraft positions, for 50 ns jitter. ``bench_mlat.py`` uses ``horizontal_cov_m2``
per located reply.
"""

from __future__ import annotations

import numpy as np

from sensord.geo import Site, ecef_to_geodetic, rotation_ecef_to_enu
from sensord.mlat.clocksync import C_AIR_MPS


def horizontal_cov_m2(
    rx_ecef_m: np.ndarray,
    ac_ecef_m: np.ndarray,
    sigma_s: np.ndarray | float,
    alt_sigma_m: float | None = None,
) -> np.ndarray:
    """The bound's 2x2 east/north covariance (m^2) at the aircraft."""
    d = ac_ecef_m - rx_ecef_m
    u = d / np.linalg.norm(d, axis=1)[:, None]
    H = np.hstack([u, np.ones((len(u), 1))])
    w = 1.0 / (np.broadcast_to(np.asarray(sigma_s, dtype=float), (len(u),)) * C_AIR_MPS) ** 2
    info = (H * w[:, None]).T @ H
    lat, lon, _ = ecef_to_geodetic(ac_ecef_m)
    rot = rotation_ecef_to_enu(float(lat), float(lon))
    if alt_sigma_m is not None:
        up = np.append(rot[2], 0.0)
        info += np.outer(up, up) / alt_sigma_m**2
    try:
        cov = np.linalg.inv(info)[:3, :3]
    except np.linalg.LinAlgError:
        return np.full((2, 2), np.inf)
    return (rot @ cov @ rot.T)[:2, :2]


def median_horizontal_error_m(covs: list[np.ndarray], seed: int = 0, draws: int = 200) -> float:
    """Median horizontal error of an estimator at the bound, pooled over the covariances."""
    rng = np.random.default_rng(seed)
    errs = []
    for cov in covs:
        w, v = np.linalg.eigh(cov)
        if not np.all(np.isfinite(w)) or w.min() <= 0:
            continue  # undetermined geometry (a reply matched to too few receivers)
        e = rng.standard_normal((draws, 2)) @ (v * np.sqrt(w)).T
        errs.append(np.hypot(e[:, 0], e[:, 1]))
    return float(np.median(np.concatenate(errs)))


def main() -> None:
    center = Site(52.0, 5.0, 10.0)
    ring_m = 40e3
    enu = [np.zeros(3)] + [
        ring_m * np.array([np.sin(a), np.cos(a), 0.0]) for a in np.radians([0, 90, 180, 270])
    ]
    rx = np.array([center.to_enu(*center.to_geodetic(p)) for p in enu])
    rx_ecef = rx @ center.rot_ecef_to_enu + center.ecef_m
    print("5 receivers (center + ring of 40 km), jitter 50 ns, altitude 9 km")
    print(f"{'east/north of center (km)':>28} {'CRB median h (m)':>17} {'with alt 75 m':>14}")
    for e_km, n_km in [(0, 0), (20, 10), (-30, 25), (40, 40), (90, 0), (0, -90), (150, 50)]:
        ac = np.array([e_km * 1e3, n_km * 1e3, 9000.0]) @ center.rot_ecef_to_enu + center.ecef_m
        free = horizontal_cov_m2(rx_ecef, ac, 50e-9)
        alt = horizontal_cov_m2(rx_ecef, ac, 50e-9, 75.0)
        print(
            f"{f'({e_km}, {n_km})':>28} {median_horizontal_error_m([free]):17.1f}"
            f" {median_horizontal_error_m([alt]):14.1f}"
        )


if __name__ == "__main__":
    main()
