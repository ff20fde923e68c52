"""Compact Position Reporting (ICAO Annex 10 / DO-260B), airborne and surface.

Encoding is used by the simulator; decoding (global from an even/odd pair, local
against a reference) by the detection stage. Latitudes and longitudes are WGS84
degrees; CPR fields are the 17-bit integers carried in the message.
"""

from __future__ import annotations

import math

CPR_BITS = 17
CPR_SCALE = float(1 << CPR_BITS)
_NZ = 15


def nl(lat_deg: float) -> int:
    """Number of longitude zones at a latitude (the NL function of the standard)."""
    a = abs(lat_deg)
    if a < 1e-9:
        return 59
    if abs(a - 87.0) < 1e-9:
        return 2
    if a > 87.0:
        return 1
    c = 1.0 - (1.0 - math.cos(math.pi / (2.0 * _NZ))) / math.cos(math.radians(a)) ** 2
    return math.floor(2.0 * math.pi / math.acos(c))


def _dlat(odd: int, surface: bool) -> float:
    return (90.0 if surface else 360.0) / (4 * _NZ - odd)


def _dlon(lat_deg: float, odd: int, surface: bool) -> float:
    return (90.0 if surface else 360.0) / max(nl(lat_deg) - odd, 1)


def encode(lat_deg: float, lon_deg: float, odd: int, surface: bool = False) -> tuple[int, int]:
    """Encode a position to the 17-bit (lat_cpr, lon_cpr) of an even (0) or odd (1) message."""
    # Surface zones are a quarter of airborne ones (90 instead of 360 degrees): the
    # standard's "19-bit encoding, low 17 bits transmitted" is exactly this.
    scale = CPR_SCALE
    dlat = _dlat(odd, surface)
    yz = math.floor(scale * (lat_deg % dlat) / dlat + 0.5)
    rlat = dlat * (yz / scale + math.floor(lat_deg / dlat))
    dlon = _dlon(rlat, odd, surface)
    xz = math.floor(scale * (lon_deg % dlon) / dlon + 0.5)
    return yz % (1 << CPR_BITS), xz % (1 << CPR_BITS)


def _mod(a: float, b: float) -> float:
    return a - b * math.floor(a / b)


def decode_global(
    lat_cpr_even: int,
    lon_cpr_even: int,
    lat_cpr_odd: int,
    lon_cpr_odd: int,
    latest_odd: int,
    surface: bool = False,
    ref_lat_deg: float | None = None,
    ref_lon_deg: float | None = None,
) -> tuple[float, float] | None:
    """Globally unambiguous position from an even and an odd message.

    ``latest_odd`` says which of the two is the newer (its position is returned).
    Surface positions are ambiguous by 90 degrees: ``ref_lat_deg/ref_lon_deg`` (the
    receiver) picks the quadrant and is required for them. Returns None when the two
    messages straddle a latitude-zone boundary (no valid solution).
    """
    full = 90.0 if surface else 360.0
    ye, xe = lat_cpr_even / CPR_SCALE, lon_cpr_even / CPR_SCALE
    yo, xo = lat_cpr_odd / CPR_SCALE, lon_cpr_odd / CPR_SCALE
    j = math.floor(59 * ye - 60 * yo + 0.5)
    lat_e = full / 60 * (_mod(j, 60) + ye)
    lat_o = full / 59 * (_mod(j, 59) + yo)
    if surface:
        if ref_lat_deg is None or ref_lon_deg is None:
            raise ValueError("surface CPR needs a reference position")
        lat_e = min((lat_e, lat_e - 90.0), key=lambda v: abs(v - ref_lat_deg))
        lat_o = min((lat_o, lat_o - 90.0), key=lambda v: abs(v - ref_lat_deg))
    else:
        lat_e = lat_e - 360.0 if lat_e >= 270.0 else lat_e
        lat_o = lat_o - 360.0 if lat_o >= 270.0 else lat_o
    if abs(lat_e) > 90.0 or abs(lat_o) > 90.0 or nl(lat_e) != nl(lat_o):
        return None
    lat = lat_o if latest_odd else lat_e
    x = xo if latest_odd else xe
    n_l = nl(lat)
    ni = max(n_l - latest_odd, 1)
    m = math.floor(xe * (n_l - 1) - xo * n_l + 0.5)
    lon = full / ni * (_mod(m, ni) + x)
    if surface:
        assert ref_lon_deg is not None
        cands = [_wrap_lon(lon + k * 90.0) for k in range(4)]
        lon = min(cands, key=lambda v: abs(_wrap_lon(v - ref_lon_deg)))
    else:
        lon = _wrap_lon(lon)
    return lat, lon


def decode_local(
    lat_cpr: int,
    lon_cpr: int,
    odd: int,
    ref_lat_deg: float,
    ref_lon_deg: float,
    surface: bool = False,
) -> tuple[float, float]:
    """Position from one message, resolved against a reference.

    The result is right when the reference is within half a zone of the truth:
    about 180 NM airborne and 45 NM on the surface. The caller checks plausibility.
    """
    y, x = lat_cpr / CPR_SCALE, lon_cpr / CPR_SCALE
    dlat = _dlat(odd, surface)
    j = math.floor(ref_lat_deg / dlat) + math.floor(0.5 + _mod(ref_lat_deg, dlat) / dlat - y)
    lat = dlat * (j + y)
    dlon = _dlon(lat, odd, surface)
    m = math.floor(ref_lon_deg / dlon) + math.floor(0.5 + _mod(ref_lon_deg, dlon) / dlon - x)
    return lat, _wrap_lon(dlon * (m + x))


def _wrap_lon(lon_deg: float) -> float:
    return (lon_deg + 180.0) % 360.0 - 180.0
