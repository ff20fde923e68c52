"""The IMM option's models and filter against filterpy's own."""

import copy

import numpy as np
from filterpy.common import Q_continuous_white_noise, Q_discrete_white_noise
from filterpy.kalman import IMMEstimator, KalmanFilter

from sensord import detections as det
from sensord.tracker import imm, models
from sensord.tracker.measurement import BistaticRangeRate, LinearModel
from sensord.tracker.updater import Measurements


def test_ca_model_is_filterpy_continuous_white_jerk_per_axis():
    dt, sigma_h, sigma_v = 0.7, 4.0, 1.5
    q = models.ca_process_noise(dt, sigma_h, sigma_v)
    for axis, sigma in ((0, sigma_h), (1, sigma_h), (2, sigma_v)):
        rows = [axis, axis + 3, axis + 6]
        ref = Q_continuous_white_noise(dim=3, dt=dt, spectral_density=sigma**2)
        np.testing.assert_allclose(q[np.ix_(rows, rows)], ref, rtol=1e-12)
        f = models.ca_transition(dt)[np.ix_(rows, rows)]
        np.testing.assert_allclose(f, [[1, dt, dt * dt / 2], [0, 1, dt], [0, 0, 1]])
    assert np.count_nonzero(q) == 27  # no coupling between axes


def test_cv_model_in_the_ca_state_is_the_cv_model():
    dt = 1.3
    q = models.cv_in_ca_process_noise(dt, 2.0, 1.0)
    np.testing.assert_array_equal(q[:6, :6], models.process_noise(dt, 2.0, 1.0))
    np.testing.assert_allclose(
        q[np.ix_([0, 3], [0, 3])], Q_discrete_white_noise(dim=2, dt=dt, var=4.0), rtol=1e-12
    )
    f = models.cv_in_ca_transition(dt)
    np.testing.assert_array_equal(f[:6, :6], models.transition(dt))
    assert not f[6:].any() and not f[:, 6:].any()  # acceleration reset to zero


def test_imm_filter_is_filterpy_imm_of_stock_filters():
    """Same steps through IMMBank and through filterpy's stock KalmanFilter and IMMEstimator."""
    rng = np.random.default_rng(11)
    x0 = np.array([20e3, -10e3, 9000.0, 150.0, 100.0, 0.0])
    p0 = np.diag([30.0**2, 30.0**2, 10.0**2, 50.0**2, 50.0**2, 5.0**2])
    bank = imm.IMMBank(0.5, 1.0, 4.0, 1.0)
    ours = bank.new(x0, p0)
    stock = []
    for kf_ours in ours.est.filters:
        kf = KalmanFilter(dim_x=9, dim_z=3)
        kf.x, kf.P = kf_ours.x.copy(), kf_ours.P.copy()
        stock.append(kf)
    ref = IMMEstimator(stock, imm.INITIAL_MODE_PROBABILITIES.copy(), imm.MODE_TRANSITIONS)
    r = np.diag([30.0**2, 30.0**2, 10.0**2])
    idx = np.array([0, 1, 2], dtype=np.intp)
    ahead = bank.predicted([ours], np.array([0.8]))  # a prediction leaves the filter as it is
    for k in range(1, 30):
        dt = rng.uniform(0.3, 2.0)
        turn = 0.0 if k < 12 else 0.05 * (k - 12)
        z = x0[:3] + np.array([150.0 * k - 300 * turn**2, 100.0 * k + 400 * turn**2, 0.0])
        z = z + rng.normal(0, [30.0, 30.0, 10.0])
        bank.predict([ours], np.array([dt]))
        bank.update([ours], Measurements(LinearModel(det.POSITION), z[None], r[None]))
        stock[0].F, stock[0].Q = (
            models.cv_in_ca_transition(dt),
            models.cv_in_ca_process_noise(dt, 0.5, 1.0),
        )
        stock[1].F, stock[1].Q = models.ca_transition(dt), models.ca_process_noise(dt, 4.0, 1.0)
        ref.predict()
        for kf in stock:
            kf.H, kf.R = np.eye(9)[idx], r
        ref.update(z)
        np.testing.assert_allclose(ours.est.x, ref.x, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(ours.est.P, ref.P, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ours.mode_probabilities, ref.mu, rtol=1e-9, atol=1e-12)
        later = copy.deepcopy(ref)
        later.filters[0].F, later.filters[0].Q = (
            models.cv_in_ca_transition(0.8),
            models.cv_in_ca_process_noise(0.8, 0.5, 1.0),
        )
        later.filters[1].F = models.ca_transition(0.8)
        later.filters[1].Q = models.ca_process_noise(0.8, 4.0, 1.0)
        later.predict()
        ahead = bank.predicted([ours], np.array([0.8]))
        np.testing.assert_allclose(ahead[0][0], later.x[:6], rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(ahead[1][0], later.P[:6, :6], rtol=1e-9, atol=1e-9)
    assert ours.x.shape == (6,) and ours.P.shape == (6, 6)
    assert ahead[0].shape == (1, 6)


class _OwnMeasurement(KalmanFilter):
    """A stock KalmanFilter that takes its own linearised measurement ``own_z``."""

    def update(self, z, R=None, H=None):
        super().update(self.own_z, R, H)


def test_imm_non_linear_update_is_an_ekf_per_model():
    """A bistatic measurement updates each model's filter linearised at its own state:
    filterpy's IMM of stock KalmanFilters, each given that linearisation by hand."""
    model = BistaticRangeRate((-30e3, 5e3, 100.0), (0.0, 0.0, 20.0))
    x0 = np.array([20e3, -10e3, 9000.0, 150.0, 100.0, 0.0])
    p0 = np.diag([300.0**2, 300.0**2, 100.0**2, 20.0**2, 20.0**2, 5.0**2])
    bank = imm.IMMBank(0.5, 1.0, 4.0, 1.0)
    ours = bank.new(x0, p0)
    stock = []
    for kf_ours in ours.est.filters:
        kf = _OwnMeasurement(dim_x=9, dim_z=2)
        kf.x, kf.P = kf_ours.x.copy(), kf_ours.P.copy()
        stock.append(kf)
    ref = IMMEstimator(stock, imm.INITIAL_MODE_PROBABILITIES.copy(), imm.MODE_TRANSITIONS)
    r = np.diag([15.0**2, 1.0**2])
    for k in range(1, 6):
        z = model.function(x0 + np.array([150.0, 100.0, 0.0, 0.0, 0.0, 0.0]) * k)
        bank.predict([ours], np.array([1.0]))
        bank.update([ours], Measurements(model, z[None], r[None]))
        for kf, (f, q) in zip(
            ref.filters,
            [
                (models.cv_in_ca_transition(1.0), models.cv_in_ca_process_noise(1.0, 0.5, 1.0)),
                (models.ca_transition(1.0), models.ca_process_noise(1.0, 4.0, 1.0)),
            ],
            strict=True,
        ):
            kf.F, kf.Q = f, q
        ref.predict()
        for kf in ref.filters:
            h = np.zeros((2, 9))
            h[:, :6] = model.jacobian(kf.x[:6])
            kf.H, kf.R = h, r
            kf.own_z = z - model.function(kf.x[:6]) + h @ kf.x  # its y is z - h(x)
        ref.update(z)
        np.testing.assert_allclose(ours.est.x, ref.x, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(ours.est.P, ref.P, rtol=1e-9, atol=1e-9)
