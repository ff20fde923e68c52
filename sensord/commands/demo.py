"""``sensord demo``: the first command on a fresh machine — no dongle, no broker needed.

The bundled scenario (``sensord/data/demo.scenario.json``, a few kB) is synthesised by the
simulator at start into temporary recordings of every kind of sensor the fusion node takes
(``sensord.sim.demo_scene``): five receivers on a ring (ADS-B, and Mode S-only aircraft
located by multilateration) and a passive radar (aircraft with the transponder off, a
drone). That takes a few seconds of CPU per second of recording; shipping the
recordings would be hundreds of MB. They are replayed, paced by UTC, through the real
chains (receive chain per receiver, radar processor) and one fusion node, into the same
fan-out and sinks as the daemons. ``--single`` replays one receiver's recording through
one chain instead (the lighter first product).

Track updates go to MQTT, to an embedded amqtt broker on a free loopback port unless
``--broker`` is given. At the end the demo clears the track states it retained (no stale
"confirmed" aircraft stay behind an offline status) and says that its embedded broker has
stopped; ``--hold`` keeps everything up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from importlib import resources
from pathlib import Path

from rich.console import Console

from sensord.commands.demo_outputs import DemoOutputs, broker_address, hold
from sensord.commands.replay import add_output_arguments, parse_speed, replay_async
from sensord.errors import UserError
from sensord.sim.recording import record
from sensord.sim.scenario import Scenario
from sensord.source.iqfile import IQFileSource
from sensord.ui.summary import RunSummary
from sensord.ui.table import make_console
from sensord.web.settings import parse_listen

DEMO_RATE_HZ = 2.0e6
DEMO_SEED = 3


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="replay the bundled simulated recording (no hardware)")
    add_output_arguments(p)
    p.set_defaults(speed=parse_speed("2"), table=True)
    p.add_argument("--duration", type=float, default=15.0, help="seconds of recording (default 15)")
    p.add_argument(
        "--broker", metavar="HOST:PORT", help="publish to this broker instead of an embedded one"
    )
    p.add_argument("--node", default="demo", help="node name in the topics (default demo)")
    p.add_argument("--sbs-port", type=int, help="serve SBS/BaseStation lines on 127.0.0.1:PORT")
    p.add_argument("--beast-port", type=int, help="serve Beast binary frames on 127.0.0.1:PORT")
    p.add_argument("--web", metavar="HOST:PORT", default="127.0.0.1:8080", help="map (or 'off')")
    p.add_argument(
        "--single",
        action="store_true",
        help="one receiver and its own tracker instead of the fused sensor network",
    )
    p.add_argument(
        "--hold",
        action="store_true",
        help="after the replay, keep the broker and the retained tracks up until Ctrl-C",
    )
    p.set_defaults(func=run)


async def _demo(args: argparse.Namespace, console: Console, scenario: Scenario) -> RunSummary:
    """``--single``: one receiver's recording through one chain."""
    out = await DemoOutputs.start(args, console, scenario.site)
    try:
        with tempfile.TemporaryDirectory(prefix="sensord-demo-") as tmp:

            async def synthesise() -> IQFileSource:
                """The recording, made while the sinks already listen."""
                console.print(
                    f"synthesising {args.duration:.0f} s of the bundled scenario "
                    f"({len(scenario.aircraft)} aircraft)..."
                )
                paths, _truth = await asyncio.to_thread(
                    record, scenario, Path(tmp) / "demo", DEMO_RATE_HZ, args.duration, DEMO_SEED
                )
                console.print(out.mqtt_hint(args.node), highlight=False)
                return IQFileSource(paths[0], fmt="cu8", rate_hz=DEMO_RATE_HZ)

            return await replay_async(
                synthesise,
                scenario.site,
                args,
                console,
                extra_sinks=out.sinks,
                sensor_id=args.node,
                table=out.table,
                before_close=(lambda: hold(console)) if args.hold else None,
            )
    finally:
        await out.close(console)


def run(args: argparse.Namespace) -> int:
    console = make_console()
    broker_address(args.broker)  # a bad address is an error before anything starts
    if args.web != "off":
        parse_listen(args.web)
    scenario_path = resources.files("sensord") / "data" / "demo.scenario.json"
    scenario = Scenario.load(Path(str(scenario_path)))
    if not args.single:
        from sensord.commands.demo_fused import fused_demo

        if args.beast_port is not None:
            raise UserError("--beast-port serves one receiver's frames: add --single")
        for line in asyncio.run(fused_demo(args, console, scenario)):
            console.print(line, highlight=False)
        return 0
    summary = asyncio.run(_demo(args, console, scenario))
    for line in summary.lines(DEMO_RATE_HZ):
        console.print(line, highlight=False)
    return 0
