"""Tracker unit behaviour on synthetic detections: filter, gate, lifecycle, association."""

import copy
import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from filterpy.kalman import ExtendedKalmanFilter, KalmanFilter

from sensord import detections as det
from sensord.detections import Detection
from sensord.geo import Site
from sensord.tracker import assignment, models
from sensord.tracker.measurement import BistaticRangeRate, GeodeticAltitude
from sensord.tracker.tracker import Tracker, TrackerConfig
from sensord.tracker.update import TrackStatus

SITE = Site(52.0, 4.5, 10.0)
V = np.array([150.0, 100.0, 0.0])  # m/s in ENU


def pos(t, icao=0xABC123, offset=(0.0, 0.0), start=(20e3, -10e3, 9000.0), sensor="rx0"):
    p = np.array(start) + V * t + np.array([*offset, 0.0])
    return Detection(
        t,
        sensor,
        det.POSITION,
        p,
        np.diag([30.0**2, 30.0**2, 10.0**2]),
        icao=icao,
        source="adsb-pos",
    )


def vel(t, icao=0xABC123):
    return Detection(
        t,
        "rx0",
        det.VELOCITY,
        V.copy(),
        np.diag([1.5**2, 1.5**2, 1.0]),
        icao=icao,
        source="adsb-vel",
    )


def test_filter_matches_a_plain_filterpy_filter():
    trk = Tracker(SITE)
    dets = [pos(0.0), *(pos(0.5 * k) for k in range(1, 6))]
    trk.process(dets)
    kf = KalmanFilter(dim_x=6, dim_z=3)
    kf.x = np.zeros(6)
    kf.P = np.diag([1000.0**2] * 3 + [250.0**2] * 2 + [20.0**2])
    kf.x[:3] = dets[0].z
    kf.P[:3, :3] = dets[0].R
    H = np.eye(6)[:3]
    cfg = trk.config
    for prev, d in itertools.pairwise(dets):
        dt = d.t_s - prev.t_s
        kf.predict(
            F=models.transition(dt),
            Q=models.process_noise(dt, cfg.sigma_accel_h_mps2, cfg.sigma_accel_v_mps2),
        )
        kf.update(d.z, R=d.R, H=H)
    track = trk.tracks["ABC123"]
    np.testing.assert_allclose(track.x, kf.x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(track.P, kf.P, rtol=1e-9, atol=1e-9)


def test_lifecycle_tentative_confirmed_coasting_dropped():
    cfg = TrackerConfig(confirm_m=3, confirm_n=5, coast_after_s=5.0, drop_after_s=20.0)
    trk = Tracker(SITE, cfg)
    first = trk.process([pos(0.0)])
    assert first[0].status == TrackStatus.TENTATIVE and first[0].track_id == "ABC123"
    ups = trk.process([pos(0.5), pos(1.0)])
    assert ups[-1].status == TrackStatus.CONFIRMED
    assert [u.status for u in trk.advance(7.0)] == [TrackStatus.COASTING]
    assert trk.process([pos(8.0)])[0].status == TrackStatus.CONFIRMED
    dropped = trk.advance(30.0)
    assert [u.status for u in dropped] == [TrackStatus.DROPPED] and not trk.tracks
    assert trk.process([pos(31.0)])[0].track_id == "ABC123"  # stable id


def test_identity_is_carried_and_pending_velocity_used():
    trk = Tracker(SITE)
    trk.process([Detection(0.0, "rx0", icao=0xABC123, callsign="KLM1023", squawk="7000"), vel(0.1)])
    update = trk.process([pos(0.2)])[0]
    assert (update.callsign, update.squawk) == ("KLM1023", "7000")
    assert update.gs_kt == pytest.approx(np.hypot(150, 100) / 0.514444, rel=0.02)


@pytest.mark.parametrize("imm", [False, True], ids=["cv", "imm"])
def test_a_single_jump_is_rejected_and_counted(imm):
    trk = Tracker(SITE, TrackerConfig(imm=imm))
    trk.process([pos(0.5 * k) for k in range(6)] + [vel(2.6)])
    assert trk.process([pos(3.0, offset=(50e3, 0.0))]) == []
    after = trk.process([pos(3.5)])[0]
    truth = np.array([20e3, -10e3, 9000.0]) + V * 3.5
    assert np.linalg.norm(trk.tracks["ABC123"].x[:2] - truth[:2]) < 100
    assert after.status == TrackStatus.CONFIRMED
    assert sum(trk.stats.gated.values()) == 1 and trk.stats.reinitialised == 0


@pytest.mark.parametrize("imm", [False, True], ids=["cv", "imm"])
def test_a_wrong_first_fix_does_not_poison_the_track(imm):
    trk = Tracker(SITE, TrackerConfig(imm=imm))
    trk.process([pos(0.0, offset=(50e3, 30e3))])  # bad CPR decode as the first position
    trk.process([pos(0.5 * k) for k in range(1, 8)])
    track = trk.tracks["ABC123"]
    truth = np.array([20e3, -10e3, 9000.0]) + V * 3.5
    assert np.linalg.norm(track.x[:2] - truth[:2]) < 100
    assert trk.stats.reinitialised == 1
    assert track.status == TrackStatus.CONFIRMED


def test_late_detections_are_dropped_and_counted_or_reordered():
    trk = Tracker(SITE)
    trk.process([pos(0.0), pos(1.0)])
    assert trk.process([pos(0.5)]) == [] and trk.stats.late_dropped == 1
    windowed = Tracker(SITE, TrackerConfig(reorder_window_s=1.0))
    windowed.process([pos(0.0), pos(1.0), pos(0.5), pos(2.5)])
    assert windowed.stats.late_dropped == 0
    assert windowed.tracks["ABC123"].n_updates == 3  # 2.5 waits in the window
    windowed.flush()
    assert windowed.tracks["ABC123"].n_updates == 4


@pytest.mark.parametrize("imm", [False, True], ids=["cv", "imm"])
def test_anonymous_detections_associate_without_swaps(imm):
    trk = Tracker(SITE, TrackerConfig(imm=imm))
    a_start, b_start = (0.0, 0.0, 3000.0), (0.0, 3000.0, 3000.0)  # 3 km apart, parallel
    for k in range(20):
        t = 0.5 * k
        trk.process(
            [
                pos(t, icao=None, start=a_start, sensor="radar"),
                pos(t, icao=None, start=b_start, sensor="radar"),
            ]
        )
    assert len(trk.tracks) == 2
    by_north = sorted(trk.tracks.values(), key=lambda tr: tr.x[1])
    assert all(tr.n_updates == 20 for tr in by_north)
    assert by_north[0].x[1] < by_north[1].x[1] - 2500


def test_snapshot_and_prediction():
    trk = Tracker(SITE)
    trk.process([pos(0.5 * k) for k in range(6)] + [vel(2.6)])
    snap = trk.snapshot(10.0)
    assert len(snap) == 1 and snap[0].t_s == 10.0
    lat, lon = trk.predicted_position(0xABC123, 10.0)
    truth = SITE.to_geodetic(np.array([20e3, -10e3, 9000.0]) + V * 10.0)
    assert abs(lat - truth[0]) < 1e-3 and abs(lon - truth[1]) < 1e-3
    assert trk.predicted_position(0x123456, 1.0) is None


def test_imm_option_tracks_too():
    trk = Tracker(SITE, TrackerConfig(imm=True))
    trk.process([pos(0.5 * k) for k in range(10)] + [vel(5.0)])
    truth = np.array([20e3, -10e3, 9000.0]) + V * 5.0
    assert np.linalg.norm(trk.tracks["ABC123"].x[:2] - truth[:2]) < 100


def _turning(t_s: float) -> np.ndarray:
    """200 m/s east, a 3 deg/s left turn (12 m/s^2) from 30 s to 60 s, then straight north."""
    speed, rate, start = 200.0, math.radians(3.0), np.array([-20e3, 10e3, 9000.0])
    straight = start + np.array([speed * min(t_s, 30.0), 0.0, 0.0])
    turned = rate * (min(max(t_s, 30.0), 60.0) - 30.0)
    radius = speed / rate
    arc = np.array([radius * math.sin(turned), radius * (1 - math.cos(turned)), 0.0])
    return straight + arc + np.array([0.0, speed * max(t_s - 60.0, 0.0), 0.0])


def _track_turn(config: TrackerConfig) -> tuple[dict[str, float], dict[str, float]]:
    """RMS position error and mean CA-mode probability (IMM) per leg, positions each 1 s."""
    rng = np.random.default_rng(5)
    trk = Tracker(SITE, config)
    errors: dict[str, list[float]] = {"straight": [], "turn": []}
    ca: dict[str, list[float]] = {"straight": [], "turn": []}
    for k in range(90):
        z = _turning(k) + rng.normal(0, [30.0, 30.0, 10.0])
        trk.process([Detection(k, "rx0", det.POSITION, z, np.diag([900.0, 900.0, 100.0]), icao=1)])
        leg = "straight" if 10 <= k < 30 else "turn" if 33 <= k < 60 else None
        if leg:
            track = trk.tracks["000001"]
            errors[leg].append(float(np.linalg.norm(track.x[:2] - _turning(k)[:2])))
            if config.imm:
                ca[leg].append(float(track.filt.mode_probabilities[1]))
    rms = {leg: math.sqrt(np.mean(np.square(e))) for leg, e in errors.items()}
    return rms, {leg: float(np.mean(p)) if p else 0.0 for leg, p in ca.items()}


def test_imm_tracks_a_turn_better_than_cv_and_switches_to_the_ca_model():
    cv_rms, _ = _track_turn(TrackerConfig())
    imm_rms, ca = _track_turn(TrackerConfig(imm=True))
    print(
        f"turn RMS: CV {cv_rms['turn']:.1f} m, IMM {imm_rms['turn']:.1f} m; IMM P(CA) "
        f"straight {ca['straight']:.2f}, turn {ca['turn']:.2f}"
    )
    assert imm_rms["turn"] < 0.7 * cv_rms["turn"]
    assert imm_rms["straight"] < 1.2 * cv_rms["straight"]  # no price on the straight leg
    assert ca["straight"] < 0.2 and ca["turn"] > 0.4


def test_update_reports_uncertainty_and_units():
    trk = Tracker(SITE)
    ups = trk.process([pos(0.5 * k) for k in range(8)] + [vel(4.0)])
    u = ups[-1].to_dict()
    assert u["schema"] == 1 and u["icao"] == "ABC123" and u["status"] == "confirmed"
    assert 0 < u["h_err95_m"] < 100 and 0 < u["v_err95_m"] < 50
    assert u["gs_kt"] == pytest.approx(np.hypot(150, 100) / 0.514444, rel=0.02)


def test_update_reports_the_95_ellipse_along_the_measurement_error():
    """Positions 10x less certain along a bearing of 30 deg: the track's 95% ellipse lies
    along it, its major semi-axis is the 95% radius, and the minor is much smaller."""
    bearing = math.radians(30.0)
    axis = np.array([math.sin(bearing), math.cos(bearing)])  # east, north
    across = np.array([axis[1], -axis[0]])
    cov_h = 200.0**2 * np.outer(axis, axis) + 20.0**2 * np.outer(across, across)
    dets = []
    for k in range(8):
        d = pos(0.5 * k)
        d.R[:2, :2] = cov_h
        dets.append(d)
    u = Tracker(SITE).process(dets)[-1]
    assert u.err95_major_m == u.h_err95_m
    assert u.err95_major_m > 4 * u.err95_minor_m > 0
    assert u.err95_orient_deg == pytest.approx(30.0, abs=2.0)
    assert not u.non_cooperative and u.bistatic is None


def test_batched_tracks_match_plain_filterpy_filters_each():
    """Three aircraft in the same batches, positions, velocities and altitudes at their own
    times: each track is filterpy's filter fed its own detections one by one (the
    altitude above the ellipsoid by its ``ExtendedKalmanFilter``: h is the geodetic
    height, H its gradient, the target's local up)."""
    starts = [(20e3, -10e3, 9000.0), (-40e3, 5e3, 3000.0), (5e3, 160e3, 11000.0)]
    dets = []
    for a, start in enumerate(starts):
        icao = 0x400000 + a
        for k in range(8):
            t = 0.37 * k + 0.11 * a
            dets.append(pos(t, icao=icao, start=start))
            dets.append(vel(t + 0.13, icao=icao))
            truth_enu = np.array(start) + V * (t + 0.2)
            alt_m = SITE.to_geodetic(truth_enu)[2] + 4.0 * k - 12.0
            dets.append(
                Detection(
                    t + 0.2, "rx0", det.ALTITUDE, np.array([alt_m]), np.diag([15.0**2]), icao=icao
                )
            )
    dets.sort(key=lambda d: d.t_s)
    trk = Tracker(SITE)
    trk.process(dets)
    cfg = trk.config
    altitude = GeodeticAltitude(SITE)
    for a in range(len(starts)):
        own = [d for d in dets if d.icao == 0x400000 + a]
        first = own[0]
        kf = ExtendedKalmanFilter(dim_x=6, dim_z=3)
        kf.x = np.zeros(6)
        kf.P = np.diag([1000.0**2] * 3 + [250.0**2] * 2 + [20.0**2])
        kf.x[:3], kf.P[:3, :3] = first.z, first.R
        t_s = first.t_s
        for d in own[1:]:
            dt = d.t_s - t_s
            t_s = d.t_s
            kf.F = models.transition(dt)
            kf.Q = models.process_noise(dt, cfg.sigma_accel_h_mps2, cfg.sigma_accel_v_mps2)
            kf.predict()
            if d.observes == det.ALTITUDE:
                kf.update(d.z, altitude.jacobian, altitude.function, R=d.R)
            else:
                h = np.eye(6)[d.state_indices()]
                kf.update(d.z, lambda x, h=h: h, lambda x, h=h: h @ x, R=d.R)
        track = trk.tracks[f"{0x400000 + a:06X}"]
        assert track.n_updates == len(own)
        np.testing.assert_allclose(track.x, kf.x, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(track.P, kf.P, rtol=1e-9, atol=1e-9)


def test_sensors_carry_the_time_of_their_last_detection():
    trk = Tracker(SITE)
    trk.process([pos(0.0), pos(0.5, sensor="rx1"), pos(1.0)])
    update = trk.process([pos(1.5, sensor="rx1"), pos(2.0)])[-1]
    assert update.sensors == ("rx0", "rx1")
    assert update.sensor_last_s == {"rx0": 2.0, "rx1": 1.5}
    d = update.to_dict()
    assert d["sensors"] == ["rx0", "rx1"] and d["sensor_last_s"] == {"rx0": 2.0, "rx1": 1.5}
    assert trk.tracks["ABC123"].sensors == {"rx0": 2.0, "rx1": 1.5}


def _imm_reference_prediction(track, dt: float, cfg: TrackerConfig) -> tuple[np.ndarray, ...]:
    """filterpy's own IMM predict on a copy of the track's estimator."""
    est = copy.deepcopy(track.filt.est)
    cv, ca = est.filters
    cv.F = models.cv_in_ca_transition(dt)
    cv.Q = models.cv_in_ca_process_noise(
        dt, cfg.imm_cv_sigma_accel_h_mps2, cfg.imm_cv_sigma_accel_v_mps2
    )
    ca.F = models.ca_transition(dt)
    ca.Q = models.ca_process_noise(dt, cfg.imm_ca_sigma_jerk_h_mps3, cfg.imm_ca_sigma_jerk_v_mps3)
    est.predict()
    return est.x[:6], est.P[:6, :6]


def test_imm_gates_and_reports_with_its_own_prediction():
    """With imm = true the track updates and the gate of anonymous detections use the IMM's
    prediction (mixed CV + CA), not a CV extrapolation of its estimate."""
    cfg = TrackerConfig(imm=True)
    trk = Tracker(SITE, cfg)
    rng = np.random.default_rng(2)
    for k in range(45):  # into the turn: the CA model carries the acceleration
        z = _turning(k) + rng.normal(0, [30.0, 30.0, 10.0])
        trk.process([Detection(k, "rx0", det.POSITION, z, np.diag([900.0, 900.0, 100.0]), icao=7)])
    track = trk.tracks["000007"]
    x_ref, p_ref = _imm_reference_prediction(track, 10.0, cfg)
    cv_extrapolated = track.x[:3] + 10.0 * track.x[3:]
    assert np.linalg.norm(x_ref[:2] - cv_extrapolated[:2]) > 20.0  # the two differ
    snap = trk.snapshot(54.0)[0]
    lat, lon, _ = SITE.to_geodetic(x_ref[:3])
    assert (snap.lat_deg, snap.lon_deg) == (
        pytest.approx(lat, abs=1e-9),
        pytest.approx(lon, abs=1e-9),
    )
    x, p = trk.writer.states([track], [54.0])
    np.testing.assert_allclose(x[0], x_ref, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(p[0], p_ref, rtol=1e-9, atol=1e-9)
    radar = Detection(54.0, "radar", det.POSITION, x_ref[:3] + 50.0, np.diag([900.0] * 3))
    d2 = trk.associator.distances([radar], [track])[0, 0]
    y = radar.z - x_ref[:3]
    assert d2 == pytest.approx(float(y @ np.linalg.solve(p_ref[:3, :3] + radar.R, y)), rel=1e-9)


def _bistatic_pairs() -> list[BistaticRangeRate]:
    rx = (0.0, 0.0, 20.0)
    return [
        BistaticRangeRate(tx, rx)
        for tx in ((-40e3, 20e3, 300.0), (35e3, 30e3, 150.0), (10e3, -45e3, 1200.0))
    ]


def _bistatic(t_s, truth, model, k, rng, icao=None):
    r = np.diag([30.0**2, 0.5**2])
    z = model.function(truth) + rng.multivariate_normal(np.zeros(2), r)
    return Detection(t_s, f"rx0/tx{k}", z=z, R=r, icao=icao, source="bistatic", model=model)


def test_anonymous_bistatic_detections_associate_by_gating_on_h_of_x():
    """Two aircraft 4 km apart, started by one coarse radar fix each, then only bistatic
    range and rate from three transmitter-receiver pairs (anonymous): GNN on h(x) keeps
    each detection with its aircraft and the tracks converge."""
    rng = np.random.default_rng(8)
    v = np.array([180.0, 140.0, 0.0])
    starts = [np.array([-30e3, -25e3, 8000.0]), np.array([-30e3, -21e3, 9000.0])]
    trk = Tracker(SITE)
    fix_r = np.diag([800.0**2, 800.0**2, 400.0**2])
    trk.process(
        [
            Detection(0.0, "fix", det.POSITION, s + rng.normal(0, [800, 800, 400]), fix_r)
            for s in starts
        ]
    )
    first = {tr.track_id: tr.x[1] for tr in trk.tracks.values()}
    pairs = _bistatic_pairs()
    for t in range(1, 61):
        truths = [np.r_[s + v * t, v] for s in starts]
        trk.process([_bistatic(t, x, m, k, rng) for k, m in enumerate(pairs) for x in truths])
    assert len(trk.tracks) == 2 and trk.stats.unassociated == 0
    for track in trk.tracks.values():
        i = int(np.argmin([abs(track.x[1] - (s[1] + v[1] * 60)) for s in starts]))
        assert i == int(first[track.track_id] > -23e3)  # no swap
        truth = starts[i] + v * 60
        assert np.linalg.norm(track.x[:3] - truth) < 60.0
        assert track.n_updates == 1 + 60 * 3 and track.status == TrackStatus.CONFIRMED
        assert set(track.sensors) == {"fix", "rx0/tx0", "rx0/tx1", "rx0/tx2"}


def test_identified_bistatic_detections_update_their_track_and_alone_start_nothing():
    rng = np.random.default_rng(3)
    trk = Tracker(SITE)
    pairs = _bistatic_pairs()
    start, v = np.array([-30e3, -25e3, 8000.0]), np.array([180.0, 140.0, 0.0])
    trk.process([_bistatic(0.0, np.r_[start, v], pairs[0], 0, rng, icao=0x4840D6)])
    assert not trk.tracks and trk.stats.unassociated == 1
    r = np.diag([100.0**2, 100.0**2, 30.0**2])
    trk.process([Detection(0.5, "rx0", det.POSITION, start + v * 0.5, r, icao=0x4840D6)])
    for t in range(1, 31):
        trk.process(
            [
                _bistatic(t, np.r_[start + v * t, v], m, k, rng, icao=0x4840D6)
                for k, m in enumerate(pairs)
            ]
        )
    track = trk.tracks["4840D6"]
    assert track.n_updates == 1 + 30 * 3
    assert np.linalg.norm(track.x[:3] - (start + v * 30)) < 60.0


def test_assignment_matches_scipy_and_is_what_gnn_uses():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(12)
    for trial in range(300):
        n, m = rng.integers(1, 12, 2)
        cost = rng.uniform(0, 16, (n, m))
        if trial % 3 == 0:
            cost = np.round(cost)  # ties
        cost[rng.random((n, m)) < 0.4] = 1e9
        rows, cols = assignment.assign(cost)
        ref_rows, ref_cols = linear_sum_assignment(cost)
        assert len(rows) == len(ref_rows) == min(n, m)
        assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(cost[ref_rows, ref_cols].sum(), rel=1e-12)
    big = rng.uniform(0, 16, (80, 90))  # above SCIPY_ABOVE: scipy itself
    rows, cols = assignment.assign(big)
    assert big[rows, cols].sum() == pytest.approx(big[linear_sum_assignment(big)].sum())
    admitted = np.array([[True, False], [True, True]])
    cost = np.array([[1.0, 0.0], [2.0, 5.0]])
    assert assignment.gnn_pairs(cost, admitted) == [(0, 0), (1, 1)]


def test_the_tracker_starts_without_scipy():
    code = (
        "import sys; from sensord.tracker.tracker import Tracker; import sensord.chain; "
        "assert not [m for m in sys.modules if m.startswith(('scipy', 'filterpy'))], 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lifecycle_skips_scans_only_when_nothing_can_change():
    """The lifecycle's bound on the next status change never hides one: the same stream of
    positions, identity-only replies and silences with and without the shortcut."""
    rng = np.random.default_rng(17)
    stream = []
    for icao in range(1, 9):
        t = float(rng.uniform(0, 20))
        while t < 200:
            if rng.random() < 0.7:
                stream.append(pos(t, icao=icao))
            else:
                stream.append(Detection(t, "rx0", icao=icao, squawk="7000"))
            t += float(rng.choice([0.5, 1.0, 12.0, 40.0, 70.0], p=[0.5, 0.3, 0.1, 0.05, 0.05]))
    stream.sort(key=lambda d: d.t_s)
    cfg = TrackerConfig(coast_after_s=10.0, drop_after_s=60.0, tentative_drop_after_s=10.0)
    fast, full = Tracker(SITE, cfg), Tracker(SITE, cfg)
    for k in range(0, len(stream), 3):
        full.lifecycle._quiet_until_s = -math.inf  # scan every time
        batch = stream[k : k + 3]
        a = [(u.track_id, u.status, u.t_s) for u in fast.process(batch)]
        b = [(u.track_id, u.status, u.t_s) for u in full.process(batch)]
        assert a == b
    end = stream[-1].t_s + 100
    for t in np.arange(stream[-1].t_s, end, 0.7):
        full.lifecycle._quiet_until_s = -math.inf
        assert [(u.track_id, u.status) for u in fast.advance(t)] == [
            (u.track_id, u.status) for u in full.advance(t)
        ]
    assert fast.stats.tracks_dropped == full.stats.tracks_dropped > 8
