"""The MQTT transport: a small adapter over aiomqtt (pinned to 2.x in pyproject.toml).

It is the only code that touches aiomqtt's internals: a publish races the client's
private ``_disconnected`` future, because aiomqtt alone keeps waiting for the
acknowledgement of a message in flight until its timeout when the broker goes away.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiomqtt

from sensord.publish.policy import Message, MqttSettings

TransportError = aiomqtt.MqttError
CONNECT_TIMEOUT_S = 10


class MqttTransport:
    """One connection to the broker; ``publish`` fails fast when the connection drops."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client

    async def publish(self, msg: Message) -> None:
        sending = asyncio.ensure_future(
            self._client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
        )
        lost: asyncio.Future = self._client._disconnected  # the one private use
        try:
            await asyncio.wait({sending, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sending.done():
                sending.cancel()
        if not sending.done() or sending.cancelled():
            cause = lost.exception() if lost.done() and not lost.cancelled() else None
            raise aiomqtt.MqttError("connection lost with a message in flight") from cause
        sending.result()


def mqtt_client(
    settings: MqttSettings, will: Message | None = None, role: str = ""
) -> aiomqtt.Client:
    """An aiomqtt client for ``settings`` (TLS, credentials, protocol): identified as
    ``sensord-<node>`` (``-<role>`` appended), with ``will`` as its last will if given."""
    s = settings
    protocol = aiomqtt.ProtocolVersion.V5 if s.protocol == 5 else aiomqtt.ProtocolVersion.V311
    tls = None
    if s.tls:
        tls = aiomqtt.TLSParameters(
            ca_certs=s.ca_file,
            certfile=s.cert_file,
            keyfile=s.key_file,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    return aiomqtt.Client(
        s.host,
        s.port,
        username=s.username,
        password=s.password,
        identifier=f"sensord-{s.node}" + (f"-{role}" if role else ""),
        protocol=protocol,
        will=aiomqtt.Will(will.topic, will.payload, qos=will.qos, retain=will.retain)
        if will is not None
        else None,
        keepalive=s.keepalive_s,
        tls_params=tls,
        timeout=CONNECT_TIMEOUT_S,
    )


@asynccontextmanager
async def connect(settings: MqttSettings, will: Message) -> AsyncIterator[MqttTransport]:
    """Connected for the ``async with`` body; raises ``TransportError`` when it cannot."""
    async with mqtt_client(settings, will) as client:
        yield MqttTransport(client)
