"""The batched CV Kalman filter (C kernels) against filterpy's KalmanFilter, track by track."""

import numpy as np
import pytest
from filterpy.kalman import KalmanFilter

from sensord.tracker import kalman, models
from sensord.tracker.measurement import LinearModel
from sensord.tracker.updater import Measurements

SIGMA_H, SIGMA_V = 2.0, 1.0
# measured components: position, velocity, altitude (u), position + velocity, horizontal
POSITION = np.array([0, 1, 2], dtype=np.intp)
MEASUREMENTS = [np.array(i, dtype=np.intp) for i in ([0, 1, 2], [3, 4, 5], [2], range(6), [0, 1])]


def _random_tracks(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([rng.normal(0, 50e3, (n, 3)), rng.normal(0, 150, (n, 3))], axis=1)
    a = rng.normal(0, 1, (n, 6, 6)) * np.array([300.0] * 3 + [20.0] * 3)[:, None]
    p = a @ a.transpose(0, 2, 1) + np.eye(6) * 10.0  # symmetric positive definite
    return x, p


def _model(idx) -> LinearModel:
    return LinearModel(tuple(models_state[i] for i in idx))


models_state = ("e", "n", "u", "ve", "vn", "vu")


def _filterpy_step(x, p, dt, z, r, idx) -> tuple[np.ndarray, np.ndarray, float]:
    kf = KalmanFilter(dim_x=6, dim_z=len(z))
    kf.x, kf.P = x.copy(), p.copy()
    kf.predict(F=models.transition(dt), Q=models.process_noise(dt, SIGMA_H, SIGMA_V))
    h = np.eye(6)[idx]
    y = z - h @ kf.x
    d2 = float(y @ np.linalg.inv(h @ kf.P @ h.T + r) @ y)
    kf.update(z, R=r, H=h)
    return kf.x, kf.P, d2


@pytest.mark.parametrize("idx", MEASUREMENTS, ids=["pos", "vel", "alt", "pos+vel", "e,n"])
def test_batched_step_matches_filterpy_track_by_track(idx):
    rng = np.random.default_rng(7)
    n = 12
    x, p = _random_tracks(n, rng)
    dt = rng.uniform(0.0, 8.0, n)
    dt[0] = 0.0  # a second measurement at the same instant
    m = len(idx)
    z = x[:, idx] + rng.normal(0, 40, (n, m))
    r = np.stack([np.diag(rng.uniform(5, 60, m) ** 2) for _ in range(n)])
    bank = kalman.CVBank(SIGMA_H, SIGMA_V)
    filters = [bank.new(x[i], p[i]) for i in range(n)]
    bank.predict(filters, dt)
    xp, pp = kalman.predicted(x, p, dt, SIGMA_H, SIGMA_V)
    meas = Measurements(_model(idx), z, r)
    d2 = bank.distances(filters, meas)
    np.testing.assert_array_equal(kalman.distances(xp, pp, z, r, idx), d2)
    bank.update(filters, meas)
    for i, f in enumerate(filters):
        x_ref, p_ref, d2_ref = _filterpy_step(x[i], p[i], dt[i], z[i], r[i], idx)
        np.testing.assert_allclose(f.x, x_ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(f.P, p_ref, rtol=1e-9, atol=1e-9 * np.abs(p_ref).max())
        assert d2[i] == pytest.approx(d2_ref, rel=1e-9)


def test_bank_steps_the_rows_it_is_given_and_grows():
    rng = np.random.default_rng(3)
    bank = kalman.CVBank(SIGMA_H, SIGMA_V, capacity=2)
    x, p = _random_tracks(5, rng)
    filters = [bank.new(x[i], p[i]) for i in range(5)]  # grows past its capacity
    bank.release(filters[1])
    filters[1] = bank.new(x[1], p[1])  # the freed row is reused
    assert len({f.slot for f in filters}) == 5
    some = [filters[4], filters[0], filters[2]]
    dt = np.array([1.0, 0.5, 3.0])
    z = np.stack([x[4, :3], x[0, :3], x[2, :3]]) + 25.0
    r = np.broadcast_to(np.diag([30.0**2, 30.0**2, 10.0**2]), (3, 3, 3))
    bank.predict(some, dt)
    bank.update(some, Measurements(_model(POSITION), z, r))
    for f, i, k in ((filters[4], 4, 0), (filters[0], 0, 1), (filters[2], 2, 2)):
        x_ref, p_ref, _ = _filterpy_step(x[i], p[i], dt[k], z[k], r[k], POSITION)
        np.testing.assert_allclose(f.x, x_ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(f.P, p_ref, rtol=1e-9, atol=1e-9 * np.abs(p_ref).max())
    for i in (1, 3):  # untouched
        np.testing.assert_array_equal(filters[i].x, x[i])
        np.testing.assert_array_equal(filters[i].P, p[i])
