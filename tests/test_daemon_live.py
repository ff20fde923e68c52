"""`sensord run` on the live sources, without hardware: an RTL-SDR through pyrtlsdr over the
fake librtlsdr, and the test rtl_tcp server, both streaming a simulated recording, publishing
to a real broker. They must publish what a file replay of the same recording publishes, and
ride out a dongle unplugged or a server gone: tracks kept, the loss logged once, the gap
counted, the systemd watchdog heartbeat stopped only after the grace period.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import Subscriber
from rtltcp_server import RtlTcpTestServer
from test_daemon import finish, sensord, write_config

from sensord.geo import great_circle_m


def subscribe(port: int, node: str) -> Subscriber:
    sub = Subscriber(port, f"sensord/{node}/#")
    time.sleep(0.3)
    return sub


def statuses(sub: Subscriber) -> list[dict]:
    return [s for s in map(json.loads, sub.on("/status")) if s["state"] == "online"]


def events(sub: Subscriber) -> list[dict]:
    return [json.loads(p) for p in sub.on("/events")]


def track_states(sub: Subscriber) -> list[dict]:
    with sub.lock:
        return [json.loads(p) for t, p, _ in sub.messages if "/tracks/" in t and p]


def last_positions(sub: Subscriber) -> dict[str, dict]:
    """The last published state with a position of every aircraft."""
    return {s["icao"]: s for s in track_states(sub) if s.get("lat_deg") is not None}


def until_offline(sub: Subscriber, timeout_s: float = 10.0) -> None:
    """Wait for the daemon's last message, its offline status, as sent (not one retained
    from an earlier run): all before it has arrived (a connection's messages arrive in
    order)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with sub.lock:
            live = [p for t, p, retained in sub.messages if t.endswith("/status") and not retained]
        if any(json.loads(p)["state"] == "offline" for p in live):
            return
        assert time.monotonic() < deadline, "no offline status"
        time.sleep(0.05)


def run_until(proc, sub: Subscriber, done, timeout_s: float = 30.0) -> tuple[int, str]:
    """Let the daemon run until ``done(statuses)``, then SIGTERM it; its exit code, stderr."""
    deadline = time.monotonic() + timeout_s
    while not done(statuses(sub)):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the daemon did not get there in time"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    return finish(proc, timeout=30)


def streamed(n_samples: int):
    return lambda sts: any(s["samples"] >= n_samples for s in sts)


def replay_config(tmp_path: Path, broker, recording: Path, node: str) -> Path:
    """A config publishing every track update and every frame under ``node``."""
    return write_config(
        tmp_path / f"{node}.toml",
        broker.port,
        recording,
        protocol=broker.protocol,
        node=node,
        publish_frames=True,
        frames_schema=1,
        rate_limit_s=0.0,
    )


@pytest.fixture
def file_replay(broker, short_recording, tmp_path):
    """What `sensord run` publishes replaying the recording from its file: frames, tracks."""
    _, path = short_recording
    sub = subscribe(broker.port, "file")
    cfg = replay_config(tmp_path, broker, path, "file")
    code, err = finish(sensord("run", "-c", str(cfg)))
    until_offline(sub)
    sub.close()
    assert code == 0, err
    return [json.loads(p) for p in sub.on("/frames")], last_positions(sub)


def fake_dongle_env(fake_librtlsdr: dict[str, str], recording: Path, **switches) -> dict:
    return {**os.environ, **fake_librtlsdr, "FAKE_RTLSDR_IQ": str(recording), **switches}


@pytest.mark.parametrize("live", ["rtlsdr", "rtltcp"])
def test_live_sources_publish_what_a_file_replay_publishes(
    live, broker, short_recording, file_replay, fake_librtlsdr, tmp_path
):
    res, path = short_recording
    n_samples = len(res.iq) // 2
    file_frames, file_tracks = file_replay
    sub = subscribe(broker.port, "live")
    cfg = replay_config(tmp_path, broker, path, "live")
    if live == "rtlsdr":
        proc = sensord(
            "run", "-c", str(cfg), "--source", "rtlsdr", env=fake_dongle_env(fake_librtlsdr, path)
        )
        code, err = run_until(proc, sub, streamed(n_samples))
    else:
        with RtlTcpTestServer(path) as server:
            proc = sensord("run", "-c", str(cfg), "--source", server.spec)
            code, err = run_until(proc, sub, streamed(n_samples))
    until_offline(sub)
    sub.close()
    assert code == 0, err
    frames = [json.loads(p) for p in sub.on("/frames")]
    assert len(file_frames) > 150
    assert frames[: len(file_frames)] == file_frames
    assert all(f["sample_idx"] >= n_samples for f in frames[len(file_frames) :])  # quiet band
    tracks = last_positions(sub)
    assert len(file_tracks) >= 5
    assert tracks.keys() == file_tracks.keys()
    for icao, state in tracks.items():
        ref = file_tracks[icao]
        assert state["status"] == ref["status"] and state["t_s"] == pytest.approx(ref["t_s"])
        miss_m = great_circle_m(state["lat_deg"], state["lon_deg"], ref["lat_deg"], ref["lon_deg"])
        assert miss_m < 1
    assert statuses(sub)[-1]["source"]["gaps"] == 0


class NotifySocket:
    """A NOTIFY_SOCKET datagram socket; a thread records (monotonic time, message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.received: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                self.received.append((time.monotonic(), self.sock.recv(4096).decode()))
            except TimeoutError:
                continue

    def wait_for(self, prefix: str, timeout_s: float) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for t, m in list(self.received):
                if m.startswith(prefix):
                    return t
            time.sleep(0.02)
        raise AssertionError(f"no {prefix} from the daemon in {timeout_s} s")

    def beats(self, t0: float, t1: float) -> list[float]:
        return [t for t, m in self.received if m == "WATCHDOG=1" and t0 <= t < t1]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def unplug(path: Path, at: float, outage_s: float) -> None:
    """Pull the fake dongle at monotonic time ``at`` and plug it back ``outage_s`` later."""
    time.sleep(max(0.0, at - time.monotonic()))
    path.touch()
    time.sleep(outage_s)
    path.unlink()


def test_dongle_unplugged_tracks_coast_watchdog_waits_for_the_grace(
    broker, short_recording, fake_librtlsdr, tmp_path
):
    res, path = short_recording
    grace_s, short_s, long_s = 1.5, 0.3, 3.0
    plug = tmp_path / "unplugged"
    notify = NotifySocket(tmp_path / "notify.sock")
    env = fake_dongle_env(fake_librtlsdr, path, FAKE_RTLSDR_UNPLUG=str(plug))
    env.update(NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="200000")  # a beat every 0.1 s
    sub = subscribe(broker.port, "live")
    cfg = write_config(
        tmp_path / "live.toml",
        broker.port,
        path,
        source={"stall_grace_s": grace_s},
        tracker={"coast_after_s": 2.0},
        protocol=broker.protocol,
        node="live",
    )
    proc = sensord("run", "-c", str(cfg), "--source", "rtlsdr", "--log-level", "info", env=env)
    try:
        ready = notify.wait_for("READY=1", 20)
        unplug(plug, ready + 1.5, short_s)  # shorter than the grace: the heartbeat goes on
        long_at = ready + 3.0
        unplug(plug, long_at, long_s)  # longer: it stops after the grace, resumes on reopening
        back = long_at + long_s
        code, err = run_until(
            proc, sub, lambda sts: bool(sts) and sts[-1]["source"]["reconnects"] == 2, 15
        )
    finally:
        notify.close()
    time.sleep(0.3)
    sub.close()
    assert code == 0, err
    # the loss is logged once per outage, the retries quietly
    assert err.count("lost") == 2 and err.count("streaming again") == 2, err
    assert "unavailable" not in err
    # the heartbeat: steady through the short outage and the long one's grace, then silent
    # until samples flow again
    short = notify.beats(ready + 1.5, ready + 1.5 + short_s + 0.5)
    assert max(b - a for a, b in itertools.pairwise(short)) < 0.4
    assert notify.beats(long_at, long_at + grace_s - 0.3)
    assert not notify.beats(long_at + grace_s + 0.3, back)
    assert len(notify.beats(back, back + 10)) >= 3
    # tracks coast across the outage and are not dropped or re-created
    confirmed = {e["track_id"] for e in events(sub) if e["event"] == "confirmed"}
    assert len(confirmed) >= 3
    new = [e["track_id"] for e in events(sub) if e["event"] == "new"]
    assert len(new) == len(set(new))
    lost = {e["track_id"] for e in events(sub) if e["event"] == "lost"}
    assert not lost & confirmed
    last = {s["track_id"]: s for s in track_states(sub)}
    assert {last[t]["status"] for t in confirmed} == {"coasting"}
    # both outages counted as gaps on the sample clock, in the status statistics
    status = statuses(sub)[-1]
    assert status["gaps"] == status["source"]["gaps"] == 2
    lost_samples = (short_s + long_s) * res.rate_hz
    assert status["gap_samples"] == status["source"]["drops"] >= 0.9 * lost_samples


def test_rtltcp_server_gone_mid_run_reconnects_and_keeps_the_tracks(
    broker, short_recording, tmp_path
):
    res, path = short_recording
    n_samples = len(res.iq) // 2
    outage_s = 1.0
    sub = subscribe(broker.port, "live")
    cfg = write_config(
        tmp_path / "live.toml", broker.port, path, protocol=broker.protocol, node="live"
    )
    with RtlTcpTestServer(path, cut_after_bytes=n_samples, outage_s=outage_s) as server:
        proc = sensord("run", "-c", str(cfg), "--source", server.spec, "--log-level", "info")
        code, err = run_until(proc, sub, streamed(n_samples))
        assert server.connections >= 2
    time.sleep(0.3)
    sub.close()
    assert code == 0, err
    assert err.count("lost") == 1 and err.count("connected again") == 1, err
    status = statuses(sub)[-1]
    assert status["source"]["reconnects"] == 1
    assert status["gaps"] == status["source"]["gaps"] == 1
    assert status["gap_samples"] == status["source"]["drops"] >= 0.9 * outage_s * res.rate_hz
    confirmed = {e["track_id"] for e in events(sub) if e["event"] == "confirmed"}
    assert len(confirmed) >= 3
    new = [e["track_id"] for e in events(sub) if e["event"] == "new"]
    assert len(new) == len(set(new))
    assert not {e["track_id"] for e in events(sub) if e["event"] == "lost"} & confirmed
    # updated after the gap: the sample clock went on by the outage
    half_s = n_samples / 2 / res.rate_hz
    after = {s["track_id"] for s in track_states(sub) if s["t_s"] > half_s + outage_s}
    assert after & confirmed
