"""Position of one reply from its arrival times at several receivers (weighted NLS in ECEF).

Unknowns: the aircraft's ECEF position x (m) and ``b``, the transmission time as a range
(m) relative to the group's first arrival. Each receiver i contributes
``(|x - r_i| + b - rho_i) / sigma_i`` with ``rho_i`` its arrival (on the network timebase)
times ``C_AIR_MPS``; the reply's altitude, when known, adds ``(h(x) - alt) / sigma_alt``
(h: height above the ellipsoid; sigma_alt covers barometric vs geometric height).
``scipy.optimize.least_squares`` (Levenberg-Marquardt, analytic Jacobian) solves it; the
covariance is ``inv(J^T J)`` at the solution. A result is rejected when its normalised
residual (chi^2 per degree of freedom) is too large, when the geometry dilutes the timing
error too much (GDOP), or when it lands somewhere no aircraft can be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sensord.geo import ecef_to_geodetic, rotation_ecef_to_enu
from sensord.mlat.clocksync import C_AIR_MPS


@dataclass
class SolverConfig:
    """Acceptance limits of a solution."""

    max_chi2_per_dof: float = 12.0
    max_gdop: float = 150.0
    max_h_sigma_m: float = 5000.0
    min_height_m: float = -1000.0
    max_height_m: float = 25000.0
    max_range_m: float = 600e3  # from the group's receivers' centroid


@dataclass
class Solution:
    """A multilaterated position with its covariance and quality figures."""

    ecef_m: np.ndarray
    cov_ecef_m2: np.ndarray  # 3x3
    t_tx_s: float  # on the network timebase
    chi2: float
    dof: int
    gdop: float
    residuals_m: np.ndarray  # per receiver, arrival minus model
    ok: bool
    reason: str = ""

    def cov_enu_m2(self, rot_ecef_to_enu: np.ndarray) -> np.ndarray:
        return rot_ecef_to_enu @ self.cov_ecef_m2 @ rot_ecef_to_enu.T


def _up(x: np.ndarray) -> tuple[np.ndarray, float]:
    lat, lon, h = ecef_to_geodetic(x)
    return rotation_ecef_to_enu(float(lat), float(lon))[2], float(h)


def solve(
    rx_ecef_m: np.ndarray,
    t_s: np.ndarray,
    sigma_s: np.ndarray,
    guess_ecef_m: np.ndarray,
    alt_m: float | None = None,
    alt_sigma_m: float = 100.0,
    cfg: SolverConfig | None = None,
) -> Solution:
    """Solve one group: receivers (n, 3) ECEF, arrivals (n,) s on one timebase, sigmas (n,)."""
    from scipy.optimize import least_squares  # type: ignore[import-untyped]  # lazily

    cfg = cfg or SolverConfig()
    n = len(t_s)
    t_first = float(np.min(t_s))
    rho = (np.asarray(t_s) - t_first) * C_AIR_MPS
    w = 1.0 / (np.asarray(sigma_s) * C_AIR_MPS)
    w_alt = 1.0 / alt_sigma_m
    x0 = np.asarray(guess_ecef_m, dtype=float)
    b0 = float(np.min(rho - np.linalg.norm(rx_ecef_m - x0, axis=1)))

    def fun(p: np.ndarray) -> np.ndarray:
        x = x0 + p[:3]
        r = (np.linalg.norm(rx_ecef_m - x, axis=1) + p[3] - rho) * w
        if alt_m is None:
            return r
        return np.append(r, (_up(x)[1] - alt_m) * w_alt)

    def jac(p: np.ndarray) -> np.ndarray:
        x = x0 + p[:3]
        d = x - rx_ecef_m
        u = d / np.linalg.norm(d, axis=1)[:, None]
        J = np.hstack([u, np.ones((n, 1))]) * w[:, None]
        if alt_m is None:
            return J
        return np.vstack([J, np.append(_up(x)[0], 0.0) * w_alt])

    p0 = np.array([0.0, 0.0, 0.0, b0])
    res = least_squares(fun, p0, jac=jac, method="lm", x_scale=1.0)
    x = x0 + res.x[:3]
    J = res.jac
    dof = J.shape[0] - 4
    chi2 = float(res.fun @ res.fun)
    try:
        cov = np.linalg.inv(J.T @ J)
    except np.linalg.LinAlgError:
        cov = np.full((4, 4), np.inf)
    cov_pos = cov[:3, :3]
    timing_m = float(np.median(1.0 / w))
    gdop = float(math.sqrt(max(np.trace(cov_pos), 0.0))) / timing_m
    residuals = np.linalg.norm(rx_ecef_m - x, axis=1) + res.x[3] - rho
    sol = Solution(x, cov_pos, t_first + res.x[3] / C_AIR_MPS, chi2, dof, gdop, -residuals, True)
    sol.ok, sol.reason = _verdict(sol, rx_ecef_m, cfg)
    return sol


def _verdict(sol: Solution, rx_ecef_m: np.ndarray, cfg: SolverConfig) -> tuple[bool, str]:
    if not np.all(np.isfinite(sol.cov_ecef_m2)) or not np.all(np.isfinite(sol.ecef_m)):
        return False, "singular"
    if sol.dof > 0 and sol.chi2 / sol.dof > cfg.max_chi2_per_dof:
        return False, "residual"
    if sol.gdop > cfg.max_gdop:
        return False, "gdop"
    up, h = _up(sol.ecef_m)
    h_var = np.trace(sol.cov_ecef_m2) - float(up @ sol.cov_ecef_m2 @ up)
    if math.sqrt(max(h_var, 0.0)) > cfg.max_h_sigma_m:
        return False, "uncertain"
    if not cfg.min_height_m <= h <= cfg.max_height_m:
        return False, "height"
    if np.linalg.norm(sol.ecef_m - rx_ecef_m.mean(axis=0)) > cfg.max_range_m:
        return False, "range"
    return True, ""
