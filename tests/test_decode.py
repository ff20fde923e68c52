"""Frames -> detections: fields against pyModeS, the CPR logic, covariances, frames of axes."""

import math

import numpy as np
import pytest

from sensord.decode import Detector
from sensord.decode.accuracy import R95_TO_SIGMA, position_sigma_m, velocity_sigma_mps
from sensord.frames import frames_from_hex
from sensord.geo import KT_MPS, Site, great_circle_m
from sensord.sim import encode

SITE = Site(52.0, 4.0, 0.0)
ICAO = 0x40621D
EVEN, ODD = "8D40621D58C382D690C8AC2863A7", "8D40621D58C386435CC412692AD6"


def frames(hexes, times):
    f = frames_from_hex(hexes, times)
    f["icao"] = [int(h[2:8], 16) if h[:2] in ("8D", "8C", "5D") else 0 for h in hexes]
    return f


def test_global_pair_gives_the_known_position():
    det = Detector(SITE)
    # pyModeS's example pair was received 2 s apart (and is 1.7 km apart)
    dets = det.process(frames([EVEN, ODD], [0.0, 2.0]))
    pos = [d for d in dets if d.source == "adsb-pos"]
    assert len(pos) == 1 and det.positions.stats.global_pair == 1
    lat, lon, _ = SITE.to_geodetic(pos[0].z)
    # the odd message's position (latest); pyModeS documents 52.2572, 3.9194 for the even one
    assert great_circle_m(lat, lon, 52.26578, 3.93891) < 20
    assert pos[0].alt_baro_ft == 38000 and pos[0].icao == ICAO


def test_pair_window_is_on_the_sample_clock():
    det = Detector(SITE)
    dets = det.process(frames([EVEN, ODD], [0.0, 10.5]))
    assert [d.source for d in dets] == ["adsb-pos-unresolved", "adsb-pos-unresolved"]


def test_local_decode_prefers_the_tracker_reference():
    calls = []

    def reference(icao, t_s):
        calls.append((icao, t_s))
        return (52.25, 3.92)

    det = Detector(SITE, reference=reference)
    dets = det.process(frames([EVEN], [5.0]))
    assert calls == [(ICAO, 5.0)] and det.positions.stats.local_track == 1
    lat, lon, _ = SITE.to_geodetic(dets[0].z)
    assert great_circle_m(lat, lon, 52.2572, 3.9194) < 20


def test_site_local_decode_only_when_the_range_cannot_alias():
    far = Detector(SITE, max_range_m=500e3)
    assert far.process(frames([EVEN], [0.0]))[0].source == "adsb-pos-unresolved"
    near = Detector(SITE, max_range_m=300e3)
    d = near.process(frames([EVEN], [0.0]))[0]
    assert d.source == "adsb-pos" and near.positions.stats.local_site == 1


def test_positions_beyond_range_are_rejected_and_counted():
    det = Detector(Site(40.0, -3.0), max_range_m=500e3)  # Madrid: the aircraft is over Holland
    det.process(frames([EVEN, ODD], [0.0, 2.0]))
    assert det.positions.stats.rejected == {"beyond-max-range": 1}


def test_quality_indicators_map_to_sigmas():
    assert position_sigma_m(11, 8) == pytest.approx(math.hypot(92.6 * R95_TO_SIGMA, 3.0))
    assert position_sigma_m(11, None) == pytest.approx(math.hypot(185.2 * R95_TO_SIGMA, 3.0))
    assert position_sigma_m(18, None) > 1000
    assert velocity_sigma_mps(2) == pytest.approx(math.hypot(3.0 / 1.96, 0.15))
    assert pytest.approx(1 / 2.4477, rel=1e-4) == R95_TO_SIGMA


def test_nacp_from_operational_status_tightens_positions():
    det = Detector(SITE, max_range_m=300e3)
    status = "8D40621DF82300030049B8B6DFFF"  # version 2, NACp 9
    dets = det.process(frames([EVEN, status, ODD], [0.0, 0.5, 1.0]))
    first, last = dets[0], dets[-1]
    assert last.R[0, 0] < first.R[0, 0]
    assert math.sqrt(last.R[0, 0]) == pytest.approx(position_sigma_m(11, 9))


@pytest.mark.parametrize("track_deg", [0.0, 90.0, 200.0])
def test_velocity_is_rotated_into_the_site_frame(track_deg):
    site = Site(52.0, 4.0)
    ac_lat, ac_lon = 52.0, 7.0  # 205 km east: meridians converge by about 2.4 degrees
    hexes = [
        encode.airborne_position(0xABCDEF, ac_lat, ac_lon, 30000, 0).hex(),
        encode.airborne_position(0xABCDEF, ac_lat, ac_lon, 30000, 1).hex(),
        encode.velocity(0xABCDEF, 400, track_deg, 0).hex(),
    ]
    vel = Detector(site).process(frames(hexes, [0.0, 0.5, 1.0]))[-1]
    assert vel.source == "adsb-vel"
    convergence = math.degrees(math.radians(ac_lon - site.lon_deg) * math.sin(math.radians(52)))
    track_site = math.degrees(math.atan2(vel.z[0], vel.z[1])) % 360
    # the aircraft's north, east of the site, points west of the site's north
    assert abs((track_site - (track_deg - convergence) + 180) % 360 - 180) < 0.3
    assert math.hypot(vel.z[0], vel.z[1]) == pytest.approx(400 * KT_MPS, rel=0.01)


def test_velocity_before_any_position_carries_no_measurement():
    d = Detector(SITE).process(frames([encode.velocity(ICAO, 400, 90, 0).hex()], [0.0]))[0]
    assert d.source == "adsb-vel-noposition" and d.observes == ()


def test_identity_and_altitude_replies():
    hexes = [
        encode.identification(ICAO, "KLM1023", "A3").hex(),
        encode.df5(ICAO, "7412").hex(),
        encode.df4(ICAO, 36000).hex(),
        encode.df11(ICAO).hex(),
        encode.airspeed(ICAO, 300, 45, 0).hex(),
    ]
    f = frames(hexes, [0.0, 0.1, 0.2, 0.3, 0.4])
    f["icao"] = ICAO
    ident, squawk, alt, df11, airspeed = Detector(SITE).process(f)
    assert (ident.callsign, ident.category, ident.observes) == ("KLM1023", "A3", ())
    assert squawk.squawk == "7412"
    assert alt.observes == ("alt",) and alt.z[0] == pytest.approx(36000 * 0.3048)
    assert df11.source == "df11" and airspeed.source == "adsb-airspeed"


def test_surface_position_resolves_against_the_site():
    site = Site(52.308, 4.764, -3.0)  # Schiphol
    odd_even = [
        "8C4841753AAB238733C8CD4020B1",
        "8C4841753A8A35323FAEBDAC702D",
    ]
    dets = Detector(site).process(frames(odd_even, [0.0, 1.0]))
    pos = [d for d in dets if d.source == "adsb-surface"]
    assert pos and pos[-1].on_ground
    lat, lon, h_m = site.to_geodetic(pos[-1].z)
    assert great_circle_m(lat, lon, 52.32, 4.73) < 3000
    assert h_m == pytest.approx(site.alt_m, abs=1.0)  # no height sent: the receiver's


def test_garbage_frames_are_counted_not_raised():
    f = frames_from_hex(["FFFFFFFFFFFFFF", "00000000000000"], [0.0, 0.1])
    det = Detector(SITE)
    det.process(f)
    assert det.stats.frames == 2


def test_sim_truth_positions_lie_within_their_covariance():
    from sensord.sim import random_scenario, simulate

    res = simulate(random_scenario(10, Site(52.0, 4.5, 10.0), seed=6), 2.4e6, 6.0, seed=6)
    truth = res.truth
    hexes = [bytes(r["msg"][: r["nbits"] // 8]).hex() for r in truth]
    f = frames_from_hex(hexes, list(truth["t_s"]))
    f["icao"] = truth["icao"]
    aircraft = {a.icao: a for a in res.scenario.aircraft}
    det = Detector(res.scenario.site)
    normalised = []
    for d in det.process(f):
        if d.source == "adsb-pos":
            err = d.z - aircraft[d.icao].state_at(d.t_s).enu_m
            normalised.append(np.abs(err[:2]) / np.sqrt(np.diag(d.R)[:2]))
    normalised = np.array(normalised)
    assert len(normalised) > 100
    assert np.mean(normalised < 3) > 0.99
