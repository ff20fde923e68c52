"""Metrics scraped over real HTTP from the Prometheus endpoint."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from sensord.errors import UserError
from sensord.frames import frames_from_hex
from sensord.metrics import SensorMetrics
from sensord.tracker.update import TrackStatus, TrackUpdate


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_scraped_over_http():
    m = SensorMetrics()
    port = m.serve(0)
    frames = frames_from_hex(
        ["8D4840D6202CC371C32CE0576098", "8D40621D58C382D690C8AC2863A7", "5D484FDEA248F5"]
    )
    frames["corrected_bits"] = [0, 1, 0]
    frames["signal_dbfs"] = [-12.0, -2.0, -33.0]
    m.observe_samples(2_000_000)
    m.observe_frames(frames)
    m.queue_depth.labels(queue="frames").set(3)
    m.drops.labels(stage="source").inc(5)
    t1 = TrackUpdate("a", 1.0, TrackStatus.CONFIRMED)
    t2 = TrackUpdate("b", 1.0, TrackStatus.TENTATIVE)
    m.observe_updates([t1, t2], [120_000.0, None])
    m.observe_updates([TrackUpdate("b", 2.0, TrackStatus.DROPPED)], [80_000.0])
    v = _scrape(port)
    assert v["sensord_samples_total"] == 2_000_000
    assert v['sensord_frames_total{df="17"}'] == 2 and v['sensord_frames_total{df="11"}'] == 1
    assert v['sensord_corrected_frames_total{bits="1"}'] == 1
    assert (
        v['sensord_tracks{state="confirmed"}'] == 1 and v['sensord_tracks{state="tentative"}'] == 0
    )
    assert v["sensord_max_range_m"] == 120_000.0
    assert (
        v['sensord_queue_depth{queue="frames"}'] == 3
        and v['sensord_drops_total{stage="source"}'] == 5
    )
    assert v["sensord_signal_dbfs_count"] == 3 and v['sensord_signal_dbfs_bucket{le="-30.0"}'] == 1


def test_metrics_port_in_use_is_one_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(UserError, match="cannot listen"):
            SensorMetrics().serve(s.getsockname()[1])
