"""Home Assistant discovery messages, published to a real broker and read back."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as paho
from conftest import Subscriber

from sensord.outputs.hass import HassDiscovery
from sensord.tracker.update import TrackStatus, TrackUpdate


def _u(track_id: str, icao: str, status=TrackStatus.CONFIRMED, **kw) -> TrackUpdate:
    pos = {"lat_deg": 52.1, "lon_deg": 4.6, "h_err95_m": 45.0, "alt_baro_ft": 12000}
    pos.update(kw)
    return TrackUpdate(track_id, 1.0, status, icao=icao, callsign="KLM1", **pos)


def test_discovery_capped_published_and_removed(broker):
    hass = HassDiscovery("rx0", max_trackers=2)
    msgs = hass.messages(
        [
            _u("t0", "000001", TrackStatus.TENTATIVE),  # not confirmed: no entity
            _u("t1", "4840D6"),
            _u("t2", "ABCDEF"),
            _u("t3", "111111"),  # over the cap
            _u("t4", "222222", lat_deg=None, lon_deg=None),  # no position
        ]
    )
    msgs += hass.messages(
        [
            _u("t1", "4840D6", TrackStatus.COASTING, lat_deg=52.2),
            _u("t2", "ABCDEF", TrackStatus.DROPPED),
        ]
    )
    assert hass.over_cap == 1
    sub = Subscriber(broker.port, "#")
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    for topic, payload, retain in msgs:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    time.sleep(0.5)
    client.loop_stop()
    client.disconnect()
    sub.close()
    got = [(t, p) for t, p, _ in sub.messages]
    configs = [(t, p) for t, p in got if t.endswith("/config")]
    assert [t for t, _ in configs] == [
        "homeassistant/device_tracker/sensord_rx0_4840d6/config",
        "homeassistant/device_tracker/sensord_rx0_abcdef/config",
        "homeassistant/device_tracker/sensord_rx0_abcdef/config",
    ]
    config = json.loads(configs[0][1])
    assert (
        config["json_attributes_topic"] == "sensord/rx0/hass/4840d6/attributes"
        and config["source_type"] == "gps"
    )
    assert configs[2][1] == b""  # the dropped track's entity removed
    attrs = [json.loads(p) for t, p in got if t == "sensord/rx0/hass/4840d6/attributes"]
    assert [a["latitude"] for a in attrs] == [52.1, 52.2] and attrs[0]["gps_accuracy"] == 45.0
    assert not any("111111" in t or "222222" in t or "000001" in t for t, _ in got)


def test_discovery_honours_the_topic_prefix_and_follows_the_node_status():
    hass = HassDiscovery("north", topic_prefix="acme")
    msgs = hass.messages([_u("t1", "4840D6")])
    topics = [t for t, _, _ in msgs]
    assert topics == [
        "homeassistant/device_tracker/sensord_north_4840d6/config",
        "acme/north/hass/4840d6/attributes",
    ]
    config = json.loads(msgs[0][1])
    assert config["json_attributes_topic"] == "acme/north/hass/4840d6/attributes"
    # availability: the node's retained status, offline also its last will
    assert config["availability_topic"] == "acme/north/status"
    assert config["payload_available"] == "online"
    assert config["payload_not_available"] == "offline"
    assert config["availability_template"] == "{{ value_json.state }}"
