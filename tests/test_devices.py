"""``sensord devices`` and the RTL-SDR source's import failures, without a dongle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sensord.errors import SourceError
from sensord.source.iqfile import open_source
from sensord.source.rtlsdr import nearest_gain_db

REPO = Path(__file__).resolve().parents[1]


def sensord(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "sensord", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )


def test_devices_says_plainly_that_none_is_attached():
    pytest.importorskip("rtlsdr", exc_type=ImportError)
    result = sensord("devices")
    assert result.returncode == 1
    assert result.stdout.strip() == "no RTL-SDR dongle attached"
    assert "Traceback" not in result.stderr


def test_missing_librtlsdr_names_the_extra(tmp_path):
    # an rtlsdr package that fails the way pyrtlsdr does when librtlsdr cannot be loaded
    broken = tmp_path / "rtlsdr"
    broken.mkdir()
    (broken / "__init__.py").write_text(
        "raise ImportError('Error loading librtlsdr. Make sure librtlsdr is in your path')\n"
    )
    result = sensord("devices", env_extra={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2
    assert "pip install 'sensord[rtlsdr]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_serial_is_a_source_error():
    pytest.importorskip("rtlsdr", exc_type=ImportError)
    source = open_source("rtlsdr:NOSUCHSERIAL")
    with pytest.raises(SourceError, match="no RTL-SDR with serial 'NOSUCHSERIAL'"):
        source._open()


def test_gain_snaps_to_the_tuner_list():
    r820t_db = [
        0.0,
        0.9,
        1.4,
        2.7,
        3.7,
        7.7,
        8.7,
        12.5,
        14.4,
        15.7,
        16.6,
        19.7,
        20.7,
        22.9,
        25.4,
        28.0,
        29.7,
        32.8,
        33.8,
        36.4,
        37.2,
        38.6,
        40.2,
        42.1,
        43.4,
        43.9,
        44.5,
        48.0,
        49.6,
    ]
    assert nearest_gain_db(50.0, r820t_db) == 49.6
    assert nearest_gain_db(41.0, r820t_db) == 40.2
    assert nearest_gain_db(-5.0, r820t_db) == 0.0
