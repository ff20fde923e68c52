"""The updater role: one group of measurements (one model) applied to rows of states.

A group is a ``Measurements``: one ``MeasurementModel`` and the z, R of n detections.
Linear models take the C kernels on the selected components (filterpy's
``KalmanFilter``); non-linear ones the EKF (y = z - h(x), H = dh/dx at the predicted
state, the same Joseph-form kernel: filterpy's ``ExtendedKalmanFilter``) or the UKF
(``unscented``: filterpy's ``UnscentedKalmanFilter``). ``nonlinear = "auto"`` takes the
EKF where it is adequate and the UKF where not: the unscented transform of h is
computed, and a row whose predicted measurement or innovation variance differs from
the linearisation's by more than ``EKF_TOLERANCE`` (of a sigma, of a variance) gets the
UKF. Models that declare ``mildly_nonlinear`` (the geodetic altitude) always get the EKF.

States are rows of arrays x (slots, 6), p (slots, 6, 6); ``rows`` picks the slots, so a
``CVBank`` passes its own arrays and the kernels work in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensord import _kalman
from sensord.errors import UserError
from sensord.tracker import unscented
from sensord.tracker.measurement import MeasurementModel

NONLINEAR_METHODS = ("auto", "ekf", "ukf")
EKF_TOLERANCE = 0.1


@dataclass(slots=True)
class Measurements:
    """z (n, m) and R (n, m, m) of n detections sharing one model."""

    model: MeasurementModel
    z: np.ndarray
    r: np.ndarray


def linearised(model: MeasurementModel, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
    """EKF terms at rows x (n, 6): innovations y = z - h(x) (n, m) and Jacobians (n, m, 6)."""
    terms = getattr(model, "linearise", None)
    h, jac = terms(x) if terms is not None else (model.function(x), model.jacobian(x))
    return np.ascontiguousarray(z - h), np.ascontiguousarray(jac, dtype=float)


class Updater:
    """Gate distances and measurement updates, linear (C), EKF (C) or UKF (numpy)."""

    def __init__(
        self, nonlinear: str = "auto", sigma_points: unscented.MerweSigmaPoints | None = None
    ) -> None:
        if nonlinear not in NONLINEAR_METHODS:
            raise UserError(f"nonlinear_filter {nonlinear!r}: expected one of {NONLINEAR_METHODS}")
        self.nonlinear = nonlinear
        self.sigma_points = sigma_points or unscented.MerweSigmaPoints()

    def distances(
        self,
        x: np.ndarray,
        p: np.ndarray,
        rows: np.ndarray,
        meas: Measurements,
        prefilter_chi2: float | None = None,
    ) -> np.ndarray:
        """Squared Mahalanobis distance (n,) of each measurement from its row's prediction.

        ``prefilter_chi2``: for a non-linear model, rows whose EKF distance exceeds it are
        inf without the costlier unscented transform (a gate's first, loose pass).
        """
        model, z, r = meas.model, _c(meas.z), _c(meas.r)
        d2 = np.empty(len(rows))
        if model.linear:
            _kalman.distances(x, p, rows, z, r, model.indices, d2)  # type: ignore[attr-defined]
            return d2
        if prefilter_chi2 is not None and self.nonlinear != "ekf":
            y, jac = linearised(model, x[rows], z)
            _kalman.distances_jacobian(p, rows, y, jac, r, d2)
            near = np.flatnonzero(d2 <= prefilter_chi2)
            d2[:] = np.inf
            if len(near):
                d2[near] = self.distances(x, p, rows[near], Measurements(model, z[near], r[near]))
            return d2
        ekf, ukf, terms = self._split(model, x, p, rows, z, r)
        if len(ekf):
            y, jac = linearised(model, x[rows[ekf]], z[ekf])
            out = np.empty(len(ekf))
            _kalman.distances_jacobian(p, rows[ekf], y, jac, r[ekf], out)
            d2[ekf] = out
        if len(ukf):
            d2[ukf] = unscented.distances(terms, z[ukf])
        return d2

    def update(self, x: np.ndarray, p: np.ndarray, rows: np.ndarray, meas: Measurements) -> None:
        """Apply each measurement to its row of x, p in place."""
        model, z, r = meas.model, _c(meas.z), _c(meas.r)
        if model.linear:
            _kalman.update(x, p, rows, z, r, model.indices)  # type: ignore[attr-defined]
            return
        ekf, ukf, terms = self._split(model, x, p, rows, z, r)
        if len(ekf):
            y, jac = linearised(model, x[rows[ekf]], z[ekf])
            _kalman.update_jacobian(x, p, np.ascontiguousarray(rows[ekf]), y, jac, r[ekf])
        if len(ukf):
            sel = rows[ukf]
            x[sel], p[sel] = unscented.update(x[sel], p[sel], z[ukf], terms)

    def _split(self, model, x, p, rows, z, r):
        """Row positions for the EKF and for the UKF, and the UKF rows' unscented terms."""
        everything = np.arange(len(rows))
        nothing = everything[:0]
        if self.nonlinear == "ekf" or getattr(model, "mildly_nonlinear", False):
            return everything, nothing, None
        terms = unscented.transform(model, x[rows], p[rows], r, self.sigma_points)
        if self.nonlinear == "ukf":
            return nothing, everything, terms
        y, jac = linearised(model, x[rows], z)
        h_x = z - y
        s_ekf = jac @ p[rows] @ jac.transpose(0, 2, 1) + r
        var_ukf = np.diagonal(terms.s, axis1=1, axis2=2)
        var_ekf = np.diagonal(s_ekf, axis1=1, axis2=2)
        bias = np.abs(terms.z_pred - h_x) / np.sqrt(var_ukf)
        spread = np.abs(var_ukf - var_ekf) / var_ukf
        poor = ((bias > EKF_TOLERANCE) | (spread > EKF_TOLERANCE)).any(axis=1)
        ukf = np.flatnonzero(poor)
        return np.flatnonzero(~poor), ukf, _rows_of(terms, ukf)


def _rows_of(terms: unscented.UnscentedTerms, keep: np.ndarray) -> unscented.UnscentedTerms:
    return unscented.UnscentedTerms(terms.z_pred[keep], terms.s[keep], terms.pxz[keep])


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=float)
