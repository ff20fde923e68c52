"""Mode S reply encoder: the bytes an aircraft's transponder sends (DF4/5/11/17).

Field layouts follow ICAO Annex 10 Vol IV and DO-260B. Each function returns the whole
reply with its parity: plain CRC for DF11/17, CRC XOR address for DF4/5.
"""

from __future__ import annotations

import math

from sensord import cpr
from sensord._crc import crc24

CALLSIGN_CHARS = "#ABCDEFGHIJKLMNOPQRSTUVWXYZ##### ###############0123456789######"


def _bits(fields: list[tuple[int, int]]) -> int:
    value = 0
    for v, width in fields:
        if not 0 <= v < (1 << width):
            raise ValueError(f"value {v} does not fit in {width} bits")
        value = (value << width) | v
    return value


def _reply(data: int, nbits: int, address: int | None = None) -> bytes:
    """Append the 24-bit parity (XOR address for address/parity formats)."""
    nbytes = nbits // 8
    body = data.to_bytes(nbytes - 3, "big")
    parity = crc24(body + b"\0\0\0", nbits)
    if address is not None:
        parity ^= address
    return body + parity.to_bytes(3, "big")


def alt_code_12(alt_ft: float) -> int:
    """12-bit altitude of an airborne position (Q=1, 25 ft steps, -1000 to 50175 ft)."""
    n = round((alt_ft + 1000) / 25)
    n = min(max(n, 0), (1 << 11) - 1)
    return ((n >> 4) << 5) | (1 << 4) | (n & 0xF)


def alt_code_13(alt_ft: float) -> int:
    """13-bit altitude code of DF4/20 (M=0, Q=1, 25 ft steps)."""
    n = round((alt_ft + 1000) / 25)
    n = min(max(n, 0), (1 << 11) - 1)
    return ((n >> 5) << 7) | (((n >> 4) & 1) << 5) | (1 << 4) | (n & 0xF)


def id_code_13(squawk: str) -> int:
    """13-bit identity field of DF5/21 (Gillham order C1 A1 C2 A2 C4 A4 X B1 D1 B2 D2 B4 D4)."""
    if len(squawk) != 4 or any(c not in "01234567" for c in squawk):
        raise ValueError(f"squawk must be 4 octal digits, got {squawk!r}")
    a, b, c, d = (int(ch) for ch in squawk)

    def bit(v: int, k: int) -> int:
        return (v >> k) & 1

    order = [
        bit(c, 0),
        bit(a, 0),
        bit(c, 1),
        bit(a, 1),
        bit(c, 2),
        bit(a, 2),
        0,
        bit(b, 0),
        bit(d, 0),
        bit(b, 1),
        bit(d, 1),
        bit(b, 2),
        bit(d, 2),
    ]
    return _bits([(x, 1) for x in order])


def df11(icao: int, capability: int = 5) -> bytes:
    """All-call reply / acquisition squitter (interrogator id 0)."""
    return _reply(_bits([(11, 5), (capability, 3), (icao, 24)]), 56)


def df4(icao: int, alt_ft: float, flight_status: int = 0) -> bytes:
    """Surveillance altitude reply, address/parity."""
    fields = [(4, 5), (flight_status, 3), (0, 5), (0, 6), (alt_code_13(alt_ft), 13)]
    return _reply(_bits(fields), 56, icao)


def df5(icao: int, squawk: str, flight_status: int = 0) -> bytes:
    """Surveillance identity reply, address/parity."""
    fields = [(5, 5), (flight_status, 3), (0, 5), (0, 6), (id_code_13(squawk), 13)]
    return _reply(_bits(fields), 56, icao)


def _df17(icao: int, me: int, capability: int = 5) -> bytes:
    return _reply(_bits([(17, 5), (capability, 3), (icao, 24), (me, 56)]), 112)


def identification(icao: int, callsign: str, category: str = "A3", capability: int = 5) -> bytes:
    """DF17 TC 1-4: aircraft identification and category ("A0".."D7")."""
    tc = {"D": 1, "C": 2, "B": 3, "A": 4}[category[0]]
    name = callsign.upper().ljust(8)[:8]
    chars = [CALLSIGN_CHARS.index(ch) for ch in name]
    me = _bits([(tc, 5), (int(category[1]), 3)] + [(c, 6) for c in chars])
    return _df17(icao, me, capability)


def airborne_position(
    icao: int, lat_deg: float, lon_deg: float, alt_ft: float, odd: int, typecode: int = 11
) -> bytes:
    """DF17 TC 9-18: airborne position with barometric altitude (CPR even/odd)."""
    lat_cpr, lon_cpr = cpr.encode(lat_deg, lon_deg, odd)
    me = _bits(
        [
            (typecode, 5),
            (0, 2),
            (0, 1),
            (alt_code_12(alt_ft), 12),
            (0, 1),
            (odd, 1),
            (lat_cpr, 17),
            (lon_cpr, 17),
        ]
    )
    return _df17(icao, me)


# Surface movement: (first code, lower bound kt, step kt) of each quantisation band.
_MOVEMENT_BANDS = (
    (2, 0.125, 0.125),
    (9, 1.0, 0.25),
    (13, 2.0, 0.5),
    (39, 15.0, 1.0),
    (94, 70.0, 2.0),
    (109, 100.0, 5.0),
)


def movement_code(gs_kt: float) -> int:
    """7-bit surface movement: 1 stopped, 2-123 banded ground speed (truncated), 124 >= 175 kt."""
    if gs_kt < 0.125:
        return 1
    if gs_kt >= 175.0:
        return 124
    code, low_kt, step_kt = next(b for b in reversed(_MOVEMENT_BANDS) if gs_kt >= b[1])
    return code + math.floor((gs_kt - low_kt) / step_kt)


def surface_position(
    icao: int, lat_deg: float, lon_deg: float, gs_kt: float, track_deg: float, odd: int,
    typecode: int = 7,
) -> bytes:  # fmt: skip
    """DF17 TC 5-8: surface position (movement, ground track, surface CPR), CA = on ground."""
    lat_cpr, lon_cpr = cpr.encode(lat_deg, lon_deg, odd, surface=True)
    trk = round((track_deg % 360.0) * 128 / 360) % 128
    me = _bits(
        [
            (typecode, 5),
            (movement_code(gs_kt), 7),
            (1, 1),
            (trk, 7),
            (0, 1),
            (odd, 1),
            (lat_cpr, 17),
            (lon_cpr, 17),
        ]
    )
    return _df17(icao, me, capability=4)


def _vrate_fields(vrate_fpm: float) -> list[tuple[int, int]]:
    vr = min(round(abs(vrate_fpm) / 64) + 1, 511)
    return [(0, 1), (1 if vrate_fpm < 0 else 0, 1), (vr, 9), (0, 2), (0, 1), (0, 7)]


def velocity(icao: int, gs_kt: float, track_deg: float, vrate_fpm: float, nac_v: int = 2) -> bytes:
    """DF17 TC 19 subtype 1: ground speed (east/north components) and vertical rate."""
    trk = math.radians(track_deg)
    v_ew = gs_kt * math.sin(trk)
    v_ns = gs_kt * math.cos(trk)
    ew = min(round(abs(v_ew)) + 1, 1023)
    ns = min(round(abs(v_ns)) + 1, 1023)
    me = _bits(
        [
            (19, 5),
            (1, 3),
            (0, 1),
            (0, 1),
            (nac_v, 3),
            (1 if v_ew < 0 else 0, 1),
            (ew, 10),
            (1 if v_ns < 0 else 0, 1),
            (ns, 10),
            *_vrate_fields(vrate_fpm),
        ]
    )
    return _df17(icao, me)


def airspeed(
    icao: int, tas_kt: float, heading_deg: float, vrate_fpm: float, nac_v: int = 2
) -> bytes:
    """DF17 TC 19 subtype 3: true airspeed and magnetic heading (sent when no GNSS velocity)."""
    hdg = round((heading_deg % 360.0) * 1024 / 360) % 1024
    speed = min(round(tas_kt) + 1, 1023)
    me = _bits(
        [
            (19, 5),
            (3, 3),
            (0, 1),
            (0, 1),
            (nac_v, 3),
            (1, 1),
            (hdg, 10),
            (1, 1),
            (speed, 10),
            *_vrate_fields(vrate_fpm),
        ]
    )
    return _df17(icao, me)
