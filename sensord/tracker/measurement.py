"""Measurement models: what a detection's ``z`` is as a function of the tracker's state.

The state is (e, n, u, ve, vn, vu) in the tracker's ENU frame (m, m/s). A model gives
h(x) (``function``) and its Jacobian dh/dx (``jacobian``), for one state (6,) or for rows
of states (n, 6) at once; ``linear`` says whether h is a fixed matrix (the C kernels'
fast path) or must be linearised (EKF) or sampled (UKF). The shape is Stone Soup's
``MeasurementModel`` (``ndim_meas``, ``function``, ``jacobian``), vectorised over rows.

- ``LinearModel(observes)``: a selection of state components (what every Mode S
  detection measured before models existed);
- ``GeodeticAltitude(site, observes)``: height above the WGS84 ellipsoid at the target
  (a Mode S altitude reply), non-linear in the ENU state by the earth's curvature,
  possibly beside selected components;
- ``BistaticRangeRate(tx_enu_m, rx_enu_m)``: a passive radar's bistatic range
  |tx - p| + |p - rx| - |tx - rx| (m) and its rate (m/s).

A detection carries its model (``Detection.model``); one without carries ``observes``,
which ``model_of`` turns into a ``LinearModel`` (or ``GeodeticAltitude`` for "alt").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from sensord.detections import STATE, Detection
from sensord.errors import UserError
from sensord.geo import Site

DIM = len(STATE)
ALT = "alt"


@runtime_checkable
class MeasurementModel(Protocol):
    """h(x) on the 6-component ENU state and its Jacobian, for one state or rows of them."""

    @property
    def ndim(self) -> int:
        """Components of z."""
        ...

    @property
    def linear(self) -> bool:
        """True when h is a selection of state components (``indices``)."""
        ...

    def function(self, x: np.ndarray) -> np.ndarray:
        """h(x): (6,) -> (ndim,), or (n, 6) -> (n, ndim)."""
        ...

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """dh/dx: (6,) -> (ndim, 6), or (n, 6) -> (n, ndim, 6)."""
        ...


def _position_at(observes: tuple[str, ...]) -> int | None:
    """Where (e, n) sit in z, if the model measures the horizontal position."""
    if "e" in observes and observes[observes.index("e") + 1 : observes.index("e") + 2] == ("n",):
        return observes.index("e")
    return None


def _indices(observes: tuple[str, ...], allowed: tuple[str, ...]) -> np.ndarray:
    """Indices into STATE of the components (a clear error for an unknown name)."""
    unknown = [name for name in observes if name not in allowed]
    if unknown or len(set(observes)) != len(observes):
        raise UserError(f"measurement of components {observes}: each at most once, of {allowed}")
    return np.array([STATE.index(name) for name in observes if name in STATE], dtype=np.intp)


@dataclass(frozen=True)
class LinearModel:
    """z = x[indices]: the components ``observes`` names, in order."""

    observes: tuple[str, ...]
    indices: np.ndarray = field(init=False, repr=False, compare=False)
    position_at: int | None = field(init=False, repr=False, compare=False)  # (e, n) in z
    linear: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "indices", _indices(self.observes, STATE))
        object.__setattr__(self, "position_at", _position_at(self.observes))

    @property
    def ndim(self) -> int:
        return len(self.observes)

    def function(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)[..., self.indices]

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        h = np.eye(DIM)[self.indices]
        x = np.asarray(x)
        return h if x.ndim == 1 else np.broadcast_to(h, (len(x), *h.shape)).copy()


@dataclass(frozen=True)
class GeodeticAltitude:
    """Height above the WGS84 ellipsoid (``"alt"``) beside any selected state components.

    h(x) for "alt" is the geodetic height of the position x[:3] (ENU about ``site``);
    its gradient is the ellipsoid normal at the target (the target's local up) in the
    site's ENU frame: it differs from the site's up by the earth's curvature, 1.8
    mrad per 10 km of range, so mapping the height onto u (as the tracker did before)
    errs by ~3 km at 200 km.
    """

    site: Site
    observes: tuple[str, ...] = (ALT,)
    position_at: int | None = field(init=False, repr=False, compare=False)  # (e, n) in z
    linear: bool = field(default=False, init=False)
    mildly_nonlinear = True  # curvature 1/6371 km: the EKF's linearisation always suffices

    def __post_init__(self) -> None:
        _indices(self.observes, (*STATE, ALT))
        object.__setattr__(self, "position_at", _position_at(self.observes))

    @property
    def ndim(self) -> int:
        return len(self.observes)

    def _geodetic(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lat, lon, h = self.site.to_geodetic(np.atleast_2d(x)[:, :3])
        return np.atleast_1d(lat), np.atleast_1d(lon), np.atleast_1d(h)

    def function(self, x: np.ndarray) -> np.ndarray:
        z, _ = self._evaluate(np.asarray(x, dtype=float), jacobian=False)
        return z

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        _, jac = self._evaluate(np.asarray(x, dtype=float), jacobian=True)
        return jac

    def linearise(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """h(x) and dh/dx of rows x (n, 6) from one geodetic conversion."""
        return self._evaluate(np.atleast_2d(np.asarray(x, dtype=float)), jacobian=True)

    def _evaluate(self, x: np.ndarray, jacobian: bool) -> tuple[np.ndarray, np.ndarray]:
        rows = np.atleast_2d(x)
        z = np.empty((len(rows), self.ndim))
        jac = np.zeros((len(rows), self.ndim, DIM))
        if ALT in self.observes:
            lat, lon, h_m = self._geodetic(rows)
            lat, lon = np.radians(lat), np.radians(lon)
            normal_ecef = np.stack(
                [np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1
            )
            normal_enu = normal_ecef @ self.site.rot_ecef_to_enu.T
        for k, name in enumerate(self.observes):
            if name == ALT:
                z[:, k] = h_m
                jac[:, k, :3] = normal_enu
            else:
                z[:, k] = rows[:, STATE.index(name)]
                jac[:, k, STATE.index(name)] = 1.0
        if x.ndim == 1:
            return z[0], jac[0]
        return z, jac


@dataclass(frozen=True)
class BistaticRangeRate:
    """A transmitter/receiver pair's bistatic range (m) and range rate (m/s).

    z = (|p - tx| + |p - rx| - |tx - rx|, v . (u_tx + u_rx)) with p, v the target's
    position and velocity and u_tx, u_rx the unit vectors from each site to the target;
    tx and rx are fixed points in the tracker's ENU frame (m). A passive radar's Doppler
    f_d is -rate / wavelength. The Jacobian is analytic: d(range)/dp = u_tx + u_rx,
    d(rate)/dv = u_tx + u_rx, d(rate)/dp = (I - u u') v / r summed over both legs.
    """

    tx_enu_m: tuple[float, float, float]
    rx_enu_m: tuple[float, float, float]
    ndim: int = field(default=2, init=False)
    linear: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        for name in ("tx_enu_m", "rx_enu_m"):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != (3,) or not np.all(np.isfinite(value)):
                raise UserError(f"BistaticRangeRate: {name} must be 3 finite numbers (ENU, m)")
            object.__setattr__(self, name, tuple(float(v) for v in value))

    @property
    def baseline_m(self) -> float:
        """|tx - rx|."""
        return float(np.linalg.norm(np.subtract(self.tx_enu_m, self.rx_enu_m)))

    def _legs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Unit vectors (n, 3) from tx and rx to the target and the two ranges (n,)."""
        d_tx = rows[:, :3] - np.asarray(self.tx_enu_m)
        d_rx = rows[:, :3] - np.asarray(self.rx_enu_m)
        r_tx = np.maximum(np.linalg.norm(d_tx, axis=1), 1e-9)
        r_rx = np.maximum(np.linalg.norm(d_rx, axis=1), 1e-9)
        return d_tx / r_tx[:, None], d_rx / r_rx[:, None], r_tx, r_rx

    def function(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        rows = np.atleast_2d(x)
        u_tx, u_rx, r_tx, r_rx = self._legs(rows)
        z = np.stack(
            [r_tx + r_rx - self.baseline_m, np.einsum("ij,ij->i", rows[:, 3:], u_tx + u_rx)],
            axis=1,
        )
        return z[0] if x.ndim == 1 else z

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        rows = np.atleast_2d(x)
        u_tx, u_rx, r_tx, r_rx = self._legs(rows)
        v = rows[:, 3:]
        jac = np.zeros((len(rows), 2, DIM))
        jac[:, 0, :3] = u_tx + u_rx
        jac[:, 1, 3:] = u_tx + u_rx
        for u, r in ((u_tx, r_tx), (u_rx, r_rx)):
            along = np.einsum("ij,ij->i", v, u)
            jac[:, 1, :3] += (v - along[:, None] * u) / r[:, None]
        return jac[0] if x.ndim == 1 else jac


_BY_OBSERVES: dict[tuple[tuple[str, ...], Site], MeasurementModel] = {}


def model_of(d: Detection, site: Site) -> MeasurementModel | None:
    """The detection's model: its own, else what ``observes`` names (None: identity only).

    Components are a ``LinearModel``; with "alt" among them a ``GeodeticAltitude`` about
    ``site`` (the tracker's frame). One model object per kind, so batches group by it.
    """
    if d.model is not None:
        return d.model
    if not d.observes:
        return None
    key = (d.observes, site)
    model = _BY_OBSERVES.get(key)
    if model is None:
        model = GeodeticAltitude(site, d.observes) if ALT in d.observes else LinearModel(d.observes)
        _BY_OBSERVES[key] = model
    return model


def model_to_dict(model: MeasurementModel) -> dict:
    """JSON-ready description of a model (for a detection payload)."""
    if isinstance(model, BistaticRangeRate):
        return {
            "kind": "bistatic",
            "tx_enu_m": list(model.tx_enu_m),
            "rx_enu_m": list(model.rx_enu_m),
        }
    if isinstance(model, LinearModel | GeodeticAltitude):
        return {"kind": "components", "observes": list(model.observes)}
    raise UserError(f"measurement model {type(model).__name__} has no JSON form")


def model_from_dict(data: dict, site: Site) -> MeasurementModel:
    """The model ``model_to_dict`` described; a clear UserError for anything else."""
    kind = data.get("kind") if isinstance(data, dict) else None
    try:
        if kind == "bistatic":
            return BistaticRangeRate(tuple(data["tx_enu_m"]), tuple(data["rx_enu_m"]))
        if kind == "components":
            observes = tuple(str(name) for name in data["observes"])
            return GeodeticAltitude(site, observes) if ALT in observes else LinearModel(observes)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"measurement model {data!r}: {exc}") from None
    raise UserError(f"unknown measurement model {data!r}")
