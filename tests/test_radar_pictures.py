"""Range-Doppler pictures of a simulated scene: ``sensord plot --range-doppler --tracks``
(cooperative tracks at their predicted range and Doppler, radar-only tracks) and the map
a radar node publishes on MQTT."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_radar_fusion import _truth_of
from test_radar_map import decode_png

from sensord.cli import build_parser
from sensord.errors import UserError
from sensord.geo import Site
from sensord.radar import map_image as mi
from sensord.radar.publishing import MAP_MAX_BYTES, MAP_TOPIC
from sensord.sim.radar import load_radar_truth
from sensord.sim.scenario import Aircraft, Leg
from sensord.tracker.track import TrackStatus
from sensord.tracker.update import TrackUpdate

TX, RX = "52.2,4.6,100", "52.0,4.5,10"
LAST_CPI = 3  # 2.2 s: CPIs 0..3, enough for radar-only tracks to confirm (3 of 4)


def sensord(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sensord", *argv], capture_output=True, text=True, timeout=300
    )


def truth_tracks(radar_json: Path, times_s: tuple[float, ...]) -> str:
    """Track updates (JSON lines) of a simulated radar scene's cooperative aircraft from
    the scenario's truth: the transponder's word, position and velocity at ``times_s``."""
    doc = json.loads(radar_json.read_text())
    rx = Site(**doc["rx"])
    lines = []
    for target in doc["targets"]:
        if target["kind"] != "aircraft":
            continue
        a = target["aircraft"]
        ac = Aircraft(**{**a, "legs": [Leg(**leg) for leg in a["legs"]], "faults": []}, site=rx)
        for t_s in times_s:
            st = ac.state_at(t_s)
            u = TrackUpdate(f"{ac.icao:06X}", t_s, TrackStatus.CONFIRMED, st.lat_deg, st.lon_deg,
                            st.alt_baro_ft, st.alt_geom_ft, 20.0, 30.0, st.gs_kt, st.track_deg,
                            st.vrate_fpm, f"{ac.icao:06X}")  # fmt: skip
            lines.append(json.dumps(u.to_dict()))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    """A 2.2 s scene and its cooperative aircraft's track updates every 0.5 s."""
    d = tmp_path_factory.mktemp("pictures")
    stem = d / "scene"
    proc = sensord("simulate", "--radar", "-o", str(stem), "--duration", "2.2",
                   "--aircraft", "5", "--seed", "4")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    tracks = d / "tracks.jsonl"
    tracks.write_text(truth_tracks(stem.with_suffix(".radar.json"), (0.1, 0.6, 1.1, 1.6, 2.1)))
    return {"stem": stem, "data": stem.with_suffix(".2ch.cu8"), "tracks": tracks}


def _plot_args(scene, *extra: str):
    argv = ["plot", "--range-doppler", str(scene["data"]), "--cpi-index", str(LAST_CPI), *extra]
    return build_parser(argv).parse_args(argv)


def test_track_overlay_lands_on_the_cooperative_echoes(scene):
    from sensord.commands.plot import range_doppler_cpi

    res, _, marks = range_doppler_cpi(
        _plot_args(scene, "--tracks", str(scene["tracks"]), "--tx", TX, "--rx", RX)
    )
    truth = load_radar_truth(scene["stem"])
    rows = truth[(truth["cpi"] == res.cpi) & truth["in_map"] & ~truth["in_notch"]]
    coop = {m.label: m for m in marks if m.kind == mi.COOPERATIVE}
    radar_only = [m for m in marks if m.kind == mi.RADAR_ONLY]
    assert len(coop) == 5  # every aircraft with a transponder
    seen = 0
    for det in res.detections:
        row = _truth_of(det, rows)
        if row is None or row["kind"] != "aircraft":
            continue
        mark = coop[f"{int(row['icao']):06X}"]  # its own track's mark, on its echo
        assert abs(mark.bistatic_range_m - det.bistatic_range_m) < 300, (mark, det)
        assert abs(mark.doppler_hz - det.doppler_hz) < 1.5, (mark, det)
        assert not any(  # no radar-only track claims a cooperative echo
            abs(m.bistatic_range_m - det.bistatic_range_m) < 600
            and abs(m.doppler_hz - det.doppler_hz) < 3
            for m in radar_only
        )
        seen += 1
    assert seen >= 4
    # the radar-only tracks sit on the transponder-off aircraft and drones
    assert len(radar_only) >= 3
    assert all(m.label.startswith("radar:radar0:") for m in radar_only)
    dark = rows[rows["kind"] != "aircraft"]
    for m in radar_only:
        assert any(
            abs(m.bistatic_range_m - r["bistatic_range_m"]) < 600
            and abs(m.doppler_hz - r["doppler_hz"]) < 3
            for r in dark
        ), m
    with pytest.raises(UserError, match="needs --tx and --rx"):
        range_doppler_cpi(_plot_args(scene, "--tracks", str(scene["tracks"])))


def test_plot_command_draws_the_tracks(scene, tmp_path):
    out = tmp_path / "rd.png"
    args = ("--tracks", str(scene["tracks"]), "--tx", TX, "--rx", RX, "-o", str(out))
    pytest.importorskip("matplotlib")
    proc = sensord("plot", "--range-doppler", str(scene["data"]), "--cpi-index", "3", *args)
    assert proc.returncode == 0, proc.stderr
    assert "5 cooperative and" in proc.stdout and "radar-only tracks" in proc.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_plain_is_the_node_picture_with_its_marks(scene, tmp_path):
    from sensord.commands.plot import range_doppler_cpi

    out = tmp_path / "plain.png"
    extra = ("--tracks", str(scene["tracks"]), "--tx", TX, "--rx", RX)
    proc = sensord("plot", "--range-doppler", str(scene["data"]), "--cpi-index", "3",
                   *extra, "--plain", "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rgb, _ = decode_png(out.read_bytes())
    _, params, marks = range_doppler_cpi(_plot_args(scene, *extra))
    shape = (params.n_range, params.n_doppler)
    assert rgb.shape == (params.n_doppler, params.n_range, 3)
    for m in marks:
        x, y = mi.pixel_of(m.bistatic_range_m, m.doppler_hz, shape, params.range_cell_m, 0.5)
        colour = mi.COOPERATIVE_RGB if m.kind == mi.COOPERATIVE else mi.RADAR_ONLY_RGB
        assert tuple(rgb[y, x]) == colour, m


def _maps(sub, node: str) -> list[tuple[bytes, bool]]:
    with sub.lock:
        return [(p, r) for t, p, r in sub.messages if t == f"sensord/{node}/{MAP_TOPIC}"]


def test_radar_node_publishes_its_map_retained(scene, broker):
    """--map-every 0.001: every CPI's map (those made before the broker connected replace
    each other), the last one retained, detections and track marks on it; the default
    (2 s; here 60 to hold on a loaded machine) one map for this short file, 0 none."""
    from conftest import Subscriber

    sub = Subscriber(broker.port)
    try:
        time.sleep(0.3)
        mqtt = f"127.0.0.1:{broker.port}"
        geo = ("--tx", TX, "--rx", RX, "--fc", "98e6", "--mqtt", mqtt)
        proc = sensord("radar", str(scene["data"]), *geo, "--node", "fast", "--jsonl",
                       "--map-every", "0.001", "--tracks", str(scene["tracks"]))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        dets = [json.loads(line) for line in proc.stdout.splitlines()]
        for node, every in (("slow", "60"), ("none", "0")):
            p = sensord("radar", str(scene["data"]), *geo, "--node", node, "--map-every", every)
            assert p.returncode == 0, p.stderr
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (_maps(sub, "fast") and _maps(sub, "slow")):
            time.sleep(0.1)
        time.sleep(0.3)
        live = {node: _maps(sub, node) for node in ("fast", "slow", "none")}
        info = [json.loads(p) for p in sub.on("/fast/info")]
    finally:
        sub.close()
    cpis = [json.loads(mi.png_text(png)["sensord"])["cpi"] for png, _ in live["fast"]]
    assert cpis[-1] == LAST_CPI and cpis == sorted(set(cpis)), cpis
    assert [len(live[n]) for n in ("slow", "none")] == [1, 0]
    assert info[-1]["radar"]["map_every_s"] == 0.001
    late = Subscriber(broker.port)  # a page opened later gets the last map, retained
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _maps(late, "fast"):
            time.sleep(0.1)
        retained = _maps(late, "fast")
    finally:
        late.close()
    assert retained and retained[0][1] is True and retained[0][0] == live["fast"][-1][0]
    png = retained[0][0]
    assert len(png) < MAP_MAX_BYTES
    text = json.loads(mi.png_text(png)["sensord"])
    assert text["cpi"] == LAST_CPI and text["n_range"] == 400 and text["n_doppler"] == 200
    rgb, _ = decode_png(png)
    shape, cell = (400, 200), text["range_cell_m"]
    last = [d for d in dets if d["cpi"] == LAST_CPI]
    assert len(last) >= 8
    for d in last:
        x, y = mi.pixel_of(d["bistatic_range_m"], d["doppler_hz"], shape, cell, 0.5)
        # ring pixels off the marks' "+" and "x" arms
        ring = [tuple(rgb[y + dy, x + dx]) for dx, dy in ((-4, 1), (-1, -4), (1, 4), (4, -1))
                if 0 <= x + dx < 400 and 0 <= y + dy < 200]  # fmt: skip
        assert mi.DETECTION_RGB in ring, d
        if d.get("cooperative"):  # its track's "+" on the echo
            near = rgb[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3].reshape(-1, 3)
            assert (near == mi.COOPERATIVE_RGB).all(axis=1).any(), d


def test_map_every_defaults_to_two_seconds_and_refuses_a_negative():
    from sensord.commands import radar

    argv = ["radar", "x.2ch.cu8", "--tx", TX, "--rx", RX, "--mqtt", "127.0.0.1:1"]
    assert build_parser(argv).parse_args(argv).map_every == 2.0
    argv += ["--map-every", "-1"]
    with pytest.raises(UserError, match="--map-every must be >= 0"):
        radar.run(build_parser(argv).parse_args(argv))
