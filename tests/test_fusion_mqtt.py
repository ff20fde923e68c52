"""`sensord fuse` on a real mosquitto: receiver nodes (`sensord run`) publish, one or two
fusion workers fuse. The fused picture, bad input on the subscription, a receiver killed
mid-run, and the fusion load split across two workers by shard topics."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace

import numpy as np
import pytest
from conftest import MOSQUITTO, Subscriber, free_port
from fusion_net import fusion_config as fusion_toml
from fusion_net import make_network, node_config
from test_daemon import finish, sensord

from sensord.geo import Site, great_circle_m
from sensord.mlat.synth import modes_only_scenario
from sensord.sim.clock import ReceiverClock
from sensord.sim.network import network_sites, record_network

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="needs mosquitto (MQTT 5)")

WINDOW_S = 3.0  # paced replays start up to 2 s apart in recording time


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    return make_network(
        tmp_path_factory.mktemp("net"), n_receivers=3, n_aircraft=12, duration_s=15.0
    )


def start_nodes(network, broker, tmp_path, **mqtt):
    return start_paced(network.rec, broker, tmp_path, **mqtt)


def start_paced(rec, broker, tmp_path, **mqtt) -> dict:
    """Every receiver's `sensord run --realtime`, each started as late as its recording
    started, so that their UTCs run together as live receivers' do (a paced replay's data
    time starts at its own recording's start)."""
    procs = {}
    t0 = time.monotonic()
    for s in sorted(rec.sites, key=lambda site: site.start_s):
        cfg = node_config(
            tmp_path / f"{s.name}.toml", broker.port, s.site, rec.paths[s.name], s.name, **mqtt
        )
        time.sleep(max(0.0, t0 + s.start_s - time.monotonic()))
        procs[s.name] = sensord("run", "-c", str(cfg), "--realtime")
    return procs


def _lines(sock: socket.socket) -> list[str]:
    """Lines read from ``sock`` until it closes."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    return data.decode(errors="replace").splitlines()


def fused_states(sub: Subscriber, node: str = "fusion") -> list[dict]:
    with sub.lock:
        return [
            json.loads(p)
            for t, p, _ in sub.messages
            if t.startswith(f"sensord/{node}/tracks/") and p
        ]


def last_status(sub: Subscriber, node: str = "fusion") -> dict:
    return json.loads(sub.on(f"sensord/{node}/status")[-1])


def wait_subscribed(sub: Subscriber, node: str = "fusion", timeout_s: float = 30.0) -> None:
    """Until the fusion worker's status says its subscription is up (start-up takes a few
    seconds on a loaded machine; what is published before that is not for it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(b'"subscribed": true' in p for p in sub.on(f"sensord/{node}/status")):
            return
        time.sleep(0.1)
    raise AssertionError(f"fusion worker {node} did not subscribe within {timeout_s} s")


def stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, timeout=60)
    assert code == 0, err
    return err


def test_nodes_and_fusion_over_mosquitto_give_one_consistent_picture(network, broker, tmp_path):
    """The fused picture against truth, bad input on the subscription counted per node, and
    every consumer a receiver has (aircraft.json, SBS, metrics, Home Assistant, watch)
    working from the fusion node."""
    sub = Subscriber(broker.port)
    ha = Subscriber(broker.port, "homeassistant/#")
    sbs_port, metrics_port = free_port(), free_port()
    outputs = {
        "aircraft_json_dir": str(tmp_path / "json"),
        "sbs_port": sbs_port,
        "metrics_port": metrics_port,
        "hass_discovery": True,
    }
    (tmp_path / "json").mkdir()
    cfg = fusion_toml(
        tmp_path / "fuse.toml", broker.port, reorder_window_s=WINDOW_S, outputs=outputs
    )
    web_port = free_port()
    fuse = sensord("fuse", "-c", str(cfg), "--web", f"127.0.0.1:{web_port}")
    wait_subscribed(sub)
    sbs = socket.create_connection(("127.0.0.1", sbs_port), timeout=5)
    sbs.settimeout(None)  # quiet until the nodes start
    sbs_lines: list[str] = []
    reader = threading.Thread(target=lambda: sbs_lines.extend(_lines(sbs)), daemon=True)
    reader.start()
    nodes = start_nodes(network, broker, tmp_path)
    time.sleep(2.0)
    # bad input on the subscription while the nodes run
    bad = Subscriber(broker.port, "unused/#")
    time.sleep(0.5)  # connected

    def send(topic: str, payload: bytes | str) -> None:
        bad.client.publish(topic, payload, qos=1).wait_for_publish(5)

    send("sensord/junk/detections", b"\x00garbage{")
    send("sensord/junk/detections", json.dumps({"schema": 9, "node": "junk"}))
    send(
        "sensord/ghost/detections",
        json.dumps(
            {
                "schema": 2,
                "node": "ghost",
                "utc": 1.0,
                "detections": [{"t_s": 1, "utc": 1.0, "observes": []}],
            }
        ),
    )
    send(
        "sensord/antipode/info",
        json.dumps(
            {
                "schema": 1,
                "node": "antipode",
                "lat_deg": -52.0,
                "lon_deg": -175.5,
                "alt_m": 0.0,
                "clock": {"type": "file", "rate_hz": 2.4e6},
            }
        ),
    )
    send(
        "sensord/nan/info",
        b'{"schema": 1, "node": "nan", "lat_deg": NaN, "lon_deg": 4, "alt_m": 0, "clock": {}}',
    )
    for name, proc in nodes.items():
        code, err = finish(proc)
        assert code == 0, (name, err)
    time.sleep(WINDOW_S + 1.5)
    # the consumers, while the fusion node runs
    aircraft = json.loads((tmp_path / "json" / "aircraft.json").read_text())["aircraft"]
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    picture = json.loads(
        urllib.request.urlopen(f"http://127.0.0.1:{web_port}/data/picture.json", timeout=5).read()
    )
    web_aircraft = json.loads(
        urllib.request.urlopen(f"http://127.0.0.1:{web_port}/data/aircraft.json", timeout=5).read()
    )["aircraft"]
    watch = subprocess.run(
        [sys.executable, "-m", "sensord", "watch", "--port", str(broker.port), "--node", "fusion",
         "--duration", "2", "--plain"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    err = stop(fuse)  # closes the SBS server: the reader sees the end
    reader.join(10)
    sbs.close()
    time.sleep(0.5)
    sub.close()
    bad.close()
    assert "Traceback" not in err
    states = fused_states(sub)
    assert states and all("utc" in s for s in states)
    score = network.score(states)
    alone = network.tracked_alone()
    covered = {i for i, a in score.aircraft.items() if a.errors_m}
    assert len(covered & alone) >= 0.98 * len(alone)
    assert score.id_swaps == 0 and not score.unknown_tracks
    full = json.loads([p for p in sub.on("sensord/fusion/status") if b'"nodes"' in p][-1])
    # the reported radius is a little conservative here (the CV process noise is sized for
    # turns; most of these aircraft fly straight): 99.5-99.6% over MQTT, 96% offline
    assert 0.90 <= score.inside95_fraction() <= 0.997, json.dumps(full)
    # every contributing node named, with the time of its last contribution
    assert {n for s in states for n in s["sensors"]} == {s.name for s in network.rec.sites}
    assert {s["source"] for s in states} == {"adsb"}
    status = last_status(sub)
    assert status["state"] == "offline"  # the last word of a clean stop
    nodes_status = json.loads([p for p in sub.on("sensord/fusion/status") if b'"nodes"' in p][-1])[
        "nodes"
    ]
    assert "junk" in nodes_status, err
    assert nodes_status["junk"]["invalid"] == 2
    assert nodes_status["ghost"]["waiting_info"] == 1
    assert nodes_status["antipode"]["bad_info"] == 1
    assert nodes_status["nan"]["bad_info"] == 1
    for s in network.rec.sites:
        assert nodes_status[s.name]["used"] > 0 and nodes_status[s.name]["invalid"] == 0
    fused_icao = {s["icao"] for s in states}
    assert {a["hex"].upper() for a in aircraft} & fused_icao
    assert any(line.startswith("MSG,3,") and line.split(",")[4] in fused_icao for line in sbs_lines)
    assert re.search(rb'sensord_tracks\{state="confirmed"\} [1-9]', metrics), metrics[:2000]
    ha.close()
    assert any(t.startswith("homeassistant/device_tracker/") for t, _, _ in ha.messages)
    assert {a["hex"].upper() for a in web_aircraft} & fused_icao
    shown = {r["name"] for r in picture["receivers"]}
    assert {s.name for s in network.rec.sites} <= shown, picture["receivers"]
    assert watch.returncode == 0, watch.stderr
    assert any(icao in watch.stdout for icao in fused_icao)


def test_a_receiver_killed_mid_run_hands_its_aircraft_over(network, broker, tmp_path):
    """Aircraft others hear go on under the same track id; those only it heard coast, then
    drop after the configured time; its last will shows it offline in the fusion status."""
    sub = Subscriber(broker.port)
    cfg = fusion_toml(
        tmp_path / "fuse.toml", broker.port, reorder_window_s=WINDOW_S,
        tracker={"coast_after_s": 2.0, "drop_after_s": 4.0},
    )  # fmt: skip
    fuse = sensord("fuse", "-c", str(cfg))
    wait_subscribed(sub)
    nodes = start_nodes(network, broker, tmp_path)
    victim = network.rec.sites[0].name
    deadline = time.monotonic() + 30
    while not sub.on(f"sensord/{victim}/detections") and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(5.0)  # a third of the way through its recording
    nodes[victim].kill()
    killed_at = time.monotonic()
    nodes[victim].wait()
    for name, proc in nodes.items():
        if name != victim:
            assert finish(proc)[0] == 0
    time.sleep(WINDOW_S + 1.0)
    stop(fuse)
    sub.close()
    states = fused_states(sub)
    status = json.loads([p for p in sub.on("sensord/fusion/status") if b'"nodes"' in p][-1])
    assert (
        status["nodes"][victim]["online"] is False
        and status["nodes"][victim]["offline_events"] == 1
    )
    assert time.monotonic() - killed_at > 4.0
    by_icao: dict[str, list[dict]] = {}
    for s in states:
        by_icao.setdefault(s["icao"], []).append(s)
    handed_over = [
        i
        for i in network.tracked_alone()
        if victim in network.heard_by(i) and len(network.heard_by(i)) >= 2
    ]
    only_victim = [i for i in network.tracked_alone() if network.heard_by(i) == [victim]]
    assert handed_over
    for icao in handed_over:
        seq = by_icao[f"{icao:06X}"]
        assert len({s["track_id"] for s in seq}) == 1
        late = [
            s
            for s in seq
            if victim not in s["sensor_last_s"]
            or s["sensor_last_s"][victim] < s["last_update_s"] - 2.0
        ]
        assert late, f"{icao:06X} not updated by the others after the kill"
    cleared = {t.rsplit("/", 1)[1] for t, p, _ in sub.messages if "/fusion/tracks/" in t and not p}
    for icao in only_victim:
        seq = by_icao.get(f"{icao:06X}", [])
        if seq:
            assert "coasting" in {s["status"] for s in seq}
            assert f"{icao:06X}" in cleared


def test_two_workers_split_the_aircraft_by_shard(network, broker, tmp_path):
    """Nodes publish detections/<icao % 2>; worker A takes shard 0, worker B shard 1.
    Each aircraft is tracked by exactly one worker, and together they track every one."""
    sub = Subscriber(broker.port)
    workers = {}
    for name, shard in (("fa", 0), ("fb", 1)):
        cfg = fusion_toml(
            tmp_path / f"{name}.toml", broker.port, reorder_window_s=WINDOW_S, shards=[shard]
        )
        text = cfg.read_text().replace('node = "fusion"', f'node = "{name}"')
        cfg.write_text(text)
        workers[name] = sensord("fuse", "-c", str(cfg))
    for name in workers:
        wait_subscribed(sub, name)
    nodes = start_nodes(network, broker, tmp_path, detection_shards=2)
    for proc in nodes.values():
        assert finish(proc)[0] == 0
    time.sleep(WINDOW_S + 1.0)
    for proc in workers.values():
        stop(proc)
    sub.close()
    picture = {name: {s["icao"] for s in fused_states(sub, name)} for name in workers}
    assert picture["fa"] and picture["fb"]
    assert not picture["fa"] & picture["fb"]
    assert all(int(i, 16) % 2 == 0 for i in picture["fa"])
    assert all(int(i, 16) % 2 == 1 for i in picture["fb"])
    union = {int(i, 16) for i in picture["fa"] | picture["fb"]}
    assert network.tracked_alone() <= union


@pytest.fixture(scope="module")
def mlat_network(tmp_path_factory):
    """Five receivers on a 35 km ring with dongle clocks, Mode S-only aircraft inside."""
    rng = np.random.default_rng(11)
    center = Site(52.0, 5.0, 10.0)
    scenario = modes_only_scenario(
        center, 35e3, rng, n_adsb=20, n_modes=8, n_adsb_inside=6, seed=4, adsb_range_m=80e3
    )
    sites = []
    for k, s in enumerate(network_sites(center, 5, seed=4, ring_km=35)):
        clock = ReceiverClock(
            offset_s=-s.start_s, ppm=float(rng.uniform(-100, 100)), duration_s=25.0, seed=k
        )
        sites.append(replace(s, local_s=clock.local_s))
    rec = record_network(
        scenario, tmp_path_factory.mktemp("mlatnet") / "net", sites, duration_s=15.0, seed=4
    )
    return center, scenario, rec


def test_mode_s_only_aircraft_located_from_sensord_run_nodes(mlat_network, broker, tmp_path):
    """Five `sensord run` nodes publish their frames (one batch per block); `sensord fuse`
    with [fusion] mlat = true syncs their clocks on ADS-B and tracks the Mode S-only
    aircraft under their addresses."""
    center, scenario, rec = mlat_network
    sub = Subscriber(broker.port)
    cfg = fusion_toml(tmp_path / "fuse.toml", broker.port, reorder_window_s=WINDOW_S, mlat=True)
    cfg.write_text(
        cfg.read_text().replace(
            'site = "52.0,4.5,10.0"', f'site = "{center.lat_deg},{center.lon_deg},{center.alt_m}"'
        )
    )
    fuse = sensord("fuse", "-c", str(cfg))
    wait_subscribed(sub)
    nodes = start_paced(rec, broker, tmp_path)
    for proc in nodes.values():
        assert finish(proc)[0] == 0
    time.sleep(WINDOW_S + 1.5)
    stop(fuse)
    sub.close()
    modes_only = {f"{ac.icao:06X}": ac for ac in scenario.aircraft if not ac.adsb}
    errors: dict[str, list[float]] = {}
    for state in fused_states(sub):
        ac = modes_only.get(state["icao"])
        if ac is None or state["lat_deg"] is None or state["utc"] - rec.epoch_utc < 5.0:
            continue
        truth = ac.state_at(state["utc"] - rec.epoch_utc)
        errors.setdefault(state["icao"], []).append(
            float(great_circle_m(state["lat_deg"], state["lon_deg"], truth.lat_deg, truth.lon_deg))
        )
    status = json.loads([p for p in sub.on("sensord/fusion/status") if b'"mlat"' in p][-1])
    assert len(errors) >= 0.75 * len(modes_only), (sorted(errors), status["mlat"])
    assert np.median(np.concatenate([np.array(v) for v in errors.values()])) <= 60.0
    assert all(state["state"] == "synced" for state in status["mlat"]["receivers"].values())
    located = [s for s in fused_states(sub) if s["icao"] in errors and s["status"] == "confirmed"]
    assert located
    assert all(s["source"] == "mlat" and s["h_err95_m"] > 0 for s in located)
