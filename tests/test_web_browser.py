"""The air picture in a real browser (headless Chromium driven by playwright): the page
served by ``sensord demo`` shows the demo's aircraft, a click opens the detail, the page
survives a daemon restart; with ``sensord run``, a track that ends leaves the map.

Screenshots are saved as test artefacts in ``build/test-artifacts/`` (or
``$SENSORD_ARTIFACTS``). Skips, with the reason, where no browser can be had.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import threading
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
    """Tracks with a marker on the canvas (window.sensord.markers: id, kind, page x, y)."""
    return len(page.evaluate("window.sensord.markers()"))


def click_marker(page, kind: str | None = None) -> str:
    """Click a marker where it is drawn on the canvas; its track id."""
    found = [m for m in page.evaluate("window.sensord.markers()") if kind in (None, m["kind"])]
    assert found, f"no {kind or ''} marker drawn"
    page.mouse.click(found[0]["x"], found[0]["y"])
    return found[0]["id"]


def pixel(page, lat: float, lon: float, bearing_deg: float = 0.0, range_m: float = 0.0):
    """RGBA of the track canvas ``range_m`` from (lat, lon) along ``bearing_deg``."""
    return page.evaluate(
        "([lat, lon, b, r]) => window.sensord.pixel(...destination(lat, lon, b, r))",
        [lat, lon, bearing_deg, range_m],
    )


def rgb_close(rgba, color: str, tol: int = 40) -> bool:
    want = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    if rgba is None or rgba[3] <= 200:
        return False
    return all(abs(a - b) <= tol for a, b in zip(rgba[:3], want, strict=True))


def set_view(page, lat: float, lon: float, zoom: int) -> None:
    page.evaluate(
        "([lat, lon, z]) => { window.sensord.map.setView([lat, lon], z, {animate: false}); }",
        [lat, lon, zoom],
    )
    page.wait_for_timeout(150)  # drawn on the next animation frame


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
            lambda: page.locator("#tracks tbody tr[data-track]").count() == markers(page),
            5,
            "the track list (redrawn once a second) to list every marker",
        )
        clicked = click_marker(page)  # on the canvas, at the marker's pixel
        page.wait_for_selector("#detail:not([hidden])", timeout=5_000)
        detail = page.locator("#detail").inner_text()
        assert clicked in detail
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
        last_seen: dict[str, tuple[float, float]] = {}

        def ended() -> bool:
            now = page.evaluate(
                "Array.from(window.sensord.state.tracks.values())"
                ".map(t => [t.d.track_id, t.d.lat_deg, t.d.lon_deg])"
            )
            last_seen.update({i: (lat, lon) for i, lat, lon in now if i in first_two and lat})
            return not first_two & {i for i, _lat, _lon in now}

        wait_until(ended, 20, "the two ended tracks to leave")
        wait_until(lambda: markers(page) == 1, 10, "one marker: the third aircraft")
        shown = page.evaluate("window.sensord.markers()")[0]["id"]
        assert shown not in first_two
        assert len(last_seen) == 2
        for lat, lon in last_seen.values():  # no marker drawn where they were
            assert not rgb_close(pixel(page, lat, lon), COLORS["adsb"])
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(1200)
        page.screenshot(path=str(ARTIFACTS / "web-track-ended.png"))
    finally:
        page.close()
        proc.terminate()
        finish(proc, 30)


@contextlib.contextmanager
def served_sink(receivers, zones=()):
    """A WebSink (and a zone watcher) on an event loop of its own, as the fusion node runs
    it; yields its URL and ``feed(updates)``, which hands a step to both."""
    from sensord.sinks.base import Step
    from sensord.web.settings import WebSettings
    from sensord.web.sink import WebSink
    from sensord.web.zone_sink import ZoneSink

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sink = WebSink(WebSettings(port=0), "fusion", receivers, list(zones))
    watcher = ZoneSink(list(zones))
    watcher.listeners.append(sink.zone_events)
    asyncio.run_coroutine_threadsafe(sink.start(), loop).result(10)

    def feed(updates) -> None:
        step = Step(updates=updates)
        loop.call_soon_threadsafe(lambda: (watcher.feed(step), sink.feed(step)))

    try:
        yield f"http://127.0.0.1:{sink.server.port}/", feed
    finally:
        asyncio.run_coroutine_threadsafe(sink.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


COLORS = {"adsb": "#1f5fbf", "mlat": "#d9730d", "radar": "#c0162c"}  # app.js's


def test_kinds_zones_and_radar_without_position_drawn(browser):
    """MLAT, radar-only (non-cooperative) and position-less radar tracks (the ``source``
    the fusion node sets) drawn apart in their colours, a zone outlined, a zone event shown."""
    from sensord.tracker.update import TrackStatus, TrackUpdate
    from sensord.web.picture import Receiver
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
                          source="radar", non_cooperative=True, sensors=("radar1",), **common),
            TrackUpdate("R2", source="radar", non_cooperative=True, sensors=("radar1",),
                          **common),
        ]  # fmt: skip

    zone = Zone("airfield", center_deg=(52.25, 4.9), radius_m=3000.0, noncooperative_only=True)
    receivers = [  # as the fusion node reports them
        Receiver("rx0", 52.0, 4.5, online=True),
        Receiver("radar1", 51.9, 4.3, kind="radar", online=True),
    ]
    page = browser.new_page(viewport={"width": 1300, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with served_sink(receivers, [zone]) as (url, feed):
        try:
            for t in range(3):
                feed(tracks(float(t)))
            page.goto(url)
            page.wait_for_selector("#conn.on", timeout=20_000)
            wait_until(lambda: markers(page) == 3, 10, "three tracks with a position")
            for t in range(3, 6):
                feed(tracks(float(t)))
                time.sleep(0.4)
            drawn = page.evaluate("window.sensord.markers()")
            assert sorted(m["kind"] for m in drawn) == ["adsb", "mlat", "radar"]
            for t in page.evaluate(
                "Array.from(window.sensord.state.tracks.values()).filter(t => t.wx !== null)"
                ".map(t => [t.kind, t.d.lat_deg, t.d.lon_deg])"
            ):
                assert rgb_close(pixel(page, t[1], t[2]), COLORS[t[0]]), t  # its colour there
            wait_until(lambda: page.locator("#nopos li").count() == 1, 5, "the radar track listed")
            assert "R2" in page.locator("#nopos").inner_text()
            assert page.locator("#zones-box").is_visible()
            assert "airfield" in page.inner_text("#zones")
            assert "radar1 (radar) online" in page.inner_text("#receivers")
            kinds = page.locator("#tracks tbody tr[data-track='R1'] td:nth-child(3)")
            assert kinds.inner_text() == "non-cooperative"
            assert click_marker(page, "radar") == "R1"
            page.wait_for_selector("#detail:not([hidden])", timeout=5_000)
            detail = page.inner_text("#detail")
            assert "radar only" in detail and "none (no transponder)" in detail
            assert "non-cooperative" in detail
            assert "zone_enter airfield" in detail  # the zone event, in the track's last events
            for _ in range(2):  # animated zooms: the canvas is redrawn where the map went
                page.locator(".leaflet-control-zoom-in").click()
                page.wait_for_timeout(400)
            assert page.evaluate("window.sensord.map.getZoom()") == 9
            for m in page.evaluate("window.sensord.markers()"):
                at = page.evaluate(
                    "([x, y]) => { const c = document.querySelector('.track-canvas');"
                    " const r = c.getBoundingClientRect();"
                    " return Array.from(c.getContext('2d').getImageData("
                    "Math.round(x - r.left), Math.round(y - r.top), 1, 1).data); }",
                    [m["x"], m["y"]],
                )
                assert rgb_close(at, COLORS[m["kind"]]), m
            page.locator("#tracks tbody tr", has_text="MLAT").click()  # selects and centres
            page.wait_for_timeout(300)
            assert "3C6DD1" in page.inner_text("#detail")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "web-kinds.png"))
            assert not errors, errors
        finally:
            page.close()


def test_uncertainty_ellipse_bistatic_band_and_baseline(browser):
    """The 95 % ellipse (oriented, from zoom 9), the circle without one, a bistatic
    track's +-2 sigma band between its focal ellipses, and a radar node's baseline."""
    from sensord.tracker.update import TrackStatus, TrackUpdate
    from sensord.web.picture import Receiver

    tx, rx = [52.05, 4.20, 100.0], [51.90, 4.30, 10.0]
    common = dict(t_s=1.0, status=TrackStatus.CONFIRMED, last_update_s=1.0)
    updates = [
        TrackUpdate("E1", icao="4840D6", lat_deg=52.30, lon_deg=4.70, track_deg=90.0,
                      h_err95_m=5000.0, err95_major_m=8000.0, err95_minor_m=2000.0,
                      err95_orient_deg=30.0, **common),
        TrackUpdate("C1", icao="3C6DD1", lat_deg=51.95, lon_deg=4.60, track_deg=200.0,
                      h_err95_m=3000.0, source="mlat", **common),
        TrackUpdate("B1", source="radar", non_cooperative=True, sensors=("radar1",),
                      bistatic={"node": "radar1", "tx": tx, "rx": rx,
                                "bistatic_range_m": 20000.0, "bistatic_range_sigma_m": 500.0,
                                "range_rate_mps": -85.2, "range_rate_sigma_mps": 1.5,
                                "doppler_hz": -170.4}, **common),
    ]  # fmt: skip
    receivers = [
        Receiver("rx0", 52.0, 4.5, online=True),
        Receiver(
            "radar1", rx[0], rx[1], kind="radar", online=True, tx_lat_deg=tx[0], tx_lon_deg=tx[1]
        ),
    ]
    page = browser.new_page(viewport={"width": 1300, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with served_sink(receivers) as (url, feed):
        try:
            feed(updates)
            page.goto(url)
            page.wait_for_selector("#conn.on", timeout=20_000)
            wait_until(lambda: markers(page) == 2, 10, "the two tracks with a position")

            def drawn(*args) -> bool:
                found = pixel(page, *args)
                assert found is not None, args  # within the canvas
                return found[3] > 0

            set_view(page, 52.30, 4.70, 8)  # below zoom 9: no ellipse
            assert not drawn(52.30, 4.70, 30.0, 6000.0)
            set_view(page, 52.30, 4.70, 9)  # major axis 8 km at 30 degrees, minor 2 km
            assert drawn(52.30, 4.70, 30.0, 6000.0) and drawn(52.30, 4.70, 210.0, 6000.0)
            assert not drawn(52.30, 4.70, 120.0, 4000.0)
            assert not drawn(52.30, 4.70, 300.0, 4000.0)
            assert not drawn(52.30, 4.70, 30.0, 9500.0)
            sums = page.evaluate(  # every vertex of a focal ellipse: its sum of ranges
                "([tx, rx]) => focalEllipse(tx, rx, 40000, 36).map(p =>"
                " rangeBearing(tx[0], tx[1], p[0], p[1])[0]"
                " + rangeBearing(p[0], p[1], rx[0], rx[1])[0])",
                [tx, rx],
            )
            assert len(sums) == 36 and all(abs(x - 40000) < 40 for x in sums), sums
            set_view(page, 51.95, 4.60, 9)  # no ellipse: the 3 km circle
            assert drawn(51.95, 4.60, 135.0, 2400.0) and drawn(51.95, 4.60, 45.0, 2400.0)
            assert not drawn(51.95, 4.60, 135.0, 3600.0)
            # the band's far vertex: 10 km beyond rx on the baseline, +-500 m (2 sigma / 2)
            bearing = page.evaluate(f"rangeBearing({tx[0]}, {tx[1]}, {rx[0]}, {rx[1]})[1]")
            vertex = page.evaluate(f"destination({rx[0]}, {rx[1]}, {bearing}, 10000)")
            set_view(page, *vertex, 11)
            assert rgb_close([*pixel(page, *vertex)[:3], 255], COLORS["radar"], 60)
            assert drawn(rx[0], rx[1], bearing, 10000.0)
            assert not drawn(rx[0], rx[1], bearing, 8500.0)
            assert not drawn(rx[0], rx[1], bearing, 11500.0)
            where = page.evaluate(
                "([lat, lon]) => { const m = window.sensord.map;"
                " const p = m.latLngToContainerPoint([lat, lon]);"
                " const r = m.getContainer().getBoundingClientRect();"
                " return [r.left + p.x, r.top + p.y]; }",
                vertex,
            )
            page.mouse.click(*where)  # on the band: its track's detail
            page.wait_for_selector("#detail:not([hidden])", timeout=5_000)
            detail = page.inner_text("#detail")
            for text in (
                "B1",
                "non-cooperative",
                "bistatic range",
                "20000 m (\u03c3 500 m)",
                "-85.2 m/s (\u03c3 1.5 m/s)",
                "-170.4 Hz",
                "52.05000, 4.20000",
            ):
                assert text in detail, text  # fmt: skip
            wait_until(lambda: page.locator("#nopos li").count() == 1, 5, "B1 listed apart")
            listed = page.inner_text("#nopos")
            for text in ("B1", "radar1", "range 20.00 km", "rate -85.2 m/s", "Doppler -170.4 Hz"):
                assert text in listed, text
            page.locator("#nopos li").click()  # fits the band in the view
            page.wait_for_timeout(800)
            assert page.evaluate("window.sensord.map.getZoom()") <= 11
            set_view(page, 52.30, 4.70, 11)
            set_view(page, 52.30, 4.70, 9)  # the ellipse is redrawn after zooming
            assert drawn(52.30, 4.70, 30.0, 6000.0)
            click_marker(page, "adsb")
            page.wait_for_timeout(300)
            axes = "semi-axes\t8000 m \u00d7 2000 m, major axis 30\u00b0 from north"
            assert axes in page.inner_text("#detail")
            assert page.locator(".txmark[data-tx='radar1']").count() == 1  # the transmitter
            baselines = page.evaluate(
                "window.sensord.layers.receivers.getLayers().filter(l => l.getLatLngs)"
                ".map(l => l.getLatLngs().map(p => [p.lat, p.lng]))"
            )
            assert baselines == [[tx[:2], rx[:2]]]
            assert "transmitter 52.05000, 4.20000, baseline 18.0 km" in page.inner_text(
                "#receivers"
            )
            page.locator("#nopos li").click()
            page.wait_for_timeout(800)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "web-ellipse-bistatic.png"))
            assert not errors, errors
        finally:
            page.close()


def test_a_long_track_list_keeps_only_the_rows_in_view(browser):
    """400 tracks: all counted and reachable by scrolling, a screenful of rows in the DOM."""
    from sensord.tracker.update import TrackStatus, TrackUpdate
    from sensord.web.picture import Receiver

    updates = [
        TrackUpdate(f"{0x400000 + i:06X}", 1.0, TrackStatus.CONFIRMED, lat_deg=52.0 + i * 1e-3,
                      lon_deg=4.5, alt_baro_ft=100.0 * i, icao=f"{0x400000 + i:06X}",
                      last_update_s=1.0)
        for i in range(400)
    ]  # fmt: skip
    page = browser.new_page(viewport={"width": 1300, "height": 800})
    with served_sink([Receiver("rx0", 52.0, 4.5, online=True)]) as (url, feed):
        try:
            feed(updates)
            page.goto(url)
            wait_until(lambda: page.inner_text("#ntracks") == "400", 20, "400 tracks counted")
            rows = page.locator("#tracks tbody tr[data-track]")
            assert 10 < rows.count() < 80
            assert rows.first.get_attribute("data-track") == f"{0x400000 + 399:06X}"  # highest
            page.eval_on_selector("#tracks", "t => { t.parentElement.scrollTop = 1e6; }")
            page.wait_for_timeout(300)
            assert rows.last.get_attribute("data-track") == "400000"  # the lowest, at the end
            assert rows.last.is_visible() and rows.count() < 80
        finally:
            page.close()
