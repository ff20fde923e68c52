"""Motion models on the ENU state (e, n, u, ve, vn, vu): nearly constant velocity.

Process noise is white acceleration, per axis Q = q * [[dt^4/4, dt^3/2], [dt^3/2, dt^2]]
with q = sigma_a^2. Tuned for aircraft: airliners turn at up to 3 deg/s at 250 m/s
(about 13 m/s^2 lateral for a few seconds, 0.3 g), cruise almost straight; 2 m/s^2
horizontal and 1 m/s^2 vertical keep the filter honest in turns without chasing noise.
The IMM option mixes a quiet model (0.5 m/s^2) with a manoeuvring one (8 m/s^2).
"""

from __future__ import annotations

import numpy as np

DIM = 6


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
