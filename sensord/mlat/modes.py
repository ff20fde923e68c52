"""The few Mode S fields MLAT reads straight from the bytes (no pyModeS on the hot path).

- altitude of DF0/4/16/20 (13-bit AC field) and of an airborne position (12-bit field),
  25 ft (Q = 1) coding only; Gillham-coded altitudes give None;
- an airborne position's CPR fields (TC 9-18, barometric altitude);
- ``AdsbPositions``: each aircraft's even/odd halves, resolved globally from a pair and
  then locally against its own last position; the result is a WGS84 position per message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensord import cpr
from sensord.geo import FT_M, great_circle_m

ALTITUDE_DFS = frozenset((0, 4, 16, 20))
MODES_ONLY_DFS = frozenset((0, 4, 5, 11, 16, 20, 21))
PAIR_WINDOW_S = 10.0
LOCAL_MAX_AGE_S = 60.0
MAX_JUMP_M = 600.0  # per second since the last position, plus CPR slack


def _alt_25ft(n: int) -> float:
    return n * 25.0 - 1000.0


def ac13_ft(ac: int) -> float | None:
    """Altitude (ft) of a 13-bit AC field (DF0/4/16/20): M = 0 and Q = 1 only."""
    if ac == 0 or ac & 0x40 or not ac & 0x10:
        return None
    return _alt_25ft(((ac >> 7) << 5) | (((ac >> 5) & 1) << 4) | (ac & 0xF))


def alt12_ft(code: int) -> float | None:
    """Altitude (ft) of an airborne position's 12-bit field: Q = 1 only."""
    if code == 0 or not code & 0x10:
        return None
    return _alt_25ft(((code >> 5) << 4) | (code & 0xF))


def reply_altitude_ft(msg: bytes) -> float | None:
    """The altitude a reply carries (DF0/4/16/20 AC field, DF17/18 TC 9-18), else None."""
    df = msg[0] >> 3
    if df in ALTITUDE_DFS:
        return ac13_ft(((msg[2] & 0x1F) << 8) | msg[3])
    if df in (17, 18) and len(msg) == 14 and 9 <= msg[4] >> 3 <= 18:
        return alt12_ft((msg[5] << 4) | (msg[6] >> 4))
    return None


def is_airborne_position(msg: np.ndarray) -> np.ndarray:
    """Rows (n, 14) that are DF17/18 airborne positions with barometric altitude (TC 9-18)."""
    df = msg[:, 0] >> 3
    tc = msg[:, 4] >> 3
    return ((df == 17) | (df == 18)) & (tc >= 9) & (tc <= 18)


@dataclass(frozen=True)
class CprFields:
    """The position fields of one airborne position message."""

    alt_ft: float | None
    odd: int
    lat_cpr: int
    lon_cpr: int


def cpr_fields(msg: bytes) -> CprFields:
    """CPR fields of a DF17/18 TC 9-18 message (the caller has checked the type)."""
    return CprFields(
        alt12_ft((msg[5] << 4) | (msg[6] >> 4)),
        (msg[6] >> 2) & 1,
        ((msg[6] & 3) << 15) | (msg[7] << 7) | (msg[8] >> 1),
        ((msg[8] & 1) << 16) | (msg[9] << 8) | msg[10],
    )


@dataclass
class _Halves:
    even: tuple[int, int, float] | None = None
    odd: tuple[int, int, float] | None = None
    last: tuple[float, float, float] | None = None  # lat, lon, utc


@dataclass(frozen=True)
class AdsbFix:
    """An aircraft's own position from one message: WGS84, height = baro altitude (m)."""

    lat_deg: float
    lon_deg: float
    alt_m: float


class AdsbPositions:
    """Resolves airborne position messages per aircraft (global pair, then local)."""

    def __init__(self, center_lat_deg: float, center_lon_deg: float, max_range_m: float) -> None:
        self.center = (center_lat_deg, center_lon_deg)
        self.max_range_m = max_range_m
        self._ac: dict[int, _Halves] = {}
        self.rejected = 0

    def resolve(self, icao: int, msg: bytes, utc: float) -> AdsbFix | None:
        """The message's position, or None (no pair yet, no altitude, implausible)."""
        f = cpr_fields(msg)
        if f.alt_ft is None:
            return None
        st = self._ac.setdefault(icao, _Halves())
        half = (f.lat_cpr, f.lon_cpr, utc)
        if f.odd:
            st.odd = half
        else:
            st.even = half
        pos: tuple[float, float] | None = None
        if st.last is not None and utc - st.last[2] < LOCAL_MAX_AGE_S:
            pos = cpr.decode_local(f.lat_cpr, f.lon_cpr, f.odd, st.last[0], st.last[1])
            if great_circle_m(pos[0], pos[1], st.last[0], st.last[1]) > MAX_JUMP_M * (
                1.0 + abs(utc - st.last[2])
            ):
                pos = None
        if (
            pos is None
            and st.even is not None
            and st.odd is not None
            and abs(st.even[2] - st.odd[2]) < PAIR_WINDOW_S
        ):
            pos = cpr.decode_global(st.even[0], st.even[1], st.odd[0], st.odd[1], f.odd)
        if pos is None:
            return None
        if great_circle_m(pos[0], pos[1], *self.center) > self.max_range_m:
            self.rejected += 1
            return None
        st.last = (pos[0], pos[1], utc)
        return AdsbFix(pos[0], pos[1], f.alt_ft * FT_M)

    def forget_older_than(self, utc: float) -> None:
        """Drop aircraft not heard since ``utc``."""
        stale = [k for k, v in self._ac.items() if v.last is None or v.last[2] < utc]
        for k in stale:
            st = self._ac[k]
            newest = max((h[2] for h in (st.even, st.odd) if h is not None), default=-1e18)
            if newest < utc:
                del self._ac[k]
