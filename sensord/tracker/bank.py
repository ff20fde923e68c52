"""The predictor/updater roles: a bank of filters, one per track, stepped in batches.

``FilterBank`` is what the tracker needs of a motion model's filters; ``kalman.CVBank``
(rows of one array, C kernels) and ``imm.IMMBank`` (filterpy's IMM per track) implement
it, so gating, association and the track updates a subscriber sees use the configured
model's own prediction. Every batch is a list of distinct filters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sensord.tracker.updater import Measurements, Updater

if TYPE_CHECKING:
    from sensord.tracker.tracker import TrackerConfig


class Filter(Protocol):
    """One track's filter: its estimate of (e, n, u, ve, vn, vu) and covariance."""

    @property
    def x(self) -> np.ndarray: ...

    @property
    def P(self) -> np.ndarray: ...

    def widen(self, dv_mps: np.ndarray, dt_s: float) -> None:
        """Add a velocity change's spread to the covariance (adaptive process noise)."""


class FilterBank(Protocol):
    """Creates, predicts, gates and updates filters in batches."""

    updater: Updater  # its measurement updates, also used on predicted arrays by the associator

    def new(self, x: np.ndarray, p: np.ndarray) -> Filter:
        """A filter starting from x (6,), P (6, 6)."""

    def release(self, f: Any) -> None:
        """The filter's track is gone or restarted."""

    def predict(self, filters: list, dt_s: np.ndarray) -> None:
        """Propagate each filter by its dt_s, in place."""

    def predicted(self, filters: list, dt_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 6) states and (n, 6, 6) covariances dt_s ahead (<= 0: as they are), unchanged."""

    def distances(self, filters: list, meas: Measurements) -> np.ndarray:
        """Squared Mahalanobis distance (n,) of each measurement from its filter's state."""

    def update(self, filters: list, meas: Measurements) -> None:
        """Apply each filter's measurement."""


def make_bank(config: TrackerConfig) -> FilterBank:
    """The bank ``config`` asks for: the CV filter (C kernels) or the IMM (filterpy)."""
    updater = Updater(config.nonlinear_filter)
    if config.imm:
        from sensord.tracker.imm import IMMBank  # filterpy: imported only when used

        return IMMBank(
            config.imm_cv_sigma_accel_h_mps2,
            config.imm_cv_sigma_accel_v_mps2,
            config.imm_ca_sigma_jerk_h_mps3,
            config.imm_ca_sigma_jerk_v_mps3,
            updater=updater,
        )
    from sensord.tracker.kalman import CVBank

    return CVBank(config.sigma_accel_h_mps2, config.sigma_accel_v_mps2, updater=updater)
