"""Watched zones: membership (circle, polygon, altitude band, non-cooperative only), the
enter/leave events, their config errors, and the daemon publishing them on MQTT with
their counts in the metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import SITE, Subscriber, free_port

from sensord.config import parse
from sensord.errors import UserError
from sensord.sim import random_scenario, simulate, write_recording
from sensord.tracker.update import TrackStatus, TrackUpdate
from sensord.web.zones import Zone, ZoneWatcher, parse_zones


def _at(lat, lon, alt=2000.0, t=0.0, track="t1", status=TrackStatus.CONFIRMED, **kw):
    return TrackUpdate(
        track_id=track, t_s=t, status=status, lat_deg=lat, lon_deg=lon, alt_baro_ft=alt, **kw
    )


def test_circle_enter_and_leave_with_altitude_band():
    zone = Zone("field", center_deg=(52.0, 4.5), radius_m=5000.0, alt_max_ft=3000.0)
    watcher = ZoneWatcher([zone])
    assert watcher.update([_at(52.2, 4.5, icao="ABC123")]) == []  # 22 km north: outside
    (enter,) = watcher.update([_at(52.03, 4.5, t=1.0, icao="ABC123")])  # 3.3 km: inside
    assert enter.event == "zone_enter" and enter.zone == "field" and enter.icao == "ABC123"
    assert watcher.update([_at(52.03, 4.51, t=2.0)]) == []  # still inside: no event
    (leave,) = watcher.update([_at(52.03, 4.51, alt=3500.0, t=3.0)])  # climbed out of the band
    assert leave.event == "zone_leave"
    watcher.update([_at(52.0, 4.5, t=4.0)])
    (dropped,) = watcher.update([_at(None, None, t=5.0, status=TrackStatus.DROPPED)])
    assert dropped.event == "zone_leave"  # a dropped track leaves every zone
    assert watcher.counts.entered == {"field": 2} and watcher.counts.left == {"field": 2}
    payload = enter.to_dict()
    assert payload["event"] == "zone_enter" and payload["zone"] == "field"
    assert payload["source"] == "adsb" and payload["schema"] == 1


def test_polygon_membership_and_noncooperative_only():
    square = ((51.9, 4.4), (51.9, 4.6), (52.1, 4.6), (52.1, 4.4))
    zone = Zone("box", polygon_deg=square, noncooperative_only=True)
    assert zone.contains(52.0, 4.5, None) and not zone.contains(52.0, 4.7, None)
    assert not zone.contains(52.15, 4.5, None)
    watcher = ZoneWatcher([zone])
    assert watcher.update([_at(52.0, 4.5, icao="ABC123")]) == []  # has a transponder
    (e,) = watcher.update([_at(52.0, 4.5, track="r1", source="radar")])
    assert e.event == "zone_enter" and e.source == "radar" and watcher.inside("box") == {"r1"}


def test_zone_config_errors_name_the_zone():
    ok = parse_zones(
        {"a": {"center": [52.0, 4.0], "radius_m": 100}, "b": {"polygon": [[1, 2]] * 3}}
    )
    assert [z.name for z in ok] == ["a", "b"]
    bad = [
        ({"a": {"radius_m": 5}}, "needs center"),
        ({"a": {"center": [52, 4], "radius_m": 5, "polygon": [[1, 2]] * 3}}, "either"),
        ({"a": {"polygon": [[1, 2], [3, 4]]}}, "3 or more"),
        ({"a": {"center": [95, 4], "radius_m": 5}}, "out of range"),
        ({"a": {"center": [5, 4], "radius_m": 5, "alt_min_ft": 9, "alt_max_ft": 1}}, "above"),
        ({"a": {"center": [5, 4], "radius_m": 5, "colour": "red"}}, "unknown key 'colour'"),
        ({"a": {"center": [5, 4], "radius_m": 5, "noncooperative_only": 1}}, "true or false"),
        ({"a": 3}, "must be a table"),
    ]
    for section, text in bad:
        with pytest.raises(UserError, match=r"\[zones\.a\]") as err:
            parse_zones(section)
        assert text in str(err.value)
    with pytest.raises(UserError, match="zones"):
        parse("[receiver]\nlat_deg = 1\nlon_deg = 2\n[zones]\nx = 1\n")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    res = simulate(random_scenario(6, SITE, max_range_m=150e3, seed=4), 2.4e6, 10.0, seed=4)
    stem = tmp_path_factory.mktemp("rec") / "rec"
    write_recording(res, stem)
    return stem.with_suffix(".cu8")


def test_daemon_publishes_zone_events_and_counts_them(broker, tmp_path, recording):
    metrics_port = free_port()
    config = tmp_path / "sensord.toml"
    config.write_text(f"""
[receiver]
lat_deg = {SITE.lat_deg}
lon_deg = {SITE.lon_deg}
[source]
spec = "{recording}"
realtime = true
[mqtt]
port = {broker.port}
protocol = {broker.protocol}
node = "z1"
[outputs]
metrics_port = {metrics_port}
[web]
listen = "127.0.0.1:{free_port()}"
[zones.everything]
center = [{SITE.lat_deg}, {SITE.lon_deg}]
radius_m = 400000.0
[zones.radar_only]
center = [{SITE.lat_deg}, {SITE.lon_deg}]
radius_m = 400000.0
noncooperative_only = true
""")
    sub = Subscriber(broker.port)
    time.sleep(0.3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensord", "run", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        scraped = ""
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as r:
                    scraped = r.read().decode()
            except OSError:
                continue
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)
    sub.close()
    assert proc.returncode == 0, err
    events = [json.loads(p) for p in sub.on("/z1/events")]
    zone_events = [e for e in events if e["event"].startswith("zone_")]
    entered = {e["icao"] for e in zone_events if e["event"] == "zone_enter"}
    assert len(entered) >= 4 and all(e["zone"] == "everything" for e in zone_events)
    assert 'sensord_zone_events_total{event="zone_enter",zone="everything"}' in scraped
    assert 'sensord_zone_tracks{zone="radar_only"} 0.0' in scraped
    assert "sensord_web_pages 0.0" in scraped and "sensord_web_messages_dropped_total" in scraped
    assert "air picture on http://127.0.0.1:" in err  # the address, at the default level
