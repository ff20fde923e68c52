"""Type stub of the compiled CV Kalman kernels (cext/kalman.pyx)."""

import numpy as np

def predict(
    x: np.ndarray,
    p: np.ndarray,
    rows: np.ndarray,
    dt_s: np.ndarray,
    sigma_h_mps2: float,
    sigma_v_mps2: float,
) -> None: ...
def distances(
    x: np.ndarray,
    p: np.ndarray,
    rows: np.ndarray,
    z: np.ndarray,
    r: np.ndarray,
    idx: np.ndarray,
    d2: np.ndarray,
) -> None: ...
def update(
    x: np.ndarray, p: np.ndarray, rows: np.ndarray, z: np.ndarray, r: np.ndarray, idx: np.ndarray
) -> None: ...
def distances_jacobian(
    p: np.ndarray, rows: np.ndarray, y: np.ndarray, h: np.ndarray, r: np.ndarray, d2: np.ndarray
) -> None: ...
def update_jacobian(
    x: np.ndarray, p: np.ndarray, rows: np.ndarray, y: np.ndarray, h: np.ndarray, r: np.ndarray
) -> None: ...
