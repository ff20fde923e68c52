"""What every ``sensord demo`` feeds: MQTT (an embedded broker or ``--broker``), SBS,
Beast and the web picture, started before the recordings are synthesised so that their
addresses are the first lines."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from sensord.errors import UserError
from sensord.geo import Site
from sensord.outputs.tcp import BroadcastServer
from sensord.publish.mqtt import MqttSettings
from sensord.sinks.base import Sink
from sensord.sinks.mqtt import MqttSink
from sensord.sinks.table import TrackTable
from sensord.sinks.tcp import BeastSink, SbsSink
from sensord.web.picture import Receiver
from sensord.web.settings import WebSettings, parse_listen
from sensord.web.wiring import WebOutputs


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broker_address(text: str | None) -> tuple[str, int | None]:
    if text is None:
        return "127.0.0.1", None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--broker {text!r}: expected HOST:PORT")
    return host, int(port)


async def hold(console: Console) -> None:
    """Wait for Ctrl-C or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console.print("replay done; the tracks stay published until Ctrl-C", highlight=False)
    await stop.wait()


@dataclass
class DemoOutputs:
    """The sinks every demo feeds: MQTT (embedded broker or ``--broker``), SBS, Beast, web."""

    host: str
    port: int
    embedded: EmbeddedBroker | None
    table: TrackTable
    sinks: list[Sink]
    web: WebOutputs | None

    @classmethod
    async def start(cls, args: argparse.Namespace, console: Console, site: Site,
                    receivers: list[Receiver] | None = None) -> DemoOutputs:  # fmt: skip
        host, given_port = broker_address(args.broker)
        embedded = EmbeddedBroker(host, free_port()) if given_port is None else None
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
            web = WebOutputs(listen, [], site, args.node, announce=False, receivers=receivers)
            await web.start()
            assert web.web is not None
            console.print(f"air picture: open {web.web.url} in a browser", highlight=False)
            sinks += web.sinks
        return cls(host, port, embedded, table, sinks, web)

    def mqtt_hint(self, node: str) -> str:
        where = "embedded broker" if self.embedded else "broker"
        return (
            f"MQTT: {where} on {self.host}:{self.port}; watch it with\n"
            f"  mosquitto_sub -h {self.host} -p {self.port} -t 'sensord/#' -v\n"
            f"  sensord watch --host {self.host} --port {self.port} --node {node}"
        )

    async def close(self, console: Console) -> None:
        if self.web is not None:
            await self.web.close()  # already closed by the fan-out, unless it failed first
        if self.embedded is not None:
            await self.embedded.stop()
            console.print(
                f"demo finished: the embedded broker on {self.host}:{self.port} has stopped "
                "(--hold keeps it up, --broker HOST:PORT publishes to yours)",
                highlight=False,
            )
        else:
            console.print(
                f"demo finished: track states on {self.host}:{self.port} cleared", highlight=False
            )
