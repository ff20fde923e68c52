"""Non-linear measurement updates: EKF and UKF held to filterpy; a bistatic track's NEES."""

import numpy as np
import pytest
from filterpy.kalman import ExtendedKalmanFilter, MerweScaledSigmaPoints, UnscentedKalmanFilter
from scipy.stats import chi2

from sensord.tracker import models
from sensord.tracker.kalman import CVBank
from sensord.tracker.measurement import BistaticRangeRate
from sensord.tracker.unscented import MerweSigmaPoints
from sensord.tracker.updater import Measurements, Updater

SIGMA_H, SIGMA_V = 2.0, 1.0
RX_ENU_M = (0.0, 0.0, 20.0)
TX_ENU_M = [(-40e3, 20e3, 300.0), (35e3, 30e3, 150.0), (10e3, -45e3, 1200.0)]
R_BISTATIC = np.diag([30.0**2, 0.5**2])  # m, m/s: a DVB-T illuminator, 1 s integration


def _random_tracks(n: int, rng, sigma_pos_m: float = 300.0) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate(
        [
            rng.uniform(-60e3, 60e3, (n, 2)),
            rng.uniform(1e3, 11e3, (n, 1)),
            rng.normal(0, 150, (n, 3)),
        ],
        axis=1,
    )
    a = rng.normal(0, 1, (n, 6, 6)) * np.array([sigma_pos_m] * 3 + [20.0] * 3)[:, None]
    p = a @ a.transpose(0, 2, 1) + np.eye(6) * 10.0
    return x, p


def _measure(model, x, rng) -> np.ndarray:
    return model.function(x) + rng.multivariate_normal(np.zeros(2), R_BISTATIC, len(x))


def test_ekf_step_matches_filterpy_extended_kalman_filter():
    rng = np.random.default_rng(21)
    n = 10
    x, p = _random_tracks(n, rng)
    dt = rng.uniform(0.0, 4.0, n)
    model = BistaticRangeRate(TX_ENU_M[0], RX_ENU_M)
    z = _measure(model, x, rng)
    r = np.broadcast_to(R_BISTATIC, (n, 2, 2)).copy()
    bank = CVBank(SIGMA_H, SIGMA_V, updater=Updater("ekf"))
    filters = [bank.new(x[i], p[i]) for i in range(n)]
    bank.predict(filters, dt)
    meas = Measurements(model, z, r)
    d2 = bank.distances(filters, meas)
    bank.update(filters, meas)
    for i, f in enumerate(filters):
        ekf = ExtendedKalmanFilter(dim_x=6, dim_z=2)
        ekf.x, ekf.P = x[i].copy(), p[i].copy()
        ekf.F = models.transition(dt[i])
        ekf.Q = models.process_noise(dt[i], SIGMA_H, SIGMA_V)
        ekf.predict()
        ekf.update(z[i], model.jacobian, model.function, R=r[i])
        np.testing.assert_allclose(f.x, ekf.x, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(f.P, ekf.P, rtol=1e-9, atol=1e-9 * np.abs(ekf.P).max())
        assert d2[i] == pytest.approx(float(ekf.y @ ekf.SI @ ekf.y), rel=1e-9)


def _filterpy_ukf(x, p, z, r, model) -> UnscentedKalmanFilter:
    """filterpy's UKF updated at the predicted x, p (its sigma points drawn from them)."""
    points = MerweScaledSigmaPoints(6, alpha=1.0, beta=2.0, kappa=0.0)
    ukf = UnscentedKalmanFilter(6, 2, 1.0, hx=model.function, fx=lambda s, dt: s, points=points)
    ukf.x, ukf.P, ukf.Q = x.copy(), p.copy(), np.zeros((6, 6))
    ukf.predict()  # identity: only draws the sigma points of (x, p)
    ukf.update(z, R=r)
    return ukf


def test_ukf_step_matches_filterpy_unscented_kalman_filter():
    rng = np.random.default_rng(22)
    n = 10
    x, p = _random_tracks(n, rng, sigma_pos_m=3000.0)  # wide: the non-linearity shows
    model = BistaticRangeRate(TX_ENU_M[1], RX_ENU_M)
    z = _measure(model, x, rng)
    r = np.broadcast_to(R_BISTATIC, (n, 2, 2)).copy()
    updater = Updater("ukf", MerweSigmaPoints(alpha=1.0, beta=2.0, kappa=0.0))
    rows = np.arange(n, dtype=np.intp)
    xs, ps = x.copy(), p.copy()
    meas = Measurements(model, z, r)
    d2 = updater.distances(xs, ps, rows, meas)
    updater.update(xs, ps, rows, meas)
    for i in range(n):
        ukf = _filterpy_ukf(x[i], p[i], z[i], r[i], model)
        np.testing.assert_allclose(xs[i], ukf.x, rtol=1e-9, atol=1e-7)
        np.testing.assert_allclose(ps[i], ukf.P, rtol=1e-9, atol=1e-9 * np.abs(ukf.P).max())
        assert d2[i] == pytest.approx(float(ukf.y @ ukf.SI @ ukf.y), rel=1e-9)


def test_auto_takes_the_ekf_where_it_is_adequate_and_the_ukf_where_not():
    rng = np.random.default_rng(23)
    model = BistaticRangeRate((-2e3, 0.0, 0.0), (2e3, 0.0, 0.0))
    # near a short baseline with kilometres of uncertainty the range is far from linear
    x = np.array([[0.0, 1500.0, 500.0, 50.0, 0.0, 0.0], [30e3, 40e3, 9000.0, 150.0, 0.0, 0.0]])
    p = np.stack([np.diag([2000.0**2] * 3 + [30.0**2] * 3), np.diag([50.0**2] * 3 + [5.0**2] * 3)])
    z = _measure(model, x, rng)
    r = np.broadcast_to(R_BISTATIC, (2, 2, 2)).copy()
    rows = np.arange(2, dtype=np.intp)
    results = {}
    for method in ("auto", "ekf", "ukf"):
        xs, ps = x.copy(), p.copy()
        Updater(method).update(xs, ps, rows, Measurements(model, z, r))
        results[method] = xs
    np.testing.assert_array_equal(results["auto"][0], results["ukf"][0])
    np.testing.assert_array_equal(results["auto"][1], results["ekf"][1])
    assert np.abs(results["ukf"][0] - results["ekf"][0]).max() > 1.0


def _bistatic_runs(method: str, runs: int, steps: int, seed: int):
    """runs Monte Carlo flights through the geometry of three transmitters and a receiver.

    Truth follows the filter's own motion model (white acceleration), so a consistent
    filter's normalised estimation error squared (NEES) is chi-square with 6 degrees of
    freedom. Each second every transmitter-receiver pair measures range and rate.
    Returns NEES (steps, runs) and the position errors (steps, runs) in m.
    """
    rng = np.random.default_rng(seed)
    pairs = [BistaticRangeRate(tx, RX_ENU_M) for tx in TX_ENU_M]
    truth = np.tile([-30e3, -25e3, 8000.0, 180.0, 140.0, 0.0], (runs, 1))
    p0 = np.diag([1000.0**2, 1000.0**2, 500.0**2, 30.0**2, 30.0**2, 5.0**2])
    bank = CVBank(SIGMA_H, SIGMA_V, updater=Updater(method))
    filters = [
        bank.new(truth[k] + rng.multivariate_normal(np.zeros(6), p0), p0) for k in range(runs)
    ]
    q = models.process_noise(1.0, SIGMA_H, SIGMA_V)
    f = models.transition(1.0)
    r = np.broadcast_to(R_BISTATIC, (runs, 2, 2)).copy()
    nees = np.zeros((steps, runs))
    errors = np.zeros((steps, runs))
    for step in range(steps):
        truth = truth @ f.T + rng.multivariate_normal(np.zeros(6), q, runs)
        bank.predict(filters, np.ones(runs))
        for model in pairs:
            bank.update(filters, Measurements(model, _measure(model, truth, rng), r))
        for k, flt in enumerate(filters):
            e = flt.x - truth[k]
            nees[step, k] = e @ np.linalg.solve(flt.P, e)
            errors[step, k] = np.linalg.norm(e[:3])
    return nees, errors


@pytest.mark.parametrize("method", ["ekf", "ukf", "auto"])
def test_bistatic_track_converges_and_its_nees_is_consistent(method):
    runs, steps = 60, 90
    nees, errors = _bistatic_runs(method, runs, steps, seed=5)
    mean_nees = nees.mean(axis=1)  # over runs, per step: chi2(6 runs) / runs when consistent
    low, high = chi2.ppf([0.025, 0.975], 6 * runs) / runs
    inside = np.mean((mean_nees >= low) & (mean_nees <= high))
    anees = float(mean_nees.mean())
    rms_start = float(np.sqrt(np.mean(errors[0] ** 2)))
    rms_end = float(np.sqrt(np.mean(errors[-10:] ** 2)))
    print(
        f"{method}: ANEES {anees:.2f} (6 if consistent), per-step mean NEES inside the 95% "
        f"interval [{low:.2f}, {high:.2f}] at {inside:.0%} of steps; RMS position error "
        f"{rms_start:.0f} m after the first second, {rms_end:.0f} m at the end"
    )
    assert inside >= 0.85
    assert 5.5 <= anees <= 6.5
    assert rms_end < 60.0 and rms_end < rms_start / 5


def test_an_unknown_non_linear_method_is_a_user_error():
    from sensord.errors import UserError

    with pytest.raises(UserError, match="nonlinear_filter"):
        Updater("particle")
