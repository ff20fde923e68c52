"""Radar nodes and a receiver node through `sensord fuse` on a real mosquitto.

One sky: six aircraft with transponders and two without, recorded as Mode S IQ by a
receiver and as two-channel FM IQ by two passive radars that share one transmitter
(`sensord simulate`'s models). `sensord run` and two `sensord radar --mqtt` nodes publish;
`sensord fuse` subscribes. The radars' echoes of the cooperative aircraft update their
ADS-B tracks; what they see of the aircraft without a transponder (and of those whose
transponder gives no position) is published as range-Doppler tracks and, where both
baselines see it, as a located non-cooperative track.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from conftest import MOSQUITTO, Subscriber, free_port
from fusion_net import fusion_config, node_config
from test_daemon import finish, sensord
from test_fusion_mqtt import fused_states, stop, wait_subscribed

from sensord.geo import Site, great_circle_m
from sensord.radar.geometry import Bistatic
from sensord.radar.map_image import PNG_SIGNATURE
from sensord.sim import random_scenario, record
from sensord.sim.radar import RadarScene, load_radar_truth, radar_scene, record_radar

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="needs mosquitto (MQTT 5)")

CENTER = Site(52.0, 4.5, 10.0)
TX = Site(52.2, 4.6, 100.0)
RX = {"r1": Site(52.0, 4.5, 10.0), "r2": Site(51.93, 4.78, 5.0)}
SECONDS = 12.0
START_UTC = 1.75e9
WINDOW_S = 30.0  # nodes replay as fast as they can: all is held, then released in order


@pytest.fixture(scope="module")
def sky(tmp_path_factory):
    d = tmp_path_factory.mktemp("radarsky")
    scenario = random_scenario(6, CENTER, 30e3, seed=11, min_range_m=5e3)
    adsb, _ = record(scenario, d / "adsb", 2.4e6, SECONDS + 1, seed=11, start_utc=START_UTC)
    scene1 = radar_scene(RX["r1"], TX, scenario=scenario, n_dark=2, n_drones=0, seed=11)
    scene2 = replace(scene1, bistatic=Bistatic(TX, RX["r2"], scene1.bistatic.carrier_hz))
    radars = {}
    for node, scene in (("r1", scene1), ("r2", scene2)):
        paths = record_radar(scene, d / node, SECONDS, seed=11)
        radars[node] = (paths[0], load_radar_truth(d / node), scene)
    return scenario, adsb[0], radars


def _radar_node(broker, node: str, path, scene: RadarScene):
    b = scene.bistatic
    return sensord(
        "radar", str(path), "--tx", f"{TX.lat_deg},{TX.lon_deg},{TX.alt_m}",
        "--rx", f"{b.rx.lat_deg},{b.rx.lon_deg},{b.rx.alt_m}", "--fc", str(b.carrier_hz),
        "--start-utc", str(START_UTC), "--mqtt", f"127.0.0.1:{broker.port}", "--node", node,
    )  # fmt: skip


def _echoes_of_tracked(truth: np.ndarray, sub: Subscriber, node: str,
                       tracked_from: dict[int, float]) -> int:  # fmt: skip
    """The node's published detections that are echoes of an aircraft while it had a
    confirmed ADS-B track (``tracked_from``: ICAO -> UTC)."""
    n = 0
    for payload in sub.on(f"sensord/{node}/radar/detections"):
        msg = json.loads(payload)
        rows = truth[(truth["cpi"] == msg["cpi"]) & (truth["kind"] == "aircraft")]
        rows = rows[[tracked_from.get(int(i), np.inf) <= msg["utc"] for i in rows["icao"]]]
        for d in msg["detections"]:
            near = (np.abs(rows["bistatic_range_m"] - d["bistatic_range_m"]) < 300.0) & (
                np.abs(rows["doppler_hz"] - d["doppler_hz"]) < 2.0
            )
            n += bool(near.any())
    return n


def test_radar_and_receiver_nodes_fuse_into_one_picture(sky, broker, tmp_path):
    scenario, adsb, radars = sky
    sub = Subscriber(broker.port)
    cfg = fusion_config(tmp_path / "fuse.toml", broker.port, reorder_window_s=WINDOW_S)
    web_port = free_port()
    fuse = sensord("fuse", "-c", str(cfg), "--web", f"127.0.0.1:{web_port}")
    wait_subscribed(sub)
    rx_cfg = node_config(tmp_path / "rx.toml", broker.port, CENTER, adsb, "adsb1")
    start = datetime.fromtimestamp(START_UTC, UTC).isoformat()
    rx_cfg.write_text(rx_cfg.read_text().replace("[source]", f'[source]\nstart_utc = "{start}"'))
    nodes = [sensord("run", "-c", str(rx_cfg))]
    nodes += [_radar_node(broker, node, path, scene) for node, (path, _, scene) in radars.items()]
    for proc in nodes:
        code, err = finish(proc, timeout=180)
        assert code == 0, err
    time.sleep(1.0)
    # each radar node's latest range-Doppler map reaches the fusion node's web page
    for node in radars:
        url = f"http://127.0.0.1:{web_port}/data/range_doppler/{node}.png"
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.status == 200 and reply.read().startswith(PNG_SIGNATURE)
    stop(fuse)  # flushes the reorder window: everything released in UTC order
    time.sleep(0.5)
    sub.close()
    status = json.loads(sub.on("sensord/fusion/status")[-2])
    assert status.get("final") and "radar" in status, status
    radar = status["radar"]
    states = fused_states(sub)
    # cooperative aircraft: their echoes update their ADS-B tracks (>= 95 %)
    tracked_from = {  # the fusion clock is UTC: an event's t_s is its UTC
        int(e["icao"], 16): e["t_s"] + 1.0  # a second for the first velocity
        for e in map(json.loads, sub.on("sensord/fusion/events"))
        if e["event"] == "confirmed" and e["icao"]
    }
    for node, (_, truth, _) in radars.items():
        s = radar["nodes"][node]
        echoes = _echoes_of_tracked(truth, sub, node, tracked_from)
        assert echoes > 10 and s["cooperative"] >= 0.95 * echoes, (node, echoes, s)
        assert abs(s["bias"]["range_bias_m"]) < 150.0, s["bias"]
        assert status["nodes"][node]["invalid"] == 0
    icaos = {f"{ac.icao:06X}" for ac in scenario.aircraft}
    with_radar = {
        u["icao"] for u in states if u["icao"] in icaos and {"r1", "r2"} & set(u["sensors"])
    }
    assert with_radar, "no ADS-B track took a radar echo"
    # aircraft without a transponder: range-Doppler tracks, then located where both see it
    rd = [u for u in states if u["track_id"].startswith("radar:")]
    assert rd and all(u["non_cooperative"] and u["bistatic"] and u["lat_deg"] is None for u in rd)
    located = [u for u in states if u["track_id"].startswith("R") and u["lat_deg"] is not None]
    assert located, radar
    targets = radars["r1"][2].targets
    nearest_kinds, errors = [], []
    for u in located:
        assert u["non_cooperative"] and u["icao"] is None and u["source"] == "radar"
        t = u["utc"] - START_UTC
        dist = [great_circle_m(u["lat_deg"], u["lon_deg"], s.lat_deg, s.lon_deg)
                for s in (tg.aircraft.state_at(t) for tg in targets)]  # fmt: skip
        k = int(np.argmin(dist))
        errors.append(dist[k])
        nearest_kinds.append((targets[k].kind, targets[k].aircraft.icao, u["track_id"]))
    # each is a real target the receiver has no position of (no ghosts), within 500 m
    assert max(errors) < 500.0, (errors, nearest_kinds, radar)
    assert not [
        icao for kind, icao, _ in nearest_kinds if kind == "aircraft" and icao in tracked_from
    ]
    assert "dark" in {kind for kind, _, _ in nearest_kinds}, nearest_kinds
