"""The air picture in a real browser (headless Chromium driven by playwright): the page
served by ``sensord demo`` shows the demo's aircraft, a click opens the detail, the page
survives a daemon restart; with ``sensord run``, a track that ends leaves the map.

Screenshots are saved as test artefacts in ``build/test-artifacts/`` (or
``$SENSORD_ARTIFACTS``). Skips, with the reason, where no browser can be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import SITE, free_port

from sensord.sim import random_scenario, simulate, write_recording
from sensord.sim.scenario import Scenario

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(
    os.environ.get(
        "SENSORD_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "test-artifacts"
    )
)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; the test extra has it)")
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "no chromium on PATH (apt-get install chromium; scripts/test does where apt is)"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def wait_http(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


def sensord(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sensord", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout_s: float = 60.0) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    return out, err


def markers(page) -> int:
    return page.locator("#map .ac").count()


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_demo_page_markers_detail_and_daemon_restart(browser):
    port = free_port()
    demo_args = ("demo", "--speed", "1", "--web", f"127.0.0.1:{port}", "--duration")
    first = sensord(*demo_args, "14")
    page = browser.new_page(viewport={"width": 1400, "height": 850})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#conn.on", timeout=20_000)
        wait_until(lambda: markers(page) >= 6, 40, "markers of the demo's aircraft")
        wait_until(
            lambda: page.locator("#tracks tbody tr").count() == markers(page),
            5,
            "the track list (redrawn once a second) to list every marker",
        )
        page.locator("#map .ac").first.click()
        page.wait_for_selector("#detail:not([hidden])", timeout=5_000)
        detail = page.locator("#detail").inner_text()
        for field in ("ICAO", "kind", "ADS-B", "uncertainty (95 %)", "sensors", "update age"):
            assert field in detail, field
        page.locator("#tracks th[data-key='callsign']").click()  # sort by callsign
        page.wait_for_timeout(300)
        callsigns = page.locator("#tracks tbody tr td:nth-child(2)").all_inner_texts()
        named = [c for c in callsigns if c]
        assert named == sorted(named)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(1200)  # the list is redrawn once a second
        page.screenshot(path=str(ARTIFACTS / "web-demo.png"))
        finish(first)
        page.wait_for_selector("#conn.off", timeout=10_000)  # the daemon went away
        second = sensord(*demo_args, "10")  # restarted on the same address
        try:
            page.wait_for_selector("#conn.on", timeout=30_000)
            wait_until(lambda: markers(page) >= 6, 40, "markers after the restart")
            page.wait_for_timeout(1200)
            page.screenshot(path=str(ARTIFACTS / "web-demo-restarted.png"))
        finally:
            finish(second)
        assert not errors, errors
    finally:
        page.close()
        for proc in (first,):
            if proc.poll() is None:
                proc.kill()


@pytest.fixture(scope="module")
def ending_recording(tmp_path_factory) -> Path:
    """Two aircraft for 6 s, then only a third one for 12 s: the first two's tracks end."""
    rate = 2.0e6
    scenario = random_scenario(3, SITE, max_range_m=120e3, seed=21)
    d = tmp_path_factory.mktemp("rec")
    parts = []
    for name, aircraft, seconds in (
        ("a", scenario.aircraft[:2], 6.0),
        ("b", scenario.aircraft[2:], 12.0),
    ):
        res = simulate(Scenario(SITE, aircraft), rate, seconds, seed=21)
        parts += [p for p in write_recording(res, d / name) if p.suffix == ".cu8"]
    joined = d / "ending_2000k.cu8"
    joined.write_bytes(b"".join(np.fromfile(p, np.uint8).tobytes() for p in parts))
    return joined


def test_a_track_that_ends_leaves_the_map(browser, tmp_path, ending_recording):
    port = free_port()
    config = tmp_path / "sensord.toml"
    config.write_text(f"""
[receiver]
lat_deg = {SITE.lat_deg}
lon_deg = {SITE.lon_deg}
[source]
spec = "{ending_recording}"
rate_hz = 2000000.0
realtime = true
[tracker]
coast_after_s = 1.0
drop_after_s = 2.0
[mqtt]
enabled = false
[web]
listen = "127.0.0.1:{port}"
""")
    proc = sensord("run", "-c", str(config))
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#conn.on", timeout=20_000)
        wait_until(lambda: markers(page) == 2, 20, "the first two aircraft")
        first_two = set(page.evaluate("Array.from(window.sensord.state.tracks.keys())"))
        wait_until(
            lambda: (
                not first_two & set(page.evaluate("Array.from(window.sensord.state.tracks.keys())"))
            ),
            20,
            "the two ended tracks to leave",
        )
        wait_until(lambda: markers(page) == 1, 10, "one marker: the third aircraft")
        shown = page.locator("#map .ac").first.get_attribute("data-track")
        assert shown not in first_two
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(1200)
        page.screenshot(path=str(ARTIFACTS / "web-track-ended.png"))
    finally:
        page.close()
        proc.terminate()
        finish(proc, 30)


def test_kinds_zones_uncertainty_and_radar_without_position_drawn(browser):
    """MLAT, radar-only and position-less radar tracks (the ``source`` the fusion node sets)
    drawn apart, a zone outlined, the 95 % circle when zoomed in, a zone event shown."""
    import asyncio
    import threading

    from sensord.sinks.base import Step
    from sensord.tracker.update import TrackStatus, TrackUpdate
    from sensord.web.picture import Receiver
    from sensord.web.settings import WebSettings
    from sensord.web.sink import WebSink
    from sensord.web.zone_sink import ZoneSink
    from sensord.web.zones import Zone

    def tracks(t: float) -> list[TrackUpdate]:
        common = dict(t_s=t, status=TrackStatus.CONFIRMED, last_update_s=t, h_err95_m=900.0)
        return [
            TrackUpdate("4840D6", icao="4840D6", callsign="KLM1023", lat_deg=52.10,
                          lon_deg=4.40 + 0.002 * t, alt_baro_ft=9000.0, track_deg=90.0,
                          sensors=("rx0",), **common),
            TrackUpdate("3C6DD1", icao="3C6DD1", lat_deg=51.95, lon_deg=4.60,
                          alt_baro_ft=5000.0, track_deg=200.0, source="mlat",
                          sensors=("rx0", "rx1", "rx2"), **common),
            TrackUpdate("R1", lat_deg=52.25, lon_deg=4.90 - 0.001 * t, track_deg=270.0,
                          source="radar", sensors=("radar1",), **common),
            TrackUpdate("R2", source="radar", sensors=("radar1",), **common),
        ]  # fmt: skip

    zone = Zone("airfield", center_deg=(52.25, 4.9), radius_m=3000.0, noncooperative_only=True)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    receivers = [  # as the fusion node reports them
        Receiver("rx0", 52.0, 4.5, online=True),
        Receiver("radar1", 51.9, 4.3, kind="radar", online=True),
    ]
    sink = WebSink(WebSettings(port=0), "fusion", receivers, [zone])
    zones = ZoneSink([zone])
    zones.listeners.append(sink.zone_events)
    asyncio.run_coroutine_threadsafe(sink.start(), loop).result(10)

    def feed(t: float) -> None:
        step = Step(updates=tracks(t))
        loop.call_soon_threadsafe(lambda: (zones.feed(step), sink.feed(step)))

    page = browser.new_page(viewport={"width": 1300, "height": 800})
    try:
        for t in range(3):
            feed(float(t))
        page.goto(f"http://127.0.0.1:{sink.server.port}/")
        page.wait_for_selector("#conn.on", timeout=20_000)
        wait_until(lambda: markers(page) == 3, 10, "three tracks with a position")
        for t in range(3, 6):
            feed(float(t))
            time.sleep(0.4)
        assert page.locator("#map .ac.k-adsb").count() == 1
        assert page.locator("#map .ac.k-mlat").count() == 1
        assert page.locator("#map .ac.k-radar").count() == 1
        wait_until(lambda: page.locator("#nopos li").count() == 1, 5, "the radar track listed")
        assert "R2" in page.locator("#nopos").inner_text()
        assert page.locator("#zones-box").is_visible() and "airfield" in page.inner_text("#zones")
        assert "radar1 (radar) online" in page.inner_text("#receivers")
        page.locator("#map .ac.k-radar").click()
        page.wait_for_selector("#detail:not([hidden])", timeout=5_000)
        detail = page.inner_text("#detail")
        assert "radar only" in detail and "none (no transponder)" in detail
        assert "zone_enter airfield" in detail  # the zone event, in the track's last events
        page.evaluate("window.sensord.state")  # the page is alive
        for _ in range(2):  # zoom 7 -> 9: the 95 % circles
            page.locator(".leaflet-control-zoom-in").click()
            page.wait_for_timeout(500)
        assert page.evaluate("window.sensord.map.getZoom()") == 9
        page.locator("#tracks tbody tr", has_text="MLAT").click()  # centres on it
        page.wait_for_timeout(1500)
        assert (
            page.evaluate(
                "Array.from(window.sensord.state.tracks.values()).filter(t => t.err).length"
            )
            == 3
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-kinds.png"))
    finally:
        page.close()
        asyncio.run_coroutine_threadsafe(sink.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
