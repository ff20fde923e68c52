"""``sensord demo`` in a subprocess: synthesises the bundled scenario, replays, publishes tracks."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import Subscriber, free_port

from sensord.outputs import beast
from sensord.sim.scenario import Scenario

SINGLE = [sys.executable, "-m", "sensord", "demo", "--single"]  # one receiver


def _demo(*extra: str) -> subprocess.CompletedProcess:
    """``sensord demo --single`` (the fused default is tested on its own)."""
    return subprocess.run(
        [*SINGLE, "--speed", "max", "--duration", "8", *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_with_embedded_broker_completes_and_reports_tracks():
    t0 = time.monotonic()
    out = _demo()
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 < 60
    assert re.search(r"mosquitto_sub -h 127\.0\.0\.1 -p \d+ -t 'sensord/#' -v", out.stdout)
    n_tracks = int(re.search(r"tracks +(\d+) \((\d+) confirmed\)", out.stdout).group(2))
    assert n_tracks >= 6  # of the 8 aircraft in the bundled scenario
    assert "max range" in out.stdout and "Traceback" not in out.stderr


def test_the_default_demo_fuses_every_sensor_kind(broker):
    """Five receivers and a passive radar through one fusion node: ADS-B tracks, MLAT
    tracks of the Mode S-only aircraft, radar echoes on transponder tracks and radar-only
    tracks in range-Doppler, all published; the first line says where the picture is."""
    sub = Subscriber(broker.port)
    time.sleep(0.3)
    out = subprocess.run(
        [sys.executable, "-m", "sensord", "demo", "--speed", "max", "--duration", "10",
         "--broker", f"127.0.0.1:{broker.port}", "--node", "fz"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    time.sleep(0.5)
    sub.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("air picture: open http://127.0.0.1:")
    states = [json.loads(p) for t, p, _ in sub.messages if "/fz/tracks/" in t and p]
    adsb = {s["icao"] for s in states if s["source"] == "adsb" and s["status"] == "confirmed"}
    mlat = {s["icao"] for s in states if s["source"] == "mlat"}
    echoed = {s["icao"] for s in states if s["icao"] and "radar1" in s["sensors"]}
    radar_only = [s for s in states if s["bistatic"] is not None]
    assert len(adsb) >= 6, adsb
    assert mlat and mlat <= {"E00000", "E00001", "E00002"}, mlat  # the Mode S-only ones
    assert echoed, "no radar echo updated a transponder's track"
    assert radar_only and all(s["non_cooperative"] and s["lat_deg"] is None for s in radar_only)
    assert "tracks by kind:" in out.stdout and "Traceback" not in out.stderr


def test_demo_publishes_tracks_to_a_given_broker(broker):
    sub = Subscriber(broker.port)
    time.sleep(0.3)
    out = _demo("--broker", f"127.0.0.1:{broker.port}", "--node", "t1")
    time.sleep(0.5)
    sub.close()
    assert out.returncode == 0, out.stderr
    payloads = [json.loads(p) for t, p, _ in sub.messages if "/t1/tracks/" in t and p]
    icaos = {p["icao"] for p in payloads if p["status"] == "confirmed"}
    scenario = Scenario.load(
        Path(__file__).resolve().parents[1] / "sensord" / "data" / "demo.scenario.json"
    )
    truth = {f"{a.icao:06X}" for a in scenario.aircraft}
    assert len(icaos) >= 6 and icaos <= truth


def test_demo_leaves_no_stale_tracks_and_names_its_node(broker):
    """The demo clears the states it retained; its payloads name the node it publishes as."""
    sub = Subscriber(broker.port)
    time.sleep(0.3)
    out = _demo("--broker", f"127.0.0.1:{broker.port}")
    time.sleep(0.5)
    sub.close()
    assert out.returncode == 0, out.stderr
    states = [json.loads(p) for t, p, _ in sub.messages if "/demo/tracks/" in t and p]
    assert len(states) >= 20 and {tuple(s["sensors"]) for s in states} == {("demo",)}
    late = Subscriber(broker.port)  # after the demo: what is retained
    time.sleep(1.0)
    late.close()
    retained = {t: p for t, p, r in late.messages if r}
    assert not [t for t, p in retained.items() if "/tracks/" in t and p]
    assert json.loads(retained["sensord/demo/status"])["state"] == "offline"
    assert "track states on 127.0.0.1" in out.stdout and "cleared" in out.stdout


def test_demo_says_its_embedded_broker_has_stopped():
    out = _demo()
    assert out.returncode == 0, out.stderr
    port = re.search(r"mosquitto_sub -h 127\.0\.0\.1 -p (\d+)", out.stdout).group(1)
    assert f"the embedded broker on 127.0.0.1:{port} has stopped" in out.stdout


def test_demo_hold_keeps_the_embedded_broker_and_its_tracks_until_stopped():
    proc = subprocess.Popen(
        [*SINGLE, "--speed", "max", "--duration", "4", "--hold"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    port = None
    for line in proc.stdout:
        if m := re.search(r"mosquitto_sub -h 127\.0\.0\.1 -p (\d+)", line):
            port = int(m.group(1))
        if "replay done" in line:
            break
    assert port is not None
    time.sleep(1.0)
    sub = Subscriber(port)  # well after the replay ended: the broker is still there
    time.sleep(1.0)
    sub.close()
    proc.send_signal(signal.SIGTERM)  # as Ctrl-C (SIGINT may be ignored in a background job)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    retained = [t for t, p, r in sub.messages if "/demo/tracks/" in t and p and r]
    assert len(retained) >= 6
    assert "has stopped" in out


def test_demo_bad_broker_argument_is_one_line_error():
    out = _demo("--broker", "nonsense")
    assert out.returncode == 2 and out.stderr.count("\n") == 1


def _read_all(port: int, deadline_s: float) -> bytes:
    """Connect (retrying until the demo listens) and read until the demo closes the socket."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=deadline_s)
            break
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)
    chunks = []
    with sock:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_demo_serves_beast_and_sbs_to_tcp_clients():
    sbs_port, beast_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            *SINGLE,
            "--speed",
            "4",
            "--duration",
            "8",
            "--sbs-port",
            str(sbs_port),
            "--beast-port",
            str(beast_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with ThreadPoolExecutor(2) as pool:
        beast_data, sbs_data = pool.map(lambda p: _read_all(p, 30), (beast_port, sbs_port))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    scenario = Scenario.load(
        Path(__file__).resolve().parents[1] / "sensord" / "data" / "demo.scenario.json"
    )
    truth = {f"{a.icao:06X}" for a in scenario.aircraft}
    records = beast.decode_stream(beast_data)
    n_frames = int(re.search(r"frames +(\d+):", out).group(1))
    assert len(records) == n_frames  # the client connects while the recording is synthesised
    df17 = [msg for _, _, msg in records if msg[0] >> 3 == 17]
    assert df17 and {msg[1:4].hex().upper() for msg in df17} <= truth
    lines = sbs_data.decode("ascii").split("\r\n")[:-1]
    assert lines and all(line.startswith("MSG,") and len(line.split(",")) == 22 for line in lines)
    assert {line.split(",")[4] for line in lines} <= truth
    callsigns = {line.split(",")[10] for line in lines if line.startswith("MSG,1,")}
    assert callsigns == {a.callsign for a in scenario.aircraft}
