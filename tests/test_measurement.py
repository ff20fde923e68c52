"""Measurement models: values, analytic Jacobians against finite differences, detection glue."""

import numpy as np
import pytest

from sensord import detections as det
from sensord.detections import Detection
from sensord.errors import UserError
from sensord.geo import Site
from sensord.tracker.measurement import (
    BistaticRangeRate,
    GeodeticAltitude,
    LinearModel,
    MeasurementModel,
    model_from_dict,
    model_of,
    model_to_dict,
)

SITE = Site(52.0, 4.5, 10.0)
TX, RX = (-40e3, 25e3, 300.0), (0.0, 0.0, 15.0)


def _states(n: int, rng) -> np.ndarray:
    return np.concatenate(
        [
            rng.uniform(-150e3, 150e3, (n, 2)),
            rng.uniform(500, 12e3, (n, 1)),
            rng.normal(0, 150, (n, 3)),
        ],
        axis=1,
    )


def _numeric_jacobian(model: MeasurementModel, x: np.ndarray) -> np.ndarray:
    steps = np.array([1.0, 1.0, 1.0, 0.01, 0.01, 0.01])
    cols = []
    for i, step in enumerate(steps):
        dx = np.zeros(6)
        dx[i] = step
        cols.append((model.function(x + dx) - model.function(x - dx)) / (2 * step))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize(
    "model",
    [
        BistaticRangeRate(TX, RX),
        GeodeticAltitude(SITE),
        GeodeticAltitude(SITE, ("e", "n", "alt", "vu")),
        LinearModel(det.POSITION),
    ],
    ids=["bistatic", "altitude", "e,n,alt,vu", "position"],
)
def test_jacobian_is_the_derivative_of_the_function_one_state_and_rows(model):
    rng = np.random.default_rng(4)
    x = _states(20, rng)
    z_rows, jac_rows = model.function(x), model.jacobian(x)
    assert z_rows.shape == (20, model.ndim) and jac_rows.shape == (20, model.ndim, 6)
    for k in range(20):
        np.testing.assert_allclose(model.function(x[k]), z_rows[k], rtol=1e-12)
        np.testing.assert_allclose(model.jacobian(x[k]), jac_rows[k], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(jac_rows[k], _numeric_jacobian(model, x[k]), atol=2e-6)


def test_bistatic_range_and_rate_values():
    model = BistaticRangeRate((0.0, 0.0, 0.0), (10e3, 0.0, 0.0))
    # on the ellipse of sum 2 * hypot(5 km, 12 km): bistatic range 26 km - 10 km
    x = np.array([5e3, 12e3, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(model.function(x), [16e3, 0.0], atol=1e-9)
    assert model.baseline_m == 10e3
    # on the baseline's extension, flying away at 100 m/s: both legs grow, rate 200 m/s
    x = np.array([20e3, 0.0, 0.0, 100.0, 0.0, 0.0])
    np.testing.assert_allclose(model.function(x), [20e3, 200.0], atol=1e-9)
    # the rate is the range's time derivative along any straight flight
    rng = np.random.default_rng(9)
    for x in _states(10, rng):
        ahead, behind = x.copy(), x.copy()
        ahead[:3] += x[3:] * 1e-3
        behind[:3] -= x[3:] * 1e-3
        rate = (model.function(ahead)[0] - model.function(behind)[0]) / 2e-3
        assert model.function(x)[1] == pytest.approx(rate, rel=1e-6, abs=1e-6)


def test_geodetic_altitude_is_the_height_above_the_ellipsoid():
    model = GeodeticAltitude(SITE)
    enu = np.array([180e3, -60e3, 9000.0])
    h = SITE.to_geodetic(enu)[2]
    assert model.function(np.r_[enu, 0, 0, 0])[0] == pytest.approx(h, abs=1e-6)
    assert h > 9000.0 + 2000.0  # 190 km out the ground has curved ~2.8 km away below
    normal = model.jacobian(np.r_[enu, 0, 0, 0])[0, :3]
    assert np.linalg.norm(normal) == pytest.approx(1.0, abs=1e-12)
    assert normal[2] < 0.9996  # not the site's up
    assert model.linear is False and model.mildly_nonlinear


def test_linear_model_selects_components_and_rejects_unknown_ones():
    model = LinearModel(det.VELOCITY)
    x = np.arange(12.0).reshape(2, 6)
    np.testing.assert_array_equal(model.function(x), x[:, 3:])
    np.testing.assert_array_equal(model.jacobian(x[0]), np.eye(6)[3:])
    assert model.linear and model.ndim == 3 and model == LinearModel(("ve", "vn", "vu"))
    with pytest.raises(UserError, match="components"):
        LinearModel(("e", "speed"))
    with pytest.raises(UserError, match="components"):
        GeodeticAltitude(SITE, ("alt", "alt"))
    with pytest.raises(UserError, match="tx_enu_m"):
        BistaticRangeRate((0.0, np.nan, 0.0), RX)


def test_a_detection_without_a_model_means_its_observes():
    assert model_of(Detection(0.0, "rx0", icao=1), SITE) is None
    assert model_of(Detection(0.0, "rx0", det.POSITION), SITE) == LinearModel(det.POSITION)
    alt = model_of(Detection(0.0, "rx0", det.ALTITUDE), SITE)
    assert isinstance(alt, GeodeticAltitude) and alt.site == SITE
    own = BistaticRangeRate(TX, RX)
    d = Detection(0.0, "rx0/tx1", z=np.array([1e3, 5.0]), R=np.eye(2), model=own)
    assert model_of(d, SITE) is own
    assert isinstance(own, MeasurementModel)


def test_models_have_a_json_form():
    for model in (BistaticRangeRate(TX, RX), LinearModel(det.POSITION), GeodeticAltitude(SITE)):
        assert model_from_dict(model_to_dict(model), SITE) == model
    for bad in (
        {"kind": "bistatic", "tx_enu_m": [1, 2]},
        {"kind": "sonar"},
        [],
        {"kind": "components"},
    ):
        with pytest.raises(UserError):
            model_from_dict(bad, SITE)
