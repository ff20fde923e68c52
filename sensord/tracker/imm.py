"""The IMM option: filterpy's ``IMMEstimator`` of a CV and a CA model (see ``models``).

filterpy is imported here only, so a tracker without the IMM (the default) starts
without it (filterpy pulls in scipy.stats: about a second). The tracker sees the first
six components (e, n, u, ve, vn, vu) of the mixed estimate; the acceleration is internal.
``IMMBank`` is a ``bank.FilterBank``: gating and track updates use the IMM's own
prediction (``predicted``: filterpy's predict, the filters untouched). A non-linear
measurement updates each model's filter linearised at that model's prediction (an
EKF per model, whose likelihood then weighs the models); the UKF is not used here.
"""

from __future__ import annotations

import math

import numpy as np
from filterpy.kalman import IMMEstimator, KalmanFilter

from sensord.tracker import models
from sensord.tracker.kalman import widen
from sensord.tracker.updater import Measurements, Updater, linearised

INIT_ACCEL_SIGMA_MPS2 = 5.0
MODE_CV, MODE_CA = 0, 1
MODE_TRANSITIONS = np.array([[0.97, 0.03], [0.10, 0.90]])  # per update, rows: from
INITIAL_MODE_PROBABILITIES = np.array([0.9, 0.1])


class _KalmanFilter(KalmanFilter):
    """filterpy's KalmanFilter with the log-likelihood of the last measurement in closed form.

    filterpy computes it through scipy.stats.multivariate_normal, about 40% of an IMM
    step; tests hold this to the stock filter within 1e-9. ``z_offset`` is added to the
    measurement: H x - h(x) for a non-linear model linearised at this filter's x (so its
    innovation is z - h(x)), None for a linear one.
    """

    z_offset: np.ndarray | None = None

    def update(self, z, R=None, H=None) -> None:
        super().update(z if self.z_offset is None else z + self.z_offset, R, H)

    @property
    def log_likelihood(self) -> float:
        if self._log_likelihood is None:  # type: ignore[has-type]
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
            widen(p, dv_mps, dt_s)


class IMMBank:
    """Steps IMM filters one by one (filterpy); a ``bank.FilterBank``."""

    def __init__(
        self,
        sigma_cv_h_mps2: float,
        sigma_cv_v_mps2: float,
        sigma_jerk_h_mps3: float,
        sigma_jerk_v_mps3: float,
        updater: Updater | None = None,
    ) -> None:
        self.sigma_cv_h_mps2 = sigma_cv_h_mps2
        self.sigma_cv_v_mps2 = sigma_cv_v_mps2
        self.sigma_jerk_h_mps3 = sigma_jerk_h_mps3
        self.sigma_jerk_v_mps3 = sigma_jerk_v_mps3
        self.updater = updater or Updater()

    def new(self, x: np.ndarray, p: np.ndarray) -> IMMFilter:
        return IMMFilter(x, p)

    def release(self, f: IMMFilter) -> None:
        """Nothing is shared between IMM filters."""

    def _models(self, dt: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """(F, Q) of the CV and the CA model for a step dt."""
        return [
            (
                models.cv_in_ca_transition(dt),
                models.cv_in_ca_process_noise(dt, self.sigma_cv_h_mps2, self.sigma_cv_v_mps2),
            ),
            (
                models.ca_transition(dt),
                models.ca_process_noise(dt, self.sigma_jerk_h_mps3, self.sigma_jerk_v_mps3),
            ),
        ]

    def predict(self, filters: list[IMMFilter], dt_s: np.ndarray) -> None:
        for f, dt in zip(filters, np.asarray(dt_s).tolist(), strict=True):
            if dt <= 0:
                continue
            for kf, (fm, qm) in zip(f.est.filters, self._models(dt), strict=True):
                kf.F, kf.Q = fm, qm
            f.est.predict()

    def predicted(
        self, filters: list[IMMFilter], dt_s: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """filterpy's IMM predict (mix, predict each model, combine by mu), filters untouched."""
        xs = np.empty((len(filters), models.DIM))
        ps = np.empty((len(filters), models.DIM, models.DIM))
        for k, (f, dt) in enumerate(zip(filters, np.asarray(dt_s).tolist(), strict=True)):
            x, p = _predicted(f.est, self._models(dt)) if dt > 0 else (f.est.x, f.est.P)
            xs[k], ps[k] = x[: models.DIM], p[: models.DIM, : models.DIM]
        return xs, ps

    def distances(self, filters: list[IMMFilter], meas: Measurements) -> np.ndarray:
        """From the mixed estimate (the state the tracker reports)."""
        x = np.stack([f.x for f in filters])
        p = np.stack([f.P for f in filters])
        return self.updater.distances(x, p, np.arange(len(filters), dtype=np.intp), meas)

    def update(self, filters: list[IMMFilter], meas: Measurements) -> None:
        model = meas.model
        h_linear = np.eye(models.DIM_CA)[model.indices] if model.linear else None  # type: ignore[attr-defined]
        for f, zi, ri in zip(filters, meas.z, meas.r, strict=True):
            for kf in f.est.filters:
                if h_linear is not None:
                    kf.H, kf.z_offset = h_linear, None
                else:  # linearised at this model's prediction: its y = z - h(x)
                    y, jac = linearised(model, kf.x[None, : models.DIM], zi[None])
                    kf.H = np.zeros((len(zi), models.DIM_CA))
                    kf.H[:, : models.DIM] = jac[0]
                    kf.z_offset = kf.H @ kf.x - (zi - y[0])
                kf.R, kf.dim_z = ri, len(zi)
            f.est.update(zi)


def _predicted(est: IMMEstimator, steps: list[tuple[np.ndarray, np.ndarray]]):
    """The mixed estimate filterpy's ``IMMEstimator.predict`` would give, est unchanged."""
    priors = []
    for j, (fm, qm) in enumerate(steps):
        w = est.omega[:, j]
        x = sum(kf.x * wi for kf, wi in zip(est.filters, w, strict=True))
        p = sum(
            wi * (np.outer(kf.x - x, kf.x - x) + kf.P)
            for kf, wi in zip(est.filters, w, strict=True)
        )
        priors.append((fm @ x, fm @ p @ fm.T + qm))
    x = sum(xj * mu for (xj, _), mu in zip(priors, est.mu, strict=True))
    p = sum(
        mu * (np.outer(xj - x, xj - x) + pj) for (xj, pj), mu in zip(priors, est.mu, strict=True)
    )
    return x, p
