"""The IMM option: filterpy's ``IMMEstimator`` of a CV and a CA model (see ``models``).

filterpy is imported here only, so a tracker without the IMM (the default) starts
without it (filterpy pulls in scipy.stats: about a second). The tracker sees the first
six components (e, n, u, ve, vn, vu) of the mixed estimate; the acceleration is internal.
"""

from __future__ import annotations

import math

import numpy as np
from filterpy.kalman import IMMEstimator, KalmanFilter

from sensord.tracker import kalman, models

INIT_ACCEL_SIGMA_MPS2 = 5.0
MODE_CV, MODE_CA = 0, 1
MODE_TRANSITIONS = np.array([[0.97, 0.03], [0.10, 0.90]])  # per update, rows: from
INITIAL_MODE_PROBABILITIES = np.array([0.9, 0.1])


class _KalmanFilter(KalmanFilter):
    """filterpy's KalmanFilter with the log-likelihood of the last measurement in closed form.

    filterpy computes it through scipy.stats.multivariate_normal, about 40% of an IMM
    step; tests hold this to the stock filter within 1e-9.
    """

    @property
    def log_likelihood(self) -> float:
        if self._log_likelihood is None:
            y = np.ravel(self.y)
            _, logdet = np.linalg.slogdet(self.S)
            self._log_likelihood = -0.5 * (
                float(y @ self.SI @ y) + logdet + len(y) * math.log(2 * math.pi)
            )
        return self._log_likelihood


class IMMFilter:
    """One track's IMM; ``x`` and ``P`` are the mixed estimate's CV components."""

    __slots__ = ("est",)

    def __init__(self, x: np.ndarray, p: np.ndarray) -> None:
        x9 = np.zeros(models.DIM_CA)
        x9[: models.DIM] = x
        p9 = np.zeros((models.DIM_CA, models.DIM_CA))
        p9[: models.DIM, : models.DIM] = p
        p9[models.DIM :, models.DIM :] = np.eye(3) * INIT_ACCEL_SIGMA_MPS2**2
        filters = []
        for _ in range(2):
            kf = _KalmanFilter(dim_x=models.DIM_CA, dim_z=3)
            kf.x, kf.P = x9.copy(), p9.copy()
            filters.append(kf)
        self.est = IMMEstimator(filters, INITIAL_MODE_PROBABILITIES.copy(), MODE_TRANSITIONS)

    @property
    def x(self) -> np.ndarray:
        return self.est.x[: models.DIM]

    @property
    def P(self) -> np.ndarray:
        return self.est.P[: models.DIM, : models.DIM]

    @property
    def mode_probabilities(self) -> np.ndarray:
        """Probability of (CV, CA)."""
        return self.est.mu

    def widen(self, dv_mps: np.ndarray, dt_s: float) -> None:
        """``kalman.widen`` for each model and the mixed estimate."""
        for p in [*(f.P for f in self.est.filters), self.est.P]:
            kalman.widen(p, dv_mps, dt_s)


class IMMBank:
    """Steps IMM filters one by one (filterpy), with ``kalman.CVBank``'s interface."""

    def __init__(
        self,
        sigma_cv_h_mps2: float,
        sigma_cv_v_mps2: float,
        sigma_jerk_h_mps3: float,
        sigma_jerk_v_mps3: float,
    ) -> None:
        self.sigma_cv_h_mps2 = sigma_cv_h_mps2
        self.sigma_cv_v_mps2 = sigma_cv_v_mps2
        self.sigma_jerk_h_mps3 = sigma_jerk_h_mps3
        self.sigma_jerk_v_mps3 = sigma_jerk_v_mps3

    def new(self, x: np.ndarray, p: np.ndarray) -> IMMFilter:
        return IMMFilter(x, p)

    def release(self, f: IMMFilter) -> None:
        """Nothing is shared between IMM filters."""

    def predict(self, filters: list[IMMFilter], dt_s: np.ndarray) -> None:
        for f, dt in zip(filters, dt_s.tolist(), strict=True):
            if dt <= 0:
                continue
            cv, ca = f.est.filters
            cv.F = models.cv_in_ca_transition(dt)
            cv.Q = models.cv_in_ca_process_noise(dt, self.sigma_cv_h_mps2, self.sigma_cv_v_mps2)
            ca.F = models.ca_transition(dt)
            ca.Q = models.ca_process_noise(dt, self.sigma_jerk_h_mps3, self.sigma_jerk_v_mps3)
            f.est.predict()

    def distances(
        self, filters: list[IMMFilter], z: np.ndarray, r: np.ndarray, idx: np.ndarray
    ) -> np.ndarray:
        x = np.stack([f.x for f in filters])
        p = np.stack([f.P for f in filters])
        return kalman.distances(x, p, z, r, idx)

    def update(
        self, filters: list[IMMFilter], z: np.ndarray, r: np.ndarray, idx: np.ndarray
    ) -> None:
        h = np.eye(models.DIM_CA)[idx]
        for f, zi, ri in zip(filters, z, r, strict=True):
            for kf in f.est.filters:
                kf.H, kf.R, kf.dim_z = h, ri, len(zi)
            f.est.update(zi)
