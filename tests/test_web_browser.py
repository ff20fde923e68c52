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
