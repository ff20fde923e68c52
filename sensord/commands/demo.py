"""``sensord demo``: the first command on a fresh machine — no dongle, no broker needed.

The bundled scenario (``sensord/data/demo.scenario.json``, a few kB) is synthesised by the
simulator into a temporary cu8 recording at start (a few seconds; shipping the recording
itself would be ~60 MB). That recording is replayed through the real chain and the same
fan-out and sinks as the daemon; track updates go to MQTT, to an embedded amqtt broker on
a free loopback port unless ``--broker`` is given. At the end the demo clears the track
states it retained (no stale "confirmed" aircraft stay behind an offline status) and says
that its embedded broker has stopped; ``--hold`` keeps everything up until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console

from sensord.commands.replay import add_output_arguments, parse_speed, replay_async
from sensord.errors import UserError
from sensord.outputs.tcp import BroadcastServer
from sensord.publish.mqtt import MqttSettings
from sensord.sim.recording import record
from sensord.sim.scenario import Scenario
from sensord.sinks.base import Sink
from sensord.sinks.mqtt import MqttSink
from sensord.sinks.table import TrackTable
from sensord.sinks.tcp import BeastSink, SbsSink
from sensord.source.iqfile import IQFileSource
from sensord.ui.summary import RunSummary
from sensord.ui.table import make_console
from sensord.web.settings import WebSettings, parse_listen
from sensord.web.wiring import WebOutputs

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
        "--hold",
        action="store_true",
        help="after the replay, keep the broker and the retained tracks up until Ctrl-C",
    )
    p.set_defaults(func=run)


class EmbeddedBroker:
    """amqtt on a loopback port, on the demo's event loop."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._broker: Any = None

    async def start(self) -> None:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._broker = Broker(config)
        await self._broker.start()

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broker_address(text: str | None) -> tuple[str, int | None]:
    if text is None:
        return "127.0.0.1", None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--broker {text!r}: expected HOST:PORT")
    return host, int(port)


async def _hold(console: Console) -> None:
    """Wait for Ctrl-C or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console.print("replay done; the tracks stay published until Ctrl-C", highlight=False)
    await stop.wait()


async def _demo(args: argparse.Namespace, console: Console, scenario: Scenario) -> RunSummary:
    host, given_port = _broker_address(args.broker)
    embedded = EmbeddedBroker(host, _free_port()) if given_port is None else None
    port = embedded.port if embedded is not None else int(given_port or 0)
    if embedded is not None:
        await embedded.start()
    table = TrackTable()
    settings = MqttSettings(
        host=host, port=port, node=args.node, protocol=311 if embedded is not None else 5
    )
    sinks: list[Sink] = [MqttSink(settings, table, clear_on_stop=True)]
    if args.sbs_port is not None:
        sinks.append(SbsSink(BroadcastServer("127.0.0.1", args.sbs_port)))
    if args.beast_port is not None:
        sinks.append(BeastSink(BroadcastServer("127.0.0.1", args.beast_port)))
    web = None
    if args.web != "off":  # started now, so that its address is the first line
        listen = WebSettings(*parse_listen(args.web), any_port_if_taken=True)
        web = WebOutputs(listen, [], scenario.site, args.node, announce=False)
        await web.start()
        assert web.web is not None
        console.print(f"air picture: open {web.web.url} in a browser", highlight=False)
        sinks += web.sinks
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
                console.print(
                    f"MQTT: {'embedded broker' if embedded else 'broker'} on {host}:{port}; "
                    "watch it with\n"
                    f"  mosquitto_sub -h {host} -p {port} -t 'sensord/#' -v\n"
                    f"  sensord watch --host {host} --port {port} --node {args.node}",
                    highlight=False,
                )
                return IQFileSource(paths[0], fmt="cu8", rate_hz=DEMO_RATE_HZ)

            return await replay_async(
                synthesise,
                scenario.site,
                args,
                console,
                extra_sinks=sinks,
                sensor_id=args.node,
                table=table,
                before_close=(lambda: _hold(console)) if args.hold else None,
            )
    finally:
        if web is not None:
            await web.close()  # already closed by the replay's fan-out, unless it failed first
        if embedded is not None:
            await embedded.stop()
            console.print(
                f"demo finished: the embedded broker on {host}:{port} has stopped "
                "(--hold keeps it up, --broker HOST:PORT publishes to yours)",
                highlight=False,
            )
        else:
            console.print(f"demo finished: track states on {host}:{port} cleared", highlight=False)


def run(args: argparse.Namespace) -> int:
    console = make_console()
    _broker_address(args.broker)  # a bad address is an error before anything starts
    if args.web != "off":
        parse_listen(args.web)
    scenario_path = resources.files("sensord") / "data" / "demo.scenario.json"
    scenario = Scenario.load(Path(str(scenario_path)))
    summary = asyncio.run(_demo(args, console, scenario))
    for line in summary.lines(DEMO_RATE_HZ):
        console.print(line, highlight=False)
    return 0
