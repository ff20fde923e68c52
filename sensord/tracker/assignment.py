"""Optimal assignment for global nearest neighbour, without scipy at start-up.

``assign(cost)`` solves the rectangular linear assignment problem (minimum total cost,
min(rows, cols) pairs), as scipy's ``linear_sum_assignment`` does: by the Hungarian
method with shortest augmenting paths (Kuhn-Munkres with potentials, O(n^2 m), the
inner loop over columns in numpy) for the small problems a scan's gate leaves, and by
scipy, imported on first use, above ``SCIPY_ABOVE`` rows and columns. ``gnn_pairs``
drops what no gate admits first, so the problem is usually a handful of rows.
"""

from __future__ import annotations

import numpy as np

SCIPY_ABOVE = 64


def assign(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of an optimal assignment, rows ascending (like scipy's)."""
    cost = np.asarray(cost, dtype=float)
    if cost.ndim != 2:
        raise ValueError("cost must be a 2-D array")
    n, m = cost.shape
    if n == 0 or m == 0:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    if min(n, m) > SCIPY_ABOVE:
        from scipy.optimize import linear_sum_assignment  # imported only for big scans

        rows, cols = linear_sum_assignment(cost)
        return rows.astype(np.intp), cols.astype(np.intp)
    if n > m:
        cols, rows = _hungarian(cost.T)
        order = np.argsort(rows)
        return rows[order], cols[order]
    return _hungarian(cost)


def _hungarian(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """n <= m: each row gets a column. Potentials u (rows), v (columns); column 0 is virtual."""
    n, m = a.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=np.intp)  # row (1-based) holding each column, 0: none
    way = np.zeros(m + 1, dtype=np.intp)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used
            free[0] = False
            reduced = a[i0 - 1] - u[i0] - v[1:]
            better = free[1:] & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            j1 = int(np.argmin(np.where(free, minv, np.inf)))
            delta = minv[j1]
            taken = np.flatnonzero(used)
            u[owner[taken]] += delta
            v[taken] -= delta
            minv[free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # augment along the path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.flatnonzero(owner[1:])
    rows = owner[1:][cols] - 1
    order = np.argsort(rows)
    return rows[order].astype(np.intp), cols[order].astype(np.intp)


def gnn_pairs(cost: np.ndarray, admitted: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) pairs of the optimal assignment among admitted entries only.

    Rows and columns without an admitted entry are left out of the problem; a pair the
    solver makes of an entry not admitted is no pair.
    """
    rows = np.flatnonzero(admitted.any(axis=1))
    cols = np.flatnonzero(admitted.any(axis=0))
    if not len(rows):
        return []
    sub = np.where(admitted[np.ix_(rows, cols)], cost[np.ix_(rows, cols)], _FORBIDDEN)
    r, c = assign(sub)
    return [
        (int(rows[i]), int(cols[j]))
        for i, j in zip(r.tolist(), c.tolist(), strict=True)
        if admitted[rows[i], cols[j]]
    ]


_FORBIDDEN = 1e9
