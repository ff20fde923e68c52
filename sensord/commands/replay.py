"""``sensord replay FILE``: a recording through the receive chain, with progress, the live
track table (optional), file/metrics outputs and a summary at the end."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from sensord.commands.source_args import add_source_arguments, open_file_source
from sensord.commands.track import add_chain_arguments, chain_settings
from sensord.config import ReceiverConfig
from sensord.daemon.pipeline import Pipeline
from sensord.geo import Site
from sensord.metrics import SensorMetrics
from sensord.outputs.aircraft_json import AircraftJsonWriter
from sensord.sinks.base import Sink
from sensord.sinks.fanout import FanOut
from sensord.sinks.files import AircraftJsonSink, MetricsSink
from sensord.sinks.table import TrackTable
from sensord.source.pacing import RealtimeSource
from sensord.ui.live import LiveTableSink
from sensord.ui.summary import RunSummary
from sensord.ui.table import TrackBoard, make_console

if TYPE_CHECKING:
    from rich.progress import TaskID

    from sensord.tracker.tracker import TrackerConfig

REPLAY_MAX_RANGE_M = ReceiverConfig.max_range_km * 1e3  # the configuration's, as in run


def parse_speed(text: str) -> float | None:
    """``max`` (None: as fast as possible) or a real-time factor > 0."""
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not speed > 0:
        raise argparse.ArgumentTypeError("expected 'max' or a factor > 0, e.g. 1 or 4")
    return speed


def port_argument(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535 (argparse's one-line error if not)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 0 to 65535, got {text!r}")
    return port


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by replay and demo."""
    p.add_argument("--speed", type=parse_speed, default=None, help="max (default) or real time x N")
    p.add_argument("--table", action="store_true", help="show the live track table")
    p.add_argument("--aircraft-json", metavar="DIR", help="write DIR/aircraft.json (tar1090)")
    p.add_argument(
        "--metrics-port",
        type=port_argument,
        help="serve Prometheus metrics on 127.0.0.1:PORT (0: a free port)",
    )


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("replay", help="replay a recording with progress, table and summary")
    add_source_arguments(p)
    add_chain_arguments(p)
    add_output_arguments(p)
    p.set_defaults(func=run)


def replay(
    source,
    site: Site,
    args: argparse.Namespace,
    console: Console,
    fix_bits: int = 1,
    extra_sinks: list[Sink] | None = None,
    sensor_id: str = "rx0",
    max_range_m: float = REPLAY_MAX_RANGE_M,
    tracker_config: TrackerConfig | None = None,
) -> RunSummary:
    """Run ``source`` through the chain and the sinks: the table and summary, aircraft.json,
    metrics, and ``extra_sinks`` (e.g. MQTT, SBS, Beast); returns the summary."""
    return asyncio.run(
        replay_async(
            source,
            site,
            args,
            console,
            fix_bits,
            extra_sinks,
            sensor_id,
            max_range_m=max_range_m,
            tracker_config=tracker_config,
        )
    )


async def replay_async(
    source,
    site: Site,
    args: argparse.Namespace,
    console: Console,
    fix_bits: int = 1,
    extra_sinks: list[Sink] | None = None,
    sensor_id: str = "rx0",
    table: TrackTable | None = None,
    before_close: Callable[[], Awaitable[None]] | None = None,
    max_range_m: float = REPLAY_MAX_RANGE_M,
    tracker_config: TrackerConfig | None = None,
) -> RunSummary:
    """``replay`` on a running event loop; ``table`` is the one ``extra_sinks`` share.

    ``source`` may also be a coroutine function making the source: it is awaited once the
    sinks listen (the demo synthesises its recording while TCP clients connect).
    ``before_close`` is awaited after the last step, before the sinks close (``--hold``).
    """
    table = TrackTable() if table is None else table
    board = TrackBoard(site, table)
    summary = RunSummary()
    progress = Progress(
        TextColumn("replay"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
    )
    task = progress.add_task("replay", total=None)
    sinks: list[Sink] = [LiveTableSink(board, summary, console, progress, args.table)]
    if args.aircraft_json:
        sinks.append(AircraftJsonSink(AircraftJsonWriter(args.aircraft_json, table)))
    metrics = None
    if args.metrics_port is not None:
        metrics = MetricsSink(SensorMetrics(), site, table, args.metrics_port)
        sinks.append(metrics)
    fanout = FanOut(sinks + list(extra_sinks or []), table)
    await fanout.start()
    try:
        if metrics is not None:
            console.print(f"metrics on http://127.0.0.1:{metrics.port}/metrics")
        if callable(source):
            source = await source()
        progress.update(task, total=getattr(source, "n_samples", None))  # a file knows it
        if args.speed is not None:
            source = RealtimeSource(source, args.speed)
        pipeline = Pipeline(
            ProgressSource(source, progress, task, summary),
            site,
            fanout,
            fix_bits=fix_bits,
            max_range_m=max_range_m,
            tracker_config=tracker_config,
            lossless=True,
            sensor_id=sensor_id,
        )
        try:
            await pipeline.run()
            if before_close is not None:
                await before_close()
        finally:
            source.close()
    finally:
        await fanout.close()
    console.print(board.table(title="tracks at the end"))
    return summary


class ProgressSource:
    """Wraps a source: counts its samples into the summary and advances the progress bar."""

    def __init__(self, source, progress: Progress, task: TaskID, summary: RunSummary) -> None:
        self.source = source
        self.rate_hz = source.rate_hz
        self._progress, self._task, self._summary = progress, task, summary

    def blocks(self):
        for block in self.source.blocks():
            self._summary.samples += block.n_samples
            self._progress.advance(self._task, block.n_samples)
            yield block

    def close(self) -> None:
        self.source.close()


def run(args: argparse.Namespace) -> int:
    settings = chain_settings(args)
    source = open_file_source(args)
    console = make_console()
    summary = replay(
        source,
        settings.site,
        args,
        console,
        settings.fix_bits,
        max_range_m=settings.max_range_m,
        tracker_config=settings.tracker,
    )
    for line in summary.lines(source.rate_hz):
        console.print(line, highlight=False)
    return 0
