"""The web server over real loopback sockets: its routes, bad requests (4xx, no crash),
path traversal, a WebSocket flood, slow pages dropped and counted, the push throttle."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import socket
import time

import aiohttp
import pytest

from sensord.sinks.base import Step
from sensord.tracker.update import TrackStatus, TrackUpdate
from sensord.web.picture import Receiver
from sensord.web.settings import WebSettings, parse_listen
from sensord.web.sink import WebSink
from sensord.web.zones import Zone


def _update(track_id="4840D6", t=1.0, status=TrackStatus.CONFIRMED, **kw) -> TrackUpdate:
    base = dict(
        icao=track_id, callsign="KLM1023", lat_deg=52.1, lon_deg=4.6, alt_baro_ft=3000.0,
        track_deg=90.0, gs_kt=200.0, h_err95_m=40.0, sensors=("rx0",), last_update_s=t,
    )  # fmt: skip
    base.update(kw)
    return TrackUpdate(track_id=track_id, t_s=t, status=status, **base)


def _sink(**settings) -> WebSink:
    zones = [Zone("field", center_deg=(52.0, 4.5), radius_m=5000.0)]
    return WebSink(WebSettings(port=0, **settings), "t1", [Receiver("t1", 52.0, 4.5, 10.0)], zones)


def _raw(port: int, request: bytes, timeout_s: float = 5.0) -> bytes:
    """Send bytes as they are (no client-side URL cleaning); the status line back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


def _status(port: int, path: str, method: str = "GET") -> int:
    line = _raw(port, f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return int(line.split()[1]) if line.startswith(b"HTTP/") else 0


def test_listen_address_parsing():
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen(":9000") == ("127.0.0.1", 9000) and parse_listen("9000")[1] == 9000
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    with pytest.raises(Exception, match="HOST:PORT"):
        parse_listen("localhost:http")


def test_routes_serve_page_assets_and_tar1090_data():
    async def scenario():
        sink = _sink()
        await sink.start()
        sink.feed(Step(updates=[_update(), _update("3C6DD1", lat_deg=52.0, lon_deg=4.5)]))
        base = f"http://127.0.0.1:{sink.server.port}"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(base + "/") as r:
                    page = await r.text()
                    assert r.status == 200 and "leaflet.js" in page
                    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
                for name in ("leaflet.js", "leaflet.css", "app.js", "basemap.json"):
                    async with http.get(f"{base}/static/{name}") as r:
                        assert r.status == 200 and len(await r.read()) > 500, name
                async with http.get(base + "/data/aircraft.json") as r:
                    doc = await r.json()
                    assert {a["hex"] for a in doc["aircraft"]} == {"4840d6", "3c6dd1"}
                async with http.get(base + "/data/receiver.json") as r:
                    assert (await r.json())["lat"] == 52.0
                async with http.get(base + "/data/picture.json") as r:
                    picture = await r.json()
                    assert len(picture["tracks"]) == 2 and picture["receivers"][0]["online"]
                async with http.get(base + "/data/config.json") as r:
                    assert (await r.json())["zones"][0]["name"] == "field"
                async with http.get(base + "/data/range_doppler/rx0.png") as r:
                    assert r.status == 404  # no radar picture published
                sink.set_range_doppler("radar1", b"\x89PNG fake")
                async with http.get(base + "/data/range_doppler/radar1.png") as r:
                    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
        finally:
            await sink.close()

    asyncio.run(scenario())


def test_bad_requests_get_4xx_and_change_nothing(caplog):
    async def scenario():
        sink = _sink()
        await sink.start()
        sink.feed(Step(updates=[_update()]))
        port = sink.server.port
        loop = asyncio.get_running_loop()

        def probe() -> dict[str, int]:
            return {
                "unknown": _status(port, "/nothing/here"),
                "dotdot": _status(port, "/static/../../../../etc/passwd"),
                "dotdot_encoded": _status(port, "/static/..%2f..%2f..%2fetc%2fpasswd"),
                "dotdot_root": _status(port, "/../sensord/config.py"),
                "source_file": _status(port, "/static/../server.py"),
                "html_as_static": _status(port, "/static/index.html"),
                "rd_traversal": _status(port, "/data/range_doppler/..%2f..%2fx.png"),
                "long_url": _status(port, "/" + "a" * 20000),
                "long_query": _status(port, "/data/aircraft.json?" + "q" * 3000),
                "post": _status(port, "/data/aircraft.json", "POST"),
                "delete": _status(port, "/", "DELETE"),
                "ws_no_upgrade": _status(port, "/ws"),
                "garbage": int(
                    (_raw(port, b"\x16\x03\x01garbage\r\n\r\n").split() or [b"", b"0"])[1]
                ),
            }

        try:
            statuses = await loop.run_in_executor(None, probe)
            for name, status in statuses.items():
                assert 400 <= status < 500, (name, status)
            assert statuses["unknown"] == 404 and statuses["post"] == 405
            assert statuses["long_url"] == 400 and statuses["long_query"] == 414
            assert sink.stats()["malformed_requests"] >= 1  # counted, not logged
            assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
            tracks = sink.picture.tracks
            assert list(tracks) == ["4840D6"] and tracks["4840D6"].update.t_s == 1.0
            assert await loop.run_in_executor(None, _status, port, "/") == 200  # still serving
        finally:
            await sink.close()

    asyncio.run(scenario())


def test_websocket_snapshot_then_updates_at_most_once_per_second_per_track():
    async def scenario():
        sink = _sink()
        await sink.start()
        sink.feed(Step(updates=[_update(t=1.0)]))
        url = f"http://127.0.0.1:{sink.server.port}/ws"
        try:
            async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
                snapshot = json.loads((await ws.receive(timeout=5)).data)
                assert snapshot["type"] == "snapshot" and snapshot["tracks"][0]["hex"] == "4840d6"
                assert snapshot["config"]["node"] == "t1"
                received = []

                async def read() -> None:
                    async for msg in ws:
                        received.append((time.monotonic(), json.loads(msg.data)))

                reader = asyncio.create_task(read())
                for i in range(40):  # 20 updates per second of one track for 2 s
                    sink.feed(Step(updates=[_update(t=1.0 + 0.05 * (i + 1))]))
                    await asyncio.sleep(0.05)
                sink.feed(Step(updates=[_update(t=4.0, status=TrackStatus.DROPPED)]))
                await asyncio.sleep(1.0)
                reader.cancel()
            states = [(t, m) for t, m in received if m["type"] == "tracks" and m["tracks"]]
            assert 2 <= len(states) <= 4  # about 2 s of updates: one per second, not 40
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(states)]
            assert all(g >= 0.9 for g in gaps), gaps
            drops = [m for _, m in received if m["type"] == "tracks" and m["dropped"]]
            assert drops and drops[0]["dropped"] == ["4840D6"]
        finally:
            await sink.close()

    asyncio.run(scenario())


def test_websocket_flood_and_oversized_messages_leave_the_server_unharmed():
    async def scenario():
        sink = _sink()
        await sink.start()
        url = f"http://127.0.0.1:{sink.server.port}/ws"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(url) as ws:
                    await ws.receive(timeout=5)  # snapshot
                    t0 = time.monotonic()
                    for i in range(5000):
                        await ws.send_str("x" * 100)
                        if i % 500 == 0:  # the tracker side keeps being fed meanwhile
                            sink.feed(Step(updates=[_update(t=1.0 + i / 1000)]))
                    flood_s = time.monotonic() - t0
                    await ws.send_str("y" * 100_000)  # over the limit: the server closes it
                    closed = await ws.receive(timeout=5)
                    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                await asyncio.sleep(0.2)
                assert sink.fanout.stats.inbound_ignored >= 4000 and flood_s < 30
                assert sink.fanout.stats.clients == 0
                async with http.ws_connect(url) as ws2:  # a new page is served as before
                    snapshot = json.loads((await ws2.receive(timeout=5)).data)
                    assert snapshot["tracks"][0]["t_s"] == pytest.approx(5.5)
        finally:
            await sink.close()

    asyncio.run(scenario())


def _stalled_websocket(port: int) -> socket.socket:
    """A page that completes the handshake and then never reads."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert s.recv(12).startswith(b"HTTP/1.1 101")
    return s


def test_slow_pages_are_dropped_counted_and_do_not_slow_the_feed():
    async def scenario():
        sink = _sink(client_queue_max=4, max_clients=5)
        await sink.start()
        port = sink.server.port
        loop = asyncio.get_running_loop()
        stalled = [await loop.run_in_executor(None, _stalled_websocket, port) for _ in range(3)]
        url = f"http://127.0.0.1:{port}/ws"
        try:
            async with aiohttp.ClientSession() as http, http.ws_connect(url) as fast:
                got = 0
                feed_s = []
                for round_ in range(40):
                    many = [
                        _update(f"{i:06X}", t=2.0 + round_, callsign=None, squawk="1" * 4)
                        for i in range(1000)
                    ]
                    t0 = time.perf_counter()
                    sink.feed(Step(updates=many))
                    sink.flush(force=True)  # 1000 tracks, ~0.4 MB, to every page
                    feed_s.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.02)
                    while True:
                        try:
                            await fast.receive(timeout=0.01)
                            got += 1
                        except TimeoutError:
                            break
                stats = sink.fanout.stats
                assert stats.messages_dropped > 0 and stats.resyncs > 0
                assert got >= 30  # the reading page kept getting its updates
                assert sorted(feed_s)[len(feed_s) // 2] < 0.1, feed_s  # encoding, never waiting
                # a sixth page is refused (five: three stalled, the fast one, this one)
                async with http.ws_connect(url), http.ws_connect(url) as refused:
                    msg = await refused.receive(timeout=5)
                    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1013
                assert stats.refused == 1
        finally:
            for s in stalled:
                s.close()
            await sink.close()

    asyncio.run(scenario())


def test_demo_says_where_to_open_the_picture_in_its_first_line():
    import subprocess
    import sys

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))  # the asked port is taken: the demo takes a free one
    taken.listen()
    port = taken.getsockname()[1]
    try:
        out = subprocess.run(
            [sys.executable, "-m", "sensord", "demo", "--speed", "max", "--duration", "3",
             "--web", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        taken.close()
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("air picture: open http://127.0.0.1:") and f":{port}/" not in first
    assert "Traceback" not in out.stderr
