"""``sensord demo``: the first command on a fresh machine — no dongle, no broker needed.

The bundled scenario (``sensord/data/demo.scenario.json``, a few kB) is synthesised by the
simulator into a temporary cu8 recording at start (a few seconds; shipping the recording
itself would be ~60 MB). That recording is replayed through the real chain; track updates
go to MQTT, to an embedded amqtt broker on a free loopback port unless ``--broker`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import threading
from importlib import resources
from pathlib import Path

from sensord.chain import ChainOutput
from sensord.commands.replay import add_output_arguments, parse_speed, replay
from sensord.errors import UserError
from sensord.outputs import beast, sbs
from sensord.outputs.tcp import BroadcastServer
from sensord.publish.mqtt import MqttSettings, Publisher
from sensord.sim.recording import record
from sensord.sim.scenario import Scenario
from sensord.source.iqfile import IQFileSource
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
    p.set_defaults(func=run)


class MqttThread:
    """An event loop in a thread running the publisher, and the embedded broker if needed."""

    def __init__(
        self, host: str, port: int | None, node: str, sbs_port: int | None, beast_port: int | None
    ) -> None:
        self.embedded = port is None
        self.host, self.port = host, port or _free_port()
        self.node = node
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._broker = None
        self.publisher: Publisher | None = None
        self._task = None
        self.sbs = None if sbs_port is None else BroadcastServer("127.0.0.1", sbs_port)
        self.beast = None if beast_port is None else BroadcastServer("127.0.0.1", beast_port)
        self.web: WebOutputs | None = None  # the air picture, set before start

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=15)

    async def _start(self) -> None:
        if self.embedded:
            from amqtt.broker import Broker

            config = {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
            self._broker = Broker(config)
            await self._broker.start()
        for server in (self.sbs, self.beast):
            if server is not None:
                await server.start()
        settings = MqttSettings(
            host=self.host, port=self.port, node=self.node, protocol=311 if self.embedded else 5
        )
        self.publisher = Publisher(settings)
        self._task = asyncio.ensure_future(self.publisher.run())
        if self.web is not None:
            await self.web.start()

    def publish(self, step: ChainOutput) -> None:
        """Hand one step's updates and frames to the outputs (called from the replay thread)."""
        self.loop.call_soon_threadsafe(self._publish, step)

    def _publish(self, step: ChainOutput) -> None:
        if step.updates:
            self.publisher.track_updates(step.updates)
        if self.sbs is not None:
            self.sbs.broadcast(sbs.encode_updates(step.updates))
        if self.beast is not None:
            self.beast.broadcast(beast.encode_frames(step.frames))
        if self.web is not None:
            self.web.on_step(step)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(timeout=15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    async def _stop(self) -> None:
        if self.web is not None:
            await self.web.close()
        await self.publisher.stop()
        for server in (self.sbs, self.beast):
            if server is not None:
                await server.close()
        if self._broker is not None:
            await self._broker.shutdown()


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


def run(args: argparse.Namespace) -> int:
    console = make_console()
    host, port = _broker_address(args.broker)
    scenario_path = resources.files("sensord") / "data" / "demo.scenario.json"
    scenario = Scenario.load(Path(str(scenario_path)))
    mqtt = MqttThread(host, port, args.node, args.sbs_port, args.beast_port)
    if args.web != "off":
        web = WebSettings(*parse_listen(args.web), any_port_if_taken=True)
        mqtt.web = WebOutputs(web, [], scenario.site, args.node, announce=False)
    mqtt.start()
    if mqtt.web is not None and mqtt.web.web is not None:
        console.print(f"air picture: open {mqtt.web.web.url} in a browser", highlight=False)
    console.print(
        f"MQTT: {'embedded broker' if mqtt.embedded else 'broker'} on {host}:{mqtt.port}; "
        "watch it with\n"
        f"  mosquitto_sub -h {host} -p {mqtt.port} -t 'sensord/#' -v\n"
        f"  sensord watch --host {host} --port {mqtt.port} --node {args.node}",
        highlight=False,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="sensord-demo-") as tmp:
            console.print(
                f"synthesising {args.duration:.0f} s of the bundled scenario "
                f"({len(scenario.aircraft)} aircraft)..."
            )
            paths, _truth = record(
                scenario, Path(tmp) / "demo", DEMO_RATE_HZ, args.duration, DEMO_SEED
            )
            source = IQFileSource(paths[0], fmt="cu8", rate_hz=DEMO_RATE_HZ)
            summary = replay(source, scenario.site, args, console, on_step=mqtt.publish)
    finally:
        mqtt.stop()
    for line in summary.lines(DEMO_RATE_HZ):
        console.print(line, highlight=False)
    return 0
