"""``sensord demo`` (the default): every sensor kind through one fusion node.

Five simulated receivers and a passive radar (``sensord.sim.demo_scene``) are replayed
through their own chains and one ``Fuser`` (``fusion.recordings.fuse_recordings``, with
multilateration), in a worker thread paced by the fused UTC (``--speed``), and the fused
track updates go to the demo's sinks through one fan-out.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from sensord.commands.demo_outputs import DemoOutputs, hold
from sensord.fusion.fuser import Fuser, FusionConfig
from sensord.fusion.recordings import fuse_recordings
from sensord.mlat.engine import MlatConfig
from sensord.mlat.feed import MlatFeed
from sensord.sim.demo_scene import DemoScene, record_demo
from sensord.sim.scenario import Scenario
from sensord.sinks.base import Step
from sensord.sinks.fanout import FanOut
from sensord.tracker.update import TrackUpdate
from sensord.ui.live import LiveTableSink
from sensord.ui.summary import RunSummary
from sensord.ui.table import TrackBoard
from sensord.web.picture import Receiver


def kind_of(u: TrackUpdate) -> str:
    """How a track is known: ADS-B, MLAT, radar (located) or radar (range-Doppler only)."""
    if u.bistatic is not None:
        return "radar, range-Doppler only"
    return {"mlat": "MLAT", "radar": "radar only, located"}.get(u.source or "", "ADS-B")


def _receivers(scene: DemoScene) -> list[Receiver]:
    out = [
        Receiver(r.node, r.site.lat_deg, r.site.lon_deg, r.site.alt_m, online=True)
        for r in scene.receivers
    ]
    for r in scene.radars:
        b = r.bistatic
        out.append(Receiver(r.node, b.rx.lat_deg, b.rx.lon_deg, b.rx.alt_m, kind="radar",
                            online=True, tx_lat_deg=b.tx.lat_deg,
                            tx_lon_deg=b.tx.lon_deg))  # fmt: skip
    return out


async def fused_demo(args: argparse.Namespace, console: Console, scenario: Scenario) -> list[str]:
    """Run the fused demo; the summary lines to print at the end."""
    out = await DemoOutputs.start(args, console, scenario.site, receivers=[])
    try:
        with tempfile.TemporaryDirectory(prefix="sensord-demo-") as tmp:
            console.print(
                f"synthesising {args.duration:.0f} s of the bundled scenario for five receivers "
                "and a passive radar...",
                highlight=False,
            )
            scene = await asyncio.to_thread(record_demo, scenario, Path(tmp), args.duration)
            console.print(out.mqtt_hint(args.node), highlight=False)
            if out.web is not None and out.web.web is not None:
                for receiver in _receivers(scene):
                    out.web.web.set_receiver(receiver)
            return await _replay(args, console, scene, out)
    finally:
        await out.close(console)


async def _replay(
    args: argparse.Namespace, console: Console, scene: DemoScene, out: DemoOutputs
) -> list[str]:
    progress = Progress(TextColumn("fusion"), BarColumn(),
                        TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
                        console=console)  # fmt: skip
    task = progress.add_task("fusion", total=args.duration)
    board = TrackBoard(scene.scenario.site, out.table)
    table_sink = LiveTableSink(board, RunSummary(), console, progress, args.table)
    fanout = FanOut([table_sink, *out.sinks], out.table)
    await fanout.start()
    fuser = Fuser(FusionConfig(site=scene.scenario.site, reorder_window_s=1.0))
    mlat = MlatFeed(fuser, MlatConfig(hold_s=0.5))
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    kinds: dict[str, str] = {}
    web = out.web.web if out.web is not None else None

    def on_map(node: str, png: bytes) -> None:
        if web is not None:
            loop.call_soon_threadsafe(web.set_range_doppler, node, png)

    def work() -> None:
        """Replay in this thread; each batch of updates goes to the fan-out on the loop."""
        wall0 = time.monotonic()
        for updates in fuse_recordings(scene.receivers, fuser, mlat=mlat, radars=scene.radars,
                                       on_radar_map=on_map):  # fmt: skip
            if stop.is_set():
                return
            data_s = fuser.released_utc - scene.epoch_utc
            if math.isfinite(data_s) and args.speed is not None:
                time.sleep(max(0.0, wall0 + data_s / args.speed - time.monotonic()))
            for u in updates:
                kinds[u.track_id] = kind_of(u)
            if updates:
                step = Step(updates=updates, utc=fuser.released_utc)
                loop.call_soon_threadsafe(fanout.submit, step)
            if math.isfinite(data_s):
                loop.call_soon_threadsafe(partial(progress.update, task, completed=data_s))

    try:
        await asyncio.to_thread(work)
        if args.hold and not stop.is_set():
            await hold(console)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await fanout.close()
    console.print(board.table(title="tracks at the end"))
    return _summary(fuser, mlat, kinds)


def _summary(fuser: Fuser, mlat: MlatFeed, kinds: dict[str, str]) -> list[str]:
    counts: dict[str, int] = {}
    for kind in kinds.values():
        counts[kind] = counts.get(kind, 0) + 1
    stats = fuser.statistics()
    nodes = ", ".join(f"{name} {c['used']}" for name, c in stats["nodes"].items() if name != "mlat")
    lines = [
        "tracks by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())),
        f"detections used per node: {nodes}",
        f"MLAT: {mlat.status().get('counters', {}).get('mlat_solutions', 0)} positions solved",
    ]
    for name, radar in stats.get("radar", {}).get("nodes", {}).items():
        lines.append(
            f"radar {name}: {radar['detections']} detections, {radar['cooperative']} on "
            f"transponder tracks, {radar['range_doppler']} left to range-Doppler tracks; "
            f"bias {radar['bias']}"
        )
    return lines
