"""Which replies each aircraft transmits, and when: the simulator's frame plan.

Rates follow DO-260B extended squitter and typical SSR: airborne position and velocity
about twice a second each (jittered, position alternating even/odd CPR), identification
every 5 s, acquisition squitters (DF11) about once a second, and DF4/DF5 replies in
short bursts whenever a rotating radar's beam sweeps the aircraft. Aircraft on the ground
send surface positions (TC 7; twice a second when moving, every 5 s when stopped) instead
of airborne position and velocity, with CA = 4 and flight status 1. There is no wind:
aircraft that send airspeed/heading (TC 19 subtype 3) report their ground speed and
track as true airspeed and heading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sensord.sim import encode
from sensord.sim.scenario import Aircraft, Scenario


@dataclass(frozen=True)
class PlannedFrame:
    """One reply to transmit: its bytes, time of the preamble, sender, and fault flag."""

    t_s: float
    msg: bytes
    icao: int
    bad_position: bool = False


def _times(rng: np.random.Generator, duration_s: float, period_s: float, jitter_s: float):
    t = float(rng.uniform(0, period_s))
    while t < duration_s:
        yield t
        t += period_s + float(rng.uniform(-jitter_s, jitter_s))


def _position_frames(ac: Aircraft, rng, duration_s: float) -> list[PlannedFrame]:
    out = []
    faults = sorted(ac.faults, key=lambda f: f.t_s)
    odd = int(rng.integers(0, 2))
    period_s = 5.0 if ac.on_ground and ac.gs_kt == 0 else 0.5  # stationary: low rate
    for t in _times(rng, duration_s, period_s, 0.1):
        st = ac.state_at(t)
        lat, lon, bad = st.lat_deg, st.lon_deg, False
        if faults and t >= faults[0].t_s:
            fault = faults.pop(0)
            assert ac.site is not None
            e, n = st.enu_m[0] + fault.east_m, st.enu_m[1] + fault.north_m
            lat, lon, _ = ac.site.to_geodetic(np.array([e, n, st.enu_m[2]]))
            bad = True
        if ac.gnss_sigma_m > 0 and not bad:
            assert ac.site is not None
            e, n = st.enu_m[:2] + rng.normal(0.0, ac.gnss_sigma_m, 2)
            lat, lon, _ = ac.site.to_geodetic(np.array([e, n, st.enu_m[2]]))
        if ac.on_ground:
            msg = encode.surface_position(
                ac.icao, float(lat), float(lon), st.gs_kt, st.track_deg, odd
            )
        else:
            msg = encode.airborne_position(
                ac.icao, float(lat), float(lon), st.alt_baro_ft, odd, ac.position_typecode
            )
        out.append(PlannedFrame(t, msg, ac.icao, bad))
        odd ^= 1
    return out


def _velocity_frames(ac: Aircraft, rng, duration_s: float) -> list[PlannedFrame]:
    out: list[PlannedFrame] = []
    if ac.on_ground:  # the surface position carries movement and track
        return out
    for t in _times(rng, duration_s, 0.5, 0.1):
        st = ac.state_at(t)
        if ac.sends_airspeed:
            msg = encode.airspeed(ac.icao, st.gs_kt, st.track_deg, st.vrate_fpm)
        else:
            msg = encode.velocity(ac.icao, st.gs_kt, st.track_deg, st.vrate_fpm)
        out.append(PlannedFrame(t, msg, ac.icao))
    return out


def _radar_frames(ac: Aircraft, rng, duration_s: float, radars) -> list[PlannedFrame]:
    out = []
    for period_s, phase in radars:
        bearing = math.atan2(ac.east_m, ac.north_m) % (2 * math.pi)
        t = (phase + bearing / (2 * math.pi)) * period_s % period_s
        while t < duration_s:
            for k in range(int(rng.integers(2, 5))):
                tk = t + 0.004 * k + float(rng.uniform(0, 0.002))
                st = ac.state_at(tk)
                fs = 1 if ac.on_ground else 0
                msg = (
                    encode.df4(ac.icao, st.alt_baro_ft, fs)
                    if k % 2 == 0
                    else encode.df5(ac.icao, ac.squawk, fs)
                )
                out.append(PlannedFrame(tk, msg, ac.icao))
            t += period_s
    return out


def plan_frames(
    scenario: Scenario, duration_s: float, rng: np.random.Generator
) -> list[PlannedFrame]:
    """Every reply of every aircraft over the duration, in time order."""
    radars = [(float(rng.uniform(4, 12)), float(rng.random())) for _ in range(2)]
    frames: list[PlannedFrame] = []
    for ac in scenario.aircraft:
        ca = 4 if ac.on_ground else 5
        if ac.adsb:
            frames += _position_frames(ac, rng, duration_s)
            frames += _velocity_frames(ac, rng, duration_s)
            ident = encode.identification(ac.icao, ac.callsign, ac.category, ca)
            frames += [PlannedFrame(t, ident, ac.icao) for t in _times(rng, duration_s, 5.0, 0.2)]
        all_call = encode.df11(ac.icao, ca)
        frames += [PlannedFrame(t, all_call, ac.icao) for t in _times(rng, duration_s, 1.0, 0.1)]
        frames += _radar_frames(ac, rng, duration_s, radars)
    frames.sort(key=lambda f: f.t_s)
    return frames


def range_m(ac: Aircraft, t_s: float) -> float:
    """Slant range from the site to the aircraft at t_s."""
    return float(np.linalg.norm(ac.state_at(t_s).enu_m))
