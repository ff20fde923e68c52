"""The live table as rendered text, and the end-of-run summary totals."""

from __future__ import annotations

import io

from rich.console import Console

from sensord.frames import frames_from_hex
from sensord.geo import Site
from sensord.tracker.update import TrackStatus, TrackUpdate
from sensord.ui.summary import RunSummary
from sensord.ui.table import COLUMNS, TrackBoard


def test_table_renders_every_column_and_value():
    board = TrackBoard(Site(52.0, 4.5, 0.0))
    board.update(
        [
            TrackUpdate(
                "t1",
                3.0,
                TrackStatus.CONFIRMED,
                icao="4840D6",
                callsign="KLM1023",
                squawk="7421",
                lat_deg=52.5,
                lon_deg=4.5,
                alt_baro_ft=38000,
                gs_kt=450.4,
                track_deg=90.0,
                h_err95_m=38.2,
                n_updates=42,
            ),
        ]
    )
    text = io.StringIO()
    Console(file=text, width=140).print(board.table())
    out = text.getvalue()
    assert all(name in out for name in COLUMNS)
    for value in (
        "4840D6",
        "KLM1023",
        "7421",
        "38000",
        "450",
        "90",
        "55.6",
        "42",
        "0.0",
        "38",
        "confirmed",
    ):
        assert value in out


def test_summary_counts_frames_tracks_positions_and_range():
    s = RunSummary(samples=4_000_000)
    frames = frames_from_hex(
        ["8D4840D6202CC371C32CE0576098", "5D484FDEA248F5", "8D40621D58C382D690C8AC2863A7"]
    )
    frames["corrected_bits"] = [1, 0, 0]
    s.add_frames(frames)
    a = TrackUpdate("a", 1.0, TrackStatus.TENTATIVE, lat_deg=52.0, lon_deg=4.0)
    b = TrackUpdate("a", 2.0, TrackStatus.CONFIRMED, lat_deg=52.1, lon_deg=4.0)
    c = TrackUpdate("b", 2.0, TrackStatus.TENTATIVE)
    s.add_updates([a, b, c], [10_000.0, 25_000.0, None])
    lines = "\n".join(s.lines(rate_hz=2e6))
    assert "samples     4000000 (2.0 s)" in lines
    assert "frames      3: DF11 1, DF17 2" in lines
    assert "corrected   1" in lines
    assert "tracks      2 (1 confirmed)" in lines
    assert "positions   2 " in lines and "max range   25.0 km" in lines
