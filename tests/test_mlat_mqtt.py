"""MLAT in ``sensord fuse -c`` on a real mosquitto: five nodes publish their info and frames
(schema 2, one message per block; synthetic from truth, ``sensord.mlat.synth``), the
fusion worker (``[fusion] mlat = true``) syncs their clocks, locates the Mode S-only
aircraft and publishes them as fused tracks; garbage on a frames topic is counted."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from conftest import MOSQUITTO, Subscriber
from fusion_net import fusion_config
from test_daemon import sensord
from test_fusion_mqtt import fused_states, last_status, stop, wait_subscribed

from sensord.fusion.wire import NodeInfo
from sensord.geo import Site, great_circle_m
from sensord.mlat.synth import (
    UTC0,
    batch_payload,
    modes_only_heard,
    modes_only_scenario,
    network_radius_m,
    ring_of_receivers,
    synth_network,
)

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="needs mosquitto (MQTT 5)")

SECONDS = 40.0


def test_mode_s_only_tracks_from_nodes_frames_over_mosquitto(broker, tmp_path) -> None:
    import fusion_net

    center: Site = fusion_net.CENTER
    rng = np.random.default_rng(21)
    receivers = ring_of_receivers(center, 5, rng, duration_s=SECONDS)
    scenario = modes_only_scenario(center, network_radius_m(center, receivers), rng, seed=21)
    net = synth_network(scenario, receivers, SECONDS, seed=21)
    sub = Subscriber(broker.port)
    fuse = sensord("fuse", "-c", str(fusion_config(tmp_path / "fuse.toml", broker.port, mlat=True)))
    try:
        wait_subscribed(sub)
        nodes = Subscriber(broker.port, "unused/#")
        time.sleep(0.5)

        def send(topic: str, payload: str | bytes, retain: bool = False) -> None:
            nodes.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

        for r in receivers:
            s = r.reported
            info = NodeInfo(r.node, s.lat_deg, s.lon_deg, s.alt_m, "rtlsdr", 2.4e6)
            send(f"sensord/{r.node}/info", json.dumps(info.to_dict()), retain=True)
        send("sensord/junk/frames", b"\x00not json")
        start = time.monotonic()
        for node, batch in net.batches:  # at 4x real time, in each node's order
            ahead = (batch.utc - UTC0) / 4.0 - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
            send(f"sensord/{node}/frames", batch_payload(node, batch))
        time.sleep(3.0)
        status = last_status(sub)
    finally:
        stop(fuse)
    states = fused_states(sub)
    modes_only = {f"{ac.icao:06X}": ac for ac in scenario.aircraft if not ac.adsb}
    errs: dict[str, list[float]] = {}
    for st in states:
        icao = st.get("icao")
        if icao in modes_only and st.get("lat_deg") is not None and "mlat" in st["sensors"]:
            t = st["utc"] - UTC0
            if t > 10.0:
                truth = modes_only[icao].state_at(t)
                d = great_circle_m(st["lat_deg"], st["lon_deg"], truth.lat_deg, truth.lon_deg)
                errs.setdefault(icao, []).append(float(d))
    heard = {f"{icao:06X}" for icao in modes_only_heard(net, 4)}
    assert len(heard) >= 15
    assert len(set(errs) & heard) >= 0.9 * len(heard)
    all_errs = np.concatenate([np.array(v) for v in errs.values()])
    assert np.median(all_errs) <= 60.0 and math.isfinite(float(np.median(all_errs)))
    mlat = status["mlat"]
    assert all(r["state"] == "synced" for r in mlat["receivers"].values())
    assert mlat["counters"]["mlat_solutions"] > 100
    assert mlat["invalid_payloads"] == {"junk": 1}
