"""The web picture under load: 1,000 simulated tracks updating at 1 Hz.

A server process (this script with ``--serve``) runs the ``WebSink`` on its event loop and
feeds it 1,000 moving tracks once a second, as the tracker would. The benchmark then:

- measures the server's CPU (utime + stime from /proc) over a window with 0, 1, 4 and 16
  connected pages (WebSocket clients that read everything), and gives the CPU per page;
- times the feed itself (the tracker's side: ``WebSink.feed`` for 1,000 updates) with those
  pages connected: it must not grow with them;
- opens the page in headless Chromium (Debian's chromium, driven by playwright) and reads
  the frame intervals (a requestAnimationFrame loop), the long tasks (over 50 ms,
  PerformanceObserver) and the page's own measurements (the time to apply one message, to
  draw the tracks and to redraw the list), optionally with the CPU slowed down
  (``--cpu-slowdown``, Chrome's CPU throttling, for a slower or busy machine).

``--compare REV`` also serves the page as it was at git revision ``REV`` (its index.html,
scripts and style; the same server and data) and measures both in alternation in the same
run, so a before/after pair sees the same machine load.

    python benchmarks/bench_web.py [--tracks 1000] [--window 10] [--browser-only]
        [--compare REV] [--cpu-slowdown 1,4] [--rounds 2]
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
import tempfile
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


async def serve(port: int, n_tracks: int, static_from: str | None = None) -> None:
    from sensord.sinks.base import Step
    from sensord.web.picture import Receiver
    from sensord.web.settings import WebSettings
    from sensord.web.sink import WebSink

    sink = WebSink(WebSettings(port=port), "bench", [Receiver("rx0", SITE_LAT, SITE_LON)], [])
    if static_from:  # another revision's page, same server and data
        for path in Path(static_from).iterdir():
            ctype = sink.server.static.get(path.name, (b"", "text/javascript; charset=utf-8"))[1]
            sink.server.static[path.name] = (path.read_bytes(), ctype)
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


PROBES = """
window.__frames = [];  // frame intervals, by a requestAnimationFrame loop of its own
let __last = performance.now();
function __tick(now) {
  window.__frames.push(now - __last);
  __last = now;
  requestAnimationFrame(__tick);
}
requestAnimationFrame(__tick);
window.__longTasks = [];
try {
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) window.__longTasks.push(e.duration);
  }).observe({ type: "longtask", buffered: true });
} catch (e) {}
"""
MARKERS = (
    "window.sensord.markers ? window.sensord.markers().length"
    " : document.querySelectorAll('#map .ac').length"
)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))] if ordered else 0.0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def page_figures(browser, port: int, n_tracks: int, seconds: float, slowdown: float) -> dict:
    """One page for ``seconds`` once it shows the tracks: its own measurements."""
    page = browser.new_page(viewport={"width": 1400, "height": 850})
    page.add_init_script(PROBES)
    if slowdown > 1:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": slowdown})
    page.goto(f"http://127.0.0.1:{port}/")
    deadline = time.monotonic() + 90
    while page.evaluate("window.sensord.state.tracks.size") < 0.9 * n_tracks:
        if time.monotonic() > deadline:
            raise SystemExit("the page did not show the tracks within 90 s")
        time.sleep(0.5)
    time.sleep(2.0)  # past the first snapshot
    page.evaluate(
        "for (const k in window.sensord.perf) window.sensord.perf[k].length = 0;"
        " window.__longTasks.length = 0; window.__frames.length = 0"
    )
    time.sleep(seconds)
    perf = page.evaluate("window.sensord.perf")
    long_tasks = page.evaluate("window.__longTasks")
    frames = page.evaluate("window.__frames")
    n_markers = page.evaluate(MARKERS)
    page.close()
    return {
        "markers": n_markers,
        "frames": len(frames),
        "frame_median_ms": median(frames),
        "frame_p95_ms": p95(frames),
        "frame_max_ms": max(frames, default=0.0),
        "handle_median_ms": median(perf["handleMs"]),
        "handle_max_ms": max(perf["handleMs"], default=0.0),
        "messages": len(perf["handleMs"]),
        "draw_median_ms": median(perf.get("drawMs", [])),
        "list_median_ms": median(perf["listMs"]),
        "long_tasks_per_s": len(long_tasks) / seconds,
        "long_task_ms_per_s": sum(long_tasks) / seconds,
        "long_task_max_ms": max(long_tasks, default=0.0),
    }


def browser_runs(
    pages: dict[str, int], n_tracks: int, seconds: float, slowdowns: list[float], rounds: int
) -> list[tuple[str, float, dict]] | None:
    """Each page (name -> port) at each CPU slowdown, in alternation, ``rounds`` times."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        return None
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        for _ in range(rounds):
            for slowdown in slowdowns:
                for name, port in pages.items():
                    out.append(
                        (name, slowdown, page_figures(browser, port, n_tracks, seconds, slowdown))
                    )
        browser.close()
    return out


def print_browser(runs: list[tuple[str, float, dict]]) -> None:
    print(
        f"{'page':>10} {'CPU x':>5} {'markers':>7} {'frame med':>9} {'p95':>7} {'max':>7}"
        f" {'msg med':>7} {'draw med':>8} {'list med':>8} {'long/s':>6} {'long ms/s':>9}"
    )
    for name, slowdown, f in runs:
        print(
            f"{name:>10} {slowdown:>5.0f} {f['markers']:>7} {f['frame_median_ms']:>9.1f}"
            f" {f['frame_p95_ms']:>7.1f} {f['frame_max_ms']:>7.1f} {f['handle_median_ms']:>7.1f}"
            f" {f['draw_median_ms']:>8.1f} {f['list_median_ms']:>8.1f}"
            f" {f['long_tasks_per_s']:>6.2f} {f['long_task_ms_per_s']:>9.1f}"
        )


def start_server(port: int, n_tracks: int, static_from: str | None = None) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--serve", str(port), "--tracks", str(n_tracks)]
    if static_from:
        cmd += ["--static-from", static_from]
    server = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's sensord
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the server process failed (see above)")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/data/stats.json", timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server process did not answer within 30 s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_at(rev: str, into: Path) -> str:
    """The page's files (index.html, its scripts and style) as they were at ``rev``."""
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", rev, "sensord/web/static/"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for path in listing:
        name = Path(path).name
        if name.endswith((".html", ".css")) or (name.endswith(".js") and name != "leaflet.js"):
            blob = subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True
            ).stdout
            (into / name).write_bytes(blob)
    return str(into)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracks", type=int, default=1000)
    p.add_argument("--window", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--browser-only", action="store_true", help="skip the server CPU windows")
    p.add_argument("--compare", metavar="REV", help="also measure the page of git revision REV")
    p.add_argument("--cpu-slowdown", default="1", help="comma-separated CPU throttling rates")
    p.add_argument("--rounds", type=int, default=1, help="alternations of the pages")
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--static-from", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.tracks, args.static_from))
        return
    port = free_port()
    server = start_server(port, args.tracks)
    others: list[subprocess.Popen] = []
    try:
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
        pages = {"this": port}
        with tempfile.TemporaryDirectory() as tmp:
            if args.compare:
                other = free_port()
                others.append(start_server(other, args.tracks, page_at(args.compare, Path(tmp))))
                pages = {args.compare[:10]: other, "this": port}
            slowdowns = [float(x) for x in args.cpu_slowdown.split(",")]
            runs = browser_runs(pages, args.tracks, args.window, slowdowns, args.rounds)
        if runs is None:
            print("browser: no chromium/playwright here, frame times not measured")
        else:
            print("browser: one page, frame intervals (requestAnimationFrame) and long tasks, ms")
            print_browser(runs)
    finally:
        for proc in others:
            proc.terminate()
            proc.communicate(timeout=10)
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
