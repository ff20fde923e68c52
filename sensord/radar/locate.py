"""Multistatic geolocation: a target's position and velocity from two or more bistatic pairs.

One bistatic pair puts a target on an ellipsoid (its range) moving at one rate along its
normal; two pairs at one instant leave a curve and, on the ground, up to four points. A
few seconds of each pair's range-Doppler track fix the rest: the state (ENU position and
velocity at ``t_ref``, constant velocity) is the weighted least-squares fit of every
measured (range, range rate) of every pair, with weak priors on height and climb rate
(both barely observable from stations on the ground).

``locate`` seeds the fit from the points of a horizontal grid where the latest ranges of
the pairs agree (at two heights), solves each seed's velocity from the latest range
rates, runs Gauss-Newton from each, and accepts the best only when its fit is
chi-square consistent, its height and climb rate are an aircraft's (two targets' tracks
taken for one fit only with a wild climb), and no distinct solution (a mirror image) fits
nearly as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensord.tracker.measurement import BistaticRangeRate

ALT_PRIOR_M = 5000.0  # the prior on height: 5 km +- 6 km
ALT_PRIOR_SIGMA_M = 6000.0
VU_PRIOR_SIGMA_MPS = 10.0
SEED_HEIGHTS_M = (500.0, 5000.0)
MIN_ALT_M, MAX_ALT_M = -300.0, 16000.0  # a fit outside these heights pairs two targets
MAX_CLIMB_MPS = 3 * VU_PRIOR_SIGMA_MPS
GRID_N = 121
ITERATIONS = 15
DISTINCT_M = 1500.0  # solutions farther apart than this are different answers
AMBIGUITY_CHI2 = 9.0  # the runner-up must fit worse by this much


@dataclass(frozen=True)
class PairHistory:
    """One bistatic pair's measurements of the target: times (s), z (n, 2), variances."""

    model: BistaticRangeRate
    t_s: np.ndarray  # (n,)
    z: np.ndarray  # (n, 2): bistatic range m, range rate m/s
    var: np.ndarray  # (n, 2)


@dataclass(frozen=True)
class Location:
    """The fitted state at ``t_ref`` (ENU m, m/s) with its covariance and fit."""

    t_ref: float
    x: np.ndarray  # (6,)
    P: np.ndarray  # (6, 6)
    chi2: float
    dof: int


@dataclass(frozen=True)
class Outcome:
    """A location, or why there is none."""

    location: Location | None
    reason: str


def locate(pairs: list[PairHistory], t_ref: float) -> Outcome:
    """The target's state at ``t_ref`` from two or more pairs' histories."""
    if len(pairs) < 2:
        return Outcome(None, "one bistatic pair does not fix a position")
    n = sum(len(p.t_s) for p in pairs)
    dof = 2 * n + 2 - 6
    if dof < 6:
        return Outcome(None, "too few measurements")
    fits = []
    for seed in _seeds(pairs, t_ref):
        fit = _gauss_newton(pairs, t_ref, seed)
        if fit is not None:
            fits.append(fit)
    if not fits:
        return Outcome(None, "no seed converged")
    fits.sort(key=lambda f: f[1])
    x, chi2, p = fits[0]
    if chi2 > dof + 3.1 * np.sqrt(2.0 * dof) + 5.0:  # about the 99.9 % point
        return Outcome(None, "fit inconsistent: not one target (or not constant velocity)")
    if not MIN_ALT_M <= x[2] <= MAX_ALT_M or abs(x[5]) > MAX_CLIMB_MPS:
        return Outcome(None, "implausible: height or climb rate of no aircraft")
    for other, chi2_other, _ in fits[1:]:
        if np.linalg.norm(other[:2] - x[:2]) > DISTINCT_M and chi2_other - chi2 < AMBIGUITY_CHI2:
            return Outcome(None, "ambiguous: a mirror solution fits as well")
    return Outcome(Location(t_ref, x, p, float(chi2), dof), "located")


def _seeds(pairs: list[PairHistory], t_ref: float) -> list[np.ndarray]:
    """States where the pairs' latest ranges agree, velocity from their latest rates."""
    first = pairs[0]
    tx, rx = np.asarray(first.model.tx_enu_m), np.asarray(first.model.rx_enu_m)
    latest = [int(np.argmax(p.t_s)) for p in pairs]
    a = (first.z[latest[0], 0] + first.model.baseline_m) / 2 + 2000.0
    centre = (tx + rx) / 2
    axis = np.linspace(-a, a, GRID_N)
    step_m = axis[1] - axis[0]
    east, north = np.meshgrid(centre[0] + axis, centre[1] + axis)
    seeds = []
    for height in SEED_HEIGHTS_M:
        pts = np.zeros((GRID_N * GRID_N, 6))
        pts[:, 0], pts[:, 1], pts[:, 2] = east.ravel(), north.ravel(), height
        cost = np.zeros(len(pts))
        for p, k in zip(pairs, latest, strict=True):
            predicted = p.model.function(pts)[:, 0]
            sigma = np.sqrt(p.var[k, 0]) + step_m + height * 0.3
            cost += ((predicted - p.z[k, 0]) / sigma) ** 2
        grid = cost.reshape(GRID_N, GRID_N)
        padded = np.pad(grid, 1, constant_values=np.inf)
        neighbours = np.stack(
            [padded[1 + di : 1 + di + GRID_N, 1 + dj : 1 + dj + GRID_N]
             for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj]
        )  # fmt: skip
        is_min = (grid <= neighbours.min(axis=0)).ravel()
        minima = np.flatnonzero(is_min & (cost < 4.0 * len(pairs)))
        for i in minima[np.argsort(cost[minima])][:6]:
            seed = pts[i].copy()
            seed[3:] = _velocity(pairs, latest, seed)
            dt = t_ref - np.array([p.t_s[k] for p, k in zip(pairs, latest, strict=True)]).mean()
            seed[:3] += seed[3:] * dt
            seeds.append(seed)
    return seeds


def _velocity(pairs: list[PairHistory], latest: list[int], x: np.ndarray) -> np.ndarray:
    """Horizontal velocity (climb 0) that gives the pairs' latest range rates at x."""
    rows, rates = [], []
    for p, k in zip(pairs, latest, strict=True):
        jac = p.model.jacobian(x)
        rows.append(jac[1, 3:5])
        rates.append(p.z[k, 1])
    v, *_ = np.linalg.lstsq(np.array(rows), np.array(rates), rcond=None)
    return np.array([v[0], v[1], 0.0])


def _gauss_newton(
    pairs: list[PairHistory], t_ref: float, x0: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray] | None:
    """Levenberg-damped Gauss-Newton from x0: (state, chi2, covariance) or None."""
    x = x0.copy()
    lam = 1e-3
    chi2 = _chi2(pairs, t_ref, x)
    for _ in range(ITERATIONS):
        r, jac = _residuals(pairs, t_ref, x)
        jtj, jtr = jac.T @ jac, jac.T @ r
        step = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-9), jtr)
        trial = x + step
        trial_chi2 = _chi2(pairs, t_ref, trial)
        if trial_chi2 < chi2:
            x, lam = trial, lam * 0.3
            converged = chi2 - trial_chi2 < 1e-3 * chi2 + 1e-6
            chi2 = trial_chi2
            if converged:
                break
        else:
            lam *= 10.0
            if lam > 1e6:
                break
    if not np.all(np.isfinite(x)) or x[2] < -500.0:
        return None
    _, jac = _residuals(pairs, t_ref, x)
    try:
        cov = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return None
    return x, chi2, cov


def _residuals(pairs: list[PairHistory], t_ref: float, x: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Whitened residuals and their Jacobian in the state at t_ref (priors included)."""
    rs, jacs = [], []
    for p in pairs:
        dt = p.t_s - t_ref
        states = np.tile(x, (len(dt), 1))
        states[:, :3] += x[3:] * dt[:, None]
        sigma = np.sqrt(p.var)
        rs.append(((p.z - p.model.function(states)) / sigma).ravel())
        h = p.model.jacobian(states)  # (n, 2, 6) in the state at t
        j = h.copy()
        j[:, :, 3:] += h[:, :, :3] * dt[:, None, None]  # chain rule through x(t) = F x
        jacs.append((j / sigma[:, :, None]).reshape(-1, 6))
    prior_r = np.array([(ALT_PRIOR_M - x[2]) / ALT_PRIOR_SIGMA_M, -x[5] / VU_PRIOR_SIGMA_MPS])
    prior_j = np.zeros((2, 6))
    prior_j[0, 2] = 1.0 / ALT_PRIOR_SIGMA_M
    prior_j[1, 5] = 1.0 / VU_PRIOR_SIGMA_MPS
    return np.concatenate([*rs, prior_r]), np.vstack([*jacs, prior_j])


def _chi2(pairs: list[PairHistory], t_ref: float, x: np.ndarray) -> float:
    r, _ = _residuals(pairs, t_ref, x)
    return float(r @ r)
