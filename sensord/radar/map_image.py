"""A CPI's range-Doppler map as a small colour-mapped PNG, without matplotlib.

Range runs along x (one pixel per range cell, 0 at the left), Doppler along y (one pixel
per bin, positive at the top, zero Doppler in the middle row ``n_doppler - 1 -
n_doppler // 2``). Colour is power in dB over the noise floor (the map's median power),
clipped to ``[0, span_db]``, through ``MAP_LEVELS`` steps of a table of our own whose
lightness rises monotonically. The CPI's detections are red rings; track marks are white
``+`` (cooperative tracks at their predicted range and Doppler) and magenta ``x``
(radar-only tracks), each with a label in a 3 x 5 pixel font (``short_label``).

The PNG is indexed colour (one byte per pixel, ``PLTE`` of the map levels and the marks'
colours), filter type 0, deflated by zlib: 20-40 kB for a 400 x 200 map. A ``tEXt``
chunk (``sensord``) holds the axes as JSON (``png_text`` reads it back).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

COOPERATIVE = "cooperative"
RADAR_ONLY = "radar-only"

MAP_LEVELS = 64
SPAN_DB = 30.0

# anchors of the colour table (position 0..1, sRGB): dark indigo through blue, teal and
# green to yellow, lightness rising all the way (tests hold CIE L* monotonic)
_ANCHORS = (
    (0.00, (20, 12, 48)),
    (0.18, (52, 40, 122)),
    (0.36, (44, 92, 160)),
    (0.52, (30, 136, 150)),
    (0.68, (52, 176, 120)),
    (0.84, (150, 206, 70)),
    (1.00, (250, 232, 40)),
)
DETECTION_RGB = (255, 40, 40)
COOPERATIVE_RGB = (255, 255, 255)
RADAR_ONLY_RGB = (255, 64, 255)
_MARK_RGB = (DETECTION_RGB, COOPERATIVE_RGB, RADAR_ONLY_RGB)
DETECTION_INDEX, COOPERATIVE_INDEX, RADAR_ONLY_INDEX = range(MAP_LEVELS, MAP_LEVELS + 3)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class TrackMark(NamedTuple):
    """A track drawn on the map: where it is (or is predicted) on this CPI."""

    bistatic_range_m: float
    doppler_hz: float
    kind: str  # COOPERATIVE or RADAR_ONLY
    label: str


def colour_table(levels: int = MAP_LEVELS) -> np.ndarray:
    """(levels, 3) uint8 sRGB, interpolated between the anchors."""
    pos = np.array([a[0] for a in _ANCHORS])
    rgb = np.array([a[1] for a in _ANCHORS], dtype=float)
    x = np.linspace(0.0, 1.0, levels)
    table = np.column_stack([np.interp(x, pos, rgb[:, c]) for c in range(3)])
    return table.round().astype(np.uint8)


def palette() -> np.ndarray:
    """The PNG's palette: the map levels, then the detection and track colours."""
    return np.vstack([colour_table(), np.array(_MARK_RGB, dtype=np.uint8)])


def pixel_of(
    bistatic_range_m: float, doppler_hz: float, shape: tuple[int, int], range_cell_m: float,
    cpi_s: float,
) -> tuple[int, int]:  # fmt: skip
    """(x, y) pixel of a range and Doppler on a map of ``shape`` = (n_range, n_doppler)."""
    n_doppler = shape[1]
    x = round(bistatic_range_m / range_cell_m)
    y = n_doppler - 1 - (round(doppler_hz * cpi_s) + n_doppler // 2)
    return x, y


def levels_of(power: np.ndarray, noise_floor: float, span_db: float = SPAN_DB) -> np.ndarray:
    """Power (n_range, n_doppler) -> palette indices as the picture (n_doppler, n_range)."""
    floor = noise_floor if noise_floor > 0 else float(np.median(power))
    ratio = np.maximum(power / max(floor, 1e-30), 1.0)
    scaled = np.log10(ratio, dtype=np.float32) * np.float32(10.0 * (MAP_LEVELS - 1) / span_db)
    idx = np.minimum(scaled + 0.5, MAP_LEVELS - 1).astype(np.uint8)
    return np.ascontiguousarray(idx.T[::-1])


def short_label(mark: TrackMark, max_chars: int = 8) -> str:
    """What the picture prints: a radar-only id ``radar:<node>:<n>`` as ``R<n>``, any
    label cut to ``max_chars``."""
    text = mark.label
    if mark.kind == RADAR_ONLY and text.count(":") == 2:
        text = "R" + text.rsplit(":", 1)[1]
    return text[:max_chars]


def map_png(
    power: np.ndarray,
    range_cell_m: float,
    cpi_s: float,
    detections: Iterable = (),
    marks: Iterable[TrackMark] = (),
    noise_floor: float = 0.0,
    span_db: float = SPAN_DB,
    text: dict | None = None,
) -> bytes:
    """The PNG of a power map (n_range, n_doppler) with its marks on it.

    ``detections`` are anything with ``bistatic_range_m`` and ``doppler_hz`` (a
    ``RadarDetection``); ``noise_floor`` 0 takes the map's median; ``text`` goes into
    the ``sensord`` tEXt chunk beside the axes.
    """
    img = levels_of(power, noise_floor, span_db)
    for d in detections:
        x, y = pixel_of(d.bistatic_range_m, d.doppler_hz, power.shape, range_cell_m, cpi_s)
        _stamp(img, x, y, _RING, DETECTION_INDEX)
    for m in marks:
        x, y = pixel_of(m.bistatic_range_m, m.doppler_hz, power.shape, range_cell_m, cpi_s)
        index = COOPERATIVE_INDEX if m.kind == COOPERATIVE else RADAR_ONLY_INDEX
        _stamp(img, x, y, _PLUS if m.kind == COOPERATIVE else _CROSS, index)
        if m.label:
            _label(img, x, y, short_label(m), index)
    n_range, n_doppler = power.shape
    axes = {
        "range_cell_m": round(range_cell_m, 3),
        "doppler_bin_hz": round(1.0 / cpi_s, 6),
        "n_range": n_range,
        "n_doppler": n_doppler,
        "zero_doppler_row": n_doppler - 1 - n_doppler // 2,
        "span_db": span_db,
        **(text or {}),
    }
    return encode_indexed_png(img, palette(), {"sensord": json.dumps(axes, separators=(",", ":"))})


# ---- drawing -------------------------------------------------------------------------
def _offsets(points: Iterable[tuple[int, int]]) -> np.ndarray:
    return np.array(sorted(set(points)), dtype=int)


_RING = _offsets(
    (dx, dy) for dx in range(-5, 6) for dy in range(-5, 6) if 12.25 <= dx * dx + dy * dy < 20.25
)
_PLUS = _offsets([(d, 0) for d in range(-5, 6)] + [(0, d) for d in range(-5, 6)])
_CROSS = _offsets([(d, d) for d in range(-4, 5)] + [(d, -d) for d in range(-4, 5)])


def _stamp(img: np.ndarray, x: int, y: int, offsets: np.ndarray, index: int) -> None:
    xs, ys = offsets[:, 0] + x, offsets[:, 1] + y
    keep = (xs >= 0) & (xs < img.shape[1]) & (ys >= 0) & (ys < img.shape[0])
    img[ys[keep], xs[keep]] = index


# 3 x 5 glyphs: five rows of three, "#" lit
_GLYPHS = {
    "0": "###|# #|# #|# #|###", "1": " # |## | # | # |###", "2": "###|  #|###|#  |###",
    "3": "###|  #| ##|  #|###", "4": "# #|# #|###|  #|  #", "5": "###|#  |###|  #|###",
    "6": "###|#  |###|# #|###", "7": "###|  #|  #| # | # ", "8": "###|# #|###|# #|###",
    "9": "###|# #|###|  #|###", "A": " # |# #|###|# #|# #", "B": "## |# #|## |# #|## ",
    "C": " ##|#  |#  |#  | ##", "D": "## |# #|# #|# #|## ", "E": "###|#  |## |#  |###",
    "F": "###|#  |## |#  |#  ", "G": " ##|#  |# #|# #| ##", "H": "# #|# #|###|# #|# #",
    "I": "###| # | # | # |###", "J": "  #|  #|  #|# #| # ", "K": "# #|# #|## |# #|# #",
    "L": "#  |#  |#  |#  |###", "M": "# #|###|###|# #|# #", "N": "## |# #|# #|# #|# #",
    "O": " # |# #|# #|# #| # ", "P": "## |# #|## |#  |#  ", "Q": " # |# #|# #|## | ##",
    "R": "## |# #|## |# #|# #", "S": " ##|#  | # |  #|## ", "T": "###| # | # | # | # ",
    "U": "# #|# #|# #|# #|###", "V": "# #|# #|# #|# #| # ", "W": "# #|# #|###|###|# #",
    "X": "# #|# #| # |# #|# #", "Y": "# #|# #| # | # | # ", "Z": "###|  #| # |#  |###",
    "-": "   |   |###|   |   ", ":": "   | # |   | # |   ", ".": "   |   |   |   | # ",
    "_": "   |   |   |   |###", "/": "  #|  #| # |#  |#  ", " ": "   |   |   |   |   ",
}  # fmt: skip
GLYPH_W, GLYPH_H = 3, 5


def glyph(ch: str) -> np.ndarray:
    """The (5, 3) bool bitmap of a character; one the font lacks is drawn as "-"."""
    rows = _GLYPHS.get(ch.upper(), _GLYPHS["-"]).split("|")
    return np.array([[c == "#" for c in row] for row in rows], dtype=bool)


def _label(img: np.ndarray, x: int, y: int, text: str, index: int) -> None:
    """Text up and to the right of (x, y), or to the left where the map ends."""
    width = len(text) * (GLYPH_W + 1) - 1
    left = x + 7 if x + 7 + width <= img.shape[1] else x - 7 - width
    top = y - 7 - GLYPH_H + 1 if y - 7 - GLYPH_H + 1 >= 0 else y + 7
    for i, ch in enumerate(text):
        ys, xs = np.nonzero(glyph(ch))
        xs, ys = xs + left + i * (GLYPH_W + 1), ys + top
        keep = (xs >= 0) & (xs < img.shape[1]) & (ys >= 0) & (ys < img.shape[0])
        img[ys[keep], xs[keep]] = index


# ---- PNG -----------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_indexed_png(
    img: np.ndarray, colours: np.ndarray, text: dict[str, str] | None = None, level: int = 6
) -> bytes:
    """An 8-bit indexed PNG (colour type 3, filter type 0 on every row) of ``img``
    (rows x columns of palette indices) with ``colours`` (n, 3) uint8 as its palette."""
    if img.dtype != np.uint8 or img.ndim != 2:
        raise ValueError("an indexed picture is a 2-D uint8 array")
    if not 0 < len(colours) <= 256:
        raise ValueError("a PNG palette holds 1 to 256 colours")
    height, width = img.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # the leading 0 is the filter type
    rows[:, 1:] = img
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    chunks = [_chunk(b"IHDR", header), _chunk(b"PLTE", np.asarray(colours, np.uint8).tobytes())]
    for key, value in (text or {}).items():
        chunks.append(_chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")))
    chunks.append(_chunk(b"IDAT", zlib.compress(rows.tobytes(), level)))
    chunks.append(_chunk(b"IEND", b""))
    return PNG_SIGNATURE + b"".join(chunks)


def png_text(png: bytes) -> dict[str, str]:
    """The tEXt chunks of a PNG (``{"sensord": <axes JSON>}`` for a map)."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    out, pos = {}, len(PNG_SIGNATURE)
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"tEXt":
            key, _, value = data.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        pos += 12 + length
    return out
