"""`sensord run` and its configuration: a broker refusing the credentials is retried and
logged once with what to check; a permanent fault stops the daemon at start."""

import os
import subprocess
from pathlib import Path

import pytest
import test_publish_tls
from conftest import MODES1, MOSQUITTO, Mosquitto
from test_daemon import finish, sensord, write_config

tls_broker = test_publish_tls.tls_broker  # a mosquitto with TLS and its PKI (fixture)


def test_refused_credentials_are_logged_once_with_what_to_check(tmp_path):
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (its password file is what this test uses)")
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "sensord", "right"], check=True)
    broker = Mosquitto(tmp_path, password_file=pw)
    broker.start()
    env = {**os.environ, "SENSORD_MQTT_PW": "wrong"}
    cfg = write_config(
        tmp_path / "c.toml", broker.port, MODES1, username="sensord",
        password_env="SENSORD_MQTT_PW", protocol=broker.protocol,
    )  # fmt: skip
    try:
        code, err = finish(sensord("run", "-c", str(cfg), env=env))
    finally:
        broker.stop()
    assert code == 0
    (line,) = [x for x in err.splitlines() if "unavailable" in x]
    assert "retrying with backoff" in line and "refused the credentials" in line
    assert "check [mqtt] username (sensord) and password_file / password_env" in line
    assert "wrong" not in err  # the password is never logged


def test_connecting_and_stopping_are_info_lines(tmp_path, broker):
    cfg = write_config(tmp_path / "c.toml", broker.port, MODES1, protocol=broker.protocol)
    code, err = finish(sensord("run", "-c", str(cfg)))
    assert code == 0, err
    assert " INFO sensord.publish.mqtt: connected to MQTT broker 127.0.0.1:" in err
    assert " INFO sensord.run: stopped: " in err
    assert "WARNING" not in err, err


def test_a_tls_failure_names_the_ca_file_and_what_to_check(tls_broker, caplog):
    import asyncio

    from test_publish_tls import try_with_the_wrong_ca

    port, pki = tls_broker
    asyncio.run(try_with_the_wrong_ca(port, pki))
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "sensord.publish.mqtt"]
    assert "certificate verify failed" in warning
    assert f"check that [mqtt] ca_file ({pki / 'client.pem'}) signs the broker's" in warning
    assert "host (127.0.0.1)" in warning


def _catches(pid: int, signum: int) -> bool:
    """Whether the process has a handler for ``signum`` (SigCgt in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def test_sigterm_while_starting_stops_cleanly_instead_of_killing(tmp_path, broker):
    import signal
    import time

    # the daemon finishes connecting before it stops: its offline status goes out
    cfg = write_config(tmp_path / "c.toml", broker.port, MODES1, protocol=broker.protocol)
    proc = sensord("run", "-c", str(cfg), "--realtime")
    deadline = time.monotonic() + 30
    while not _catches(proc.pid, signal.SIGTERM) and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)  # the daemon is still importing its modules
    proc.send_signal(signal.SIGHUP)  # a reload asked for meanwhile: done once running
    code, err = finish(proc, timeout=60)
    assert code == 0, err
    assert "stop requested while starting" in err
    assert "configuration reloaded" in err
    assert " INFO sensord.run: stopped: " in err


def test_early_stop_remembers_the_signal():
    import signal

    from sensord.commands.run import EarlyStop

    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        early = EarlyStop()
        assert not early.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert early.requested and not early.reload_requested
        os.kill(os.getpid(), signal.SIGHUP)
        assert early.reload_requested
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
