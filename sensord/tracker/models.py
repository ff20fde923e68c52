"""Motion models on the ENU state (e, n, u, ve, vn, vu): nearly constant velocity (CV);
and, for the IMM option, constant acceleration (CA) on (e, n, u, ve, vn, vu, ae, an, au).

Process noise is white acceleration, per axis Q = q * [[dt^4/4, dt^3/2], [dt^3/2, dt^2]]
with q = sigma_a^2. Tuned for aircraft: airliners turn at up to 3 deg/s at 250 m/s
(about 13 m/s^2 lateral for a few seconds, 0.3 g), cruise almost straight; 2 m/s^2
horizontal and 1 m/s^2 vertical keep the filter honest in turns without chasing noise.

The IMM option mixes two models on the 9-component state: CV embedded in it (the
acceleration components are reset to zero each step, spread by a small white
acceleration) and CA, whose acceleration is driven by white jerk (continuous-time,
per axis Q = q * [[dt^5/20, dt^4/8, dt^3/6], [dt^4/8, dt^3/3, dt^2/2],
[dt^3/6, dt^2/2, dt]], q = sigma_j^2), so a turn's 13 m/s^2 is estimated, not lagged.
"""

from __future__ import annotations

import numpy as np

DIM = 6
DIM_CA = 9


def transition(dt: float) -> np.ndarray:
    """F for a time step dt (s)."""
    f = np.eye(DIM)
    f[0, 3] = f[1, 4] = f[2, 5] = dt
    return f


def process_noise(dt: float, sigma_h_mps2: float, sigma_v_mps2: float) -> np.ndarray:
    """Q for a time step dt: white acceleration, horizontal and vertical sigmas."""
    q = np.zeros((DIM, DIM))
    a, b, c = dt**4 / 4, dt**3 / 2, dt**2
    for axis, sigma in ((0, sigma_h_mps2), (1, sigma_h_mps2), (2, sigma_v_mps2)):
        s2 = sigma * sigma
        q[axis, axis] = a * s2
        q[axis, axis + 3] = q[axis + 3, axis] = b * s2
        q[axis + 3, axis + 3] = c * s2
    return q


def cv_in_ca_transition(dt: float) -> np.ndarray:
    """F of the CV model on the 9-component state: acceleration reset to zero."""
    f = np.zeros((DIM_CA, DIM_CA))
    f[:DIM, :DIM] = transition(dt)
    return f


def cv_in_ca_process_noise(dt: float, sigma_h_mps2: float, sigma_v_mps2: float) -> np.ndarray:
    """Q of the CV model on the 9-component state; the zero acceleration spread by sigma."""
    q = np.zeros((DIM_CA, DIM_CA))
    q[:DIM, :DIM] = process_noise(dt, sigma_h_mps2, sigma_v_mps2)
    q[6:, 6:] = np.diag([sigma_h_mps2**2, sigma_h_mps2**2, sigma_v_mps2**2])
    return q


def ca_transition(dt: float) -> np.ndarray:
    """F of the constant-acceleration model for a time step dt (s)."""
    f = np.eye(DIM_CA)
    for axis in range(3):
        f[axis, axis + 3] = f[axis + 3, axis + 6] = dt
        f[axis, axis + 6] = dt * dt / 2
    return f


def ca_process_noise(dt: float, sigma_jerk_h_mps3: float, sigma_jerk_v_mps3: float) -> np.ndarray:
    """Q of the CA model: continuous white jerk, horizontal and vertical sigmas."""
    block = np.array(
        [
            [dt**5 / 20, dt**4 / 8, dt**3 / 6],
            [dt**4 / 8, dt**3 / 3, dt**2 / 2],
            [dt**3 / 6, dt**2 / 2, dt],
        ]
    )
    # state order (position, velocity, acceleration) x (e, n, u): a Kronecker product
    return np.kron(
        block, np.diag([sigma_jerk_h_mps3**2, sigma_jerk_h_mps3**2, sigma_jerk_v_mps3**2])
    )
