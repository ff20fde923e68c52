"""The Kalman filter of the tracker's CV model, batched: one numpy step for many tracks.

filterpy's ``KalmanFilter`` is the reference (tests hold this to it within 1e-9): the
same predict (x = F x, P = F P F' + Q) and update (S = H P H' + R, K = P H' S^-1, Joseph
form P = (I - K H) P (I - K H)' + K R K'). Per-track filterpy calls cost about 27 us;
here the states (n, 6) and covariances (n, 6, 6) of all the tracks one batch of
detections touches are stacked and stepped together (about 1.3 us per track). H is a
column selection.

Every CV track's state is a row of one ``CVBank``, so a batch is gathered and written
back with one fancy index each.
"""

from __future__ import annotations

import numpy as np

from sensord.tracker.models import DIM, process_noise

Index = slice | np.ndarray  # the measured state components (H's rows)


def predict(
    x: np.ndarray, p: np.ndarray, dt_s: np.ndarray, sigma_h_mps2: float, sigma_v_mps2: float
) -> tuple[np.ndarray, np.ndarray]:
    """States (n, 6) and covariances (n, 6, 6) propagated by dt_s (n,): F x, F P F' + Q."""
    dt = dt_s[:, None]
    x = x.copy()
    x[:, :3] += dt * x[:, 3:]
    fp = p.copy()  # F P: position rows gain dt * velocity rows
    fp[:, :3, :] += dt[:, :, None] * p[:, 3:, :]
    fpf = fp.copy()  # (F P) F': position columns gain dt * velocity columns
    fpf[:, :, :3] += dt[:, None, :] * fp[:, :, 3:]
    return x, fpf + process_noise(dt_s, sigma_h_mps2, sigma_v_mps2)


def innovation(
    x: np.ndarray, p: np.ndarray, z: np.ndarray, r: np.ndarray, idx: Index
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residuals y (n, m), inverse innovation covariances (n, m, m), Mahalanobis^2 (n,)."""
    y = z - x[:, idx]
    s_inv = np.linalg.inv(p[:, idx][:, :, idx] + r)
    d2 = np.einsum("ni,nij,nj->n", y, s_inv, y)
    return y, s_inv, d2


def update(
    x: np.ndarray, p: np.ndarray, y: np.ndarray, s_inv: np.ndarray, r: np.ndarray, idx: Index
) -> tuple[np.ndarray, np.ndarray]:
    """States and covariances after the measurements whose ``innovation`` gave y, s_inv."""
    k = p[:, :, idx] @ s_inv
    x = x + np.einsum("nij,nj->ni", k, y)
    i_kh = np.broadcast_to(np.eye(DIM), p.shape).copy()
    i_kh[:, :, idx] -= k
    p = i_kh @ p @ i_kh.transpose(0, 2, 1) + k @ r @ k.transpose(0, 2, 1)
    return x, p


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

    A batch is a list of distinct filters; each step gathers their rows, runs the stacked
    equations above and writes the rows back.
    """

    def __init__(self, sigma_h_mps2: float, sigma_v_mps2: float, capacity: int = 64) -> None:
        self.sigma_h_mps2 = sigma_h_mps2
        self.sigma_v_mps2 = sigma_v_mps2
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
        rows = [f.slot for f in filters]
        self.x[rows], self.P[rows] = predict(
            self.x[rows], self.P[rows], dt_s, self.sigma_h_mps2, self.sigma_v_mps2
        )

    def distances(
        self, filters: list[CVFilter], z: np.ndarray, r: np.ndarray, idx: Index
    ) -> np.ndarray:
        """Squared Mahalanobis distance of each measurement z (n, m) of x[idx]."""
        rows = [f.slot for f in filters]
        return innovation(self.x[rows], self.P[rows], z, r, idx)[2]

    def update(self, filters: list[CVFilter], z: np.ndarray, r: np.ndarray, idx: Index) -> None:
        """Apply each filter's measurement z (n, m) of x[idx] with covariance r (n, m, m)."""
        rows = [f.slot for f in filters]
        x, p = self.x[rows], self.P[rows]
        y, s_inv, _ = innovation(x, p, z, r, idx)
        self.x[rows], self.P[rows] = update(x, p, y, s_inv, r, idx)
