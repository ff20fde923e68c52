"""``sensord watch`` shows what is published under sensord/<node>/tracks (real broker, real CLI)."""

from __future__ import annotations

import json
import subprocess
import sys

import paho.mqtt.client as paho
from conftest import free_port

from sensord.geo import Site
from sensord.tracker.update import TrackStatus, TrackUpdate
from sensord.ui.table import TrackBoard, update_from_payload


def _publish_retained(port: int, messages: dict[str, bytes]) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in messages.items():
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def _track(track_id: str, icao: str, **kw) -> TrackUpdate:
    return TrackUpdate(track_id, 5.0, TrackStatus.CONFIRMED, icao=icao, n_updates=9, **kw)


def test_watch_shows_published_tracks(broker):
    kept = _track(
        "t1",
        "4840D6",
        callsign="KLM1023",
        squawk="7421",
        alt_baro_ft=38000,
        lat_deg=52.3,
        lon_deg=4.9,
    )
    gone = _track("t2", "ABCDEF", callsign="GONE1")
    _publish_retained(
        broker.port,
        {
            "sensord/rx0/tracks/t1": json.dumps(kept.to_dict()).encode(),
            "sensord/rx0/tracks/t2": json.dumps(gone.to_dict()).encode(),
            "sensord/other/tracks/t3": json.dumps(_track("t3", "111111").to_dict()).encode(),
        },
    )
    _publish_retained(broker.port, {"sensord/rx0/tracks/t2": b""})  # dropped: retained cleared
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sensord",
            "watch",
            "--port",
            str(broker.port),
            "--duration",
            "2",
            "--plain",
            "--site",
            "52.0,4.9",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "4840D6 KLM1023 7421 38000" in out.stdout
    assert "33.4" in out.stdout  # distance km from the site
    assert "ABCDEF" not in out.stdout and "111111" not in out.stdout
    assert "1 tracks" in out.stdout


def test_watch_marks_the_states_of_an_offline_node_stale(broker):
    """A node that stopped leaves its last states retained beside an offline status."""
    kept = _track("t1", "4840D6", callsign="KLM1023", lat_deg=52.3, lon_deg=4.9)
    _publish_retained(
        broker.port,
        {
            "sensord/rx0/tracks/t1": json.dumps(kept.to_dict()).encode(),
            "sensord/rx0/status": json.dumps({"state": "offline", "node": "rx0"}).encode(),
        },
    )
    args = ["watch", "--port", str(broker.port), "--duration", "1.5", "--plain"]
    out = subprocess.run(
        [sys.executable, "-m", "sensord", *args], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert "node offline" in out.stdout
    assert "confirmed (stale)" in out.stdout
    _publish_retained(broker.port, {"sensord/rx0/status": b'{"state": "online"}'})
    out = subprocess.run(
        [sys.executable, "-m", "sensord", *args], capture_output=True, text=True, timeout=30
    )
    assert "stale" not in out.stdout and "confirmed" in out.stdout


def test_watch_unreachable_broker_is_one_line_error():
    out = subprocess.run(
        [sys.executable, "-m", "sensord", "watch", "--port", str(free_port()), "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert (
        out.stderr.startswith("sensord watch: error: broker 127.0.0.1:")
        and out.stderr.count("\n") == 1
    )


def test_board_round_trips_payload_and_orders_by_distance():
    board = TrackBoard(Site(52.0, 4.9, 0.0))
    far = _track("a", "AAAAAA", lat_deg=53.0, lon_deg=4.9)
    near = _track("b", "BBBBBB", lat_deg=52.1, lon_deg=4.9)
    board.update(
        [
            update_from_payload(far.to_dict()),
            update_from_payload(near.to_dict()),
            _track("c", "CCCCCC"),
        ]
    )
    assert [r[0] for r in board.rows()] == ["BBBBBB", "AAAAAA", "CCCCCC"]
    assert board.rows()[0][6] == "11.1"
    board.update([TrackUpdate("a", 6.0, TrackStatus.DROPPED)])
    assert [r[0] for r in board.rows()] == ["BBBBBB", "CCCCCC"]
    assert board.rows()[0][8] == "1.0"  # age against the newest update's clock
