"""``sensord replay FILE``: a recording through the receive chain, with progress, the live
track table (optional), file/metrics outputs and a summary at the end."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from sensord.commands.source_args import add_source_arguments, open_file_source
from sensord.commands.track import add_chain_arguments, chain_settings
from sensord.config import ReceiverConfig
from sensord.geo import Site

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from sensord.chain import ChainOutput
    from sensord.tracker.tracker import TrackerConfig
    from sensord.ui.summary import RunSummary


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
    on_step: Callable[[ChainOutput], None] | None = None,
    max_range_m: float = ReceiverConfig.max_range_km * 1e3,
    tracker_config: TrackerConfig | None = None,
) -> RunSummary:
    """Run ``source`` through the chain, feeding the table, outputs, metrics and ``on_step``
    (e.g. MQTT and TCP outputs); returns the summary. Defaults are ``sensord.config``'s."""
    from rich.console import Group
    from rich.live import Live
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from sensord.chain import Chain
    from sensord.metrics import SensorMetrics
    from sensord.outputs.aircraft_json import AircraftJsonWriter
    from sensord.outputs.step import StepOutputs
    from sensord.source.pacing import RealtimeSource
    from sensord.ui.summary import RunSummary
    from sensord.ui.table import TrackBoard

    total = getattr(source, "n_samples", None)  # file sources know their length
    if args.speed is not None:
        source = RealtimeSource(source, args.speed)
    chain = Chain(
        source.rate_hz,
        site,
        fix_bits=fix_bits,
        max_range_m=max_range_m,
        tracker_config=tracker_config,
    )
    board = TrackBoard(site)
    summary = RunSummary()
    writer = AircraftJsonWriter(args.aircraft_json) if args.aircraft_json else None
    metrics = SensorMetrics() if args.metrics_port is not None else None
    if metrics:
        port = metrics.serve(args.metrics_port)
        console.print(f"metrics on http://127.0.0.1:{port}/metrics")
    outputs = StepOutputs(site, writer, metrics)
    progress = Progress(
        TextColumn("replay"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=console,
    )
    task = progress.add_task("replay", total=total)
    interactive = console.is_terminal
    live = Live(Group(progress), console=console, refresh_per_second=4) if interactive else None
    last_status: dict = {}
    try:
        if live:
            live.start()
        for step in chain.run(ProgressSource(source, progress, task, summary)):
            ranges = [board.range_m(u) for u in step.updates]
            board.update(step.updates)
            if on_step:
                on_step(step)
            summary.add_frames(step.frames)
            summary.add_updates(step.updates, ranges)
            outputs.on_step(step)
            if live:
                live.update(Group(progress, board.table()) if args.table else Group(progress))
            elif args.table:  # no terminal: one line per track state change
                for u in step.updates:
                    if last_status.get(u.track_id) is u.status:
                        continue
                    last_status[u.track_id] = u.status
                    who = f"{u.icao or u.track_id} {u.callsign or ''}"
                    console.print(
                        f"{board.now_s:8.2f} s {who} {u.status.value}",
                        highlight=False,
                    )
    finally:
        if live:
            live.stop()
        source.close()
    outputs.finish(summary.samples)
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
    from sensord.ui.table import make_console

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
