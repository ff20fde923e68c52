"""Soak `sensord run`: a recording looped at full speed, aircraft coming and going.

The loop is made of segments, each a simulated recording of its own aircraft (400 in
all by default, 100 per segment) followed by quiet noise longer than the tracker's drop
time, so every segment's tracks are created, confirmed, coast and drop. An rtl_tcp
server on 127.0.0.1 streams the loop again and again as fast as the daemon reads
(TCP back-pressure: no sample is lost), then a quiet tail; the daemon publishes to a
mosquitto started here and writes every output (aircraft.json, SBS, Beast, metrics).

Measured: samples through the chain, rate, the daemon's RSS (from /proc) after a
warm-up and its growth after it, and the per-track state once every track has dropped
(the tracker's tracks, the shared track table, the publisher's per-track records),
against its baseline of zero.

    python benchmarks/soak.py [--samples 1e9] [--aircraft 400] [--segments 4]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import paho.mqtt.client as paho
from bench_pipeline import start_mosquitto

from sensord.geo import Site
from sensord.sim import random_scenario, record
from sensord.sim.scenario import Scenario

SITE = Site(52.0, 4.5, 10.0)
ROOT = Path(__file__).resolve().parents[1]
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # children run this checkout's sensord
RATE_HZ = 2.4e6
CHUNK_BYTES = 1 << 18


def build_loop(cache: Path, aircraft: int, segments: int, segment_s: float, quiet_s: float):
    """The loop's bytes (cu8): segments of their own aircraft, each followed by noise."""
    cache.mkdir(parents=True, exist_ok=True)
    per_segment = aircraft // segments
    parts = []
    quiet_path = cache / f"quiet_{quiet_s:g}s.cu8"
    if not quiet_path.exists():
        record(Scenario(SITE, []), cache / f"quiet_{quiet_s:g}s", RATE_HZ, quiet_s, seed=7)
    for k in range(segments):
        stem = cache / f"seg{k}_{per_segment}ac_{segment_s:g}s"
        if not stem.with_suffix(".cu8").exists():
            scenario = random_scenario(per_segment, SITE, max_range_m=200e3, seed=100 + k)
            record(scenario, stem, RATE_HZ, segment_s, seed=100 + k)
        parts += [stem.with_suffix(".cu8").read_bytes(), quiet_path.read_bytes()]
    return b"".join(parts), quiet_path.read_bytes()


class LoopServer:
    """rtl_tcp on 127.0.0.1: the loop until ``target_samples``, a quiet tail, then idle."""

    def __init__(self, loop: bytes, quiet: bytes, target_samples: int, tail_repeats: int):
        self.loop, self.quiet = loop, quiet
        self.target_bytes = 2 * target_samples
        self.tail_repeats = tail_repeats
        self.sent_bytes = 0
        self.done = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn:
            conn.sendall(b"RTL0" + struct.pack(">II", 5, 29))
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()
            view = memoryview(self.loop)
            try:
                while self.sent_bytes < self.target_bytes and not self._stop.is_set():
                    for start in range(0, len(view), CHUNK_BYTES):
                        conn.sendall(view[start : start + CHUNK_BYTES])
                        self.sent_bytes += len(view[start : start + CHUNK_BYTES])
                for _ in range(self.tail_repeats):
                    conn.sendall(self.quiet)
                    self.sent_bytes += len(self.quiet)
                self.done.set()
                self._stop.wait()  # stay connected, idle
            except OSError:
                self.done.set()

    @staticmethod
    def _drain(conn: socket.socket) -> None:
        """Read (and ignore) the client's commands."""
        try:
            while conn.recv(64):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@dataclass
class Watch:
    """The daemon's status messages and RSS samples over the run."""

    statuses: list[dict] = field(default_factory=list)
    rss: list[tuple[int, int]] = field(default_factory=list)  # (samples so far, RSS kB)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def latest(self) -> dict:
        with self.lock:
            return self.statuses[-1] if self.statuses else {}


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def write_config(path: Path, port: int, mqtt_port: int, out_dir: Path, frames: bool) -> None:
    path.write_text(f"""
[receiver]
lat_deg = {SITE.lat_deg}
lon_deg = {SITE.lon_deg}
alt_m = {SITE.alt_m}
[source]
spec = "rtltcp://127.0.0.1:{port}"
rate_hz = {RATE_HZ}
block_samples = 262144
stall_grace_s = 600
[tracker]
coast_after_s = 2.0
drop_after_s = 5.0
[mqtt]
port = {mqtt_port}
node = "soak"
stats_interval_s = 1.0
publish_frames = {"true" if frames else "false"}
[outputs]
aircraft_json_dir = "{out_dir}"
sbs_port = {free_port()}
beast_port = {free_port()}
metrics_port = {free_port()}
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def per_track_state(status: dict) -> dict[str, int]:
    """The per-track records the status reports: all zero once every track dropped."""
    return {
        "tracker_tracks": sum(status.get("tracks_by_state", {}).values()),
        "track_table": status.get("tracks", -1),
        "mqtt_tracks_published": status.get("mqtt", {}).get("tracks_published", -1),
    }


def soak(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="sensord-soak-"))
    t0 = time.monotonic()
    loop, quiet = build_loop(
        Path(args.cache), args.aircraft, args.segments, args.segment_s, args.quiet_s
    )
    loop_samples = len(loop) // 2
    print(
        f"loop: {loop_samples / RATE_HZ:.0f} s of recording ({loop_samples} samples), "
        f"{args.aircraft} aircraft in {args.segments} segments; built in "
        f"{time.monotonic() - t0:.0f} s",
        flush=True,
    )
    mosquitto, mqtt_port = start_mosquitto(work)
    watch = Watch()
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2)

    def on_message(_c, _u, msg) -> None:
        if msg.payload:
            status = json.loads(msg.payload)
            if status.get("state") == "online":
                with watch.lock:
                    watch.statuses.append(status)

    sub.on_message = on_message
    sub.on_connect = lambda c, *_: c.subscribe("sensord/soak/status", qos=1)
    sub.connect("127.0.0.1", mqtt_port)
    sub.loop_start()
    tail_repeats = max(2, int(3 * 5.0 / args.quiet_s) + 1)  # > the drop time, thrice
    server = LoopServer(loop, quiet, int(args.samples), tail_repeats)
    out_dir = work / "json"
    out_dir.mkdir()
    cfg = work / "soak.toml"
    write_config(cfg, server.port, mqtt_port, out_dir, args.frames)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensord", "run", "-c", str(cfg)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=CHILD_ENV,
    )
    deadline = started + args.timeout_s
    next_report = started + args.report_s
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            samples = watch.latest().get("samples", 0)
            watch.rss.append((samples, rss_kb(proc.pid)))
            if time.monotonic() >= next_report:
                next_report += args.report_s
                print(
                    f"  {time.monotonic() - started:6.0f} s: {samples / 1e6:8.0f} M samples, "
                    f"RSS {watch.rss[-1][1] / 1024:.1f} MB",
                    flush=True,
                )
            if server.done.is_set() and samples * 2 >= server.sent_bytes:
                # everything sent went through: let the statuses settle on the final state
                time.sleep(3.0)
                break
        wall_s = time.monotonic() - started
        final = watch.latest()
        rss_final = rss_kb(proc.pid) if proc.poll() is None else 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        server.close()
        sub.loop_stop()
        mosquitto.kill()
    warm = int(args.warmup_loops * loop_samples)
    after = [kb for s, kb in watch.rss if s >= warm]
    at_warm = after[0] if after else 0
    result = {
        "samples": final.get("samples", 0),
        "sent_samples": server.sent_bytes // 2,
        "wall_s": round(wall_s, 1),
        "ms_per_s": round(final.get("samples", 0) / wall_s / 1e6, 1),
        "loops": round(final.get("samples", 0) / loop_samples, 2),
        "rss_mb_after_warmup": round(at_warm / 1024, 1),
        "rss_mb_max_after_warmup": round(max(after, default=0) / 1024, 1),
        "rss_mb_final": round(rss_final / 1024, 1),
        "rss_growth_mb": round((max(after, default=0) - at_warm) / 1024, 1),
        "per_track_state_final": per_track_state(final),
        "tracks_created_total": None,
        "results_dropped": final.get("pipeline", {}).get("results_dropped"),
        "sinks": {
            k: {"dropped": v["dropped"], "errors": v["errors"]}
            for k, v in final.get("sinks", {}).items()
        },
        "mqtt_published": final.get("mqtt", {}).get("published"),
        "exit_code": proc.returncode,
        "traceback": "Traceback" in err,
    }
    for line in err.splitlines():
        if "stopped:" in line and "tracks created" in line:
            result["tracks_created_total"] = int(line.split(",")[-1].split()[0])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=float, default=1e9, help="samples to stream (default 1e9)")
    p.add_argument("--aircraft", type=int, default=400, help="aircraft in the loop (default 400)")
    p.add_argument("--segments", type=int, default=4, help="segments of the loop (default 4)")
    p.add_argument("--segment-s", type=float, default=8.0, help="seconds per segment")
    p.add_argument("--quiet-s", type=float, default=6.0, help="noise after each segment, s")
    p.add_argument("--warmup-loops", type=float, default=2.0, help="loops before RSS is watched")
    p.add_argument("--frames", action="store_true", help="also publish every frame")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "sensord-soak-cache"))
    p.add_argument("--timeout-s", type=float, default=3600.0)
    p.add_argument("--report-s", type=float, default=30.0)
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = p.parse_args(argv)
    result = soak(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")
    ok = (
        result["exit_code"] == 0
        and not result["traceback"]
        and result["samples"] >= result["sent_samples"]
        and result["rss_growth_mb"] < 5.0
        and not any(result["per_track_state_final"].values())
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
