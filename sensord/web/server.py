"""The HTTP side of the air picture (aiohttp on the daemon's event loop).

Read-only: every route is GET (HEAD), nothing changes state. Static files are served from
an in-memory table loaded from the package at start, looked up by exact name, so no
request path ever reaches the file system (``..`` and friends are simply unknown names).

Routes:
- ``/``: the page; ``/static/NAME``: its assets (Leaflet, basemap, script, style);
- ``/data/aircraft.json``, ``/data/receiver.json``: tar1090/readsb format;
- ``/data/picture.json``: the page's snapshot (tracks with trails, receivers);
- ``/data/config.json``: node, zones, optional tile URL;
- ``/data/stats.json``: the server's counters (clients, messages, drops);
- ``/data/range_doppler/NODE.png``: a radar node's latest range-Doppler map (404 if none);
- ``/ws``: the live updates (JSON messages, see docs/web.md).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from aiohttp import http_exceptions, web

from sensord.errors import UserError
from sensord.web.clients import ClientFanout

log = logging.getLogger(__name__)

MAX_URL_CHARS = 2048
WS_MAX_MESSAGE_BYTES = 1024  # the page sends nothing of use: a big message closes it
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
NODE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass
class DataSources:
    """What the routes serve, as callables returning the current document."""

    aircraft: Callable[[], dict]
    receiver: Callable[[], dict]
    picture: Callable[[], dict]
    config: Callable[[], dict]
    stats: Callable[[], dict]
    range_doppler: Callable[[str], bytes | None]


def load_static() -> dict[str, tuple[bytes, str]]:
    """Every file of the package's static folder: name -> (content, content type)."""
    files: dict[str, tuple[bytes, str]] = {}
    folder = resources.files("sensord.web") / "static"
    for entry in folder.iterdir():
        name = entry.name
        suffix = name[name.rfind(".") :] if "." in name else ""
        if entry.is_file() and suffix in CONTENT_TYPES:
            files[name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return files


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a traceback for each request it cannot parse (and answers 400): count
    those instead; any other error is still logged."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, http_exceptions.HttpProcessingError):
            self.count += 1
            return False
        return True


MALFORMED = MalformedRequestFilter()
logging.getLogger("aiohttp.server").addFilter(MALFORMED)


@web.middleware
async def guard(request: web.Request, handler):
    """Read-only and bounded: other methods 405, long URLs 414; safety headers on all."""
    if request.method not in ("GET", "HEAD"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
    if len(request.raw_path) > MAX_URL_CHARS:
        raise web.HTTPRequestURITooLong()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _safety_headers(exc.headers)
        raise
    _safety_headers(response.headers)
    return response


def _safety_headers(headers) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")


class WebServer:
    """The routes over ``sources``; WebSocket pages go to ``fanout``."""

    def __init__(
        self,
        host: str,
        port: int,
        sources: DataSources,
        fanout: ClientFanout,
        tile_url: str = "",
        any_port_if_taken: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self.sources = sources
        self.fanout = fanout
        self.static = load_static()
        self._csp = _content_security_policy(tile_url)
        self._runner: web.AppRunner | None = None
        self._any_port = any_port_if_taken
        self.requests = 0

    def app(self) -> web.Application:
        app = web.Application(middlewares=[guard], client_max_size=1024)
        app.router.add_get("/", self.index)
        app.router.add_get("/index.html", self.index)
        app.router.add_get("/static/{name}", self.static_file)
        app.router.add_get("/data/aircraft.json", self.json_route(self.sources.aircraft))
        app.router.add_get("/data/receiver.json", self.json_route(self.sources.receiver))
        app.router.add_get("/data/picture.json", self.json_route(self.sources.picture))
        app.router.add_get("/data/config.json", self.json_route(self.sources.config))
        app.router.add_get("/data/stats.json", self.json_route(self.sources.stats))
        app.router.add_get("/data/range_doppler/{node}.png", self.range_doppler)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/favicon.ico", self.no_icon)
        return app

    async def start(self) -> int:
        """Listen; returns the bound port. A taken port is one clear error."""
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            if not self._any_port:
                await self._runner.cleanup()
                raise UserError(
                    f"web: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
                ) from exc
            log.warning("web: port %d taken (%s); using a free one", self.port, exc.strerror)
            site = web.TCPSite(self._runner, self.host, 0)
            await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        await self.fanout.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # ---- handlers -----------------------------------------------------------------
    async def index(self, request: web.Request) -> web.Response:
        self.requests += 1
        body, ctype = self.static["index.html"]
        response = web.Response(body=body, headers={"Content-Type": ctype})
        response.headers["Content-Security-Policy"] = self._csp
        response.headers["Cache-Control"] = "no-cache"
        return response

    async def no_icon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def static_file(self, request: web.Request) -> web.Response:
        self.requests += 1
        found = self.static.get(request.match_info["name"])
        if found is None or found[1].startswith("text/html"):
            raise web.HTTPNotFound()
        body, ctype = found
        return web.Response(
            body=body, headers={"Content-Type": ctype, "Cache-Control": "max-age=300"}
        )

    def json_route(self, source: Callable[[], dict]):
        async def handler(request: web.Request) -> web.Response:
            self.requests += 1
            if request.query_string and len(request.query_string) > 256:
                raise web.HTTPBadRequest(text="query too long")
            body = json.dumps(source(), separators=(",", ":"))
            return web.Response(
                text=body, content_type="application/json", headers={"Cache-Control": "no-cache"}
            )

        return handler

    async def range_doppler(self, request: web.Request) -> web.Response:
        self.requests += 1
        node = request.match_info["node"]
        if not NODE_NAME.match(node):
            raise web.HTTPBadRequest(text="bad node name")
        png = self.sources.range_doppler(node)
        if png is None:
            raise web.HTTPNotFound(text="no range-Doppler map from this node")
        return web.Response(body=png, headers={"Content-Type": "image/png"})

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=WS_MAX_MESSAGE_BYTES, autoping=True)
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="WebSocket upgrade expected")
        await ws.prepare(request)
        await self.fanout.serve(ws)
        if ws.exception() is not None or ws.close_code not in (None, 1000, 1001, 1005):
            log.debug("page closed: code %s", ws.close_code)
        return ws


def _content_security_policy(tile_url: str) -> str:
    """Only the page's own origin, plus the configured tile server's for images."""
    img = "'self' data:"
    match = re.match(r"^(https?://[^/{}]+)", tile_url or "")
    if match:
        img += " " + match.group(1)
    elif tile_url:
        img += " https:"  # a templated host ({s}.tile...): any https image host
    return (
        "default-src 'self'; img-src " + img + "; connect-src 'self' ws: wss:; "
        "style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'"
    )
