"""The unscented measurement update, for many tracks at once (numpy).

filterpy's ``UnscentedKalmanFilter`` with ``MerweScaledSigmaPoints`` is the reference
(tests hold this to it within 1e-9): sigma points x, x +- rows of sqrt((n + lambda) P)
(Cholesky), lambda = alpha^2 (n + kappa) - n; z_pred = sum Wm h(sigma), S = sum Wc
(h - z_pred)(h - z_pred)' + R, Pxz = sum Wc (sigma - x)(h - z_pred)', K = Pxz S^-1,
x += K (z - z_pred), P -= K S K'. The sigma points are drawn from the predicted x, P
(the tracker's motion model is linear, so its prediction is the unscented one exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensord.tracker.measurement import MeasurementModel


@dataclass(frozen=True)
class MerweSigmaPoints:
    """Van der Merwe's scaled sigma points; alpha = 1, beta = 2, kappa = 0: all weights >= 0."""

    alpha: float = 1.0
    beta: float = 2.0
    kappa: float = 0.0

    def weights(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(Wm, Wc), each (2n + 1,)."""
        lam = self.alpha**2 * (n + self.kappa) - n
        wm = np.full(2 * n + 1, 0.5 / (n + lam))
        wc = wm.copy()
        wm[0] = lam / (n + lam)
        wc[0] = lam / (n + lam) + (1.0 - self.alpha**2 + self.beta)
        return wm, wc

    def points(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Sigma points (k, 2n + 1, n) of states x (k, n), covariances p (k, n, n)."""
        n = x.shape[1]
        lam = self.alpha**2 * (n + self.kappa) - n
        # rows of filterpy's upper factor U (U'U = c P) are the columns of the lower L
        spread = np.linalg.cholesky((n + lam) * p).transpose(0, 2, 1)
        return np.concatenate([x[:, None, :], x[:, None, :] + spread, x[:, None, :] - spread], 1)


@dataclass(slots=True)
class UnscentedTerms:
    """The unscented transform of h for each row: predicted z, S, Pxz."""

    z_pred: np.ndarray  # (k, m)
    s: np.ndarray  # (k, m, m), R included
    pxz: np.ndarray  # (k, n, m)


def transform(
    model: MeasurementModel, x: np.ndarray, p: np.ndarray, r: np.ndarray, sp: MerweSigmaPoints
) -> UnscentedTerms:
    """Sigma points of (x, p) (k rows) through h; r (k, m, m) the measurement covariances."""
    k, n = x.shape
    wm, wc = sp.weights(n)
    sigmas = sp.points(x, p)
    hs = model.function(sigmas.reshape(-1, n)).reshape(k, 2 * n + 1, -1)
    z_pred = np.einsum("j,kjm->km", wm, hs)
    dz = hs - z_pred[:, None, :]
    s = np.einsum("j,kja,kjb->kab", wc, dz, dz) + r
    pxz = np.einsum("j,kja,kjb->kab", wc, sigmas - x[:, None, :], dz)
    return UnscentedTerms(z_pred, s, pxz)


def distances(terms: UnscentedTerms, z: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distances (k,) of z (k, m) from the predicted measurements."""
    y = z - terms.z_pred
    return np.einsum("ka,ka->k", y, np.linalg.solve(terms.s, y[:, :, None])[:, :, 0])


def update(
    x: np.ndarray, p: np.ndarray, z: np.ndarray, terms: UnscentedTerms
) -> tuple[np.ndarray, np.ndarray]:
    """Updated states (k, n) and covariances (k, n, n), as new arrays."""
    s_inv = np.linalg.inv(terms.s)
    gain = terms.pxz @ s_inv
    y = z - terms.z_pred
    x_new = x + np.einsum("kam,km->ka", gain, y)
    p_new = p - gain @ terms.s @ gain.transpose(0, 2, 1)
    return x_new, p_new
