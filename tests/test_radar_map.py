"""The range-Doppler map as a PNG without matplotlib: decodes, small, marks where they belong;
and the schedule that keeps a CPI's map only when one is due."""

from __future__ import annotations

import io
import json
import struct
import zlib
from types import SimpleNamespace

import numpy as np
import pytest

from sensord.radar import map_image as mi
from sensord.radar.publishing import LatestMap, MapSchedule

CELL_M, CPI_S = 149.896, 0.5
N_RANGE, N_DOPPLER = 400, 200


def decode_png(png: bytes) -> tuple[np.ndarray, dict[bytes, list[bytes]]]:
    """A minimal decoder for what the encoder writes: 8-bit indexed, filter 0, CRCs checked.
    Returns the (height, width, 3) RGB picture and the chunks by type."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, list[bytes]] = {}
    pos = 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        chunks.setdefault(kind, []).append(data)
        pos += 12 + length
    order = list(chunks)
    assert pos == len(png) and order[0] == b"IHDR" and order[-1] == b"IEND"
    width, height, depth, colour, comp, filt, interlace = struct.unpack(
        ">IIBBBBB", chunks[b"IHDR"][0]
    )
    assert (depth, colour, comp, filt, interlace) == (8, 3, 0, 0, 0)
    plte = np.frombuffer(chunks[b"PLTE"][0], dtype=np.uint8).reshape(-1, 3)
    raw = np.frombuffer(zlib.decompress(b"".join(chunks[b"IDAT"])), dtype=np.uint8)
    rows = raw.reshape(height, width + 1)
    assert (rows[:, 0] == 0).all()  # filter type 0 on every row
    assert rows[:, 1:].max() < len(plte)
    return plte[rows[:, 1:]], chunks


def scene_power(seed: int = 3) -> tuple[np.ndarray, list]:
    """Exponential noise (median 1) with three echoes: a range mainlobe of +-7 cells."""
    rng = np.random.default_rng(seed)
    power = rng.exponential(1.0 / np.log(2.0), (N_RANGE, N_DOPPLER)).astype(np.float32)
    dets = []
    for cell, bin_, snr_db in ((60, 30, 32.0), (250, -71, 36.0), (390, 95, 40.0)):
        lobe = 10 ** (snr_db / 10) * np.exp(-0.5 * (np.arange(-7, 8) / 3.0) ** 2)
        power[cell - 7 : cell + 8, N_DOPPLER // 2 + bin_] += lobe
        dets.append(SimpleNamespace(bistatic_range_m=cell * CELL_M, doppler_hz=bin_ / CPI_S))
    return power, dets


def test_png_decodes_is_small_and_a_detection_lands_at_its_pixel():
    power, dets = scene_power()
    png = mi.map_png(power, CELL_M, CPI_S, dets)
    rgb, chunks = decode_png(png)
    assert rgb.shape == (N_DOPPLER, N_RANGE, 3) and len(chunks[b"PLTE"][0]) == 3 * 67
    assert 5_000 < len(png) < 40_000, len(png)
    top = tuple(mi.colour_table()[-1])
    for d in dets:
        x, y = mi.pixel_of(d.bistatic_range_m, d.doppler_hz, power.shape, CELL_M, CPI_S)
        cell = round(d.bistatic_range_m / CELL_M)
        assert (x, y) == (cell, N_DOPPLER - 1 - (round(d.doppler_hz * CPI_S) + N_DOPPLER // 2))
        assert tuple(rgb[y, x]) == top  # the echo's peak, > 30 dB: the table's end
        assert tuple(rgb[y, x - 4]) == mi.DETECTION_RGB  # its ring
        if x + 4 < N_RANGE:
            assert tuple(rgb[y, x + 4]) == mi.DETECTION_RGB
        assert tuple(rgb[y - 4, x]) == mi.DETECTION_RGB and tuple(rgb[y + 4, x]) == mi.DETECTION_RGB
    axes = json.loads(mi.png_text(png)["sensord"])
    assert axes["n_range"] == N_RANGE and axes["zero_doppler_row"] == 99
    assert axes["doppler_bin_hz"] == 2.0 and axes["range_cell_m"] == CELL_M


def test_pixels_follow_the_axes_and_the_db_span():
    """Range along x, positive Doppler up, zero Doppler mid-picture; 0 dB over the floor
    the table's first colour, span_db and more its last."""
    power = np.ones((N_RANGE, N_DOPPLER), dtype=np.float32)
    power[123, :] = 10**1.6  # 16 dB along one range cell
    power[:, N_DOPPLER // 2] = 10**3.0  # 30 dB along zero Doppler
    power[50, N_DOPPLER // 2 + 40] = 1e6  # +80 Hz, far over the span
    rgb, _ = decode_png(mi.map_png(power, CELL_M, CPI_S, noise_floor=1.0))
    table = mi.colour_table()
    assert (rgb[99] == table[-1]).all()  # zero Doppler: row 99 of 0..199
    assert (rgb[0, :123] == table[0]).all() and (rgb[0, 124:] == table[0]).all()
    level = round(16 / mi.SPAN_DB * (mi.MAP_LEVELS - 1))
    assert (rgb[:99, 123] == table[level]).all() and (rgb[100:, 123] == table[level]).all()
    assert tuple(rgb[99 - 40, 50]) == tuple(table[-1])  # positive Doppler is above
    assert tuple(rgb[99 + 40, 50]) == tuple(table[0])


def test_track_marks_and_labels():
    power, _ = scene_power()
    marks = [
        mi.TrackMark(20_000.0, 31.0, mi.COOPERATIVE, "4840d6"),
        mi.TrackMark(40_000.0, -50.0, mi.RADAR_ONLY, "radar:radar0:12"),
        mi.TrackMark(59_800.0, 198.0, mi.COOPERATIVE, "KLM1234X9"),  # the top right corner
    ]
    rgb, _ = decode_png(mi.map_png(power, CELL_M, CPI_S, marks=marks))
    white, magenta = mi.COOPERATIVE_RGB, mi.RADAR_ONLY_RGB

    def at(m):
        return mi.pixel_of(m.bistatic_range_m, m.doppler_hz, power.shape, CELL_M, CPI_S)

    x, y = at(marks[0])
    assert (x, y) == (133, 83)
    for dx, dy in ((0, 0), (-3, 0), (3, 0), (0, -3), (0, 3)):
        assert tuple(rgb[y + dy, x + dx]) == white
    x, y = at(marks[1])
    for dx, dy in ((0, 0), (-3, -3), (3, 3), (3, -3), (-3, 3)):
        assert tuple(rgb[y + dy, x + dx]) == magenta
    assert tuple(rgb[y, x - 3]) != magenta
    x, y = at(marks[2])
    assert (x, y) == (399, 0) and tuple(rgb[0, 399]) == tuple(rgb[0, 394]) == white
    # its label goes left of and below the mark: "KLM1234X", 8 glyphs of 3 + 1 px
    box = (rgb[7:12, 399 - 7 - 31 : 399 - 7] == white).all(axis=2)
    assert (box[:, :3] == mi.glyph("K")).all() and (box[:, 28:] == mi.glyph("X")).all()
    # the first label right of and above its "+": "4840D6"
    x, y = at(marks[0])
    box = (rgb[y - 11 : y - 6, x + 7 : x + 7 + 23] == white).all(axis=2)
    assert (box[:, :3] == mi.glyph("4")).all() and (box[:, 20:23] == mi.glyph("6")).all()
    assert mi.short_label(marks[1]) == "R12" and mi.short_label(marks[2]) == "KLM1234X"


def test_colour_table_lightness_rises_and_marks_stand_apart():
    table = mi.colour_table().astype(float) / 255.0
    linear = np.where(table <= 0.04045, table / 12.92, ((table + 0.055) / 1.055) ** 2.4)
    y = linear @ np.array([0.2126, 0.7152, 0.0722])
    lstar = 116 * np.cbrt(y) - 16
    assert (np.diff(lstar) > 0).all() and lstar[0] < 10 and lstar[-1] > 85
    for mark in (mi.DETECTION_RGB, mi.COOPERATIVE_RGB, mi.RADAR_ONLY_RGB):
        distance = np.abs(mi.colour_table().astype(int) - np.array(mark)).sum(axis=1)
        assert distance.min() > 100, mark
    assert len(mi.palette()) <= 256
    for ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-:._/ ":
        assert mi.glyph(ch).shape == (mi.GLYPH_H, mi.GLYPH_W)
    assert len({mi.glyph(ch).tobytes() for ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}) == 36


def test_pillow_reads_it_the_same():
    Image = pytest.importorskip("PIL.Image")
    power, dets = scene_power(5)
    png = mi.map_png(power, CELL_M, CPI_S, dets, text={"cpi": 7})
    ours, _ = decode_png(png)
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (N_RANGE, N_DOPPLER) and im.mode == "P"
        assert (np.asarray(im.convert("RGB")) == ours).all()
        assert json.loads(im.info["sensord"])["cpi"] == 7


def test_encoder_refuses_what_it_cannot_write():
    with pytest.raises(ValueError):
        mi.encode_indexed_png(np.zeros((2, 2), dtype=np.int16), mi.palette())
    with pytest.raises(ValueError):
        mi.encode_indexed_png(np.zeros((2, 2), dtype=np.uint8), np.zeros((300, 3), np.uint8))
    with pytest.raises(ValueError):
        mi.png_text(b"GIF89a")


def test_map_schedule_keeps_a_map_only_when_due():
    now = [100.0]
    s = MapSchedule(2.0, clock=lambda: now[0])
    asked = []
    for _ in range(9):  # CPIs every 0.5 s
        asked.append(s.due())
        now[0] += 0.5
    assert asked == [True, False, False, False, True, False, False, False, True]
    assert MapSchedule(0.0).due() is False


def test_only_the_newest_map_waits_for_the_broker():
    pub = SimpleNamespace(stats=SimpleNamespace(connected=False), sent=[])
    pub.extra = pub.sent.extend
    slot = LatestMap(pub, "sensord/r0/radar/map")  # type: ignore[arg-type]
    for png in (b"a", b"b", b"c"):
        slot.offer(png)
    assert pub.sent == [] and slot.replaced == 2
    pub.stats.connected = True
    slot.hand_over()
    slot.offer(b"d")
    assert pub.sent == [("sensord/r0/radar/map", b"c", True), ("sensord/r0/radar/map", b"d", True)]
    assert slot.published == 2 and slot.png is None
