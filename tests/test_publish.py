"""The MQTT publisher on its own, against real brokers: retained state, rate limit, clearing,
bounded stream queue, MQTT 5 (mosquitto) and MQTT 3.1.1 (mosquitto and amqtt)."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import tracemalloc
from pathlib import Path

import aiomqtt
import jsonschema
import pytest
from conftest import MOSQUITTO, Mosquitto, Subscriber, free_port, wait_port

from sensord.publish.mqtt import MqttSettings, Publisher
from sensord.tracker.update import TrackStatus, TrackUpdate

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schema"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.v1.json").read_text())


def update(t_s: float, status=TrackStatus.CONFIRMED, alt_baro_ft=10000.0) -> TrackUpdate:
    return TrackUpdate(
        track_id="4840D6",
        t_s=t_s,
        status=status,
        lat_deg=52.1,
        lon_deg=4.6,
        alt_baro_ft=alt_baro_ft,
        gs_kt=400.0,
        track_deg=90.0,
        icao="4840D6",
        n_updates=int(t_s * 10),
        sensors=("rx0",),
    )


async def collect(port: int, protocol, seconds: float, topic: str = "sensord/#") -> list:
    """Every message a fresh subscriber receives within ``seconds`` (retained ones first)."""
    got = []
    async with aiomqtt.Client("127.0.0.1", port, protocol=protocol) as sub:
        await sub.subscribe(topic, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for m in sub.messages:
                    got.append((str(m.topic), m.payload.decode(), m.retain))
    return got


async def drained(pub: Publisher) -> None:
    while pub.pending():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)


async def publish_track_life(port: int, protocol: int) -> tuple[list, list, list]:
    """One track's life through a publisher; what a live subscriber saw, then a late one."""
    aio_protocol = aiomqtt.ProtocolVersion.V5 if protocol == 5 else aiomqtt.ProtocolVersion.V311
    pub = Publisher(MqttSettings(port=port, protocol=protocol, rate_limit_s=1.0))
    live = asyncio.create_task(collect(port, aio_protocol, 3.0))
    await asyncio.sleep(0.3)
    runner = asyncio.create_task(pub.run(stats_interval_s=60))
    life = [
        update(0.0, TrackStatus.TENTATIVE),  # new: published
        update(0.3, TrackStatus.TENTATIVE),  # within a second, unchanged: held back
        update(0.5),  # status changed: published
        update(0.7, alt_baro_ft=11000.0),  # climbed 1000 ft: published
        update(0.9, alt_baro_ft=11050.0),  # held back
        update(1.8, alt_baro_ft=11100.0),  # a second later: published
    ]
    for u in life:
        pub.track_updates([u])
        await drained(pub)
    mid_life = await collect(port, aio_protocol, 0.5, "sensord/rx0/tracks/#")
    pub.track_updates([update(2.5, TrackStatus.DROPPED)])
    await drained(pub)
    await pub.stop()
    await runner
    late = await collect(port, aio_protocol, 0.5)
    return await live, mid_life, late


@pytest.mark.parametrize("protocol", [5, 311])
def test_retained_state_rate_limit_events_and_clear_on_drop(broker, protocol):
    if protocol == 5 and broker.protocol == 311:
        pytest.skip("the fallback broker (amqtt) speaks MQTT 3.1.1 only")
    seen, mid_life, late = asyncio.run(publish_track_life(broker.port, protocol))
    states = [json.loads(p) for t, p, _ in seen if t == "sensord/rx0/tracks/4840D6" and p]
    for s in states:
        jsonschema.validate(s, schema("track"))
    assert [s["t_s"] for s in states] == [0.0, 0.5, 0.7, 1.8]
    assert [t for t, p, _ in seen if t.endswith("/tracks/4840D6") and not p] == [
        "sensord/rx0/tracks/4840D6"
    ]
    events = [json.loads(p) for t, p, _ in seen if t.endswith("/events")]
    for e in events:
        jsonschema.validate(e, schema("event"))
    assert [e["event"] for e in events] == ["new", "confirmed", "lost"]
    status = [json.loads(p) for t, p, _ in seen if t.endswith("/status")]
    assert status[0]["state"] == "online" and status[-1]["state"] == "offline"
    # a subscriber arriving mid-life gets the latest state retained; after the drop, nothing
    # (filtered again and as a set: amqtt also delivers the status topic to a tracks/#
    # subscription, and may deliver a retained message twice)
    mid_life = [m for m in mid_life if "/tracks/" in m[0]]
    assert {(json.loads(p)["t_s"], r) for _, p, r in mid_life} == {(1.8, True)}
    assert not [t for t, p, _ in late if "/tracks/" in t]
    assert {json.loads(p)["state"] for t, p, r in late if t.endswith("/status") and r} == {
        "offline"
    }


async def update_while_publishing(broker) -> list:
    """A newer state of a track arrives while its previous state awaits the broker's ack."""
    v5 = broker.protocol == 5
    aio_protocol = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
    pub = Publisher(MqttSettings(port=broker.port, protocol=broker.protocol, rate_limit_s=0.0))
    runner = asyncio.create_task(pub.run(stats_interval_s=60))
    while not pub.stats.connected:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the status is out
    os.kill(broker.proc.pid, signal.SIGSTOP)  # the ack of what is published next waits
    try:
        pub.track_updates([update(1.0)])
        await asyncio.sleep(0.3)
        pub.track_updates([update(2.0)])
        await asyncio.sleep(0.1)
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    await drained(pub)
    retained = await collect(broker.port, aio_protocol, 0.5, "sensord/rx0/tracks/#")
    await pub.stop()
    await runner
    return retained


def test_a_state_arriving_mid_publish_is_published_too(broker):
    if getattr(broker, "proc", None) is None:
        pytest.skip("needs a broker process to freeze (mosquitto)")
    retained = asyncio.run(update_while_publishing(broker))
    assert [json.loads(p)["t_s"] for _, p, _ in retained] == [2.0]


async def broker_dies_mid_publish(broker) -> tuple[Publisher, float, list]:
    """The broker is killed while a track state awaits its ack, then started again."""
    v5 = broker.protocol == 5
    aio_protocol = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
    pub = Publisher(MqttSettings(port=broker.port, protocol=broker.protocol))
    runner = asyncio.create_task(pub.run(stats_interval_s=60))
    while not pub.stats.connected:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the status is out
    os.kill(broker.proc.pid, signal.SIGSTOP)  # the ack of what is published next never comes
    pub.track_updates([update(1.0)])
    await asyncio.sleep(0.3)
    killed = time.monotonic()
    broker.stop()  # SIGKILL: the kernel closes its end of the connection
    while pub.stats.connected and time.monotonic() - killed < 15:
        await asyncio.sleep(0.01)
    noticed_s = time.monotonic() - killed
    broker.start()
    while not (pub.stats.connected and not pub.pending()):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    retained = await collect(broker.port, aio_protocol, 0.5, "sensord/rx0/tracks/#")
    await pub.stop()
    await runner
    return pub, noticed_s, retained


def test_broker_killed_with_a_message_in_flight_fails_fast_and_resends(broker, caplog):
    if getattr(broker, "proc", None) is None:
        pytest.skip("needs a broker process to freeze and kill (mosquitto)")
    pub, noticed_s, retained = asyncio.run(broker_dies_mid_publish(broker))
    # aiomqtt alone would wait for the ack until its 10 s timeout
    assert noticed_s < 3.0
    assert pub.stats.connects == 2
    assert [json.loads(p)["t_s"] for _, p, _ in retained] == [1.0]  # the unacked state, again
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def state_arriving_while_streaming_then_stop(broker) -> list:
    """A track state comes in while the stream queue is going out, and stop follows."""
    v5 = broker.protocol == 5
    aio_protocol = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
    pub = Publisher(MqttSettings(port=broker.port, protocol=broker.protocol))
    runner = asyncio.create_task(pub.run(stats_interval_s=60))
    while not pub.stats.connected:
        await asyncio.sleep(0.01)
    pub.stream("frames", ["x" * 100] * 3000)
    while pub.pending() > 2900:  # the stream is going out, message by message
        await asyncio.sleep(0)
    pub.track_updates([update(1.0)])
    await pub.stop()
    await runner
    return await collect(broker.port, aio_protocol, 0.5, "sensord/rx0/tracks/#")


def test_a_state_arriving_during_the_shutdown_flush_is_published(broker):
    retained = asyncio.run(state_arriving_while_streaming_then_stop(broker))
    assert [json.loads(p)["t_s"] for _, p, _ in retained] == [1.0]


async def stream_through_slow_broker(port: int, protocol: int) -> tuple[Publisher, list]:
    pub = Publisher(MqttSettings(port=port, protocol=protocol, stream_queue_max=10))
    pub.stream("frames", [json.dumps({"n": n}) for n in range(25)])  # broker not reached yet
    aio_protocol = aiomqtt.ProtocolVersion.V5 if protocol == 5 else aiomqtt.ProtocolVersion.V311
    listener = asyncio.create_task(collect(port, aio_protocol, 1.5))
    await asyncio.sleep(0.3)
    runner = asyncio.create_task(pub.run(stats_interval_s=60))
    await drained(pub)
    await pub.stop()
    await runner
    return pub, await listener


def test_stream_queue_is_bounded_and_drops_oldest_first(broker):
    pub, seen = asyncio.run(stream_through_slow_broker(broker.port, broker.protocol))
    assert pub.stats.stream_dropped == 15
    frames = [json.loads(p)["n"] for t, p, _ in seen if t == "sensord/rx0/frames"]
    assert frames == list(range(15, 25))


async def against_amqtt() -> list:
    from amqtt.broker import Broker

    port = free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    try:
        await asyncio.to_thread(wait_port, port)
        pub = Publisher(MqttSettings(port=port, protocol=311))
        pub.track_updates([update(0.0), update(5.0)])
        runner = asyncio.create_task(pub.run(stats_interval_s=60))
        await drained(pub)
        await pub.stop()
        await runner
        return await collect(port, aiomqtt.ProtocolVersion.V311, 0.5, "sensord/rx0/tracks/#")
    finally:
        await broker.shutdown()


def test_mqtt311_against_amqtt_keeps_the_latest_state_retained():
    pytest.importorskip("amqtt")
    retained = asyncio.run(against_amqtt())
    retained = [m for m in retained if "/tracks/" in m[0]]
    assert {(json.loads(p)["t_s"], r) for _, p, r in retained} == {(5.0, True)}


async def feed_a_stalled_broker(broker) -> tuple[Publisher, list[int], int]:
    """Frames offered at a high rate while the broker is frozen (SIGSTOP), then thawed."""
    pub = Publisher(MqttSettings(port=broker.port, protocol=broker.protocol, stream_queue_max=500))
    runner = asyncio.create_task(pub.run(stats_interval_s=60))
    while not pub.stats.connected:
        await asyncio.sleep(0.01)
    os.kill(broker.proc.pid, signal.SIGSTOP)
    depths = []
    payload = "x" * 200
    tracemalloc.start()
    try:
        for _ in range(300):  # 300 x 200 frames x 200 B = 12 MB, past the kernel's buffers
            pub.stream("frames", [payload] * 200)
            depths.append(pub.pending())
            await asyncio.sleep(0.005)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        os.kill(broker.proc.pid, signal.SIGCONT)
    pub.stream("frames", ["last"])
    deadline = time.monotonic() + 30
    while pub.pending() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await pub.stop()
    await runner
    return pub, depths, peak_bytes


def test_a_stalled_broker_fills_only_the_bounded_queue(broker):
    if getattr(broker, "proc", None) is None:
        pytest.skip("needs a broker process to freeze (mosquitto)")
    pub, depths, peak_bytes = asyncio.run(feed_a_stalled_broker(broker))
    assert max(depths) <= 500
    assert pub.stats.stream_dropped > 0  # counted, not silent
    assert pub.stats.stream_dropped + pub.stats.published >= 300 * 200
    assert peak_bytes < 2e6  # flat: the queue's 500 entries and paho's socket buffer, no backlog
    assert pub.pending() == 0  # after the thaw everything left was delivered


async def publish_with_credentials(port: int, password: str) -> Publisher:
    pub = Publisher(MqttSettings(port=port, username="sensord", password=password))
    pub.track_updates([update(1.0)])
    runner = asyncio.create_task(pub.run(stats_interval_s=60))
    deadline = time.monotonic() + 10
    while (pub.pending() or not pub.stats.connected) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await pub.stop()
    await runner
    return pub


def test_username_and_password_accepted(tmp_path):
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (its password file is what this test uses)")
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "sensord", "right"], check=True)
    b = Mosquitto(tmp_path, password_file=pw)
    b.start()
    try:
        pub = asyncio.run(publish_with_credentials(b.port, "right"))
    finally:
        b.stop()
    assert pub.stats.connects == 1 and pub.stats.published >= 2  # status and the track
    assert pub.pending() == 0


def test_a_track_state_overtakes_a_stream_backlog_with_a_bounded_lag(broker):
    """A broker slower than the frames (each acknowledged, QoS 1): 5000 frames queued, then a
    state; the state goes out after the frame in flight, not after the 5000."""
    sub = Subscriber(broker.port, "sensord/#")
    time.sleep(0.3)

    async def scenario() -> float:
        settings = MqttSettings(
            port=broker.port, protocol=broker.protocol, qos_stream=1, stream_queue_max=20000
        )
        pub = Publisher(settings)
        pub.stream("frames", [json.dumps({"n": i}) for i in range(5000)])
        runner = asyncio.create_task(pub.run(stats_interval_s=60))
        while len(sub.on("/frames")) < 200:
            await asyncio.sleep(0.002)
        pushed = time.monotonic()
        pub.track_updates([update(1.0)])
        while not sub.on("/tracks/4840D6"):
            await asyncio.sleep(0.002)
        lag_s = time.monotonic() - pushed
        await pub.stop(60)
        await runner
        return lag_s

    lag_s = asyncio.run(scenario())
    time.sleep(0.3)
    sub.close()
    topics = [t for t, _, _ in sub.messages]
    at = topics.index("sensord/rx0/tracks/4840D6")
    frames_after = sum(1 for t in topics[at:] if t.endswith("/frames"))
    assert frames_after >= 4000, frames_after  # the state jumped the queue
    assert lag_s < 1.0
