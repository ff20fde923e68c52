"""A node whose UTC is wrong, through the Fuser as the fusion service clocks it: refused,
counted under ``clock``, one WARNING, its offset in the status, the other nodes' picture
untouched; recovery when its clock comes back; jitter within the limit accepted; the
reorder window's hold on one node's detections capped."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable

import jsonschema
import numpy as np
import pytest
from conftest import Subscriber
from fusion_net import CENTER
from fusion_net import fusion_config as fusion_toml
from test_daemon import schema, sensord
from test_fusion_mqtt import stop, wait_subscribed

from sensord.detections import POSITION, Detection
from sensord.fusion.fuser import Fuser, FusionConfig
from sensord.fusion.service import DataClock
from sensord.fusion.wire import NodeInfo, batch_json

UTC0 = 1_796_040_000.0
WINDOW_S = 1.0
TICK_S = 0.05  # the service's tick
EVERY_S = 0.5  # each node publishes a batch this often
LATENCY_S = 0.05  # a batch's detection is this old when it reaches the fusion node
SHARED, OWN = 0xA00001, 0xC00000  # every node hears SHARED; node k also OWN + k
SPEED_MPS = 200.0


def detections(node_index: int, t_s: float, utc: float, k: int) -> list[Detection]:
    """What node ``node_index`` measured ``t_s`` into the scenario and stamped ``utc``: the
    shared aircraft (the same reply as every other node's) and its own aircraft."""
    out = []
    for icao, lat in ((SHARED, 52.1), (OWN + node_index, 51.8 + 0.1 * node_index)):
        east_m = SPEED_MPS * t_s
        z = CENTER.to_enu(lat, 4.5, 9000.0) + np.array([east_m, 0.0, 0.0])
        frame = icao.to_bytes(3, "big") + k.to_bytes(4, "big") + bytes(7)
        d = Detection(utc - UTC0, "x", POSITION, z, np.diag([100.0] * 3), icao=icao,
                      source="adsb-pos", utc=utc, frame=frame, signal_dbfs=-10.0)  # fmt: skip
        out.append(d)
    return out


def live(
    offsets: dict[str, Callable[[float], float]],
    duration_s: float = 20.0,
    host_utc: float = UTC0,
    **config,
) -> Fuser:
    """Nodes publishing as live ones do, each with its UTC off by ``offsets[node](t)`` at
    wall time ``t``; the fusion node clocked as the service clocks it (``DataClock``: this
    host's UTC, ``host_utc`` at the start, then the newest UTC taken, advanced by wall
    time) and stepped every tick."""
    wall = [0.0]
    clock = DataClock(wall=lambda: wall[0])
    clock.restart(host_utc)
    fuser = Fuser(FusionConfig(site=CENTER, reorder_window_s=WINDOW_S, **config))
    fuser.on_clock_restart = clock.restart
    fuser.step(clock.now())
    for node in offsets:
        fuser.node_info(node, NodeInfo(node, 52.0, 4.5, 10.0).to_dict())
    per_batch = round(EVERY_S / TICK_S)
    for i in range(round(duration_s / TICK_S)):
        wall[0] = t = i * TICK_S
        if i % per_batch == 0:
            true_utc = UTC0 + t - LATENCY_S
            for n, (node, offset) in enumerate(offsets.items()):
                utc = true_utc + offset(t)
                dets = detections(n, true_utc - UTC0, utc, i)
                fuser.ingest(node, batch_json(node, utc, dets))
                clock.seen(fuser.newest_utc)
        fuser.step(clock.now())
    return fuser


def on_time(_t: float) -> float:
    return 0.0


def tracked(fuser: Fuser) -> dict[int, float]:
    """ICAO address -> the time of its track's state (UTC)."""
    assert fuser.tracker is not None
    return {t.icao: t.t_s for t in fuser.tracker.tracks.values() if t.icao is not None}


def clock_warnings(caplog, node: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage().startswith(f"node {node}: UTC")
    ]


@pytest.mark.parametrize(("offset_s", "side"), [(30.0, "ahead of"), (-30.0, "behind")])
def test_a_node_with_a_wrong_clock_is_refused_and_spares_the_others(caplog, offset_s, side):
    caplog.set_level(logging.INFO)
    fuser = live({"a": on_time, "b": on_time, "c": lambda _t: offset_s})
    nodes = fuser.statistics()["nodes"]
    sent = nodes["c"]["detections_in"]
    assert nodes["c"]["used"] == 0 and nodes["c"]["clock_fault"] is True
    assert nodes["c"]["clock_offset_s"] == pytest.approx(offset_s, abs=0.2)
    # refused as clock; behind, the few batches before the median turned were late
    assert nodes["c"]["clock"] + nodes["c"]["late"] == sent
    assert nodes["c"]["clock"] >= sent - 4 * 2
    (warning,) = clock_warnings(caplog, "c")
    assert f"UTC 30.0 s {side} the fusion clock" in warning and "refused" in warning
    for node in ("a", "b"):
        assert nodes[node]["late"] == nodes[node]["clock"] == 0
        assert nodes[node]["clock_fault"] is False
        assert abs(nodes[node]["clock_offset_s"]) < 0.2
        assert not clock_warnings(caplog, node)
    # the picture: the others' aircraft, on time; nothing of c's
    tracks = tracked(fuser)
    assert set(tracks) == {SHARED, OWN, OWN + 1}
    assert all(abs(t_s - (UTC0 + 20.0)) < 2.0 for t_s in tracks.values())
    assert fuser.released_utc < UTC0 + 20.0


def test_a_clock_that_comes_back_is_used_again(caplog):
    caplog.set_level(logging.INFO)
    fuser = live({"a": on_time, "b": on_time, "c": lambda t: 30.0 if t < 8.0 else 0.0})
    nodes = fuser.statistics()["nodes"]
    assert nodes["c"]["clock_fault"] is False and abs(nodes["c"]["clock_offset_s"]) < 0.2
    assert 0 < nodes["c"]["clock"] <= 2 * (16 + 5)  # 16 batches off, 5 to turn the median
    assert nodes["c"]["used"] > 0 and nodes["c"]["late"] == 0
    assert len(clock_warnings(caplog, "c")) == 1
    recovered = [r for r in caplog.records if "agrees with the fusion clock again" in r.message]
    assert len(recovered) == 1 and recovered[0].levelno == logging.INFO
    assert OWN + 2 in tracked(fuser)


def test_jitter_within_the_limit_is_accepted():
    rng = np.random.default_rng(7)
    steady = {"a": 0.5, "b": 0.0, "c": 0.0}  # a is half a second ahead, within the limit
    jitter = {n: (lambda _t, s=s: s + rng.uniform(-0.3, 0.3)) for n, s in steady.items()}
    fuser = live(jitter)
    nodes = fuser.statistics()["nodes"]
    for node in "abc":
        assert nodes[node]["clock"] == nodes[node]["late"] == 0
        assert nodes[node]["used"] > 0 and nodes[node]["clock_fault"] is False
    assert set(tracked(fuser)) == {SHARED, OWN, OWN + 1, OWN + 2}


def test_one_batch_delayed_is_late_not_a_clock_fault(caplog):
    """A batch delivered 5 s late (a broker's redelivery): late, and no clock fault."""
    caplog.set_level(logging.INFO)
    fuser = live({"a": on_time, "b": lambda t: -5.0 if 5.0 <= t < 5.1 else 0.0, "c": on_time})
    b = fuser.statistics()["nodes"]["b"]
    assert b["late"] == 2 and b["clock"] == 0 and not b["clock_fault"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "UTC" in r.message]


def test_one_node_cannot_fill_the_reorder_window():
    """Detections ahead of the fusion clock (within the limit) are held until it reaches
    them: at most ``max_held_per_node`` of one node's; the rest are counted as overflow."""
    fuser = Fuser(FusionConfig(site=CENTER, reorder_window_s=WINDOW_S, max_held_per_node=10))
    for node in ("a", "b"):
        fuser.node_info(node, NodeInfo(node, 52.0, 4.5, 10.0).to_dict())
    fuser.step(UTC0)
    flood = [d for k in range(10) for d in detections(0, 0.0, UTC0 + 1.5 + k * 0.01, k)]
    assert fuser.ingest("a", batch_json("a", UTC0 + 1.6, flood)) == 10
    assert fuser.ingest("b", batch_json("b", UTC0, detections(1, 0.0, UTC0, 99))) == 2
    nodes = fuser.statistics()["nodes"]
    assert nodes["a"]["overflow"] == 10 and nodes["a"]["held"] == 10
    assert nodes["b"]["overflow"] == 0 and nodes["b"]["held"] == 2
    fuser.step(UTC0 + 5.0)
    nodes = fuser.statistics()["nodes"]
    assert nodes["a"]["held"] == nodes["b"]["held"] == 0
    assert fuser.ingest("a", batch_json("a", UTC0 + 4.5, detections(0, 0.0, UTC0 + 4.5, 7)))


def test_without_a_clock_nothing_is_judged():
    """Before the fuser is first stepped (or when it never is), no offset is measured."""
    fuser = Fuser(FusionConfig(site=CENTER, reorder_window_s=WINDOW_S))
    fuser.node_info("a", NodeInfo("a", 52.0, 4.5, 10.0).to_dict())
    assert fuser.ingest("a", batch_json("a", UTC0 + 30, detections(0, 0.0, UTC0 + 30, 1)))
    fuser.step(-math.inf)
    status = fuser.statistics()["nodes"]["a"]
    assert status["clock_offset_s"] is None and status["clock"] == 0


def test_nodes_that_all_disagree_with_this_host_move_the_clock(caplog):
    """A replay of old recordings over MQTT (or this host's clock off): no node agrees with
    the fusion clock before anything was taken; it moves to theirs, nothing is refused."""
    caplog.set_level(logging.INFO)
    year_s = 365 * 86400.0
    fuser = live({"a": on_time, "b": on_time, "c": on_time}, host_utc=UTC0 + year_s)
    nodes = fuser.statistics()["nodes"]
    (moved,) = [r.getMessage() for r in caplog.records if "fusion clock: moved" in r.message]
    assert f"{-year_s:+.1f} s to node a's UTC" in moved
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    for node in "abc":  # what came before the clock moved waited for it: nothing lost
        assert nodes[node]["late"] == nodes[node]["clock"] == 0
        assert nodes[node]["used"] == nodes[node]["detections_in"] - nodes[node]["duplicates"]
        assert abs(nodes[node]["clock_offset_s"]) < 0.2 and not nodes[node]["clock_fault"]
    assert set(tracked(fuser)) == {SHARED, OWN, OWN + 1, OWN + 2}


def test_the_fusion_service_refuses_a_node_ahead_and_names_it(broker, tmp_path):
    """``sensord fuse`` on mosquitto, live: a node 30 s ahead of this host (publishing
    first) is refused, warned about once, shown with its offset; the other is fused."""
    sub = Subscriber(broker.port)
    fuse = sensord("fuse", "-c", str(fusion_toml(tmp_path / "fuse.toml", broker.port)))
    wait_subscribed(sub)
    pub = Subscriber(broker.port, "unused/#")
    time.sleep(0.5)  # connected

    def send(topic: str, payload: str, retain: bool = False) -> None:
        pub.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    nodes = {"bad": 30.0, "good": 0.0}
    for node in nodes:
        send(f"sensord/{node}/info", json.dumps(NodeInfo(node, 52.0, 4.5, 10.0).to_dict()), True)
    t0 = time.time()
    k = 0
    while (t := time.time() - t0) < 6.0:
        for n, (node, offset_s) in enumerate(nodes.items()):
            utc = t0 + t - LATENCY_S + offset_s
            send(f"sensord/{node}/detections", batch_json(node, utc, detections(n, t, utc, k)))
        k += 1
        time.sleep(0.1)
    time.sleep(2.5)  # a status with the last counts
    err = stop(fuse)
    pub.close()
    sub.close()
    assert "Traceback" not in err
    warnings = re.findall(r"node bad: UTC (\S+) s ahead of the fusion clock", err)
    assert len(warnings) == 1 and abs(float(warnings[0]) - 30.0) < 0.5, err
    assert "node good: UTC" not in err
    status = [json.loads(p) for p in sub.on("sensord/fusion/status") if b'"nodes"' in p][-1]
    jsonschema.validate(status, schema("status"))
    bad, good = status["nodes"]["bad"], status["nodes"]["good"]
    assert bad["clock_fault"] is True and abs(bad["clock_offset_s"] - 30.0) < 0.5
    assert bad["used"] == 0 and bad["clock"] == bad["detections_in"] > 0
    assert good["used"] > 0 and good["clock"] == good["late"] == 0
    assert abs(good["clock_offset_s"]) < 0.5
    tracked_icao = {
        json.loads(p)["icao"] for t, p, _ in sub.messages if "/fusion/tracks/" in t and p
    }
    assert tracked_icao == {f"{SHARED:06X}", f"{OWN + 1:06X}"}


def test_mlat_frames_are_used_before_the_clock_stands():
    """MLAT syncs on the frames' 12 MHz counters: at a replay's start, while no message was
    taken and the clock may still move, every node's frames count (refusing them held MLAT's
    clock sync back and cost test_fusion_mqtt's Mode S-only aircraft their accuracy)."""
    year_s = 365 * 86400.0
    fuser = Fuser(FusionConfig(site=CENTER, reorder_window_s=WINDOW_S))
    fuser.step(UTC0 - year_s)  # this host's clock, a year before the recordings
    fuser.node_info("a", NodeInfo("a", 52.0, 4.5, 10.0).to_dict())
    assert fuser.clock_agrees("a", UTC0)
    moved = live({"a": on_time, "b": on_time}, host_utc=UTC0)  # now the clock stands
    assert moved.clock_agrees("a", UTC0 + 20.0)  # live() ran 20 s
    assert not moved.clock_agrees("a", UTC0 + 60.0)  # too far ahead of it
