"""Multilateration on synthetic timestamps from truth (no IQ): sync, solver, faults, API.

The network: 5-6 receivers 30-60 km apart (one at the center, the others on a ring),
dongle clocks (+-100 ppm with wander, random offsets), 50 ns jitter, replies from the
simulator's frame plan (``sensord.mlat.synth``). Bounds are the issue's targets.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from sensord.errors import UserError
from sensord.frames import frames_from_hex
from sensord.geo import FT_M, Site
from sensord.mlat import MlatEngine, batch_from_frames, frames_payload, parse_frames_payload
from sensord.mlat.clocksync import SUSPECT, SYNCED, PairClock
from sensord.mlat.modes import AdsbPositions, cpr_fields, reply_altitude_ft
from sensord.mlat.solver import solve
from sensord.mlat.synth import (
    UTC0,
    SynthNetwork,
    horizontal_errors_m,
    match_replies,
    modes_only_heard,
    modes_only_scenario,
    network_radius_m,
    ring_of_receivers,
    synth_network,
)
from sensord.sim import encode
from sensord.sim.clock import ReceiverClock
from sensord.sim.scenario import surveyed_site

CENTER = Site(52.0, 5.0, 10.0)
SECONDS = 60.0


def _schema(name: str) -> dict:
    path = Path(__file__).parent.parent / "docs" / "schema" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _crb():
    path = Path(__file__).parent.parent / "benchmarks" / "mlat_crb.py"
    spec = importlib.util.spec_from_file_location("mlat_crb", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(net: SynthNetwork, watch=None):
    eng = MlatEngine(CENTER)
    for r in net.receivers:
        s = r.reported
        eng.receiver(r.node, s.lat_deg, s.lon_deg, s.alt_m)
    dets = []
    for node, batch in net.batches:
        dets += eng.add_frames(node, batch)
        if watch is not None:
            watch(eng, batch.utc - UTC0)
    return eng, dets + eng.flush()


@pytest.fixture(scope="module")
def inside():
    rng = np.random.default_rng(11)
    rxs = ring_of_receivers(CENTER, 5, rng, duration_s=SECONDS)
    sc = modes_only_scenario(CENTER, network_radius_m(CENTER, rxs), rng, seed=11)
    net = synth_network(sc, rxs, SECONDS, seed=11)
    eng, dets = _run(net)
    return net, eng, dets


def test_mode_s_only_inside_the_network(inside) -> None:
    net, _, dets = inside
    warm = [d for d in dets if d.t_s - UTC0 > 10.0 and d.icao >= 0xA00000]
    errs = horizontal_errors_m(net, warm, CENTER)
    assert len(errs) > 200
    assert np.median(errs) <= 60.0
    # <= 2x the Cramer-Rao bound for the same replies, receivers and jitter
    crb = _crb()
    rx_ecef = [r.site.ecef_m for r in net.receivers]
    covs = [
        crb.horizontal_cov_m2(
            np.array([rx_ecef[k] for k in net.heard_by[i]]), net.replies[i].ecef_m, 50e-9, 75.0
        )
        for i in match_replies(net, warm)
    ]
    assert np.median(errs) <= 2.0 * crb.median_horizontal_error_m(covs)
    # >= 90% of the Mode S-only aircraft heard by >= 4 receivers are located, by address
    heard = modes_only_heard(net, 4)
    assert len(heard) >= 15
    assert len({d.icao for d in warm} & heard) >= 0.9 * len(heard)


def test_detections_are_positions_with_covariance(inside) -> None:
    _, _, dets = inside
    d = dets[-1]
    assert d.source == "mlat" and d.sensor_id == "mlat"
    assert d.observes == ("e", "n", "u") and d.z.shape == (3,)
    assert d.R.shape == (3, 3) and np.all(np.linalg.eigvalsh(d.R) > 0)
    assert d.icao is not None and abs(d.t_s - UTC0 - SECONDS / 2) < SECONDS


def test_covariance_is_consistent(inside) -> None:
    """Truth falls inside the horizontal 95% ellipse in most fixes (NEES of e/n)."""
    net, _, dets = inside
    warm = [d for d in dets if d.t_s - UTC0 > 10.0]
    inside_95 = 0
    for d, i in zip(warm, match_replies(net, warm), strict=True):
        err = CENTER.rot_ecef_to_enu @ (net.replies[i].ecef_m - CENTER.ecef_m) - d.z
        nees = err[:2] @ np.linalg.solve(d.R[:2, :2], err[:2])
        inside_95 += nees <= 5.99
    assert 0.80 <= inside_95 / len(warm) <= 1.0


def test_clock_sync_and_status(inside) -> None:
    _, eng, _ = inside
    st = eng.status()
    json.dumps(st)  # JSON-ready
    assert len(st["pairs"]) == 10
    for pair in st["pairs"].values():
        assert pair["state"] == SYNCED
        assert pair["error_ns_rms"] <= 150.0
        assert pair["steps"] == 0
    assert all(r["state"] == "synced" for r in st["receivers"].values())
    assert st["reference"] in st["receivers"]
    sc = st["selfcheck"]
    # the self-check agrees with ADS-B inside the same bounds as Mode S-only aircraft
    assert sc["disagreement_inside"]["n"] >= 5 and sc["disagreement_inside"]["median_m"] <= 60.0
    assert sc["disagreement_outside"]["n"] >= 10
    assert sc["disagreement_outside"]["median_m"] <= 400.0
    assert set(sc["receivers"]) == set(st["receivers"]) and sc["pairs"]


def test_mode_s_only_outside_the_network() -> None:
    rng = np.random.default_rng(12)
    rxs = ring_of_receivers(CENTER, 5, rng, duration_s=SECONDS)
    sc = modes_only_scenario(CENTER, network_radius_m(CENTER, rxs), rng, outside_km=50, seed=12)
    net = synth_network(sc, rxs, SECONDS, seed=12)
    _, dets = _run(net)
    warm = [d for d in dets if d.t_s - UTC0 > 10.0 and d.icao >= 0xA00000]
    errs = horizontal_errors_m(net, warm, CENTER)
    assert len(errs) > 100
    assert np.median(errs) <= 400.0


def test_faults_jump_wrong_position_offline_and_fast_clock() -> None:
    """A sample-loss jump, a receiver 500 m off, one going offline, one at +100 ppm."""
    seconds, jump_at, offline_at = 90.0, 40.0, 50.0
    rng = np.random.default_rng(13)
    rxs = ring_of_receivers(CENTER, 6, rng, duration_s=seconds)
    rxs[1].clock = ReceiverClock.random(rng, "dongle", 50e-9, seconds, jump_at_s=jump_at)
    rxs[2].surveyed = surveyed_site(rxs[2].site, 500.0, rng)
    rxs[3].offline_after_s = offline_at
    rxs[4].clock.ppm = 100.0
    sc = modes_only_scenario(CENTER, network_radius_m(CENTER, rxs), rng, seed=13)
    net = synth_network(sc, rxs, seconds, seed=13)
    resynced: list[float] = []

    def watch(eng, t_s):
        if t_s < jump_at or resynced:
            return
        pairs = [p for k, p in eng.network.pairs.items() if "rx1" in k and "rx2" not in k]
        if all(p.steps >= 1 and p.state == SYNCED for p in pairs) and (
            "rx1" in eng.network.synced_nodes()
        ):
            resynced.append(t_s - jump_at)

    eng, dets = _run(net, watch)
    st = eng.status()
    # the jump: detected as a step on rx1's pairs, re-synced within 10 s
    assert resynced and resynced[0] <= 10.0
    # the wrong position: found and excluded, and status says why
    assert st["receivers"]["rx2"]["state"] == "excluded"
    assert "position" in st["receivers"]["rx2"]["reason"]
    assert all(st["receivers"][n]["state"] != "excluded" for n in ("rx0", "rx1", "rx4", "rx5"))
    # offline: its pairs go stale and it leaves the timebase
    assert st["receivers"]["rx3"]["state"] == "unsynced"
    assert all(v["state"] == "stale" for k, v in st["pairs"].items() if "rx3" in k)
    # +100 ppm: synced like the others, the drift measured
    assert st["receivers"]["rx4"]["state"] == "synced"
    assert abs(st["pairs"]["rx0~rx4"]["drift_ppm"] - (100.0 - rxs[0].clock.ppm)) < 1.0
    # nobody's positions are poisoned: Mode S-only aircraft stay inside the bound,
    # also right after the jump (the step is never smeared into the clocks)
    modes = [d for d in dets if d.t_s - UTC0 > 20.0 and d.icao >= 0xA00000]
    assert np.median(horizontal_errors_m(net, modes, CENTER)) <= 60.0
    after_jump = [d for d in modes if jump_at <= d.t_s - UTC0 < jump_at + 10.0]
    assert len(after_jump) > 10
    assert np.median(horizontal_errors_m(net, after_jump, CENTER)) <= 60.0


def test_pair_filter_step_is_not_smeared() -> None:
    rng = np.random.default_rng(5)
    pair = PairClock("a", "b")
    tau = np.arange(0.0, 60.0, 0.2)
    offset = 12.345 + 80e-6 * tau + np.where(tau >= 30.0, 0.02, 0.0)
    y = offset + rng.normal(0, 100e-9, tau.size)
    estimates = []
    for t, v in zip(tau.tolist(), y.tolist(), strict=True):
        pair.update(t, v)
        estimates.append(pair.offset_s(t))
    est = np.array(estimates)
    before = (tau > 10) & (tau < 30)
    assert np.sqrt(np.mean((est[before] - offset[before]) ** 2)) < 100e-9
    # the outliers of the step never entered: the estimate before the re-sync is the old clock
    at_step = np.flatnonzero(tau >= 30.0)[:2]
    assert np.all(np.abs(est[at_step] - (12.345 + 80e-6 * tau[at_step])) < 1e-6)
    assert pair.steps == 1
    after = tau > 32
    assert np.sqrt(np.mean((est[after] - offset[after]) ** 2)) < 150e-9
    assert pair.state == SYNCED


def test_pair_filter_garbage_makes_it_suspect_not_wrong() -> None:
    pair = PairClock("a", "b")
    for k in range(50):
        pair.update(k * 0.5, 1.0 + 1e-9 * (k % 3))
    assert pair.state == SYNCED
    rng = np.random.default_rng(1)
    for k in range(50, 54):  # random junk, not a step
        pair.update(k * 0.5, 1.0 + float(rng.uniform(-1e-3, 1e-3)))
    assert pair.state == SUSPECT and pair.steps == 0
    assert abs(pair.offset_s(27.0) - 1.0) < 1e-8


def test_solver_exact_and_geometry_rejection() -> None:
    rx_enu = np.array([[0, 0, 10], [40e3, 0, 20], [0, 40e3, 30], [-40e3, 0, 5], [0, -40e3, 50.0]])
    rx = rx_enu @ CENTER.rot_ecef_to_enu + CENTER.ecef_m
    ac = np.array([12e3, -7e3, 9000.0]) @ CENTER.rot_ecef_to_enu + CENTER.ecef_m
    from sensord.mlat.clocksync import C_AIR_MPS

    t = 1000.0 + np.linalg.norm(rx - ac, axis=1) / C_AIR_MPS
    guess = rx.mean(axis=0) + CENTER.rot_ecef_to_enu[2] * 9000.0
    sol = solve(rx, t, np.full(5, 50e-9), guess)
    assert sol.ok and np.linalg.norm(sol.ecef_m - ac) < 0.5
    assert sol.t_tx_s == pytest.approx(1000.0, abs=1e-9)
    h = float(CENTER.to_geodetic(np.array([12e3, -7e3, 9000.0]))[2])
    sol3 = solve(rx[:3], t[:3], np.full(3, 50e-9), guess, alt_m=h, alt_sigma_m=30.0)
    assert sol3.ok and np.linalg.norm(sol3.ecef_m - ac) < 1.0
    # four receivers on a line: the position across the line is undetermined
    line = np.array([[k * 20e3, 0, 10.0] for k in range(4)]) @ CENTER.rot_ecef_to_enu
    line += CENTER.ecef_m
    tl = np.linalg.norm(line - ac, axis=1) / C_AIR_MPS
    bad = solve(line, tl, np.full(4, 50e-9), guess)
    assert not bad.ok and bad.reason in ("gdop", "singular", "uncertain", "height")


def test_mode_s_fields_from_bytes() -> None:
    msg = encode.airborne_position(0x4840D6, 52.2572, 3.9194, 38000, odd=1)
    f = cpr_fields(msg)
    assert f.odd == 1 and f.alt_ft == 38000
    assert reply_altitude_ft(encode.df4(0x4840D6, 12375)) == 12375
    assert reply_altitude_ft(encode.df5(0x4840D6, "7001")) is None
    positions = AdsbPositions(52.0, 4.0, 500e3)
    even = encode.airborne_position(0x4840D6, 52.2572, 3.9194, 38000, odd=0)
    assert positions.resolve(0x4840D6, even, 0.0) is None  # half a pair
    fix = positions.resolve(0x4840D6, msg, 0.5)
    assert fix is not None
    assert fix.lat_deg == pytest.approx(52.2572, abs=1e-4)
    assert fix.lon_deg == pytest.approx(3.9194, abs=1e-4)
    assert fix.alt_m == pytest.approx(38000 * FT_M)


def test_payload_round_trip_and_garbage() -> None:
    hexes = [
        encode.df11(0x4840D6).hex(),
        encode.airborne_position(0x4840D6, 52.2, 3.9, 38000, 0).hex(),
    ]
    frames = frames_from_hex(hexes, t_s=[1.0, 1.5])
    text = frames_payload("rx1", frames, 1_795_000_000.25, 11_000_000)
    jsonschema.validate(json.loads(text), _schema("frame.v2"))
    batch = parse_frames_payload(text.encode())
    assert batch.node == "rx1"
    assert np.array_equal(batch.msg, frames["msg"])
    assert np.array_equal(batch.ts_12mhz, frames["ts_12mhz"].astype(np.int64))
    assert np.array_equal(batch.icao, frames["icao"])
    assert batch.frame_utc()[1] == pytest.approx(1_795_000_000.25 + 7_000_000 / 12e6)
    # the sub-tick arrival travels too (frames from hex carry their tick as toa_12mhz)
    assert batch.toa_12mhz is not None
    assert np.allclose(batch.toa_12mhz, frames["toa_12mhz"])
    with_toa = frames.copy()
    with_toa["toa_12mhz"] = frames["ts_12mhz"] + np.array([0.25, -0.375])
    with_toa_text = frames_payload("rx2", with_toa, 0.0, 0)
    jsonschema.validate(json.loads(with_toa_text), _schema("frame.v2"))
    back = parse_frames_payload(with_toa_text)
    assert back.toa_12mhz is not None
    assert np.allclose(back.toa_12mhz, with_toa["toa_12mhz"])
    assert len(batch_from_frames(with_toa, 0.0, 0)) == 2
    for bad in (
        b"not json",
        b"[]",
        json.dumps({"schema": 1}),
        text.replace('"node":"rx1"', '"node":5'),
        text.replace('"ts0":11000000', '"ts0":"x"'),
        text.replace(hexes[0].upper(), "ABC"),
        text.replace('"dts":[', '"dts":[1,'),
        text.replace('"sig":[', '"sig":[NaN,'),
    ):
        with pytest.raises(UserError):
            parse_frames_payload(bad)


def test_engine_input_checks() -> None:
    eng = MlatEngine(CENTER)
    with pytest.raises(UserError):
        eng.receiver("rx", 95.0, 0.0, 0.0)
    with pytest.raises(UserError):
        eng.receiver("rx", 52.0, 5.0, 0.0, clock_hz=0.0)
    frames = frames_from_hex([encode.df11(0x4840D6).hex()], t_s=[1.0])
    assert eng.add_frames("nobody", batch_from_frames(frames, 0.0, 0)) == []
    assert eng.status()["counters"]["frames_unknown_node"] == 1
    eng.receiver("rx", 52.0, 5.0, 0.0)
    assert eng.add_frames("rx", batch_from_frames(frames[:0], 1.0, 0)) == []
    assert eng.flush() == []
    assert math.isfinite(eng.now_utc)


def test_pair_conversion_both_ways_with_large_offsets() -> None:
    """b -> a inverts a -> b exactly, even with an hour of offset and 150 ppm of drift."""
    pair = PairClock("a", "b")
    for k in range(40):
        tau = 100.0 + 0.25 * k
        pair.update(tau, 3600.0 + 150e-6 * tau)
    for tau in (100.0, 110.0, 200.0):
        b_time = tau + pair.offset_s(tau)
        assert pair.a_time_s(b_time) == pytest.approx(tau, abs=1e-9)


def test_gauss_newton_matches_least_squares() -> None:
    """The fast solver reaches scipy's least_squares minimum (position, time, covariance),
    to its stopping step (10 cm: the timing alone spreads fixes by 10 m and more)."""
    from sensord.mlat.clocksync import C_AIR_MPS

    rng = np.random.default_rng(3)
    rx_enu = np.array([[0, 0, 10], [45e3, 5e3, 20], [-8e3, 38e3, 30], [-41e3, -3e3, 5.0]])
    rx = rx_enu @ CENTER.rot_ecef_to_enu + CENTER.ecef_m
    guess = rx.mean(axis=0) + CENTER.rot_ecef_to_enu[2] * 9000.0
    for _ in range(20):
        enu = np.array([*rng.uniform(-80e3, 80e3, 2), rng.uniform(2e3, 12e3)])
        ac = enu @ CENTER.rot_ecef_to_enu + CENTER.ecef_m
        t = 5.0 + np.linalg.norm(rx - ac, axis=1) / C_AIR_MPS + rng.normal(0, 50e-9, 4)
        h = float(CENTER.to_geodetic(enu)[2])
        fast = solve(rx, t, np.full(4, 50e-9), guess, h, 75.0, method="gn")
        ref = solve(rx, t, np.full(4, 50e-9), guess, h, 75.0, method="scipy")
        assert np.linalg.norm(fast.ecef_m - ref.ecef_m) < 0.2  # GN stops at 10 cm steps
        assert fast.t_tx_s == pytest.approx(ref.t_tx_s, abs=1e-9)
        assert np.allclose(fast.cov_ecef_m2, ref.cov_ecef_m2, rtol=1e-4, atol=1e-6)
