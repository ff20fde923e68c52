"""Shared fixtures: real recordings (modes1 shipped in tests/data, the rest in ../shared/iq)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sensord.geo import Site

SITE = Site(52.0, 4.5, 10.0)  # the receiver of the simulated recordings
SHARED_IQ = Path(__file__).resolve().parents[1].parent / "shared" / "iq"
TEST_DATA = Path(__file__).resolve().parent / "data"
# BSD-3 (antirez/dump1090), shipped so a fresh clone runs the real-data tests
MODES1 = TEST_DATA / "antirez_dump1090_modes1_2000k.cu8"


def shared_file(name: str) -> Path:
    """A real recording, or skip: they live beside the repository, not in it."""
    path = SHARED_IQ / name
    if not path.exists():
        pytest.skip(f"real recording {path} not present (tests read ../shared/iq beside the repo)")
    return path


@pytest.fixture
def modes1() -> Path:
    assert MODES1.exists(), f"{MODES1} is part of the repository"
    return MODES1


@pytest.fixture
def rsadsb_files() -> list[Path]:
    if not SHARED_IQ.is_dir():
        pytest.skip(f"{SHARED_IQ} not present (real recordings live beside the repo)")
    files = sorted(SHARED_IQ.glob("rsadsb_*_2400k.sc16"))
    if not files:
        pytest.skip(f"no rsadsb recordings in {SHARED_IQ}")
    return files


# ---- a real MQTT broker for the daemon's tests ----------------------------------------
import asyncio  # noqa: E402
import getpass  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import paho.mqtt.client as paho  # noqa: E402

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"broker did not listen on {port}")


class Mosquitto:
    """A mosquitto on a free loopback port (never 1883: that one is the machine's)."""

    protocol = 5  # the newest MQTT it speaks

    def __init__(self, workdir: Path, password_file: Path | None = None) -> None:
        self.port = free_port()
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        # as root, mosquitto would drop to user "mosquitto", who cannot read the test's files
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            f"user {getpass.getuser()}",
        ]
        if password_file:
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines += ["allow_anonymous true"]
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class AmqttBroker:
    """amqtt in a thread of its own, where mosquitto is not installed (MQTT 3.1.1 only)."""

    protocol = 311

    def __init__(self) -> None:
        self.port = free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker = None

    def start(self) -> None:
        from amqtt.broker import Broker

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }

        async def boot() -> None:
            self._broker = Broker(config)
            await self._broker.start()

        asyncio.run_coroutine_threadsafe(boot(), self._loop).result(timeout=10)
        wait_port(self.port)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
            self._broker = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = None


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path) if MOSQUITTO else AmqttBroker()
    b.start()
    yield b
    b.stop()


class Subscriber:
    """A real MQTT subscriber (paho) collecting every message under a topic filter."""

    def __init__(self, port: int, topic: str = "sensord/#") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def on(self, suffix: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# ---- a librtlsdr stand-in that pyrtlsdr loads (RTL-SDR source without a dongle) --------
import importlib.util  # noqa: E402

FAKE_LIBRTLSDR_DIR = Path(__file__).resolve().parent / "fake_librtlsdr"


@pytest.fixture(scope="session")
def fake_librtlsdr(tmp_path_factory) -> dict[str, str]:
    """Environment under which a subprocess's pyrtlsdr loads tests/fake_librtlsdr (built here).

    A ``pyrtlsdrlib`` loader put first on PYTHONPATH hands pyrtlsdr the fake; add the
    fake's FAKE_RTLSDR_* switches (recording, unplug file, settings log, count) to it.
    """
    if importlib.util.find_spec("rtlsdr") is None:
        pytest.skip("pyrtlsdr is not installed: pip install -e '.[test]'")
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the fake librtlsdr")
    build = tmp_path_factory.mktemp("fake_librtlsdr")
    lib = build / "librtlsdr.so"
    source = FAKE_LIBRTLSDR_DIR / "fake_librtlsdr.c"
    subprocess.run(
        ["gcc", "-O1", "-Wall", "-Werror", "-shared", "-fPIC", "-o", str(lib), str(source)],
        check=True,
    )
    loader = build / "pyrtlsdrlib"
    loader.mkdir()
    (loader / "__init__.py").write_text(
        "import os\nfrom ctypes import CDLL\n\n\n"
        "def load_librtlsdr():\n    return CDLL(os.environ['FAKE_LIBRTLSDR'])\n"
    )
    # the repository too: a script run from tests/ imports this checkout's sensord
    repo = Path(__file__).resolve().parents[1]
    return {"FAKE_LIBRTLSDR": str(lib), "PYTHONPATH": os.pathsep.join([str(build), str(repo)])}


@pytest.fixture(scope="session")
def short_recording(tmp_path_factory):
    """A simulated 5 s cu8 recording at 2.4 MS/s (8 aircraft): (SimResult, path)."""
    from sensord.sim import random_scenario, simulate, write_recording

    res = simulate(random_scenario(8, SITE, max_range_m=150e3, seed=21), 2.4e6, 5.0, seed=21)
    stem = tmp_path_factory.mktemp("short") / "short"
    write_recording(res, stem)
    return res, stem.with_suffix(".cu8")
