"""``sensord replay``: a simulated recording through the real chain; table, outputs, summary."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec")
    stem = d / "sim_2000k"  # the rate in the name, as simulate writes it
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sensord",
            "simulate",
            "-o",
            str(stem),
            "--aircraft",
            "5",
            "--duration",
            "8",
            "--rate",
            "2.0e6",
            "--seed",
            "3",
            "--max-range-km",
            "150",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return stem


def test_replay_summary_table_and_aircraft_json(recording, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sensord",
            "replay",
            f"{recording}.cu8",
            "--rate",
            "2e6",
            "--table",
            "--aircraft-json",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    truth = json.loads(recording.with_suffix(".scenario.json").read_text())
    assert "tracks      5 (5 confirmed)" in out.stdout
    assert "frames      " in out.stdout and "DF17" in out.stdout
    doc = json.loads((tmp_path / "aircraft.json").read_text())
    assert len(doc["aircraft"]) == 5 and doc["now"] == pytest.approx(time.time(), abs=60)
    callsigns = {a["callsign"] for a in truth["aircraft"]}
    assert {a["flight"].strip() for a in doc["aircraft"]} == callsigns
    assert all(a["hex"].upper() in out.stdout for a in doc["aircraft"])


def test_replay_real_time_speed_paces_and_bad_speed_is_rejected(recording):
    cmd = [sys.executable, "-m", "sensord", "replay", f"{recording}.cu8", "--rate", "2e6"]
    bad = subprocess.run([*cmd, "--speed", "fast"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "expected 'max' or a factor" in bad.stderr
    t0 = time.monotonic()
    paced = subprocess.run([*cmd, "--speed", "4"], capture_output=True, text=True, timeout=60)
    assert paced.returncode == 0 and time.monotonic() - t0 >= 2.0  # 8 s at x4


def test_replay_missing_file_is_one_line_error(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sensord",
            "replay",
            str(tmp_path / "none.cu8"),
            "--lat",
            "52",
            "--lon",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
