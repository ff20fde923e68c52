"""`sensord run` through its sinks' fan-out: a failing output does not stall the daemon, a
stuck one stops the heartbeat and exits non-zero, the metrics are live, payloads name the
node."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import Subscriber, free_port
from test_daemon import finish, recording, sensord, write_config  # noqa: F401 (a fixture)
from test_daemon_live import statuses, track_states, until_offline


def with_outputs(cfg: Path, **outputs) -> Path:
    lines = [f"{k} = {json.dumps(v)}" for k, v in outputs.items()]
    cfg.write_text(cfg.read_text() + "[outputs]\n" + "\n".join(lines) + "\n")
    return cfg


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def test_aircraft_json_directory_removed_mid_run_does_not_stall_the_daemon(
    broker,
    recording,  # noqa: F811 (the fixture imported from test_daemon)
    tmp_path,
):
    _, path = recording
    out = tmp_path / "run"
    out.mkdir()
    sub = Subscriber(broker.port, "sensord/north/#")
    cfg = write_config(
        tmp_path / "c.toml", broker.port, path, protocol=broker.protocol, node="north"
    )
    with_outputs(cfg, aircraft_json_dir=str(out))
    proc = sensord("run", "-c", str(cfg), "--realtime")
    wait_for(lambda: (out / "aircraft.json").exists(), 20, "aircraft.json")
    wait_for(lambda: statuses(sub), 20, "an online status")
    shutil.rmtree(out)  # a tmpfs cleaned, a disk gone
    # the sink's failure is counted, and the chain goes on: samples keep flowing
    failed = wait_for(
        lambda: [s for s in statuses(sub) if s["sinks"]["aircraft_json"]["errors"]], 20, "errors"
    )
    later = wait_for(
        lambda: [s for s in statuses(sub) if s["samples"] > failed[0]["samples"] + 2_400_000],
        20,
        "samples",
    )
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, timeout=20)
    until_offline(sub)
    sub.close()
    assert code == 0, err
    sink = later[-1]["sinks"]["aircraft_json"]
    assert sink["errors"] >= 1 and sink["failing"] and "cannot write" in sink["last_error"]
    assert later[-1]["sinks"]["mqtt"]["errors"] == 0
    assert err.count("output aircraft_json failed") == 1, err  # logged once
    states = track_states(sub)
    assert states and {tuple(s["sensors"]) for s in states} == {("north",)}


STUCK_RUNNER = """
import argparse, asyncio, sys, time
from sensord import config as config_mod
from sensord.commands import run as run_mod


class Stuck:
    name = "stuck"
    queue_max = 8

    def __init__(self, mode, after_samples):
        self.mode, self.after_samples = mode, after_samples

    async def start(self):
        pass

    async def handle(self, step):
        if step.samples < self.after_samples:
            return
        print("STUCK", flush=True)
        if self.mode == "blocking":
            time.sleep(3600)  # a hung disk, on the event loop
        await asyncio.Event().wait()  # a deadlocked output

    async def close(self):
        pass


cfg = config_mod.load(sys.argv[1])
args = argparse.Namespace(config=sys.argv[1])
sink = Stuck(sys.argv[2], int(sys.argv[3]))
sys.exit(asyncio.run(run_mod._main(cfg, args, extra_sinks=[sink])))
"""


@pytest.mark.parametrize("mode", ["awaiting", "blocking"])
def test_a_stuck_sink_stops_the_heartbeat_and_exits_non_zero(
    broker, short_recording, tmp_path, mode
):
    _, path = short_recording
    sock_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(sock_path))
    notify.settimeout(0.1)
    sub = Subscriber(broker.port, "sensord/rx0/status")
    cfg = write_config(
        tmp_path / "c.toml",
        broker.port,
        path,
        source={"stall_grace_s": 1.0, "realtime": True},
        protocol=broker.protocol,
    )
    root = Path(__file__).resolve().parents[1]
    env = dict(
        os.environ, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="400000", PYTHONPATH=str(root)
    )
    script = tmp_path / "stuck.py"
    script.write_text(STUCK_RUNNER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(cfg), mode, str(2_400_000)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=root,
    )
    beats: list[tuple[float, str]] = []
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            beats.append((time.monotonic(), notify.recv(4096).decode()))
    exited_at = time.monotonic()
    out, err = proc.communicate(timeout=10)
    notify.close()
    time.sleep(0.5)
    sub.close()
    assert proc.returncode == 70, err  # EX_SOFTWARE: Restart=on-failure restarts it
    assert "STUCK" in out
    # a sink awaiting forever is a stuck output; one that blocks the event loop is both a
    # loop that no longer answers and an output stuck in its step: whichever the watchdog
    # sees first is the right diagnosis
    expected = (
        ("stalled: output stuck",)
        if mode == "awaiting"
        else ("stalled: event loop", "stalled: output stuck")
    )
    assert any(e in err for e in expected), err
    assert "Traceback" not in err
    assert beats[0][1].startswith("READY=1")
    watchdog = [t for t, m in beats if m == "WATCHDOG=1"]
    assert len(watchdog) >= 5  # beating while the samples went through
    # silent for the last grace (1 s) before the exit, at twice the grace
    assert exited_at - watchdog[-1] > 0.9
    # the broker publishes the last will: subscribers see the node offline
    assert json.loads(sub.on("/status")[-1])["state"] == "offline"


def test_metrics_are_live_during_the_run(broker, short_recording, tmp_path):
    _, path = short_recording
    port = free_port()
    cfg = write_config(tmp_path / "c.toml", broker.port, path, protocol=broker.protocol)
    with_outputs(cfg, metrics_port=port)
    proc = sensord("run", "-c", str(cfg), "--realtime")

    def scrape() -> dict[str, float]:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
        except OSError:
            return {}
        return {
            name: float(value)
            for name, value in (
                line.rsplit(" ", 1) for line in text.decode().splitlines() if line[:1] != "#"
            )
        }

    first = wait_for(lambda: (m := scrape()).get("sensord_samples_total", 0) > 0 and m, 20, "")
    second = wait_for(
        lambda: (m := scrape())["sensord_samples_total"] > first["sensord_samples_total"] and m,
        10,
        "samples to grow",
    )
    wait_for(lambda: scrape().get('sensord_tracks{state="confirmed"}', 0) >= 1, 15, "tracks")
    assert proc.poll() is None  # all of it while the daemon runs, not at its shutdown
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, timeout=20)
    assert code == 0, err
    assert second["sensord_samples_total"] % 65536 == 0  # whole blocks, counted as they pass
