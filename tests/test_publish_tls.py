"""The publisher over TLS with a CA and a client certificate, against a real mosquitto."""

import asyncio
import getpass
import json
import shutil
import ssl
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import aiomqtt
import pytest
from conftest import MOSQUITTO, free_port, wait_port

from sensord.publish.mqtt import MqttSettings, Publisher
from sensord.tracker.update import TrackStatus, TrackUpdate


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_pki(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))  # fmt: skip
    for name, extra in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))  # fmt: skip
        ext = d / f"{name}.ext"
        ext.write_text(extra + "\n")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
                "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
                "-extfile", str(ext), "-out", str(d / f"{name}.pem"))  # fmt: skip


@pytest.fixture
def tls_broker(tmp_path):
    if MOSQUITTO is None or shutil.which("openssl") is None:
        pytest.skip("needs mosquitto and openssl")
    make_pki(tmp_path)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\npersistence false\nallow_anonymous true\n"
        f"user {getpass.getuser()}\ncafile {tmp_path / 'ca.pem'}\n"
        f"certfile {tmp_path / 'server.pem'}\nkeyfile {tmp_path / 'server.key'}\n"
        "require_certificate true\n"
    )
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_port(port)
    yield port, tmp_path
    proc.kill()
    proc.wait(timeout=10)


def tls_settings(port: int, pki: Path, **kw) -> MqttSettings:
    return MqttSettings(
        port=port,
        tls=True,
        ca_file=str(pki / "ca.pem"),
        cert_file=str(pki / "client.pem"),
        key_file=str(pki / "client.key"),
        **kw,
    )


async def publish_and_read_back(port: int, pki: Path) -> list[dict]:
    pub = Publisher(tls_settings(port, pki))
    pub.track_updates([TrackUpdate("4840D6", 3.0, TrackStatus.CONFIRMED, icao="4840D6")])
    runner = asyncio.create_task(pub.run(stats_interval_s=60))
    while pub.pending() or not pub.stats.connected:
        await asyncio.sleep(0.02)
    await pub.stop()
    await runner
    tls = aiomqtt.TLSParameters(
        ca_certs=str(pki / "ca.pem"),
        certfile=str(pki / "client.pem"),
        keyfile=str(pki / "client.key"),
        cert_reqs=ssl.CERT_REQUIRED,
    )
    got = []
    async with aiomqtt.Client("127.0.0.1", port, tls_params=tls) as sub:
        await sub.subscribe("sensord/rx0/tracks/#", qos=1)
        async with asyncio.timeout(5):
            async for m in sub.messages:
                got.append(json.loads(m.payload))
                break
    return got


def test_tls_with_ca_and_client_certificate(tls_broker):
    port, pki = tls_broker
    (state,) = asyncio.run(publish_and_read_back(port, pki))
    assert state["track_id"] == "4840D6" and state["status"] == "confirmed"


async def try_with_the_wrong_ca(port: int, pki: Path) -> Publisher:
    # the client certificate is no CA: the broker's certificate cannot be verified
    pub = Publisher(replace(tls_settings(port, pki), ca_file=str(pki / "client.pem")))
    runner = asyncio.create_task(pub.run(stats_interval_s=60))
    started = time.monotonic()
    while not pub.stats.last_error and time.monotonic() - started < 15:
        await asyncio.sleep(0.05)
    await pub.stop()
    await runner
    return pub


def test_tls_wrong_ca_is_a_clear_error_and_retried_not_fatal(tls_broker, caplog):
    port, pki = tls_broker
    pub = asyncio.run(try_with_the_wrong_ca(port, pki))
    assert not pub.stats.connected and pub.stats.connects == 0
    assert "certificate verify failed" in pub.stats.last_error
    warnings = [r.getMessage() for r in caplog.records if r.name == "sensord.publish.mqtt"]
    assert len(warnings) == 1 and "retrying with backoff" in warnings[0]
