"""The Kalman filter of the tracker's CV model, stepped for many tracks at once.

filterpy's ``KalmanFilter`` is the reference (tests hold this to it within 1e-9): the
same predict (x = F x, P = F P F' + Q) and update (S = H P H' + R, K = P H' S^-1, Joseph
form P = (I - K H) P (I - K H)' + K R K'), with H a selection of state components.
Per-track filterpy calls cost about 27 us a step. Here every CV track's state is a row
of one ``CVBank`` and the C kernels of ``sensord._kalman`` step the rows a batch of
detections touches in one call each (about a microsecond per track, and no fixed numpy
overhead that would make the small batches of a live receiver expensive). Measurements
come in groups of one model (``updater.Measurements``); the ``updater.Updater`` steps
linear ones in C on the selected components, non-linear ones by EKF (C) or UKF.
"""

from __future__ import annotations

import numpy as np

from sensord import _kalman
from sensord.tracker.models import DIM
from sensord.tracker.updater import Measurements, Updater


def predicted(
    x: np.ndarray, p: np.ndarray, dt_s: np.ndarray, sigma_h_mps2: float, sigma_v_mps2: float
) -> tuple[np.ndarray, np.ndarray]:
    """States (n, 6) and covariances (n, 6, 6) propagated by dt_s (n,), as new arrays."""
    x = np.array(x, dtype=float, order="C")
    p = np.array(p, dtype=float, order="C")
    rows = np.arange(len(x), dtype=np.intp)
    _kalman.predict(x, p, rows, np.ascontiguousarray(dt_s, dtype=float), sigma_h_mps2, sigma_v_mps2)
    return x, p


def distances(
    x: np.ndarray, p: np.ndarray, z: np.ndarray, r: np.ndarray, idx: np.ndarray
) -> np.ndarray:
    """Squared Mahalanobis distances (n,) of measurements z (n, m) of x[:, idx], covariance r."""
    x = np.ascontiguousarray(x, dtype=float)
    d2 = np.empty(len(x))
    rows = np.arange(len(x), dtype=np.intp)
    _kalman.distances(x, np.ascontiguousarray(p, dtype=float), rows, *_measurements(z, r, idx), d2)
    return d2


def _measurements(z, r, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.ascontiguousarray(z, dtype=float),
        np.ascontiguousarray(r, dtype=float),
        np.ascontiguousarray(idx, dtype=np.intp),
    )


class CVFilter:
    """One track's CV filter: a row of its ``CVBank``; x and P are views of it."""

    __slots__ = ("bank", "slot")

    def __init__(self, bank: CVBank, slot: int) -> None:
        self.bank = bank
        self.slot = slot

    @property
    def x(self) -> np.ndarray:
        return self.bank.x[self.slot]

    @property
    def P(self) -> np.ndarray:
        return self.bank.P[self.slot]

    def widen(self, dv_mps: np.ndarray, dt_s: float) -> None:
        """Add a velocity innovation's spread to P (``widen``)."""
        widen(self.P, dv_mps, dt_s)


def widen(p: np.ndarray, dv_mps: np.ndarray, dt_s: float) -> None:
    """Widen a covariance in place by a velocity change dv (adaptive process noise).

    By twice dv dv' on v (and dt^2 times that on position): the tracker's accuracy
    figures (tests/test_track_accuracy.py) were measured with this factor.
    """
    spread = 2.0 * np.outer(dv_mps, dv_mps)
    p[3:6, 3:6] += spread
    p[0:3, 0:3] += spread * dt_s * dt_s


class CVBank:
    """The states (rows of ``x``) and covariances (``P``) of every CV track, stepped in batches.

    A batch is a list of distinct filters; each step runs one C kernel over their rows.
    Implements ``bank.FilterBank``.
    """

    def __init__(
        self,
        sigma_h_mps2: float,
        sigma_v_mps2: float,
        capacity: int = 64,
        updater: Updater | None = None,
    ) -> None:
        self.sigma_h_mps2 = sigma_h_mps2
        self.sigma_v_mps2 = sigma_v_mps2
        self.updater = updater or Updater()
        self.x = np.zeros((capacity, DIM))
        self.P = np.zeros((capacity, DIM, DIM))
        self._free = list(range(capacity - 1, -1, -1))

    def new(self, x: np.ndarray, p: np.ndarray) -> CVFilter:
        """A filter starting from x, P."""
        if not self._free:
            n = len(self.x)
            self.x = np.concatenate([self.x, np.zeros_like(self.x)])
            self.P = np.concatenate([self.P, np.zeros_like(self.P)])
            self._free = list(range(2 * n - 1, n - 1, -1))
        slot = self._free.pop()
        self.x[slot] = x
        self.P[slot] = p
        return CVFilter(self, slot)

    def release(self, f: CVFilter) -> None:
        """The filter's track is gone (or restarted): its row is free."""
        self._free.append(f.slot)

    def predict(self, filters: list[CVFilter], dt_s: np.ndarray) -> None:
        """Propagate each filter by its dt_s."""
        _kalman.predict(
            self.x,
            self.P,
            _rows(filters),
            np.ascontiguousarray(dt_s, dtype=float),
            self.sigma_h_mps2,
            self.sigma_v_mps2,
        )

    def predicted(self, filters: list[CVFilter], dt_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """States (n, 6), covariances (n, 6, 6) dt_s ahead (where > 0), filters unchanged."""
        rows = _rows(filters)
        x, p = self.x[rows], self.P[rows]
        dt_s = np.asarray(dt_s, dtype=float)
        if (dt_s > 0).any():
            ahead = np.flatnonzero(dt_s > 0)
            _kalman.predict(x, p, ahead, dt_s[ahead], self.sigma_h_mps2, self.sigma_v_mps2)
        return x, p

    def distances(self, filters: list[CVFilter], meas: Measurements) -> np.ndarray:
        """Squared Mahalanobis distance of each measurement from its filter's state."""
        return self.updater.distances(self.x, self.P, _rows(filters), meas)

    def update(self, filters: list[CVFilter], meas: Measurements) -> None:
        """Apply each filter's measurement (one model, z (n, m), R (n, m, m))."""
        self.updater.update(self.x, self.P, _rows(filters), meas)


def _rows(filters: list[CVFilter]) -> np.ndarray:
    return np.fromiter((f.slot for f in filters), dtype=np.intp, count=len(filters))
