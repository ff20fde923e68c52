"""``sensord plot``: PNG from track JSON lines; ENU positions; clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sensord.geo import Site
from sensord.plot import positions_enu_km
from sensord.tracker.update import TrackStatus, TrackUpdate

SITE = Site(52.0, 4.5, 0.0)


def _updates() -> list[TrackUpdate]:
    out = []
    for i in range(20):  # due north at 5 km steps, and due east
        out.append(
            TrackUpdate(
                "n",
                i,
                TrackStatus.CONFIRMED,
                icao="AAAAAA",
                lat_deg=52.0 + 0.045 * i,
                lon_deg=4.5,
                alt_baro_ft=30000,
            )
        )
        out.append(
            TrackUpdate(
                "e",
                i,
                TrackStatus.CONFIRMED,
                icao="BBBBBB",
                lat_deg=52.0,
                lon_deg=4.5 + 0.07 * i,
                alt_baro_ft=5000,
            )
        )
    out.append(TrackUpdate("x", 1, TrackStatus.TENTATIVE, icao="CCCCCC"))  # no position: not drawn
    return out


def test_positions_in_enu_km():
    tracks = positions_enu_km(_updates(), SITE)
    assert set(tracks) == {"AAAAAA", "BBBBBB"}
    north = tracks["AAAAAA"]
    assert north[-1, 1] == pytest.approx(95.1, abs=0.5) and abs(north[-1, 0]) < 0.01
    assert (
        tracks["BBBBBB"][-1, 0] == pytest.approx(91.0, abs=0.5) and tracks["BBBBBB"][0, 3] == 5000
    )


def test_plot_command_writes_png(tmp_path):
    src = tmp_path / "tracks.jsonl"
    src.write_text("".join(json.dumps(u.to_dict()) + "\n" for u in _updates()))
    png = tmp_path / "map.png"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sensord",
            "plot",
            str(src),
            "--lat",
            "52",
            "--lon",
            "4.5",
            "-o",
            str(png),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("2 tracks")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == 1300 and int.from_bytes(data[20:24], "big") == 600


def test_plot_bad_line_and_missing_matplotlib_are_one_line_errors(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"track_id": "a"}\nnot json\n')
    out = subprocess.run(
        [sys.executable, "-m", "sensord", "plot", str(src), "--lat", "52", "--lon", "4.5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and f"{src}:1: not a track payload" in out.stderr
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(_updates()[0].to_dict()) + "\n")
    code = (
        "import sys; sys.modules['matplotlib'] = None; from sensord.cli import main; "
        f"sys.exit(main(['plot', {str(good)!r}, '--lat', '52', '--lon', '4.5', "
        f"'-o', {str(tmp_path / 'x.png')!r}]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "pip install 'sensord[plot]'" in out.stderr
