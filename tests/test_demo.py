"""``sensord demo`` in a subprocess: synthesises the bundled scenario, replays, publishes tracks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from conftest import Subscriber

from sensord.sim.scenario import Scenario


def _demo(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sensord", "demo", "--speed", "max", "--duration", "8", *extra],
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


def test_demo_bad_broker_argument_is_one_line_error():
    out = _demo("--broker", "nonsense")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
