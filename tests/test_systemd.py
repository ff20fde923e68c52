"""The systemd unit: systemd-analyze verify accepts it, and it keeps the promised settings."""

import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "sensord.service"
INSTALLED_EXEC = "/opt/sensord/venv/bin/sensord"


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_unit_is_notify_with_watchdog_hardened_and_dongle_access():
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert float(s["WatchdogSec"][0]) > 0
    assert s["Restart"] == ["on-failure"]
    assert s["ExecStart"][0].endswith("run -c /etc/sensord/sensord.toml")
    assert s["SupplementaryGroups"] == ["plugdev"]
    assert "char-usb_device rw" in s["DeviceAllow"]
    assert "PrivateDevices" not in s  # it would hide /dev/bus/usb
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]
    assert "AF_INET" in s["RestrictAddressFamilies"][0].split()


def test_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # the unit names the installed path; point it at this checkout's entry point to verify it
    sensord = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "sensord"
    if not sensord.exists():
        pytest.skip(f"{sensord} is missing: install the package in .venv first")
    unit = tmp_path / "sensord.service"
    unit.write_text(UNIT.read_text().replace(INSTALLED_EXEC, str(sensord)))
    result = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True)
    problems = [line for line in result.stderr.splitlines() if "sensord.service" in line]
    assert result.returncode == 0 and not problems, result.stderr
