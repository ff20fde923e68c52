"""The Kalman filter of a track, written out for the tracker's one model and row-selection H.

filterpy's ``KalmanFilter`` is the reference (tests hold this to it within 1e-9); this
version exists because ``benchmarks/bench_tracker.py`` showed filterpy's general-purpose
predict/update plus a separate gate computation to be the tracker's bottleneck: here the
innovation covariance is computed once for both the gate and the update, H is a slice,
and Q comes from the closed form. Same equations, Joseph-form covariance update.
"""

from __future__ import annotations

import numpy as np

from sensord.tracker.models import DIM, process_noise, transition


class CVFilter:
    """State x (6) and covariance P (6x6) of the ENU nearly-constant-velocity model."""

    __slots__ = ("P", "_pending", "x")

    def __init__(self, x: np.ndarray, p: np.ndarray) -> None:
        self.x = x.copy()
        self.P = p.copy()
        self._pending: tuple | None = None

    def predict(self, dt: float, sigma_h_mps2: float, sigma_v_mps2: float) -> None:
        """Propagate by dt seconds."""
        f = transition(dt)
        self.x = f @ self.x
        self.P = f @ self.P @ f.T + process_noise(dt, sigma_h_mps2, sigma_v_mps2)

    def innovation(self, z: np.ndarray, R: np.ndarray, idx: slice | np.ndarray) -> float:
        """Squared Mahalanobis distance of z (measuring x[idx]); kept for ``update``."""
        y = z - self.x[idx]
        block = self.P[idx, idx] if isinstance(idx, slice) else self.P[np.ix_(idx, idx)]
        s_inv = np.linalg.inv(block + R)
        self._pending = (y, s_inv, R, idx)
        return float(y @ s_inv @ y)

    def update(self) -> None:
        """Apply the measurement of the last ``innovation`` call."""
        assert self._pending is not None
        y, s_inv, R, idx = self._pending
        self._pending = None
        k = self.P[:, idx] @ s_inv
        self.x = self.x + k @ y
        i_kh = np.eye(DIM)
        i_kh[:, idx] -= k
        self.P = i_kh @ self.P @ i_kh.T + k @ R @ k.T
