"""``[web]`` settings and the ``--web HOST:PORT`` flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sensord.errors import UserError

DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class WebSettings:
    """Where the picture is served and how it treats its pages."""

    host: str = DEFAULT_HOST
    port: int = 8080
    tile_url: str = ""  # e.g. a local tile server's https://host/{z}/{x}/{y}.png; '' = none
    max_clients: int = 200
    client_queue_max: int = 16
    any_port_if_taken: bool = False  # sensord demo: a free port rather than an error

    @classmethod
    def from_config(cls, web: Any, listen: str | None = None) -> WebSettings | None:
        """The ``[web]`` section, ``listen`` (the flag) overriding; None when not served."""
        text = listen or web.get("listen", "")
        if not text:
            return None
        host, port = parse_listen(text)
        return cls(
            host=host,
            port=port,
            tile_url=web.get("tile_url", ""),
            max_clients=web.get("max_clients", 200),
            client_queue_max=web.get("client_queue_max", 16),
        )


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1); ``[::1]:PORT`` for IPv6."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or DEFAULT_HOST
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"web listen {text!r}: expected HOST:PORT with a port 0-65535")
    return host, int(port)


def listen_check(value: str) -> str | None:
    """For the configuration schema: '' (off) or HOST:PORT."""
    if not value:
        return None
    try:
        parse_listen(value)
    except UserError as exc:
        return str(exc)
    return None
