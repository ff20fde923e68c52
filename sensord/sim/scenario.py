"""Scenarios: aircraft with analytic trajectories around a receiver site, the simulator's truth.

A trajectory is a start state and a list of legs (constant turn rate and vertical rate for
a duration), flown in the site's local horizontal plane; latitude and longitude come from
projecting that plane onto WGS84 (``Site.to_geodetic`` of the point at zero height), so
the truth is exact and cheap to evaluate at any instant of the sample clock.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sensord.geo import FT_M, KT_MPS, Site, rotation_ecef_to_enu


@dataclass(frozen=True)
class Leg:
    """A piece of trajectory: constant turn rate (deg/s, + = right) and vertical rate."""

    duration_s: float
    turn_rate_dps: float = 0.0
    vrate_fpm: float = 0.0


@dataclass(frozen=True)
class PositionFault:
    """From ``t_s`` on, the next position message is sent offset by (east, north) metres."""

    t_s: float
    east_m: float
    north_m: float


@dataclass(frozen=True)
class State:
    """The truth of one aircraft at one instant."""

    t_s: float
    lat_deg: float
    lon_deg: float
    alt_baro_ft: float
    alt_geom_ft: float
    gs_kt: float
    track_deg: float
    vrate_fpm: float
    enu_m: np.ndarray
    vel_enu_mps: np.ndarray


@dataclass
class Aircraft:
    """One simulated aircraft: identity, start state (east/north of the site), legs, faults."""

    icao: int
    callsign: str
    squawk: str
    east_m: float
    north_m: float
    alt_ft: float
    gs_kt: float
    track_deg: float
    category: str = "A3"
    legs: list[Leg] = field(default_factory=list)
    faults: list[PositionFault] = field(default_factory=list)
    sends_airspeed: bool = False  # velocity as airspeed/heading (TC 19 subtype 3)
    on_ground: bool = False  # sends surface positions (TC 7) instead of airborne ones
    position_typecode: int = 11  # airborne position TC: its NUCp is what receivers assume
    gnss_sigma_m: float = 0.0  # white GNSS error per axis on the positions it sends
    adsb: bool = True  # False: ADS-B off, only Mode S replies (DF11, DF4/5, DF20/21)
    site: Site | None = None

    def __post_init__(self) -> None:
        """Reject what no transponder could send (checked here, not mid-recording)."""
        if not 0 <= self.icao < 1 << 24:
            raise ValueError(f"icao {self.icao:#x} is not a 24-bit address")
        if len(self.squawk) != 4 or any(c not in "01234567" for c in self.squawk):
            raise ValueError(f"squawk must be 4 octal digits, got {self.squawk!r}")
        if len(self.callsign) > 8 or any(
            c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 " for c in self.callsign.upper()
        ):
            raise ValueError(f"callsign must be up to 8 of A-Z, 0-9, space, got {self.callsign!r}")
        if (
            len(self.category) != 2
            or self.category[0] not in "ABCD"
            or self.category[1] not in "01234567"
        ):
            raise ValueError(f"category must be A0..D7, got {self.category!r}")
        if not 0 <= self.gs_kt < 1023 or not -1000 <= self.alt_ft <= 50000:
            raise ValueError("gs_kt must be 0..1022 and alt_ft -1000..50000")

    @classmethod
    def at(cls, site: Site, lat_deg: float, lon_deg: float, alt_ft: float, **fields) -> Aircraft:
        """An aircraft whose trajectory starts at a WGS84 position (other fields by keyword).

        The start east/north is found so that the site-plane projection lands on the
        requested latitude/longitude (a few fixed-point steps; well under 1 mm).
        """
        target = site.to_enu(lat_deg, lon_deg, 0.0)
        e, n = float(target[0]), float(target[1])
        for _ in range(4):
            lat, lon, _ = site.to_geodetic(np.array([e, n, 0.0]))
            err = target - site.to_enu(lat, lon, 0.0)
            e, n = e + float(err[0]), n + float(err[1])
        return cls(east_m=e, north_m=n, alt_ft=alt_ft, site=site, **fields)

    def _kinematics(self, t_s: float) -> tuple[float, float, float, float, float]:
        """(east_m, north_m, alt_ft, track_deg, vrate_fpm) at t_s from the start.

        Before the start (t_s < 0) the aircraft flew straight at the first leg's vertical
        rate, so derivatives at t_s = 0 are two-sided.
        """
        e, n, alt, trk = self.east_m, self.north_m, self.alt_ft, self.track_deg
        v = self.gs_kt * KT_MPS
        if t_s < 0:
            vrate = self.legs[0].vrate_fpm if self.legs else 0.0
            e, n, trk = _fly(e, n, trk, v, 0.0, t_s)
            return e, n, max(alt + vrate * t_s / 60.0, 0.0), trk, vrate
        remaining = t_s
        vrate = 0.0
        for leg in self.legs:
            dt = min(remaining, leg.duration_s)
            e, n, trk = _fly(e, n, trk, v, leg.turn_rate_dps, dt)
            alt = max(alt + leg.vrate_fpm * dt / 60.0, 0.0)
            vrate = leg.vrate_fpm if alt > 0 else 0.0
            remaining -= dt
            if remaining <= 0:
                return e, n, alt, trk, vrate
        e, n, trk = _fly(e, n, trk, v, 0.0, remaining)
        return e, n, alt, trk, 0.0

    def _position_at(self, t_s: float) -> tuple[float, float, float, float]:
        """(lat_deg, lon_deg, alt_ft, vrate_fpm) at t_s."""
        assert self.site is not None
        e, n, alt_ft, _, vrate = self._kinematics(t_s)
        lat, lon, _ = self.site.to_geodetic(np.array([e, n, 0.0]))
        return float(lat), float(lon), alt_ft, vrate

    def state_at(self, t_s: float) -> State:
        """Truth at t_s on the sample clock (t_s = 0 is the recording's first sample).

        ``enu_m``/``vel_enu_mps`` are in the site's ENU frame; ``gs_kt``/``track_deg``
        are what the aircraft itself reports: relative to its own local north, which at
        long range differs from the site's north by the meridians' convergence.
        """
        if self.site is None:
            raise ValueError("aircraft has no site: add it to a Scenario")
        lat, lon, alt_ft, vrate = self._position_at(t_s)
        enu = self.site.to_enu(lat, lon, alt_ft * FT_M)
        dt = 0.05
        before, after = self._position_at(t_s - dt), self._position_at(t_s + dt)
        vel = (
            self.site.to_enu(after[0], after[1], after[2] * FT_M)
            - self.site.to_enu(before[0], before[1], before[2] * FT_M)
        ) / (2 * dt)
        local = rotation_ecef_to_enu(lat, lon) @ (self.site.rot_ecef_to_enu.T @ vel)
        gs_kt = float(math.hypot(local[0], local[1]) / KT_MPS)
        track = math.degrees(math.atan2(local[0], local[1])) % 360.0
        return State(t_s, lat, lon, alt_ft, alt_ft, gs_kt, track, vrate, enu, vel)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("site")
        return d


def _fly(e: float, n: float, trk_deg: float, v_mps: float, turn_dps: float, dt: float):
    psi0 = math.radians(trk_deg)
    if abs(turn_dps) < 1e-9:
        return e + v_mps * math.sin(psi0) * dt, n + v_mps * math.cos(psi0) * dt, trk_deg
    w = math.radians(turn_dps)
    psi = psi0 + w * dt
    e += v_mps / w * (math.cos(psi0) - math.cos(psi))
    n += v_mps / w * (math.sin(psi) - math.sin(psi0))
    return e, n, trk_deg + turn_dps * dt


@dataclass
class Scenario:
    """A receiver site and the aircraft around it."""

    site: Site
    aircraft: list[Aircraft]

    def __post_init__(self) -> None:
        for ac in self.aircraft:
            ac.site = self.site

    def to_json(self) -> str:
        return json.dumps(
            {"site": asdict(self.site), "aircraft": [a.to_dict() for a in self.aircraft]},
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Scenario:
        doc = json.loads(text)
        aircraft = []
        for a in doc["aircraft"]:
            a = dict(a)
            a["legs"] = [Leg(**leg) for leg in a.get("legs", [])]
            a["faults"] = [PositionFault(**f) for f in a.get("faults", [])]
            aircraft.append(Aircraft(**a))
        return cls(Site(**doc["site"]), aircraft)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def random_scenario(
    n_aircraft: int = 20,
    site: Site | None = None,
    max_range_m: float = 350e3,
    seed: int = 1,
    min_range_m: float = 5e3,
    maneuvering_fraction: float = 0.4,
    n_ground: int = 0,
    n_faulty: int = 0,
    adsb_off_fraction: float = 0.0,
) -> Scenario:
    """Aircraft at random ranges and bearings, high enough to be above the radio horizon.

    ``n_ground`` more aircraft taxi (or stand) on the ground within 15 km of the site.
    ``n_faulty`` of the airborne aircraft send a wrong first position and, a few seconds
    later, one 50 km off (``PositionFault``). ``adsb_off_fraction`` of the airborne
    aircraft have ADS-B off (Mode S replies only, for multilateration). All three are
    drawn from their own generators, so the other aircraft do not change.
    """
    rng = np.random.default_rng(seed)
    site = site or Site(52.0, 4.5, 10.0)
    icaos = rng.choice(np.arange(0x100000, 0xFFFFFF), size=n_aircraft, replace=False)
    aircraft = []
    for i in range(n_aircraft):
        range_m = min_range_m + (max_range_m - min_range_m) * math.sqrt(rng.random())
        bearing = rng.uniform(0, 2 * math.pi)
        horizon_alt_ft = ((range_m / 1000) / 4.12) ** 2 / FT_M * 1.2
        alt_ft = float(round(max(rng.uniform(2000, 41000), horizon_alt_ft + 1000, 1500) / 25) * 25)
        legs: list[Leg] = []
        if rng.random() < maneuvering_fraction:
            turn_dps = float(rng.choice([-3.0, -1.5, 1.5, 3.0]))
            vrate_fpm = float(rng.choice([-1500.0, 0.0, 1500.0]))
            legs = [
                Leg(float(rng.uniform(5, 20))),
                Leg(float(rng.uniform(10, 30)), turn_dps, vrate_fpm),
            ]
        aircraft.append(
            Aircraft(
                icao=int(icaos[i]),
                callsign=f"{''.join(rng.choice(list('ABCDEFGHIJKLMNOPQRSTUVWXYZ'), 3))}{i + 100}",
                squawk="".join(str(d) for d in rng.integers(0, 8, 4)),
                east_m=range_m * math.sin(bearing),
                north_m=range_m * math.cos(bearing),
                alt_ft=alt_ft,
                gs_kt=float(rng.uniform(150, 480)),
                track_deg=float(rng.uniform(0, 360)),
                legs=legs,
                sends_airspeed=bool(rng.random() < 0.1),
            )
        )
    _add_faults(aircraft[:n_aircraft], n_faulty, np.random.default_rng([seed, 2]))
    adsb_off = np.random.default_rng([seed, 3]).random(n_aircraft) < adsb_off_fraction
    for ac, off in zip(aircraft, adsb_off, strict=True):
        ac.adsb = not off
    aircraft += _ground_aircraft(
        n_ground, np.random.default_rng([seed, 1]), {a.icao for a in aircraft}
    )
    return Scenario(site, aircraft)


def _add_faults(aircraft: list[Aircraft], n: int, rng: np.random.Generator) -> None:
    """A wrong first fix (20-50 km off) and a later 50 km jump for n of the aircraft."""
    for i in rng.choice(len(aircraft), size=min(n, len(aircraft)), replace=False):
        first_off_m, first_dir = float(rng.uniform(20e3, 50e3)), float(rng.uniform(0, 2 * math.pi))
        jump_dir = float(rng.uniform(0, 2 * math.pi))
        aircraft[i].faults = [
            PositionFault(
                0.0, first_off_m * math.sin(first_dir), first_off_m * math.cos(first_dir)
            ),
            PositionFault(
                float(rng.uniform(3, 8)), 50e3 * math.sin(jump_dir), 50e3 * math.cos(jump_dir)
            ),
        ]


def _ground_aircraft(n: int, rng: np.random.Generator, taken: set[int]) -> list[Aircraft]:
    """Aircraft on the ground near the site: a third standing, the rest taxiing with a turn."""
    out = []
    for i in range(n):
        icao = int(rng.integers(0x100000, 0xFFFFFF))
        while icao in taken:
            icao = int(rng.integers(0x100000, 0xFFFFFF))
        taken.add(icao)
        range_m, bearing = float(rng.uniform(1e3, 15e3)), float(rng.uniform(0, 2 * math.pi))
        moving = rng.random() < 2 / 3
        legs = [
            Leg(float(rng.uniform(3, 10))),
            Leg(float(rng.uniform(5, 15)), float(rng.choice([-10.0, 10.0]))),
        ]
        out.append(
            Aircraft(
                icao=icao,
                callsign=f"GND{i + 10}",
                squawk="".join(str(d) for d in rng.integers(0, 8, 4)),
                east_m=range_m * math.sin(bearing),
                north_m=range_m * math.cos(bearing),
                alt_ft=0.0,
                gs_kt=float(rng.uniform(5, 25)) if moving else 0.0,
                track_deg=float(rng.uniform(0, 360)),
                legs=legs if moving else [],
                on_ground=True,
            )
        )
    return out


def surveyed_site(site: Site, error_m: float, rng: np.random.Generator) -> Site:
    """The site as a user surveyed it: ``error_m`` off horizontally, in a random direction."""
    bearing = rng.uniform(0, 2 * math.pi)
    enu = np.array([error_m * math.sin(bearing), error_m * math.cos(bearing), 0.0])
    lat, lon, h = site.to_geodetic(enu)
    return Site(float(lat), float(lon), float(h))
