"""`sensord run` with its [outputs]: Beast and SBS over TCP, aircraft.json, metrics."""

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from conftest import free_port

from sensord.geo import Site
from sensord.outputs.beast import decode_stream
from sensord.sim import random_scenario, simulate, write_recording

SITE = Site(52.0, 4.5, 10.0)


def recording_with_config(tmp_path, n_aircraft: int, seconds: float, seed: int, sections: str):
    """A simulated recording and a config replaying it; ``sections`` adds [source] keys first."""
    res = simulate(
        random_scenario(n_aircraft, SITE, max_range_m=150e3, seed=seed), 2.4e6, seconds, seed=seed
    )
    stem = tmp_path / "rec"
    write_recording(res, stem)
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"[receiver]\nlat_deg = {SITE.lat_deg}\nlon_deg = {SITE.lon_deg}\n"
        f'[source]\nspec = "{stem.with_suffix(".cu8")}"\n{sections}'
    )
    return res, cfg


def _read_for(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data


def _connect(port: int) -> socket.socket:
    for _ in range(100):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def test_outputs_served_while_running(tmp_path):
    beast_port, sbs_port, metrics_port = free_port(), free_port(), free_port()
    res, cfg = recording_with_config(
        tmp_path,
        5,
        8.0,
        31,
        f"""realtime = true
[mqtt]
enabled = false
[outputs]
beast_port = {beast_port}
sbs_port = {sbs_port}
metrics_port = {metrics_port}
aircraft_json_dir = "{tmp_path}"
""",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensord", "run", "-c", str(cfg)], stderr=subprocess.PIPE, text=True
    )
    try:
        beast_client, sbs_client = _connect(beast_port), _connect(sbs_port)
        beast_bytes = _read_for(beast_client, 4.0)
        sbs_text = _read_for(sbs_client, 0.5).decode()
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err
    frames = decode_stream(beast_bytes)
    truth = {bytes(r["msg"][: r["nbits"] // 8]) for r in res.truth}
    assert len(frames) > 50 and all(payload in truth for _, _, payload in frames)
    assert sbs_text.startswith("MSG,") or "\nMSG," in sbs_text
    # the counters' values while running, not their HELP lines (present with zero frames)
    frames_counted = metric_total(metrics, "sensord_frames_total")
    assert frames_counted >= 50, metrics
    doc = json.loads((tmp_path / "aircraft.json").read_text())
    heard = {f"{int(a.icao):06x}" for a in res.scenario.aircraft}
    assert doc["aircraft"] and {a["hex"].lower() for a in doc["aircraft"]} <= heard


def test_output_port_in_use_is_one_line(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[receiver]
lat_deg = 52.0
lon_deg = 4.5
[source]
spec = "{tmp_path / "x.cu8"}"
[mqtt]
enabled = false
[outputs]
beast_port = {busy.getsockname()[1]}
""")
    (tmp_path / "x.cu8").write_bytes(b"\x7f" * 4096)
    proc = subprocess.run(
        [sys.executable, "-m", "sensord", "run", "-c", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    busy.close()
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("sensord run: error: cannot listen on 127.0.0.1:")


def test_home_assistant_discovery_through_the_daemon(broker, tmp_path):
    from conftest import Subscriber

    _, cfg = recording_with_config(
        tmp_path,
        4,
        6.0,
        33,
        f"""[mqtt]
port = {broker.port}
[outputs]
hass_discovery = true
hass_max_trackers = 2
""",
    )
    sub = Subscriber(broker.port, topic="homeassistant/#")
    time.sleep(0.3)
    proc = subprocess.run(
        [sys.executable, "-m", "sensord", "run", "-c", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    time.sleep(0.5)
    sub.close()
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    configs = {t: json.loads(p) for t, p, _ in sub.messages if t.endswith("/config") and p}
    assert 1 <= len(configs) <= 2  # the cap
    for topic, doc in configs.items():
        assert topic.startswith("homeassistant/device_tracker/sensord_rx0_")
        assert doc["source_type"] == "gps"


def test_watch_shows_what_run_publishes(broker, tmp_path):
    res, cfg = recording_with_config(tmp_path, 4, 6.0, 35, f"[mqtt]\nport = {broker.port}\n")
    run = subprocess.run(
        [sys.executable, "-m", "sensord", "run", "-c", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    watch = subprocess.run(
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
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert watch.returncode == 0, watch.stderr
    published = {f"{a.icao:06X}" for a in res.scenario.aircraft}
    shown = {icao for icao in published if icao in watch.stdout}
    assert len(shown) >= 3  # the retained states of the tracked aircraft
    for a in res.scenario.aircraft:
        if f"{a.icao:06X}" in shown:
            assert a.callsign in watch.stdout


def metric_total(text: str, sample_name: str) -> float:
    """The sum of a metric's samples (over its labels) in Prometheus text format."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample_name
    )
