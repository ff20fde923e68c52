"""Track accuracy metrics against ground truth: GOSPA."""

from __future__ import annotations

import numpy as np

from sensord.tracker.assignment import assign


def gospa(truth_m: np.ndarray, estimates_m: np.ndarray, c_m: float = 1000.0, p: int = 2) -> float:
    """GOSPA distance (alpha = 2) between truth and estimated positions, (n, d) arrays in m.

    Assignment cost min(d, c)^p; every missed target and every false track costs c^p / 2.
    The result is in metres: (sum of costs)^(1/p). (Rahmathullah, Garcia-Fernandez,
    Svensson, 2017.)
    """
    n, m = len(truth_m), len(estimates_m)
    if n == 0 or m == 0:
        return float(((c_m**p) / 2 * (n + m)) ** (1 / p))
    dist = np.linalg.norm(truth_m[:, None, :] - estimates_m[None, :, :], axis=2)
    cost = np.minimum(dist, c_m) ** p
    rows, cols = assign(cost)
    assigned = cost[rows, cols]
    matched = assigned < c_m**p
    total = assigned[matched].sum() + (c_m**p) / 2 * ((n - matched.sum()) + (m - matched.sum()))
    return float(total ** (1 / p))
