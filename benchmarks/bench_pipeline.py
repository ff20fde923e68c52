"""Whole-pipeline figures at 2.4 MS/s in real time: latency to an MQTT subscriber, CPU share.

A simulated recording (30 aircraft) is replayed at the pace of a live dongle (each block
released when its last sample would have arrived) through the daemon's pipeline and
publisher to a mosquitto started here on a free loopback port. A subscriber records when
each track state arrives; latency = arrival - (replay start + the update's sample time),
i.e. from the sample time of the frame that caused the update to the message at the
subscriber. Then ``sensord run`` replays the same recording in real time as a process;
the slope of the CPU seconds it reports on its status topic over wall time is the
pipeline's steady-state share of one core.

    python benchmarks/bench_pipeline.py [--seconds 20] [--block-samples 65536]
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import paho.mqtt.client as paho

from sensord.daemon.pipeline import Pipeline
from sensord.geo import Site
from sensord.publish.mqtt import MqttSettings
from sensord.sim import random_scenario, record
from sensord.sinks.fanout import FanOut
from sensord.sinks.mqtt import MqttSink
from sensord.sinks.table import TrackTable
from sensord.source.iqfile import IQFileSource
from sensord.source.pacing import RealtimeSource

SITE = Site(52.0, 4.5, 10.0)


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\npersistence false\nallow_anonymous true\n"
        f"user {getpass.getuser()}\n"
    )
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([exe, "-c", str(conf)], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def subscribe(port: int, topic: str, on_payload) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, msg: on_payload(msg.payload) if msg.payload else None
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    time.sleep(0.5)
    return client


def latency(path: Path, port: int, block_samples: int) -> np.ndarray:
    arrivals: list[tuple[float, float]] = []
    lock = threading.Lock()

    def on_payload(payload: bytes) -> None:
        now = time.time()
        with lock:
            arrivals.append((now, json.loads(payload)["t_s"]))

    sub = subscribe(port, "bench/rx0/tracks/#", on_payload)
    source = RealtimeSource(IQFileSource(path, rate_hz=2.4e6, block_samples=block_samples))
    table = TrackTable()
    mqtt = MqttSink(
        MqttSettings(port=port, prefix="bench", rate_limit_s=0.0), table, stats_interval_s=60
    )
    fanout = FanOut([mqtt], table)
    pipeline = Pipeline(source, SITE, fanout)

    async def replay() -> None:
        await fanout.start()
        await pipeline.run()
        await fanout.close(5.0)

    asyncio.run(replay())
    time.sleep(0.5)
    sub.loop_stop()
    assert source.started_wall is not None
    return np.array([arrived - (source.started_wall + t_s) for arrived, t_s in arrivals])


def cpu_share(path: Path, port: int, workdir: Path, block_samples: int) -> float:
    """Steady-state CPU share: slope of the daemon's reported CPU seconds over wall time."""
    cfg = workdir / "bench.toml"
    cfg.write_text(
        f"[receiver]\nlat_deg = {SITE.lat_deg}\nlon_deg = {SITE.lon_deg}\n"
        f'[source]\nspec = "{path}"\nrealtime = true\nblock_samples = {block_samples}\n'
        f'[mqtt]\nport = {port}\nprefix = "bench2"\nstats_interval_s = 1.0\n'
    )
    samples: list[tuple[float, float]] = []

    def on_payload(payload: bytes) -> None:
        status = json.loads(payload)
        if status.get("state") == "online":
            samples.append((time.monotonic(), status["cpu_s"]))

    sub = subscribe(port, "bench2/rx0/status", on_payload)
    subprocess.run([sys.executable, "-m", "sensord", "run", "-c", str(cfg)], check=True)
    sub.loop_stop()
    (t0, c0), (t1, c1) = samples[1], samples[-1]  # skip start-up (imports, first block)
    return (c1 - c0) / (t1 - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--block-samples", type=int, default=65536)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        stem = work / "bench"
        record(random_scenario(30, SITE, seed=5), stem, 2.4e6, args.seconds, seed=5)
        broker, port = start_mosquitto(work)
        try:
            lat = latency(stem.with_suffix(".cu8"), port, args.block_samples)
            share = cpu_share(stem.with_suffix(".cu8"), port, work, args.block_samples)
        finally:
            broker.kill()
    ms = lat * 1e3
    block_ms = args.block_samples / 2.4e3
    print(
        f"latency sample time -> subscriber, {len(ms)} track messages, blocks of "
        f"{args.block_samples} samples ({block_ms:.1f} ms): median {np.median(ms):.1f} ms, "
        f"p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms"
    )
    print(
        f"whole pipeline at 2.4 MS/s (sensord run, real time, steady state): {share:.1%} of a core"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
