"""RTL-SDR source and ``sensord devices`` through real pyrtlsdr over a fake librtlsdr.

The fake library (tests/fake_librtlsdr/fake_librtlsdr.c, built by the ``fake_librtlsdr``
fixture) streams a recording in real time. Each run is a subprocess, so the real
librtlsdr this process may have loaded stays out of the way.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from sensord.demod import Demodulator
from sensord.source.iqfile import IQFileSource

HERE = Path(__file__).resolve().parent
STREAM_FRAMES = HERE / "fake_librtlsdr" / "stream_frames.py"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **env},
        cwd=HERE.parent,
    )


def file_frames(path: Path, rate_hz: float) -> list[list]:
    demod = Demodulator(rate_hz)
    source = IQFileSource(path, fmt="cu8", rate_hz=rate_hz)
    parts = [demod.feed_block(b) for b in source.blocks()]
    parts.append(demod.flush())
    frames = np.concatenate(parts)
    return [[int(f["sample_idx"]), bytes(f["msg"][: f["nbits"] // 8]).hex()] for f in frames]


def test_devices_lists_the_fake_dongle(fake_librtlsdr):
    result = run(["-m", "sensord", "devices"], fake_librtlsdr)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith("0  serial FAKE0001  tuner R820T  gains_db 0 0.9 1.4")
    assert line.endswith("48 49.6")


def test_devices_with_no_dongle_says_so(fake_librtlsdr):
    result = run(["-m", "sensord", "devices"], {**fake_librtlsdr, "FAKE_RTLSDR_COUNT": "0"})
    assert result.returncode == 1
    assert result.stdout.strip() == "no RTL-SDR dongle attached"
    assert result.stderr == ""


def test_librtlsdr_that_cannot_load_names_the_extra(fake_librtlsdr, tmp_path):
    # pyrtlsdr as installed, whose loader fails the way a missing libusb makes it fail
    loader = tmp_path / "pyrtlsdrlib"
    loader.mkdir()
    (loader / "__init__.py").write_text(
        "def load_librtlsdr():\n"
        "    raise OSError('libusb-1.0.so.0: cannot open shared object file')\n"
    )
    env = {"PYTHONPATH": str(tmp_path)}
    for command in (["devices"], ["decode", "rtlsdr"]):
        result = run(["-m", "sensord", *command], env)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert "libusb-1.0.so.0" in line and "pip install 'sensord[rtlsdr]'" in line


def test_frames_equal_file_replay_and_settings_reach_the_library(fake_librtlsdr, modes1, tmp_path):
    log = tmp_path / "settings.log"
    env = {**fake_librtlsdr, "FAKE_RTLSDR_IQ": str(modes1), "FAKE_RTLSDR_LOG": str(log)}
    n_samples = modes1.stat().st_size // 2
    result = run(
        [
            str(STREAM_FRAMES),
            "rtlsdr:FAKE0001",
            "--samples",
            str(n_samples),
            "--gain-db",
            "41",
            "--ppm",
            "-2",
            "--bias-tee",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    expected = file_frames(modes1, 2.0e6)
    assert len(expected) > 50
    assert out["frames"] == expected
    assert {k: out["stats"][k] for k in ("drops", "gaps", "reconnects")} == dict.fromkeys(
        ("drops", "gaps", "reconnects"), 0
    )
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(out["starts"]))
    assert out["applied_gain_db"] == 40.2
    settings = dict(line.split() for line in log.read_text().splitlines())
    assert settings["center_freq"] == "1090000000"
    assert settings["sample_rate"] == "2000000"
    assert settings["freq_correction"] == "-2"
    assert settings["tuner_gain_mode"] == "1"
    assert settings["tuner_gain"] == "402"
    assert settings["bias_tee"] == "1"


# What systemd's MemoryDenyWriteExecute=yes (in systemd/sensord.service) enforces, applied
# to the process itself: no memory may become executable after being writable. pyrtlsdr's
# async reads call back into Python through a ctypes closure, which older libffi builds
# made in writable+executable memory.
UNDER_MDWE = """
import ctypes, runpy, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN (Linux 6.3+)
    sys.exit(77)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_async_reads_work_under_memory_deny_write_execute(fake_librtlsdr, modes1):
    env = {**fake_librtlsdr, "FAKE_RTLSDR_IQ": str(modes1)}
    n_samples = modes1.stat().st_size // 2
    args = ["-c", UNDER_MDWE, str(STREAM_FRAMES), "rtlsdr", "--samples", str(n_samples)]
    result = run(args, env)
    if result.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+) to enforce it with")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["frames"] == file_frames(modes1, 2.0e6)


def test_unplug_logged_once_reopened_with_a_sample_jump(fake_librtlsdr, short_recording, tmp_path):
    res, path = short_recording
    env = {
        **fake_librtlsdr,
        "FAKE_RTLSDR_IQ": str(path),
        "FAKE_RTLSDR_UNPLUG": str(tmp_path / "unplugged"),
    }
    rate_hz = res.rate_hz
    outage_s = 0.5
    result = run(
        [
            str(STREAM_FRAMES),
            "rtlsdr",
            "--rate",
            str(rate_hz),
            "--samples",
            str(int(2.5 * rate_hz)),
            "--unplug-after",
            "40",  # 0.55 s in
            "--outage-s",
            str(outage_s),
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    stats = out["stats"]
    assert stats["reconnects"] == 1 and stats["gaps"] == 1
    jumps = [(a + n, b) for (a, n), (b, _) in itertools.pairwise(out["starts"]) if a + n != b]
    assert len(jumps) == 1
    end, resumed = jumps[0]
    # reopened with backoff (0.25 s, then 0.5 s): the jump is the outage as the source saw it
    assert outage_s * rate_hz * 0.9 <= resumed - end == stats["drops"] <= 1.5 * rate_hz
    assert result.stderr.count("lost") == 1
    # the signal went on while the dongle was away: after the jump the sample clock is still
    # the recording's, every frame is at the place the file replay has it
    at_file = defaultdict(list)
    for idx, msg in file_frames(path, rate_hz):
        at_file[msg].append(idx)
    after = [(idx, msg) for idx, msg in out["frames"] if idx >= resumed]
    assert len(after) > 15
    offsets = [min(at_file[msg], key=lambda i: abs(i - idx)) - idx for idx, msg in after]
    assert max(abs(o) for o in offsets) < 0.03 * rate_hz
