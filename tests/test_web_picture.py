"""The page's state (``AirPicture``): trails, events, coverage, the push throttle, drops."""

from __future__ import annotations

from sensord.tracker.update import TrackStatus, TrackUpdate
from sensord.web.picture import COVERAGE_BINS, AirPicture, Receiver


def _u(t: float, lat: float = 52.5, status=TrackStatus.CONFIRMED, track="A1") -> TrackUpdate:
    return TrackUpdate(track, t, status, lat_deg=lat, lon_deg=4.5, icao="ABCDEF", sensors=("rx",))


def test_trail_events_coverage_and_throttle():
    picture = AirPicture([Receiver("rx", 52.0, 4.5)], local="rx")
    picture.apply([_u(0.0, status=TrackStatus.TENTATIVE)], wall_s=100.0)
    for i in range(1, 20):  # 10 updates a second for 2 s
        picture.apply([_u(i * 0.1, lat=52.5 + i * 0.001)], wall_s=100.0 + i * 0.1)
    view = picture.tracks["A1"]
    assert len(view.trail) == 2  # one point per second of the track's clock
    assert [e["event"] for e in view.events] == ["new", "confirmed"]
    north = picture.receivers["rx"].coverage_m[0]  # due north: the first 10-degree sector
    assert 56_000 < north < 58_000 and sum(picture.receivers["rx"].coverage_m[1:]) == 0
    assert len(picture.receivers["rx"].coverage_m) == COVERAGE_BINS
    first, dropped = picture.due(wall_s=102.0)
    assert [d["track_id"] for d in first] == ["A1"] and dropped == []
    picture.apply([_u(2.1)], wall_s=102.1)
    assert picture.due(wall_s=102.5) == ([], [])  # within a second of the last push
    assert [d["t_s"] for d in picture.due(wall_s=103.0)[0]] == [2.1]
    picture.apply([_u(2.2, status=TrackStatus.COASTING)], wall_s=103.1)
    assert picture.due(wall_s=103.2)[0][0]["status"] == "coasting"  # a change goes at once
    picture.apply([_u(3.0, status=TrackStatus.DROPPED)], wall_s=103.3)
    assert picture.due(wall_s=103.4) == ([], ["A1"]) and not picture.tracks
    assert picture.receiver_dicts(103.4)[0]["online"]
    assert not picture.receiver_dicts(110.0)[0]["online"]  # no step for 5 s


def test_zone_event_before_the_track_is_kept_for_it():
    picture = AirPicture([])
    picture.add_event("B2", {"event": "zone_enter", "zone": "z", "t_s": 1.0})
    picture.apply([_u(1.0, track="B2")], wall_s=0.0)
    assert [e["event"] for e in picture.tracks["B2"].events] == ["new", "zone_enter"]
    snapshot = picture.snapshot(0.0)
    assert (
        snapshot["tracks"][0]["trail"] == [[52.5, 4.5]] and snapshot["tracks"][0]["hex"] == "abcdef"
    )


def test_radar_receiver_carries_its_transmitter():
    radar = Receiver("radar1", 51.9, 4.3, kind="radar", tx_lat_deg=52.05, tx_lon_deg=4.2)
    assert radar.to_dict(0.0)["tx"] == [52.05, 4.2]
    assert Receiver("rx0", 52.0, 4.5).to_dict(0.0)["tx"] is None
