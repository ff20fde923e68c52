"""`sensord run` against a real broker (mosquitto), end to end, and its faults."""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import MOSQUITTO, SITE, Mosquitto, Subscriber, free_port

from sensord.geo import great_circle_m
from sensord.sim import random_scenario, simulate, write_recording

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schema"


def schema(name: str, version: int = 1) -> dict:
    return json.loads((SCHEMAS / f"{name}.v{version}.json").read_text())


def well_heard(truth: np.ndarray) -> set[str]:
    """Aircraft whose positions came in clearly enough to confirm a track (6 above 15 dB)."""
    clear = truth[(truth["snr_db"] > 15) & (truth["df"] == 17) & ~truth["overlapped"]]
    tc = clear["msg"][:, 4] >> 3
    icaos, counts = np.unique(clear["icao"][(tc >= 9) & (tc <= 18)], return_counts=True)
    return {f"{int(i):06X}" for i, c in zip(icaos, counts, strict=True) if c >= 6}


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    res = simulate(random_scenario(8, SITE, max_range_m=200e3, seed=12), 2.4e6, 12.0, seed=12)
    stem = tmp_path_factory.mktemp("rec") / "rec"
    write_recording(res, stem)
    return res, stem.with_suffix(".cu8")


def toml_lines(keys: dict) -> str:
    return "\n".join(f"{k} = {json.dumps(v)}" for k, v in keys.items())


def write_config(
    path: Path,
    port: int,
    recording: Path,
    source: dict | None = None,
    tracker: dict | None = None,
    **mqtt,
) -> Path:
    """A daemon config replaying ``recording`` to the broker on ``port``; extra keys by section."""
    path.write_text(f"""
[receiver]
lat_deg = {SITE.lat_deg}
lon_deg = {SITE.lon_deg}
alt_m = {SITE.alt_m}
[source]
spec = "{recording}"
{toml_lines(source or {})}
[tracker]
{toml_lines(tracker or {})}
[mqtt]
port = {port}
stats_interval_s = 1.0
{toml_lines(mqtt)}
""")
    return path


def sensord(*args, env=None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sensord", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return proc.returncode, err


def test_replay_publishes_tracks_matching_truth(broker, recording, tmp_path):
    res, path = recording
    sub = Subscriber(broker.port)
    time.sleep(0.3)
    cfg = write_config(
        tmp_path / "c.toml",
        broker.port,
        path,
        publish_frames=True,
        publish_detections=True,
        protocol=broker.protocol,
    )
    code, err = finish(sensord("run", "-c", str(cfg)))
    time.sleep(0.5)
    sub.close()
    assert code == 0, err
    aircraft = {f"{a.icao:06X}": a for a in res.scenario.aircraft}
    tracks, confirmed = {}, set()
    for topic, payload, _ in sub.messages:
        if "/tracks/" in topic and payload:
            d = json.loads(payload)
            jsonschema.validate(d, schema("track"))
            tracks[d["track_id"]] = d
            if d["status"] == "confirmed":
                confirmed.add(d["track_id"])
                st = aircraft[d["icao"]].state_at(d["t_s"])
                assert great_circle_m(d["lat_deg"], d["lon_deg"], st.lat_deg, st.lon_deg) < 500
    assert well_heard(res.truth) <= confirmed <= set(aircraft)
    events = [json.loads(p) for p in sub.on("/events")]
    for e in events:
        jsonschema.validate(e, schema("event"))
    assert {e["event"] for e in events} >= {"new", "confirmed"}
    statuses = [json.loads(p) for p in sub.on("/status")]
    for s in statuses:
        jsonschema.validate(s, schema("status"))
    assert statuses[0]["state"] == "online" and statuses[-1]["state"] == "offline"
    frames = [json.loads(p) for p in sub.on("/frames")]  # one batch per block (MLAT)
    for batch in frames:
        jsonschema.validate(batch, schema("frame", 2))
    assert sum(len(b["hex"]) for b in frames) > 100
    assert all(b["node"] == "rx0" and b["utc"] > 1e9 for b in frames)
    batches = [json.loads(p) for p in sub.on("/detections")]
    assert batches
    for b in batches[:50]:
        jsonschema.validate(b, schema("detection", 2))
    assert {d["sensor_id"] for b in batches for d in b["detections"]} == {"rx0"}
    assert all(d["utc"] > 1e9 for b in batches for d in b["detections"])
    info = [json.loads(p) for p in sub.on("/info")]
    assert len(info) == 1
    jsonschema.validate(info[0], schema("info"))
    assert info[0]["clock"]["type"] == "file" and info[0]["utc_source"] == "mtime"


def test_broker_restart_mid_replay_republishes_live_tracks(broker, recording, tmp_path):
    res, path = recording
    cfg = write_config(tmp_path / "c.toml", broker.port, path, protocol=broker.protocol)
    proc = sensord("run", "-c", str(cfg), "--realtime", "--log-level", "info")
    time.sleep(4.0)
    broker.stop()  # no persistence: every retained track state is gone with it
    time.sleep(2.0)
    broker.start()
    code, err = finish(proc)
    assert code == 0
    assert err.count("unavailable") == 1  # logged once per state change, not per retry
    assert err.count("connected to MQTT broker") == 2
    assert "ERROR" not in err  # paho's socket errors are the expected fault logged above
    late = Subscriber(broker.port)  # connects after the daemon ended: retained state only
    time.sleep(1.0)
    late.close()
    retained = {t.rsplit("/", 1)[1] for t, p, r in late.messages if "/tracks/" in t and p and r}
    assert well_heard(res.truth) <= retained <= {f"{a.icao:06X}" for a in res.scenario.aircraft}


@pytest.mark.parametrize("case", ["wrong-password", "unreachable"])
def test_broker_faults_are_retried_not_fatal(tmp_path, recording, case):
    _, path = recording
    env = dict(os.environ)
    if case == "wrong-password":
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (its password file is what this test uses)")
        pw = tmp_path / "passwd"
        subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "sensord", "right"], check=True)
        b = Mosquitto(tmp_path, password_file=pw)
        b.start()
        port = b.port
        env["SENSORD_MQTT_PW"] = "wrong"
        cfg = write_config(
            tmp_path / "c.toml", port, path, username="sensord", password_env="SENSORD_MQTT_PW"
        )
    else:
        b = None
        port = free_port()
        cfg = write_config(tmp_path / "c.toml", port, path)
    try:
        code, err = finish(sensord("run", "-c", str(cfg), env=env))
    finally:
        if b:
            b.stop()
    assert code == 0
    assert err.count("unavailable") == 1
    assert "retrying" in err
    assert "wrong" not in err  # the password is never logged


def test_sigterm_shuts_down_cleanly_with_offline_status(broker, recording, tmp_path):
    _, path = recording
    sub = Subscriber(broker.port)
    cfg = write_config(tmp_path / "c.toml", broker.port, path, protocol=broker.protocol)
    proc = sensord("run", "-c", str(cfg), "--realtime")
    time.sleep(3.0)
    proc.send_signal(signal.SIGTERM)
    code, _ = finish(proc, timeout=20)
    time.sleep(0.3)
    sub.close()
    assert code == 0
    assert json.loads(sub.on("/status")[-1])["state"] == "offline"


def test_bad_config_is_one_line(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[receiver]\nlat_deg = 52.0\nlon_deg = 4.5\n\n[mqtt]\nport = 'x'\n")
    proc = sensord("run", "-c", str(cfg))
    code, err = finish(proc, timeout=60)
    assert code == 2
    assert err.strip().splitlines() == [
        f"sensord run: error: {cfg}:6: [mqtt] port: must be int, got 'x'"
    ]


def test_notify_ready_and_watchdog_through_the_daemon(broker, recording, tmp_path):
    _, path = recording
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="400000")
    cfg = write_config(tmp_path / "c.toml", broker.port, path, protocol=broker.protocol)
    proc = sensord("run", "-c", str(cfg), "--realtime", env=env)
    received: list[str] = []
    # READY once samples flow (however long a loaded machine takes to start), then the
    # watchdog for 1.5 s more (WATCHDOG_USEC 0.4 s: a heartbeat every 0.2 s)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            received.append(sock.recv(4096).decode())
        if received and deadline - time.monotonic() > 1.5:
            deadline = time.monotonic() + 1.5
    proc.send_signal(signal.SIGTERM)
    finish(proc, timeout=20)
    sock.close()
    assert received[0].startswith("READY=1")
    assert received.count("WATCHDOG=1") >= 3


class StallingSource:
    """A real IQ source that delivers some blocks of a recording, then stalls (no samples)."""

    def __init__(self, iq: np.ndarray, rate_hz: float, blocks: int) -> None:
        self.iq, self.rate_hz, self.n = iq, rate_hz, blocks
        self.closed = False

    def blocks(self):
        from sensord.source.base import IQBlock

        step = 2 * 65536
        for k in range(self.n):
            yield IQBlock(self.iq[k * step : (k + 1) * step], "cu8", k * 65536, self.rate_hz)
        while not self.closed:  # a dongle that stopped delivering
            time.sleep(0.05)

    def close(self) -> None:
        self.closed = True


def test_watchdog_stops_when_samples_stall(tmp_path, recording):
    from sensord.daemon.notify import Notifier
    from sensord.daemon.pipeline import Pipeline
    from sensord.daemon.watchdog import Watchdog
    from sensord.sinks.fanout import FanOut

    res, _ = recording
    sock_path = tmp_path / "n.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.setblocking(False)
    notifier = Notifier({"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "100000"})
    source = StallingSource(res.iq, res.rate_hz, 5)
    pipeline = Pipeline(source, SITE, FanOut([]), stall_grace_s=0.5)
    exits: list[int] = []
    got: list[tuple[float, str]] = []

    async def scenario():
        run = asyncio.create_task(pipeline.run())
        watchdog = Watchdog(notifier, pipeline, exit_on_stall=exits.append)
        watchdog.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            await asyncio.sleep(0.02)
            try:
                while True:
                    got.append((time.monotonic() - t0, sock.recv(4096).decode()))
            except BlockingIOError:
                pass
        watchdog.stop()
        pipeline.stop()
        await run

    asyncio.run(scenario())
    sock.close()
    assert got[0][1].startswith("READY=1")
    beats = [t for t, m in got if m == "WATCHDOG=1"]
    assert len(beats) >= 2
    assert beats[-1] < 1.2  # the stall began at once: no heartbeat after the grace period
    assert exits == []  # a source outage may heal: systemd decides, the daemon does not exit


# resident for the daemon's whole life, so imported only where used (BENCHMARKS.md,
# "Steady RSS again"): pyModeS's airport table, optional outputs, the heavy libraries
NOT_IMPORTED_BY_RUN = ("pyModeS.position", "pyModeS.data", "sensord.web.zones",
                       "sensord.outputs", "sensord.sinks.tcp", "sensord.metrics",
                       "prometheus_client", "scipy", "filterpy")  # fmt: skip


def test_run_imports_no_unconfigured_output_nor_airport_table(broker, recording, tmp_path):
    _, path = recording
    sub = Subscriber(broker.port)
    cfg = write_config(tmp_path / "c.toml", broker.port, path, protocol=broker.protocol)
    code = (
        "import json, sys\nfrom sensord.cli import main\n"
        f"assert main(['run', '-c', {str(cfg)!r}]) == 0\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('pyModeS.')"
        " or m.startswith(tuple(sys.argv[1:])))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *NOT_IMPORTED_BY_RUN],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    sub.close()
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [m for m in modules if m.startswith(NOT_IMPORTED_BY_RUN)] == []
    assert "pyModeS.decoder.adsb" in modules  # positions were decoded, by pyModeS
    assert [t for t, _, _ in sub.messages if "/tracks/" in t]  # and published
