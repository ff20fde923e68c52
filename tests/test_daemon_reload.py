"""`sensord run`: SIGHUP reloads what can be reloaded, a broken reload keeps the running
configuration, and command-line flags override the file."""

import json
import signal
import time

import pytest
from conftest import Subscriber, free_port
from test_daemon import SITE, finish, sensord, write_config

from sensord.sim import random_scenario, simulate, write_recording


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory):
    res = simulate(random_scenario(3, SITE, max_range_m=100e3, seed=5), 2.4e6, 6.0, seed=5)
    stem = tmp_path_factory.mktemp("rec") / "short"
    write_recording(res, stem)
    return stem.with_suffix(".cu8")


def wait_for_line(proc, text: str, timeout_s: float = 60.0) -> str:
    """stderr of ``proc`` up to and including the first line holding ``text``."""
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} not logged: {''.join(seen)}")


def test_sighup_reloads_log_level_and_survives_a_broken_file(broker, short_recording, tmp_path):
    cfg = write_config(tmp_path / "c.toml", broker.port, short_recording, protocol=broker.protocol)
    good = cfg.read_text()
    proc = sensord("run", "-c", str(cfg), "--realtime")
    started = wait_for_line(proc, "connected to MQTT broker")  # running, not still starting
    cfg.write_text(good.replace("[mqtt]", '[logging]\nlevel = "error"\n[mqtt]'))
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    cfg.write_text(good + "\nport = 'x'\n")  # a duplicate, mistyped key: not valid
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    code, rest = finish(proc, timeout=30)
    err = started + rest
    assert code == 0
    assert "reload failed, keeping the running configuration" in err
    # the reloaded level (error) took effect: the warnings of the reload itself and of the
    # shutdown summary are no longer written
    assert "configuration reloaded" not in err
    assert "stopped:" not in err


def test_flags_override_the_file(broker, short_recording, tmp_path):
    # the file names a port nobody listens on and no source; the flags fix both
    cfg = write_config(
        tmp_path / "c.toml", free_port(), "/nonexistent.cu8", protocol=broker.protocol
    )
    sub = Subscriber(broker.port)
    time.sleep(0.3)
    proc = sensord(
        "run", "-c", str(cfg), "--source", str(short_recording), "--mqtt-port", str(broker.port)
    )
    code, err = finish(proc, timeout=60)
    time.sleep(0.3)
    sub.close()
    assert code == 0, err
    assert "unavailable" not in err
    assert json.loads(sub.on("/status")[-1])["state"] == "offline"
    assert any("/tracks/" in t for t, _, _ in sub.messages)
