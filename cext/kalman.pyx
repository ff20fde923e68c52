# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Kalman steps of the tracker's CV model for many tracks at once, in place (C loops).

State (e, n, u, ve, vn, vu) in rows of ``x`` (n_slots, 6), covariances in ``p``
(n_slots, 6, 6); each call steps the slots listed in ``rows``. The equations are
filterpy's ``KalmanFilter`` (tests hold these kernels to it within 1e-9):

    predict  x = F x,  P = F P F' + Q      F = [[I, dt I], [0, I]], Q white acceleration
    update   S = H P H' + R,  K = P H' S^-1,  x = x + K (z - H x),
             P = (I - K H) P (I - K H)' + K R K'   (Joseph form)

H selects the components ``idx`` (m of them, m <= 6); S^-1 by Gauss-Jordan elimination
with partial pivoting. The ``*_jacobian`` kernels take a dense H (m x 6) and the
innovation y instead: an EKF's linearisation at the predicted state (filterpy's
``ExtendedKalmanFilter.update``, the same Joseph form). A call costs a few microseconds plus well under one per track,
so neither the small batches of a live receiver nor a thousand tracks pay numpy's fixed
cost per operation.
"""

from libc.math cimport fabs, INFINITY

DEF N = 6


cdef bint invert(double* a, double* inv, int m) noexcept nogil:
    """inv = a^-1 for an m x m row-major matrix (a is overwritten); False if singular."""
    cdef int i, j, k, piv
    cdef double t, f
    for i in range(m):
        for j in range(m):
            inv[i * m + j] = 1.0 if i == j else 0.0
    for k in range(m):
        piv = k
        for i in range(k + 1, m):
            if fabs(a[i * m + k]) > fabs(a[piv * m + k]):
                piv = i
        if a[piv * m + k] == 0.0:
            return False
        if piv != k:
            for j in range(m):
                t = a[k * m + j]
                a[k * m + j] = a[piv * m + j]
                a[piv * m + j] = t
                t = inv[k * m + j]
                inv[k * m + j] = inv[piv * m + j]
                inv[piv * m + j] = t
        f = 1.0 / a[k * m + k]
        for j in range(m):
            a[k * m + j] *= f
            inv[k * m + j] *= f
        for i in range(m):
            if i != k:
                f = a[i * m + k]
                if f != 0.0:
                    for j in range(m):
                        a[i * m + j] -= f * a[k * m + j]
                        inv[i * m + j] -= f * inv[k * m + j]
    return True


cdef bint innovation(
    const double[::1] x,
    const double[:, ::1] p,
    const double[::1] z,
    const double[:, ::1] r,
    const Py_ssize_t[::1] idx,
    double* y,
    double* s_inv,
) noexcept nogil:
    """y = z - H x and S^-1 of one track; False if S is singular."""
    cdef int m = idx.shape[0]
    cdef int i, j
    cdef double s[N * N]
    for i in range(m):
        y[i] = z[i] - x[idx[i]]
        for j in range(m):
            s[i * m + j] = p[idx[i], idx[j]] + r[i, j]
    return invert(s, s_inv, m)


def predict(
    double[:, ::1] x,
    double[:, :, ::1] p,
    const Py_ssize_t[::1] rows,
    const double[::1] dt_s,
    double sigma_h_mps2,
    double sigma_v_mps2,
):
    """Propagate the slots ``rows`` by their dt_s."""
    cdef Py_ssize_t k, row
    cdef int i, j, a
    cdef double dt, s2
    cdef double fp[N][N]
    cdef double sigma2[3]
    sigma2[0] = sigma_h_mps2 * sigma_h_mps2
    sigma2[1] = sigma2[0]
    sigma2[2] = sigma_v_mps2 * sigma_v_mps2
    with nogil:
        for k in range(rows.shape[0]):
            row = rows[k]
            dt = dt_s[k]
            for i in range(3):
                x[row, i] += dt * x[row, i + 3]
            for i in range(N):  # F P
                for j in range(N):
                    fp[i][j] = p[row, i, j] + (dt * p[row, i + 3, j] if i < 3 else 0.0)
            for i in range(N):  # (F P) F'
                for j in range(N):
                    p[row, i, j] = fp[i][j] + (dt * fp[i][j + 3] if j < 3 else 0.0)
            for a in range(3):
                s2 = sigma2[a]
                p[row, a, a] += dt * dt * dt * dt / 4.0 * s2
                p[row, a, a + 3] += dt * dt * dt / 2.0 * s2
                p[row, a + 3, a] += dt * dt * dt / 2.0 * s2
                p[row, a + 3, a + 3] += dt * dt * s2


def distances(
    const double[:, ::1] x,
    const double[:, :, ::1] p,
    const Py_ssize_t[::1] rows,
    const double[:, ::1] z,
    const double[:, :, ::1] r,
    const Py_ssize_t[::1] idx,
    double[::1] d2,
):
    """d2[k]: squared Mahalanobis distance of z[k] (measuring x[idx]) from slot rows[k]."""
    cdef Py_ssize_t k
    cdef int i, j, m = idx.shape[0]
    cdef double y[N]
    cdef double s_inv[N * N]
    cdef double acc
    with nogil:
        for k in range(rows.shape[0]):
            if not innovation(x[rows[k]], p[rows[k]], z[k], r[k], idx, y, s_inv):
                d2[k] = INFINITY
                continue
            acc = 0.0
            for i in range(m):
                for j in range(m):
                    acc += y[i] * s_inv[i * m + j] * y[j]
            d2[k] = acc


cdef void joseph(
    double[:, ::1] p, double (*i_kh)[N], double (*gain)[N], const double[:, ::1] r, int m
) noexcept nogil:
    """P = (I - K H) P (I - K H)' + K R K' in place (the Joseph form filterpy uses)."""
    cdef int i, j, l
    cdef double acc
    cdef double tmp[N][N]
    cdef double kr[N][N]
    for i in range(N):  # (I - K H) P
        for j in range(N):
            acc = 0.0
            for l in range(N):
                acc += i_kh[i][l] * p[l, j]
            tmp[i][j] = acc
    for i in range(N):  # K R
        for j in range(m):
            acc = 0.0
            for l in range(m):
                acc += gain[i][l] * r[l, j]
            kr[i][j] = acc
    for i in range(N):  # (I - K H) P (I - K H)' + K R K'
        for j in range(N):
            acc = 0.0
            for l in range(N):
                acc += tmp[i][l] * i_kh[j][l]
            for l in range(m):
                acc += kr[i][l] * gain[j][l]
            p[i, j] = acc


def update(
    double[:, ::1] x,
    double[:, :, ::1] p,
    const Py_ssize_t[::1] rows,
    const double[:, ::1] z,
    const double[:, :, ::1] r,
    const Py_ssize_t[::1] idx,
):
    """Apply measurement z[k] of x[idx] (covariance r[k]) to slot rows[k]."""
    cdef Py_ssize_t k, row
    cdef int i, j, l, m = idx.shape[0]
    cdef double y[N]
    cdef double s_inv[N * N]
    cdef double gain[N][N]  # K, 6 x m
    cdef double i_kh[N][N]
    cdef double acc
    with nogil:
        for k in range(rows.shape[0]):
            row = rows[k]
            if not innovation(x[row], p[row], z[k], r[k], idx, y, s_inv):
                continue
            for i in range(N):  # K = P H' S^-1
                for j in range(m):
                    acc = 0.0
                    for l in range(m):
                        acc += p[row, i, idx[l]] * s_inv[l * m + j]
                    gain[i][j] = acc
            for i in range(N):
                acc = 0.0
                for j in range(m):
                    acc += gain[i][j] * y[j]
                x[row, i] += acc
            for i in range(N):  # I - K H
                for j in range(N):
                    i_kh[i][j] = 1.0 if i == j else 0.0
                for j in range(m):
                    i_kh[i][idx[j]] -= gain[i][j]
            joseph(p[row], i_kh, gain, r[k], m)


cdef bint innovation_jacobian(
    const double[:, ::1] p,
    const double[:, ::1] h,
    const double[:, ::1] r,
    double* ph_t,
    double* s_inv,
) noexcept nogil:
    """P H' (6 x m, row-major) and S^-1 = (H P H' + R)^-1; False if S is singular."""
    cdef int m = h.shape[0]
    cdef int i, j, l
    cdef double s[N * N]
    cdef double acc
    for i in range(N):
        for j in range(m):
            acc = 0.0
            for l in range(N):
                acc += p[i, l] * h[j, l]
            ph_t[i * m + j] = acc
    for i in range(m):
        for j in range(m):
            acc = r[i, j]
            for l in range(N):
                acc += h[i, l] * ph_t[l * m + j]
            s[i * m + j] = acc
    return invert(s, s_inv, m)


def distances_jacobian(
    const double[:, :, ::1] p,
    const Py_ssize_t[::1] rows,
    const double[:, ::1] y,
    const double[:, :, ::1] h,
    const double[:, :, ::1] r,
    double[::1] d2,
):
    """d2[k]: y[k]' S^-1 y[k] with S = H[k] P H[k]' + R[k] of slot rows[k]."""
    cdef Py_ssize_t k
    cdef int i, j, m = h.shape[1]
    cdef double ph_t[N * N]
    cdef double s_inv[N * N]
    cdef double acc
    with nogil:
        for k in range(rows.shape[0]):
            if not innovation_jacobian(p[rows[k]], h[k], r[k], ph_t, s_inv):
                d2[k] = INFINITY
                continue
            acc = 0.0
            for i in range(m):
                for j in range(m):
                    acc += y[k, i] * s_inv[i * m + j] * y[k, j]
            d2[k] = acc


def update_jacobian(
    double[:, ::1] x,
    double[:, :, ::1] p,
    const Py_ssize_t[::1] rows,
    const double[:, ::1] y,
    const double[:, :, ::1] h,
    const double[:, :, ::1] r,
):
    """EKF update of slot rows[k] by innovation y[k] = z - h(x), Jacobian H[k], R[k]."""
    cdef Py_ssize_t k, row
    cdef int i, j, l, m = h.shape[1]
    cdef double ph_t[N * N]
    cdef double s_inv[N * N]
    cdef double gain[N][N]  # K, 6 x m
    cdef double i_kh[N][N]
    cdef double acc
    with nogil:
        for k in range(rows.shape[0]):
            row = rows[k]
            if not innovation_jacobian(p[row], h[k], r[k], ph_t, s_inv):
                continue
            for i in range(N):  # K = P H' S^-1
                for j in range(m):
                    acc = 0.0
                    for l in range(m):
                        acc += ph_t[i * m + l] * s_inv[l * m + j]
                    gain[i][j] = acc
            for i in range(N):
                acc = 0.0
                for j in range(m):
                    acc += gain[i][j] * y[k, j]
                x[row, i] += acc
            for i in range(N):  # I - K H
                for j in range(N):
                    acc = 1.0 if i == j else 0.0
                    for l in range(m):
                        acc -= gain[i][l] * h[k, l, j]
                    i_kh[i][j] = acc
            joseph(p[row], i_kh, gain, r[k], m)
