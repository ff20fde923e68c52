"""sensord's CPR position logic: which decode to trust for each position message.

Per aircraft the resolver keeps the latest even and odd message. A position is resolved
in this order:
1. locally against a reference: the tracker's prediction (the ``reference`` callable)
   or the aircraft's own last resolved position (within ``LOCAL_REF_MAX_AGE_S``);
2. globally from an even/odd pair whose messages are within the standard's window on
   the sample clock (10 s airborne; surface 25 s, or 50 s when the ground speed is known
   to be at most 25 kt), whose halves agree (the older half, decoded locally against the
   result, lies within ``MAX_SPEED_MPS`` times their separation), checked against the
   receiver range;
3. locally against the receiver site, only when the receiver cannot see beyond half a
   zone (``max_range_m`` at most 180 NM airborne, 45 NM surface): a local decode always
   lands within half a zone of its reference, so an aircraft farther away would alias.
A decode that lands beyond ``max_range_m`` of the receiver is rejected and counted.
A frame whose bits were corrected (``corrected``) may be a wrong message with a wrong
address: it neither starts nor completes an even/odd pair and is not decoded against
the site; it is only resolved against a reference the aircraft already has (its track's
prediction or its own last position), else counted as ``corrected-no-reference``.
Kinematic plausibility (jumps, spoofing) is the tracker's gate, not this.

Time-compressed recordings (quiet stretches cut out) put pairs that were a minute apart
in flight next to each other: step 1 and 3 still resolve them, and a global decode
that straddles a zone boundary returns no solution instead of a wrong one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sensord import cpr
from sensord.geo import NM_M, Site, great_circle_m

AIRBORNE_PAIR_WINDOW_S = 10.0
SURFACE_PAIR_WINDOW_S = 25.0
SURFACE_SLOW_PAIR_WINDOW_S = 50.0
SURFACE_SLOW_MAX_KT = 25.0
LOCAL_REF_MAX_AGE_S = 600.0
MAX_SPEED_MPS = 600.0  # fastest plausible aircraft between the halves of a pair
PAIR_SLACK_M = 1000.0  # CPR quantisation and timing of the halves, with margin
HALF_ZONE_AIRBORNE_M = 180 * NM_M
HALF_ZONE_SURFACE_M = 45 * NM_M

Reference = Callable[[int, float], "tuple[float, float] | None"]


def pair_window_s(surface: bool, ground_speed_kt: float | None = None) -> float:
    """Longest even/odd separation (sample clock) a global decode accepts."""
    if not surface:
        return AIRBORNE_PAIR_WINDOW_S
    if ground_speed_kt is not None and ground_speed_kt <= SURFACE_SLOW_MAX_KT:
        return SURFACE_SLOW_PAIR_WINDOW_S
    return SURFACE_PAIR_WINDOW_S


@dataclass
class _CprHalf:
    lat_cpr: int
    lon_cpr: int
    t_s: float


@dataclass
class _AircraftCpr:
    halves: dict[int, _CprHalf] = field(default_factory=dict)
    last_pos: tuple[float, float, float] | None = None  # lat, lon, t_s


@dataclass
class PositionStats:
    """How positions were resolved, and why some were not."""

    local_track: int = 0
    local_self: int = 0
    global_pair: int = 0
    local_site: int = 0
    unresolved: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


class PositionResolver:
    """Turns CPR messages into WGS84 positions, per aircraft, on the sample clock."""

    def __init__(self, site: Site, max_range_m: float = 500e3, reference: Reference | None = None):
        self.site = site
        self.max_range_m = max_range_m
        self.reference = reference
        self.stats = PositionStats()
        self._aircraft: dict[int, _AircraftCpr] = {}

    def resolve(
        self,
        icao: int,
        t_s: float,
        odd: int,
        lat_cpr: int,
        lon_cpr: int,
        surface: bool = False,
        ground_speed_kt: float | None = None,
        corrected: bool = False,
    ) -> tuple[float, float] | None:
        """WGS84 (lat, lon) of this message, or None (unresolved or rejected, counted).

        ``ground_speed_kt`` (surface messages) selects the pair window; ``corrected``
        marks a frame whose bits the demodulator repaired (see the module docstring).
        """
        ac = self._aircraft.setdefault(icao, _AircraftCpr())
        half_zone = HALF_ZONE_SURFACE_M if surface else HALF_ZONE_AIRBORNE_M
        pos = self._local_reference(icao, ac, t_s, odd, lat_cpr, lon_cpr, surface, half_zone)
        if corrected:
            if pos is None:
                self.stats.reject("corrected-no-reference")
                return None
        else:
            ac.halves[odd] = _CprHalf(lat_cpr, lon_cpr, t_s)
            if pos is None:
                pos = self._global(ac, t_s, odd, surface, ground_speed_kt)
            if pos is None:
                pos = self._local_site(odd, lat_cpr, lon_cpr, surface, half_zone)
        if pos is None:
            return None
        if great_circle_m(self.site.lat_deg, self.site.lon_deg, *pos) > self.max_range_m:
            self.stats.reject("beyond-max-range")
            return None
        ac.last_pos = (pos[0], pos[1], t_s)
        return pos

    def last_position(self, icao: int) -> tuple[float, float] | None:
        """The aircraft's last resolved (lat, lon), if any."""
        ac = self._aircraft.get(icao)
        return ac.last_pos[:2] if ac and ac.last_pos else None

    def _local_reference(self, icao, ac, t_s, odd, lat_cpr, lon_cpr, surface, half_zone):
        ref = self.reference(icao, t_s) if self.reference else None
        kind = "local_track"
        if ref is None and ac.last_pos and t_s - ac.last_pos[2] <= LOCAL_REF_MAX_AGE_S:
            ref, kind = ac.last_pos[:2], "local_self"
        if ref is None:
            return None
        pos = cpr.decode_local(lat_cpr, lon_cpr, odd, ref[0], ref[1], surface)
        if great_circle_m(ref[0], ref[1], *pos) > half_zone:
            self.stats.reject("local-beyond-half-zone")
            return None
        setattr(self.stats, kind, getattr(self.stats, kind) + 1)
        return pos

    def _global(self, ac, t_s, odd, surface, ground_speed_kt):
        other = ac.halves.get(1 - odd)
        window = pair_window_s(surface, ground_speed_kt)
        if other is None or abs(t_s - other.t_s) > window:
            return None
        even, oddh = (ac.halves[0], ac.halves[1])
        pos = cpr.decode_global(
            even.lat_cpr,
            even.lon_cpr,
            oddh.lat_cpr,
            oddh.lon_cpr,
            latest_odd=odd,
            surface=surface,
            ref_lat_deg=self.site.lat_deg,
            ref_lon_deg=self.site.lon_deg,
        )
        if pos is None:
            self.stats.reject("pair-straddles-zones")
            return None
        # both halves must describe one flight: the other half, decoded locally against
        # the result, lies within what an aircraft covers between them (a pair from a
        # time-compressed recording, a minute apart in flight, decodes to a wrong zone)
        other_pos = cpr.decode_local(other.lat_cpr, other.lon_cpr, 1 - odd, pos[0], pos[1], surface)
        reach_m = MAX_SPEED_MPS * abs(t_s - other.t_s) + PAIR_SLACK_M
        if great_circle_m(*pos, *other_pos) > reach_m:
            self.stats.reject("pair-inconsistent")
            return None
        self.stats.global_pair += 1
        return pos

    def _local_site(self, odd, lat_cpr, lon_cpr, surface, half_zone):
        if self.max_range_m > half_zone:
            self.stats.unresolved += 1
            return None
        pos = cpr.decode_local(lat_cpr, lon_cpr, odd, self.site.lat_deg, self.site.lon_deg, surface)
        self.stats.local_site += 1
        return pos
