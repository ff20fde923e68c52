"""Every sample format through the demodulator: cs8 (and SigMF ci8) decode like cu8.

cs8 once crashed the process (a Python string compared without the GIL in
``magnitude``); these tests feed it through the library and through ``sensord decode``.
"""

import subprocess
import sys

import numpy as np
import pytest

from sensord.demod import Demodulator
from sensord.frames import frame_hex
from sensord.sim import random_scenario, simulate
from sensord.source import sigmf

RATE_HZ = 2.4e6


@pytest.fixture(scope="module")
def recording():
    return simulate(random_scenario(12, seed=21), rate_hz=RATE_HZ, duration_s=1.0, seed=21)


def cu8_to_cs8(cu8: np.ndarray) -> np.ndarray:
    """The same IQ as signed 8-bit (rtl_sdr's DC of 127.4 removed)."""
    return np.clip(np.rint(cu8.astype(np.float32) - 127.4), -128, 127).astype(np.int8)


def decode(samples: np.ndarray, fmt: str) -> list[str]:
    demod = Demodulator(RATE_HZ)
    step = 1 << 18
    parts = [demod.feed(samples[k : k + step], fmt) for k in range(0, len(samples), step)]
    return [frame_hex(f) for f in np.concatenate([*parts, demod.flush()])]


def test_cs8_decodes_the_frames_cu8_does(recording):
    as_cu8 = decode(recording.iq, "cu8")
    as_cs8 = decode(cu8_to_cs8(recording.iq), "cs8")
    assert len(as_cu8) > 50
    # the two quantisations differ by under half an LSB: at most a marginal reply differs
    assert len(set(as_cu8) ^ set(as_cs8)) <= 2
    assert len(as_cs8) >= len(as_cu8) - 2


def _cli_decode(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sensord", "decode", str(path), "--rate", "2.4e6"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sensord_decode_reads_cs8_and_sigmf_ci8(recording, tmp_path):
    cs8 = cu8_to_cs8(recording.iq)
    expected = decode(cs8, "cs8")
    plain = tmp_path / "sim.cs8"
    cs8.tofile(plain)
    data = tmp_path / "sim.sigmf-data"
    cs8.tofile(data)
    sigmf.write_meta(data, "ci8", RATE_HZ)
    for path in (plain, tmp_path / "sim.sigmf-meta"):
        proc = _cli_decode(path)
        assert proc.returncode == 0, (path.name, proc.returncode, proc.stderr)
        assert [line[13:-1] for line in proc.stdout.splitlines()] == expected, path.name
