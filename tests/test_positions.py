"""sensord's CPR position logic (PositionResolver): reference order, windows, rejections."""

import pytest

from sensord import cpr
from sensord.decode import Detector, PositionResolver
from sensord.decode.positions import pair_window_s
from sensord.frames import frames_from_hex
from sensord.geo import Site, great_circle_m
from sensord.sim import encode

SITE = Site(52.0, 4.0, 0.0)
ICAO = 0x40621D


def halves(lat, lon, surface=False):
    """(odd, lat_cpr, lon_cpr) of the even and the odd message of one position."""
    return [(odd, *cpr.encode(lat, lon, odd, surface)) for odd in (0, 1)]


def test_own_last_position_is_the_next_local_reference():
    res = PositionResolver(SITE)
    even, odd = halves(52.3, 4.2)
    assert res.resolve(ICAO, 0.0, *even) is None  # nothing to pair with, range too wide
    assert res.resolve(ICAO, 1.0, *odd) is not None
    pos = res.resolve(ICAO, 30.0, *halves(52.4, 4.3)[0])  # 30 s later: no pair, self-local
    assert great_circle_m(*pos, 52.4, 4.3) < 10
    assert (res.stats.global_pair, res.stats.local_self) == (1, 1)


def test_pair_straddling_a_latitude_zone_is_rejected_not_misplaced():
    res = PositionResolver(SITE)
    edge = 53.0959  # NL changes from 36 to 35 here: the halves decode to different NL
    assert cpr.nl(edge - 0.002) != cpr.nl(edge + 0.002)
    res.resolve(ICAO, 0.0, *halves(edge - 0.002, 4.0)[0])
    assert res.resolve(ICAO, 1.0, *halves(edge + 0.002, 4.0)[1]) is None
    assert res.stats.rejected == {"pair-straddles-zones": 1}


def test_a_wrong_reference_aliases_by_a_zone_and_is_rejected_by_range():
    # 6 degrees north of the truth: the local decode lands one zone off, 700 km out
    res = PositionResolver(SITE, reference=lambda icao, t_s: (58.0, 4.0))
    assert res.resolve(ICAO, 0.0, *halves(52.3, 4.2)[0]) is None
    assert res.stats.rejected == {"beyond-max-range": 1}


def test_tracker_reference_wins_over_a_pair():
    res = PositionResolver(SITE, reference=lambda icao, t_s: (52.31, 4.21))
    res.resolve(ICAO, 0.0, *halves(52.3, 4.2)[0])
    res.resolve(ICAO, 1.0, *halves(52.3, 4.2)[1])
    assert (res.stats.local_track, res.stats.global_pair) == (2, 0)


@pytest.mark.parametrize(
    ("surface", "speed_kt", "window_s"),
    [(False, None, 10.0), (True, None, 25.0), (True, 40.0, 25.0), (True, 10.0, 50.0)],
)
def test_pair_window_by_surface_speed(surface, speed_kt, window_s):
    assert pair_window_s(surface, speed_kt) == window_s
    site = Site(52.308, 4.764)  # surface positions resolve only near the receiver
    for dt, paired in ((window_s - 0.5, 1), (window_s + 0.5, 0)):
        res = PositionResolver(site, max_range_m=500e3)
        even, odd = halves(52.31, 4.76, surface)
        res.resolve(ICAO, 0.0, *even, surface=surface, ground_speed_kt=speed_kt)
        res.resolve(ICAO, dt, *odd, surface=surface, ground_speed_kt=speed_kt)
        assert res.stats.global_pair == paired


def test_corrected_frames_do_not_start_or_complete_a_pair():
    res = PositionResolver(SITE)
    even, odd = halves(52.3, 4.2)
    res.resolve(ICAO, 0.0, *even, corrected=True)
    assert res.resolve(ICAO, 1.0, *odd) is None
    assert res.resolve(ICAO, 2.0, *even, corrected=True) is None
    assert res.stats.rejected == {"corrected-no-reference": 2}
    assert res.resolve(ICAO, 3.0, *even) is not None  # clean even + clean odd pair
    # once the aircraft has a position, a corrected frame resolves against it
    assert res.resolve(ICAO, 4.0, *odd, corrected=True) is not None
    assert res.stats.local_self == 1


def test_detector_counts_frames_by_df_and_marks():
    hexes = [
        encode.airborne_position(ICAO, 52.3, 4.2, 30000, 0).hex(),
        encode.df4(ICAO, 30000).hex(),
        encode.df11(ICAO).hex(),
    ]
    f = frames_from_hex(hexes, [0.0, 0.1, 0.2])
    f["addr_confirmed"] = [True, False, True]
    f["corrected_bits"] = [1, 0, 0]
    det = Detector(SITE)
    det.process(f)
    assert det.stats.frames_by_df == {17: 1, 4: 1, 11: 1}
    assert (det.stats.unconfirmed, det.stats.corrected) == (1, 1)
    assert det.stats.positions.rejected == {"corrected-no-reference": 1}


def test_pair_from_far_apart_halves_is_rejected_as_inconsistent():
    # a time-compressed recording: the halves are 1 s apart on the sample clock but the
    # aircraft flew 20 km between them (where the global decode may pick a wrong zone)
    res = PositionResolver(SITE)
    res.resolve(ICAO, 0.0, *halves(52.30, 4.2)[0])
    assert res.resolve(ICAO, 1.0, *halves(52.48, 4.2)[1]) is None
    assert res.stats.rejected == {"pair-inconsistent": 1}
    # a consistent pair afterwards resolves
    assert res.resolve(ICAO, 2.0, *halves(52.48, 4.2)[0]) is not None
