"""The web picture under load: 1,000 simulated tracks updating at 1 Hz.

A server process (this script with ``--serve``) runs the ``WebSink`` on its event loop and
feeds it 1,000 moving tracks once a second, as the tracker would. The benchmark then:

- measures the server's CPU (utime + stime from /proc) over a window with 0, 1, 4 and 16
  connected pages (WebSocket clients that read everything), and gives the CPU per page;
- times the feed itself (the tracker's side: ``WebSink.feed`` for 1,000 updates) with those
  pages connected: it must not grow with them;
- opens the page in headless Chromium (Debian's chromium, driven by playwright) and reads
  the page's own measurements: frame intervals (requestAnimationFrame) and the time to
  apply one message of 1,000 tracks.

    python benchmarks/bench_web.py [--tracks 1000] [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE_LAT, SITE_LON = 52.0, 4.5
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# ---- the server process --------------------------------------------------------------
def moving_tracks(n: int, t_s: float) -> list:
    """``n`` confirmed tracks on circles around the site, at time ``t_s``."""
    from sensord.tracker.update import TrackStatus, TrackUpdate

    out = []
    for i in range(n):
        radius_deg = 0.3 + 2.5 * ((i * 7919) % n) / n
        phase = 2 * math.pi * i / n + t_s * 220 / (radius_deg * 60 * 3600) * 2 * math.pi
        lat = SITE_LAT + radius_deg * math.cos(phase)
        lon = SITE_LON + radius_deg * math.sin(phase) / math.cos(math.radians(SITE_LAT))
        out.append(
            TrackUpdate(
                track_id=f"{0x400000 + i:06X}",
                t_s=t_s,
                status=TrackStatus.CONFIRMED,
                lat_deg=lat,
                lon_deg=lon,
                alt_baro_ft=float(1000 + (i * 37) % 39000),
                h_err95_m=40.0,
                gs_kt=220.0,
                track_deg=(math.degrees(phase) + 90) % 360,
                icao=f"{0x400000 + i:06X}",
                callsign=f"BEN{i:04d}",
                n_updates=int(t_s),
                last_update_s=t_s,
                sensors=("rx0",),
            )
        )
    return out


async def serve(port: int, n_tracks: int) -> None:
    from sensord.sinks.base import Step
    from sensord.web.picture import Receiver
    from sensord.web.settings import WebSettings
    from sensord.web.sink import WebSink

    sink = WebSink(WebSettings(port=port), "bench", [Receiver("rx0", SITE_LAT, SITE_LON)], [])
    await sink.start()
    t_s = 0.0
    while True:
        updates = moving_tracks(n_tracks, t_s)
        t0 = time.perf_counter()
        sink.feed(Step(updates=updates))
        feed_ms = (time.perf_counter() - t0) * 1e3
        print(json.dumps({"feed_ms": feed_ms, "clients": sink.fanout.stats.clients}), flush=True)
        t_s += 1.0
        await asyncio.sleep(1.0)


# ---- the measuring side --------------------------------------------------------------
def cpu_s(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def pages_reading(port: int, n: int, seconds: float) -> int:
    """``n`` WebSocket pages reading every message for ``seconds``; messages received."""
    import aiohttp

    received = 0

    async def page(http) -> None:
        nonlocal received
        async with http.ws_connect(f"http://127.0.0.1:{port}/ws", max_msg_size=0) as ws:
            async for _msg in ws:
                received += 1

    async with aiohttp.ClientSession() as http:
        tasks = [asyncio.create_task(page(http)) for _ in range(n)]
        await asyncio.sleep(seconds)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return received


def browser_figures(port: int, n_tracks: int, seconds: float) -> dict | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 850})
        page.goto(f"http://127.0.0.1:{port}/")
        deadline = time.monotonic() + 60
        while page.evaluate("window.sensord.state.tracks.size") < 0.9 * n_tracks:
            if time.monotonic() > deadline:
                raise SystemExit("the page did not show the tracks within 60 s")
            time.sleep(0.5)
        page.evaluate("for (const k in window.sensord.perf) window.sensord.perf[k].length = 0")
        time.sleep(seconds)
        perf = page.evaluate("window.sensord.perf")
        n_markers = page.locator("#map .ac").count()
        browser.close()
    frames = sorted(perf["frameMs"])
    handles = sorted(perf["handleMs"])
    return {
        "markers": n_markers,
        "frames": len(frames),
        "frame_median_ms": statistics.median(frames),
        "frame_p95_ms": frames[int(0.95 * (len(frames) - 1))],
        "frame_max_ms": frames[-1],
        "handle_median_ms": statistics.median(handles),
        "handle_max_ms": handles[-1],
        "messages": len(handles),
        "list_median_ms": statistics.median(perf["listMs"]) if perf["listMs"] else 0.0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracks", type=int, default=1000)
    p.add_argument("--window", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--browser-only", action="store_true", help="skip the server CPU windows")
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.tracks))
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--tracks", str(args.tracks)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's sensord
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit("the server process failed (see above)")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/data/stats.json", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(2.0)
        print(f"web picture, {args.tracks} tracks at 1 Hz, {args.window:.0f} s windows")
        print(f"{'pages':>5} {'server CPU %':>12} {'per page %':>10} {'msgs/page/s':>11}")
        base = None
        for n in () if args.browser_only else (0, 1, 4, 16):
            c0, t0 = cpu_s(server.pid), time.monotonic()
            received = asyncio.run(pages_reading(port, n, args.window))
            cpu = 100 * (cpu_s(server.pid) - c0) / (time.monotonic() - t0)
            base = cpu if base is None else base
            per_page = (cpu - base) / n if n else 0.0
            rate = received / n / args.window if n else 0.0
            print(f"{n:>5} {cpu:>12.1f} {per_page:>10.2f} {rate:>11.1f}")
        figures = browser_figures(port, args.tracks, args.window)
        if figures is None:
            print("browser: no chromium/playwright here, frame times not measured")
        else:
            print(
                f"browser (1 page, {figures['markers']} markers, {figures['messages']} messages):"
                f" frame interval median {figures['frame_median_ms']:.1f} ms,"
                f" p95 {figures['frame_p95_ms']:.1f} ms, max {figures['frame_max_ms']:.1f} ms;"
                f" applying one message median {figures['handle_median_ms']:.1f} ms,"
                f" max {figures['handle_max_ms']:.1f} ms;"
                f" redrawing the track list median {figures['list_median_ms']:.1f} ms"
            )
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=10)
    feeds = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    by_clients: dict[int, list[float]] = {}
    for f in feeds:
        by_clients.setdefault(f["clients"], []).append(f["feed_ms"])
    for clients, times in sorted(by_clients.items()):
        print(
            f"feed of {args.tracks} updates with {clients:>2} pages: median "
            f"{statistics.median(times):.1f} ms ({len(times)} feeds)"
        )


if __name__ == "__main__":
    main()
