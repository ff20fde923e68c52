"""Small slices of the soak and the fuzz (benchmarks/soak.py, benchmarks/fuzz.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MOSQUITTO

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def bench(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        cwd=ROOT,
    )


def test_fuzz_slice_no_crash_no_unexplained_track():
    out = bench(
        "fuzz.py",
        *("--blocks", "600", "--frames", "3000", "--formats", "cu8,cs16,cf32"),
        *("--batch-blocks", "200", "--batch-frames", "1500", "--seed", "5"),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "crashes 0, unexplained tracks 0" in out.stdout
    rows = {line.split()[1]: line.split() for line in out.stdout.splitlines() if "blocks c" in line}
    assert set(rows) == {"cu8", "cs16", "cf32"}
    assert all(int(r[2]) == 200 for r in rows.values())  # every block went through
    frames = next(line.split() for line in out.stdout.splitlines() if line.startswith("frames "))
    assert int(frames[1]) == 3000


def test_fuzz_slice_cs8():
    out = bench("fuzz.py", "--blocks", "50", "--frames", "0", "--formats", "cs8")
    assert out.returncode == 0, out.stdout
    assert "crashes 0" in out.stdout


@pytest.mark.skipif(MOSQUITTO is None, reason="the soak needs mosquitto")
def test_soak_slice_memory_flat_and_per_track_state_back_to_zero(tmp_path):
    out = bench(
        "soak.py",
        *("--samples", "6e7", "--aircraft", "20", "--segments", "2", "--segment-s", "4"),
        *("--quiet-s", "6", "--warmup-loops", "1", "--cache", str(tmp_path), "--json"),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-2])
    assert result["samples"] == result["sent_samples"] >= 6e7
    assert result["loops"] >= 2
    assert result["tracks_created_total"] >= 20  # each loop's aircraft tracked again
    assert result["rss_growth_mb"] < 5.0
    assert result["per_track_state_final"] == {
        "tracker_tracks": 0,
        "track_table": 0,
        "mqtt_tracks_published": 0,
    }
    assert all(s["errors"] == 0 for s in result["sinks"].values())
