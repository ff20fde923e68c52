"""Tracks against simulator truth, through the whole chain (IQ -> demod -> decode -> tracker)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from sensord.chain import Chain
from sensord.decode import Detector
from sensord.geo import Site, great_circle_m
from sensord.sim import Aircraft, Leg, PositionFault, Scenario, random_scenario, simulate
from sensord.source.iqfile import IQFileSource
from sensord.tracker.metrics import gospa
from sensord.tracker.update import TrackStatus

SITE = Site(52.0, 4.5, 10.0)


def replay(res, snapshots=None, **chain_kwargs):
    """Replay in 1 s blocks; snapshots, if given, collects every track at each block's end."""
    chain = Chain(res.rate_hz, res.scenario.site, **chain_kwargs)
    updates, frames = [], []
    step = 2 * int(res.rate_hz)
    for k in range(0, len(res.iq), step):
        f = chain.demod.feed(res.iq[k : k + step], "cu8")
        frames.append(f)
        updates += chain.feed_frames(f)
        if snapshots is not None:
            t_s = (k + step) / 2 / res.rate_hz
            snapshots.append((t_s, chain.tracker.snapshot(t_s)))
    f = chain.demod.flush()
    frames.append(f)
    updates += chain.feed_frames(f) + chain.tracker.flush()
    return chain, updates, np.concatenate(frames)


@pytest.fixture(scope="module")
def busy():
    res = simulate(random_scenario(25, SITE, seed=21), 2.4e6, 30.0, seed=21)
    snapshots = []
    chain, updates, frames = replay(res, snapshots)
    return res, chain, updates, frames, snapshots


def _last_decoded_errors(res, frames, updates):
    """At each published update: error of the filter vs error of the last decoded position."""
    aircraft = {a.icao: a for a in res.scenario.aircraft}
    raw = [d for d in Detector(SITE).process(frames) if d.source == "adsb-pos"]
    last, i = {}, 0
    err_track, err_raw = [], []
    for u in updates:
        while i < len(raw) and raw[i].t_s <= u.t_s:
            last[raw[i].icao] = raw[i]
            i += 1
        if u.status != TrackStatus.CONFIRMED:
            continue
        icao = int(u.icao, 16)
        truth = aircraft[icao].state_at(u.t_s)
        if icao in last:
            err_track.append(great_circle_m(u.lat_deg, u.lon_deg, truth.lat_deg, truth.lon_deg))
            err_raw.append(float(np.linalg.norm(last[icao].z[:2] - truth.enu_m[:2])))
    return np.array(err_track), np.array(err_raw)


def test_published_position_beats_last_decoded_position(busy):
    res, _, updates, frames, _ = busy
    err_track, err_raw = _last_decoded_errors(res, frames, updates)
    print(
        f"mean error at publish time: tracker {err_track.mean():.1f} m, last decoded "
        f"{err_raw.mean():.1f} m (median {np.median(err_track):.1f} / {np.median(err_raw):.1f})"
    )
    assert len(err_track) > 500  # one update per track per 1 s block
    assert err_track.mean() <= 0.5 * err_raw.mean()


def test_no_identity_swaps_and_every_aircraft_tracked(busy):
    res, _chain, updates, _, _ = busy
    aircraft = {a.icao: a for a in res.scenario.aircraft}
    for u in updates:
        if u.status == TrackStatus.CONFIRMED:
            truth = aircraft[int(u.icao, 16)].state_at(u.t_s)
            assert great_circle_m(u.lat_deg, u.lon_deg, truth.lat_deg, truth.lon_deg) < 1000
            assert u.track_id == u.icao
    confirmed = {u.icao for u in updates if u.status == TrackStatus.CONFIRMED}
    heard = {f"{int(i):06X}" for i in res.truth["icao"][res.truth["snr_db"] > 15]}
    assert confirmed == heard


def test_gospa_per_scenario(busy):
    res, _, _, _, snapshots = busy
    values = []
    for t, snap in snapshots[5:]:  # after 5 s every aircraft has had time to confirm
        truth = np.array([a.state_at(t).enu_m for a in res.scenario.aircraft])
        est = np.array(
            [
                SITE.to_enu(u.lat_deg, u.lon_deg, u.alt_baro_ft * 0.3048)
                for u in snap
                if u.status == TrackStatus.CONFIRMED
            ]
        )
        values.append(gospa(truth, est, c_m=1000.0))
    print(f"GOSPA (c=1 km, p=2), 25 aircraft, 1 s steps: mean {np.mean(values):.0f} m")
    assert np.mean(values) < 1000.0  # about one miss at most, on average


def test_noise_only_gives_no_confirmed_track():
    res = simulate(Scenario(SITE, []), 2.4e6, 10.0, seed=2)
    chain, updates, _frames = replay(res)
    assert not any(u.status == TrackStatus.CONFIRMED for u in updates)
    assert chain.tracker.stats.tracks_created == 0


def test_bad_positions_never_pull_a_track_off_truth():
    aircraft = [
        Aircraft(
            0x3C6586,
            "DLH4AB",
            "1000",
            60e3,
            40e3,
            30000,
            420,
            90,
            faults=[PositionFault(0.0, 45e3, -20e3)],
        ),  # a wrong first fix
        Aircraft(
            0x4CA2D6,
            "RYR12",
            "2000",
            -80e3,
            20e3,
            35000,
            450,
            180,
            legs=[Leg(8.0), Leg(10.0, 3.0)],
            faults=[
                PositionFault(5.0, 50e3, 0.0),
                PositionFault(12.0, 0.0, -50e3),
                PositionFault(16.0, -30e3, 30e3),
            ],
        ),  # 50 km jumps, one in a turn
    ]
    res = simulate(Scenario(SITE, aircraft), 2.4e6, 20.0, seed=5)
    chain, updates, _ = replay(res)
    truth = {a.icao: a for a in aircraft}
    for u in updates:
        if u.status == TrackStatus.CONFIRMED:
            st = truth[int(u.icao, 16)].state_at(u.t_s)
            assert great_circle_m(u.lat_deg, u.lon_deg, st.lat_deg, st.lon_deg) < 300
    stats = chain.tracker.stats
    bad_sent = int(res.truth["bad_position"].sum())
    print(
        f"bad positions sent {bad_sent}, gated {stats.gated}, re-initialised {stats.reinitialised}"
    )
    assert sum(v for k, v in stats.gated.items() if "pos" in k or k == "speed") >= bad_sent - 1
    assert {u.icao for u in updates if u.status == TrackStatus.CONFIRMED} == {"3C6586", "4CA2D6"}


def test_time_compressed_real_file_yields_a_track(modes1):
    src = IQFileSource(modes1)
    # the receiver of modes1 is unknown; its one aircraft flies near 37.1 N 13.8 E
    chain = Chain(src.rate_hz, Site(37.0, 13.5), max_range_m=300e3)
    updates = [u for step in chain.run(src) for u in step.updates]
    confirmed = [u for u in updates if u.status == TrackStatus.CONFIRMED]
    assert confirmed and {u.icao for u in confirmed} == {"4D2023"}
    assert confirmed[-1].callsign
    for u in confirmed:
        assert great_circle_m(u.lat_deg, u.lon_deg, 37.1, 13.8) < 100e3


def test_track_command_prints_the_track_payload(tmp_path):
    from sensord.sim import write_recording

    res = simulate(random_scenario(3, SITE, seed=4), 2.4e6, 4.0, seed=4)
    stem = tmp_path / "rec"
    write_recording(res, stem)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sensord",
            "track",
            str(stem.with_suffix(".cu8")),
            "--rate",
            "2.4e6",
            "--confirmed-only",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines and {d["status"] for d in lines} <= {"confirmed", "coasting", "dropped"}
    assert {"track_id", "lat_deg", "lon_deg", "h_err95_m", "gs_kt", "schema"} <= set(lines[0])
    missing_site = subprocess.run(
        [sys.executable, "-m", "sensord", "track", str(tmp_path / "x.cu8")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing_site.returncode == 2 and "site" in missing_site.stderr
