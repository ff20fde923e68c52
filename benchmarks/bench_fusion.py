"""Fusion node figures: throughput, latency through a broker, and RSS.

Throughput: 20 receivers x 300 aircraft (``fusion_load``): every receiver's v2 batches,
pre-rendered, fed to ``Fuser.ingest``/``step`` as the service does; detections in (every
receiver's copies) per CPU-second of the fusion process.

Latency and RSS: a real mosquitto on a loopback port, ``sensord fuse -c`` subscribed, a
publisher sending the same load in real time with UTC = now, and a subscriber timing each
fused track state against the UTC of the newest detection it carries (its
``last_update_s``): node detection -> fused track on the broker. Once with the reorder
window off, once with 1 s. RSS of the ``sensord fuse`` process at that load.

    python benchmarks/bench_fusion.py [--receivers 20] [--aircraft 300] [--seconds 20]
        [--latency-seconds 15] [--no-broker]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's sensord
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from fusion_load import CENTER, Load
from procinfo import free_port, rss_mb

from sensord.fusion.fuser import Fuser, FusionConfig

EPOCH_UTC = 1_796_040_000.0


def throughput(load: Load, seconds: float) -> tuple[float, int, dict]:
    batches = list(load.batches(seconds, EPOCH_UTC))  # rendered before timing: the nodes' work
    fuser = Fuser(FusionConfig(site=CENTER, reorder_window_s=1.0))
    for node, info in load.infos():
        fuser.node_info(node, info)
    n = sum(count for *_, count in batches)
    cpu0 = time.process_time()
    for end_utc, node, payload, _ in batches:
        fuser.ingest(node, payload.encode())
        fuser.step(end_utc)
    fuser.flush()
    cpu = time.process_time() - cpu0
    return n / cpu, n, fuser.statistics()


def latency(
    load: Load, seconds: float, window_s: float, workdir: Path
) -> tuple[np.ndarray, float, float]:
    """Latencies (s) of fused states, the fuse process's RSS (MB) and CPU share."""
    import paho.mqtt.client as paho

    port = free_port()
    conf = workdir / f"mosquitto-{port}.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\npersistence false\nallow_anonymous true\nuser root\n"
    )
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(0.5)
    fuse_toml = workdir / f"fuse-{port}.toml"
    fuse_toml.write_text(f"""
[mqtt]
port = {port}
node = "fusion"
rate_limit_s = 1.0
stats_interval_s = 5.0
stream_queue_max = 100000
[fusion]
site = "{CENTER.lat_deg},{CENTER.lon_deg},{CENTER.alt_m}"
reorder_window_s = {window_s}
""")
    fuse = subprocess.Popen([sys.executable, "-m", "sensord", "fuse", "-c", str(fuse_toml)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    lat: list[float] = []
    lock = threading.Lock()

    def on_message(client, userdata, msg) -> None:
        if not msg.payload:
            return
        d = json.loads(msg.payload)
        with lock:
            lat.append(time.time() - d["last_update_s"])

    sub = paho.Client(paho.CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.on_connect = lambda c, *_: c.subscribe("sensord/fusion/tracks/#", qos=0)
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    for node, info in load.infos():
        pub.publish(f"sensord/{node}/info", json.dumps(info), qos=1, retain=True)
    time.sleep(3.0)  # the fusion process subscribed
    start_wall = time.time()
    cpu_start = _cpu_s(fuse.pid)
    # render a block, then send its batches when the block ends (as a node would)
    t = 0.0
    rss = []
    while t < seconds:
        block = load.detections_in(t, t + load.block_s, start_wall)
        end_wall = start_wall + t + load.block_s
        wait = end_wall - time.time()
        if wait > 0:
            time.sleep(wait)
        from sensord.fusion.wire import batch_json

        for node, dets in block.items():
            if dets:
                pub.publish(f"sensord/{node}/detections", batch_json(node, end_wall, dets), qos=0)
        t += load.block_s
        if int(t * 10) % 50 == 0:
            rss.append(rss_mb(fuse.pid))
    cpu = _cpu_s(fuse.pid) - cpu_start
    time.sleep(window_s + 1.0)
    fuse.send_signal(signal.SIGTERM)
    fuse.communicate(timeout=30)
    for c in (sub, pub):
        c.loop_stop()
        c.disconnect()
    broker.kill()
    broker.wait()
    with lock:
        values = np.array(lat)
    # the first seconds hold tracks being born; measure the steady state
    return values[len(values) // 5 :], max(rss) if rss else float("nan"), cpu / seconds


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--receivers", type=int, default=20)
    p.add_argument("--aircraft", type=int, default=300)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--latency-seconds", type=float, default=15.0)
    p.add_argument("--no-broker", action="store_true", help="throughput only")
    args = p.parse_args()
    load = Load(args.receivers, args.aircraft)
    rate, n, stats = throughput(load, args.seconds)
    dups = stats["dedup"]["duplicates"]
    print(f"throughput: {args.receivers} receivers x {args.aircraft} aircraft, {n} detections "
          f"({dups} duplicates) in {args.seconds:g} s of data: {rate:,.0f} detections per "
          f"CPU-second (target >= 50,000); {n / args.seconds:,.0f} detections/s arrive, so "
          f"the fusion process needs {n / args.seconds / rate:.1%} of a core")  # fmt: skip
    if args.no_broker or (
        shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists()
    ):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for window_s, target in ((0.0, "p99 < 0.250 s"), (1.0, "<= window + 0.150 s")):
            values, rss, cpu = latency(load, args.latency_seconds, window_s, Path(tmp))
            if not len(values):
                print(f"latency window {window_s:g} s: no fused states received")
                continue
            p50, p99 = np.percentile(values, [50, 99])
            print(f"latency, reorder window {window_s:g} s: p50 {p50 * 1e3:.0f} ms, "
                  f"p99 {p99 * 1e3:.0f} ms ({len(values)} states; target {target}); "
                  f"sensord fuse RSS {rss:.0f} MB, CPU {cpu:.1%} of a core")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
