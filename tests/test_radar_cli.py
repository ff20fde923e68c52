"""``sensord simulate --radar`` and ``sensord radar``: layouts, JSON lines, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sensord.sim.radar import load_radar_truth

TX, RX = "52.2,4.6,100", "52.0,4.5,10"


def sensord(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sensord", *argv], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, Path]:
    """The same simulated scene (1.2 s) in every two-channel layout."""
    d = tmp_path_factory.mktemp("radar")
    out = {}
    for fmt in ("cu8", "cs16", "cf32", "sigmf"):
        stem = d / f"scene_{fmt}"
        proc = sensord("simulate", "--radar", "-o", str(stem), "--duration", "1.2",
                       "--format", fmt, "--aircraft", "5", "--seed", "4")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        out[fmt] = stem.with_suffix(".sigmf-meta" if fmt == "sigmf" else f".2ch.{fmt}")
        assert out[fmt].exists()
    return out


def detections(path: Path, *extra: str) -> list[dict]:
    proc = sensord("radar", str(path), "--tx", TX, "--rx", RX, "--fc", "98e6", "--jsonl", *extra)
    assert proc.returncode == 0, proc.stderr
    assert "2 of 2 CPIs processed" in proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_every_layout_gives_the_same_detections(recordings):
    by_fmt = {fmt: detections(path) for fmt, path in recordings.items()}
    base = by_fmt["cu8"]
    assert len(base) >= 5
    for fmt, dets in by_fmt.items():
        assert len(dets) == len(base), fmt
        for a, b in zip(base, dets, strict=True):
            assert a["bistatic_range_m"] == pytest.approx(b["bistatic_range_m"], abs=1.0), fmt
            assert a["doppler_hz"] == pytest.approx(b["doppler_hz"], abs=0.01), fmt


def test_detection_fields_and_truth(recordings):
    dets = detections(recordings["sigmf"])
    for d in dets:
        assert {"t_s", "utc", "bistatic_range_m", "doppler_hz", "snr_db"} <= set(d)
        assert min(abs(d["t_s"] - 0.25), abs(d["t_s"] - 0.75)) < 0.01  # CPI centres
        # SigMF core:datetime written by the simulator: 1.7e9 s
        assert d["utc"] == pytest.approx(1.7e9 + d["t_s"], abs=1e-3)
    truth = load_radar_truth(recordings["sigmf"].with_suffix(""))
    strong = truth[truth["in_map"] & ~truth["in_notch"] & (truth["map_snr_db"] > 20)]
    found = 0
    for row in strong:
        found += any(
            abs(d["bistatic_range_m"] - row["bistatic_range_m"]) < 600
            and abs(d["doppler_hz"] - row["doppler_hz"]) < 3
            and abs(d["t_s"] - row["t_s"]) < 0.01
            for d in dets
        )
    assert found >= 0.9 * len(strong)


def test_text_output_and_summary(recordings):
    proc = sensord("radar", str(recordings["cu8"]), "--tx", TX, "--rx", RX, "--fc", "98e6")
    assert proc.returncode == 0, proc.stderr
    assert "R_b=" in proc.stdout and "CPU per CPI" in proc.stderr


def _bad(path: Path, *argv: str) -> subprocess.CompletedProcess:
    proc = sensord("radar", str(path), *argv)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc


def test_bad_input_is_one_clear_line(recordings, tmp_path):
    good = recordings["cu8"]
    raw = np.fromfile(good, dtype=np.uint8).reshape(-1, 4)
    one = tmp_path / "one.cu8"
    raw[:, 0:2].reshape(-1).tofile(one)
    zero = tmp_path / "zero.2ch.cu8"
    z = raw.copy()
    z[:, 2:4] = 0
    z.reshape(-1).tofile(zero)
    geo = ("--tx", TX, "--rx", RX, "--fc", "98e6")
    assert "one-channel recording" in _bad(one, *geo).stderr
    assert "surveillance channel carries no signal" in _bad(zero, *geo).stderr
    assert "at least 100 m apart" in _bad(good, "--tx", RX, "--rx", RX, "--fc", "98e6").stderr
    assert "CPI of 5 s needs" in _bad(good, *geo, "--cpi", "5").stderr
    assert "carrier must be a positive" in _bad(good, "--tx", TX, "--rx", RX, "--fc", "0").stderr
    assert "no such file" in _bad(tmp_path / "missing.2ch.cu8", *geo).stderr
    assert "--rx is LAT,LON,ALT_M" in _bad(good, "--tx", TX, "--rx", "52,x", "--fc", "1e8").stderr


def test_channels_not_coherent_are_reported(tmp_path):
    # two dongles without a shared clock: the surveillance LO 40 Hz off
    from sensord.geo import Site
    from sensord.sim.radar import RadarLink, radar_scene, record_radar

    scene = radar_scene(Site(52.0, 4.5, 10.0), Site(52.2, 4.6, 100.0), n_aircraft=2,
                        link=RadarLink(freq_offset_hz=40.0))  # fmt: skip
    data = record_radar(scene, tmp_path / "drift", 1.2)[0]
    proc = _bad(data, "--tx", TX, "--rx", RX, "--fc", "98e6")
    assert "not coherent" in proc.stderr


def test_plot_range_doppler_draws_a_cpi(recordings, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "rd.png"
    proc = sensord("plot", "--range-doppler", str(recordings["cu8"]), "--cpi-index", "1",
                   "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "CPI 1:" in proc.stdout and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = sensord("plot", "--range-doppler", str(recordings["cu8"]), "--cpi-index", "9",
                   "-o", str(out))  # fmt: skip
    assert proc.returncode == 2 and "no CPI 9" in proc.stderr
    proc = sensord("plot", str(tmp_path / "tracks.jsonl"))
    assert proc.returncode == 2 and "--lat and --lon" in proc.stderr


def test_daemon_mode_publishes_detections_and_info(recordings, broker):
    from conftest import Subscriber

    sub = Subscriber(broker.port)
    try:
        import time

        time.sleep(0.5)
        mqtt = f"127.0.0.1:{broker.port}"
        proc = sensord("radar", str(recordings["sigmf"]), "--tx", TX, "--rx", RX,
                       "--mqtt", mqtt, "--node", "radar7", "--jsonl")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        printed = [json.loads(line) for line in proc.stdout.splitlines()]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(sub.on("/radar7/radar/detections")) < 2:
            time.sleep(0.1)
        msgs = [json.loads(p) for p in sub.on("/radar7/radar/detections")]
        info = [json.loads(p) for p in sub.on("/radar7/info")]
    finally:
        sub.close()
    assert [m["cpi"] for m in msgs] == [0, 1]
    assert all(m["discarded"] is None and m["node"] == "radar7" for m in msgs)
    assert [d for m in msgs for d in m["detections"]] == printed
    assert info and info[-1]["radar"]["carrier_hz"] == 98e6
    assert info[-1]["radar"]["tx"]["lat_deg"] == 52.2 and info[-1]["lat_deg"] == 52.0
    from sensord.fusion.wire import parse_info

    assert parse_info(info[-1]).node == "radar7"  # the fusion node accepts it


def test_tracks_label_detections_and_report_the_bias(recordings, tmp_path):
    """--tracks: cooperative track updates (here written from the scenario's truth) pair
    with their echoes; the rest feed radar-only tracks."""
    from test_radar_pictures import truth_tracks

    radar_json = recordings["cu8"].with_suffix("").with_suffix(".radar.json")
    tracks = tmp_path / "tracks.jsonl"
    tracks.write_text(truth_tracks(radar_json, (0.2, 0.7)))
    proc = sensord("radar", str(recordings["cu8"]), "--tx", TX, "--rx", RX, "--fc", "98e6",
                   "--jsonl", "--tracks", str(tracks))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    dets = [json.loads(line) for line in proc.stdout.splitlines()]
    coop = [d for d in dets if d.get("cooperative")]
    radar_only = [d for d in dets if d.get("radar_only")]
    assert coop and radar_only
    assert all(d["track_id"].startswith("radar:radar0:") for d in radar_only)
    assert '"pairs": ' in proc.stderr and "bias against cooperative tracks" in proc.stderr
