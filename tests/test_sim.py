"""The simulator: every reply decodes (pyModeS) to what was meant, the waveform is PPM as sent."""

import itertools
import subprocess
import sys

import numpy as np
import pyModeS as pms
import pytest

from sensord import cpr
from sensord.demod import Demodulator
from sensord.frames import frame_hex
from sensord.geo import Site, great_circle_m
from sensord.sim import (
    Aircraft,
    Leg,
    PositionFault,
    Scenario,
    encode,
    load_truth,
    modulate,
    random_scenario,
    record,
    simulate,
    write_recording,
)
from sensord.sim.modulate import sampled_reply
from sensord.source.iqfile import IQFileSource
from sensord.source.sigmf import read_meta

SITE = Site(52.0, 4.5, 10.0)


@pytest.fixture(scope="module")
def result():
    ac = Aircraft(
        0x4840D6,
        "KLM1023",
        "7412",
        40e3,
        -30e3,
        36000,
        420,
        75,
        legs=[Leg(2.0), Leg(4.0, turn_rate_dps=3.0, vrate_fpm=-1500)],
    )
    slow = Aircraft(
        0xA1B2C3, "N123AB", "1200", -20e3, 10e3, 4500, 150, 200, category="A1", sends_airspeed=True
    )
    scenario = Scenario(SITE, [ac, slow, *random_scenario(8, SITE, seed=4).aircraft])
    return simulate(scenario, rate_hz=2.4e6, duration_s=8.0, seed=4)


def _hex(row) -> str:
    return bytes(row["msg"][: row["nbits"] // 8]).hex().upper()


def test_every_frame_decodes_to_its_intended_fields(result):
    aircraft = {a.icao: a for a in result.scenario.aircraft}
    seen_tc = set()
    for row in result.truth:
        d = pms.decode(_hex(row))
        ac = aircraft[int(row["icao"])]
        st = ac.state_at(float(row["t_s"]))
        assert d["df"] == row["df"]
        assert d["icao"] == f"{ac.icao:06X}"
        if row["df"] == 4:
            assert abs(d["altitude"] - st.alt_baro_ft) <= 12.5
        elif row["df"] == 5:
            assert d["squawk"] == ac.squawk
        elif row["df"] == 17:
            assert d["crc_valid"] is True
            tc = d["typecode"]
            seen_tc.add(tc)
            if 1 <= tc <= 4:
                assert d["callsign"] == ac.callsign
            elif 9 <= tc <= 18:
                assert abs(d["altitude"] - st.alt_baro_ft) <= 12.5
                lat_cpr, lon_cpr = cpr.encode(st.lat_deg, st.lon_deg, d["cpr_format"])
                assert (d["cpr_lat"], d["cpr_lon"]) == (lat_cpr, lon_cpr)
            elif tc == 19 and d["subtype"] == 1:
                assert abs(d["groundspeed"] - st.gs_kt) <= 1.5  # 1 kt components, rounded
                assert abs((d["track"] - st.track_deg + 180) % 360 - 180) <= 0.5
                assert abs(d["vertical_rate"] - st.vrate_fpm) <= 32
            elif tc == 19:
                assert d["subtype"] == 3 and ac.sends_airspeed
                assert abs(d["airspeed"] - st.gs_kt) <= 0.5
                assert abs(d["heading"] - st.track_deg) <= 0.36
    assert {4, 11, 19} <= seen_tc


def test_cpr_pairs_give_the_true_position(result):
    positions = [
        (r, pms.decode(_hex(r))) for r in result.truth if r["df"] == 17 and r["icao"] == 0x4840D6
    ]
    positions = [(r, d) for r, d in positions if 9 <= d["typecode"] <= 18]
    ac = result.scenario.aircraft[0]
    checked = 0
    for (_r0, d0), (r1, d1) in itertools.pairwise(positions):
        if d0["cpr_format"] == d1["cpr_format"]:
            continue
        even, odd = (d0, d1) if d0["cpr_format"] == 0 else (d1, d0)
        pos = cpr.decode_global(
            even["cpr_lat"],
            even["cpr_lon"],
            odd["cpr_lat"],
            odd["cpr_lon"],
            latest_odd=d1["cpr_format"],
        )
        st = ac.state_at(float(r1["t_s"]))
        assert great_circle_m(pos[0], pos[1], st.lat_deg, st.lon_deg) < 10.0
        checked += 1
    assert checked >= 8


def test_waveform_pulses_are_where_ppm_puts_them():
    msg = encode.df11(0x4840D6)
    bits = np.unpackbits(np.frombuffer(msg, dtype=np.uint8))
    for rate in (2.0e6, 2.4e6):
        start = 100.5 if rate == 2.0e6 else 100.3  # pulses centred on samples
        first, wave = sampled_reply(msg, start, rate, 0.5, 1.0, 20e3)
        mag = np.abs(wave)
        sps = rate / 1e6
        for k, b in enumerate(bits):
            on = start + (8 + k + (0.0 if b else 0.5) + 0.25) * sps - first
            off = start + (8 + k + (0.5 if b else 0.0) + 0.25) * sps - first
            level_on = np.interp(on, np.arange(len(mag)), mag)
            level_off = np.interp(off, np.arange(len(mag)), mag)
            assert level_on > 0.25 and level_on > level_off + 0.12


def test_dongle_band_limit_lowers_isolated_pulses_not_long_ones():
    """With the dongle's low-pass (modulate.BAND_FRACTION), a 0.5 us pulse centred on a
    2.0 MS/s sample peaks near 0.75 of the amplitude as on real recordings (0.96 with the
    Gaussian alone), a 1 us pulse about 0.9 of it, and the default is unchanged."""
    msg = encode.df11(0x4840D6)  # bits 0 1 ...: chips 0 1 1 0, a 1 us pulse from 8.5 us
    rate, start, amp = 2.0e6, 100.5, 0.5  # the preamble pulse at 0 us spans 100.5-101.5
    band = modulate.BAND_FRACTION * rate
    first, sharp = sampled_reply(msg, start, rate, amp, 0.0, 0.0)
    first_b, smooth = sampled_reply(msg, start, rate, amp, 0.0, 0.0, band)
    assert np.array_equal(sharp, sampled_reply(msg, start, rate, amp, 0.0, 0.0, None)[1])
    pulse = 101 - first  # the sample at the pulse's centre (chip start + 0.5 sample)
    assert abs(sharp[pulse]) / amp > 0.9
    assert 0.65 < abs(smooth[101 - first_b]) / amp < 0.85
    double = int(start + 9.0 * 2.0) - first_b  # the 1 us pulse's centre lies between these
    assert max(abs(smooth[double]), abs(smooth[double + 1])) / amp > 0.88


def test_signal_level_in_truth_matches_the_demodulator():
    res = simulate(random_scenario(12, SITE, seed=8), 2.4e6, 3.0, seed=8)
    demod = Demodulator(res.rate_hz)
    frames = np.concatenate([demod.feed(res.iq, "cu8"), demod.flush()])
    truth = res.truth[(~res.truth["overlapped"]) & (~res.truth["clipped"])]
    level = {(_hex(r), round(float(r["t_s"]), 3)): float(r["signal_dbfs"]) for r in truth}
    diffs = [
        float(f["signal_dbfs"]) - level[key]
        for f in frames
        if (key := (frame_hex(f), round(float(f["t_s"]), 3))) in level
    ]
    assert len(diffs) > 200
    # the demodulator averages each filtered pulse over its half-bit: about 2 dB under the peak
    assert abs(np.median(diffs) + 2.0) < 0.75
    assert np.percentile(np.abs(np.array(diffs) - np.median(diffs)), 90) < 1.5


def test_faults_are_marked_in_the_truth():
    ac = Aircraft(
        0x3C6586,
        "DLH4AB",
        "1000",
        50e3,
        50e3,
        30000,
        400,
        90,
        faults=[PositionFault(0.0, 50e3, 0.0), PositionFault(3.0, 0.0, -50e3)],
    )
    res = simulate(Scenario(SITE, [ac]), 2.4e6, 5.0, seed=2)
    assert res.truth["bad_position"].sum() == 2


def test_record_streams_the_same_recording(tmp_path, result):
    scenario = random_scenario(5, SITE, seed=9)
    paths, truth = record(scenario, tmp_path / "s", 2.0e6, 3.0, seed=9, fmt="sigmf", chunk_s=0.7)
    mem = simulate(scenario, 2.0e6, 3.0, seed=9)
    data = np.fromfile(tmp_path / "s.sigmf-data", dtype=np.uint8)
    assert data.shape == mem.iq.shape
    np.testing.assert_array_equal(truth, mem.truth)
    meta = read_meta(tmp_path / "s.sigmf-meta")
    assert (meta.fmt, meta.rate_hz) == ("cu8", 2.0e6)
    loaded = load_truth(tmp_path / "s.sigmf-data")
    np.testing.assert_array_equal(loaded.frames, truth)
    st_a = loaded.scenario.aircraft[0].state_at(2.0)
    st_b = scenario.aircraft[0].state_at(2.0)
    assert (st_a.lat_deg, st_a.lon_deg) == (st_b.lat_deg, st_b.lon_deg)
    assert len(loaded.trajectories) == 5 * 31
    row = loaded.trajectories[(loaded.trajectories["t_s"] == 2.0)][0]
    st = scenario.aircraft[0].state_at(2.0)
    assert (row["icao"], row["lat_deg"], row["gs_kt"]) == (
        scenario.aircraft[0].icao,
        st.lat_deg,
        st.gs_kt,
    )
    np.testing.assert_array_equal(row["enu_m"], st.enu_m)
    np.testing.assert_array_equal(row["vel_enu_mps"], st.vel_enu_mps)
    written = write_recording(mem, tmp_path / "m")
    with pytest.raises(ValueError, match="format"):
        write_recording(mem, tmp_path / "x", fmt="cs16")
    assert IQFileSource(written[0], rate_hz=2.0e6).n_samples == mem.iq.shape[0] // 2
    assert {p.name for p in paths} >= {"s.sigmf-data", "s.sigmf-meta", "s.truth.npz"}


def test_cli_writes_a_recording_decode_reads(tmp_path):
    stem = tmp_path / "cli"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sensord",
            "simulate",
            "-o",
            str(stem),
            "--aircraft",
            "4",
            "--duration",
            "2",
            "--rate",
            "2.4M",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 aircraft" in proc.stderr
    decoded = subprocess.run(
        [
            sys.executable,
            "-m",
            "sensord",
            "decode",
            str(stem.with_suffix(".cu8")),
            "--rate",
            "2.4e6",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = decoded.stdout.splitlines()
    truth = load_truth(stem).frames
    assert len(lines) >= 0.9 * len(truth)
    assert all(line.startswith("@") and line.endswith(";") for line in lines)
    for line in lines[:50]:
        assert pms.decode(line[13:-1])["icao"]


def test_snr_in_truth_matches_the_recording():
    """Signal power fitted over each reply's span (known envelope) over the measured noise."""
    rate = 2.4e6
    res = simulate(random_scenario(6, SITE, seed=13), rate, 3.0, seed=13)
    x = (res.iq[0::2].astype(np.float64) - 127.4) / 127.5 + 1j * (
        (res.iq[1::2].astype(np.float64) - 127.4) / 127.5
    )
    busy = np.zeros(len(x), dtype=bool)
    spans = []
    for row in res.truth:
        first, env = sampled_reply(bytes(row["msg"][: row["nbits"] // 8]), row["sample_idx"],
                                   rate, 1.0, 0.0, 0.0)  # fmt: skip
        busy[max(first - 8, 0) : first + len(env) + 8] = True
        spans.append((first, np.abs(env)))
    noise_power = np.mean(np.abs(x[~busy]) ** 2)
    diffs = []
    for row, (first, env) in zip(res.truth, spans, strict=True):
        if row["overlapped"] or row["clipped"] or row["snr_db"] < 8 or first + len(env) > len(x):
            continue
        power = np.mean(np.abs(x[first : first + len(env)]) ** 2) - noise_power
        measured_db = 10 * np.log10(power / np.mean(env**2) / noise_power)
        diffs.append(measured_db - float(row["snr_db"]))
    diffs = np.array(diffs)
    assert len(diffs) > 80
    assert abs(np.median(diffs)) < 0.3
    assert np.percentile(np.abs(diffs), 95) < 1.0


def test_aircraft_at_a_geodetic_start_and_channel_options():
    ac = Aircraft.at(SITE, 54.5, 7.5, 35000, icao=0x4840D6, callsign="KLM1023", squawk="7000",
                     gs_kt=450, track_deg=270)  # fmt: skip
    st = ac.state_at(0.0)
    assert great_circle_m(54.5, 7.5, st.lat_deg, st.lon_deg) < 0.01
    # the site-plane trajectory projected at ~290 km runs a fraction of a knot slower
    assert st.alt_baro_ft == 35000 and abs(st.gs_kt - 450) < 0.5
    res = simulate(Scenario(SITE, [ac]), 2.0e6, 3.0, seed=3, bit_error_fraction=0.5)
    injected = res.truth["injected_error_bits"]
    assert set(np.unique(injected)) == {0, 1}
    assert 0.3 < injected.mean() < 0.7
    with pytest.raises(TypeError, match="unknown channel option"):
        simulate(Scenario(SITE, [ac]), 2.0e6, 1.0, seed=3, bit_error_rate=0.5)


def test_ground_aircraft_send_surface_positions():
    scenario = random_scenario(2, SITE, seed=5, n_ground=3)
    airborne = random_scenario(2, SITE, seed=5).aircraft
    assert [a.to_dict() for a in scenario.aircraft[:2]] == [a.to_dict() for a in airborne]
    ground = {a.icao: a for a in scenario.aircraft if a.on_ground}
    assert len(ground) == 3 and any(a.gs_kt == 0 for a in ground.values())
    res = simulate(scenario, 2.4e6, 6.0, seed=5)
    surface = {}
    for row in res.truth[np.isin(res.truth["icao"], list(ground))]:
        d = pms.decode(_hex(row))
        ac = ground[int(row["icao"])]
        st = ac.state_at(float(row["t_s"]))
        if row["df"] == 11:
            assert d["capability"] == 4
        elif row["df"] in (4, 5):
            assert d["flight_status"] == 1
        elif d["typecode"] <= 4:
            assert d["callsign"] == ac.callsign
        else:
            assert d["typecode"] == 7 and d["crc_valid"] is True
            assert d["groundspeed"] <= st.gs_kt < d["groundspeed"] + 1.0  # truncated bands
            assert abs((d["track"] - st.track_deg + 180) % 360 - 180) <= 360 / 256 + 1e-9
            lat_cpr, lon_cpr = cpr.encode(st.lat_deg, st.lon_deg, d["cpr_format"], surface=True)
            assert (d["cpr_lat"], d["cpr_lon"]) == (lat_cpr, lon_cpr)
            surface.setdefault(ac.icao, []).append((row, d))
    assert set(surface) == set(ground)
    moving = [m for icao, m in surface.items() if ground[icao].gs_kt > 0]
    checked = 0
    for (_r0, d0), (r1, d1) in itertools.pairwise(moving[0]):
        if d0["cpr_format"] == d1["cpr_format"]:
            continue
        even, odd = (d0, d1) if d0["cpr_format"] == 0 else (d1, d0)
        pos = cpr.decode_global(even["cpr_lat"], even["cpr_lon"], odd["cpr_lat"], odd["cpr_lon"],
                                latest_odd=d1["cpr_format"], surface=True,
                                ref_lat_deg=SITE.lat_deg, ref_lon_deg=SITE.lon_deg)  # fmt: skip
        st = ground[int(r1["icao"])].state_at(float(r1["t_s"]))
        assert great_circle_m(pos[0], pos[1], st.lat_deg, st.lon_deg) < 3.0
        checked += 1
    assert checked >= 6


def _simulate_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sensord", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_scenario_file_sigmf_and_bad_inputs(tmp_path):
    scenario = random_scenario(2, SITE, seed=7, n_ground=1)
    (tmp_path / "in.json").write_text(scenario.to_json(), encoding="utf-8")
    stem = tmp_path / "rec"
    args = ("-o", str(stem), "--duration", "1", "--rate", "2.0e6", "--format", "sigmf")
    proc = _simulate_cli(*args, "--scenario", str(tmp_path / "in.json"))
    assert proc.returncode == 0, proc.stderr
    assert "3 aircraft" in proc.stderr and "rec.sigmf-meta" in proc.stderr
    meta = read_meta(stem.with_suffix(".sigmf-meta"))
    assert (meta.fmt, meta.rate_hz) == ("cu8", 2.0e6)
    assert stem.with_suffix(".sigmf-data").stat().st_size == 2 * 2_000_000
    loaded = load_truth(stem)
    assert [a.to_dict() for a in loaded.scenario.aircraft] == [
        a.to_dict() for a in scenario.aircraft
    ]
    bad = scenario.to_json().replace(
        f'"squawk": "{scenario.aircraft[0].squawk}"', '"squawk": "7900"'
    )
    (tmp_path / "bad.json").write_text(bad, encoding="utf-8")
    (tmp_path / "garbage.json").write_bytes(b"\x00\xffnot json")
    for extra in (
        ("--scenario", str(tmp_path / "bad.json")),
        ("--scenario", str(tmp_path / "garbage.json")),
        ("--scenario", str(tmp_path / "missing.json")),
        ("--rate", "9e6"),
        ("--duration", "0"),
        ("-o", str(tmp_path / "no" / "such" / "dir")),
    ):
        proc = _simulate_cli(*args, *extra)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_clipped_marks_replies_that_reach_the_u8_rail():
    near = Aircraft(0x400001, "NEAR1", "1000", 2e3, 1e3, 3000, 200, 0)
    far = Aircraft(0x400002, "FAR1", "2000", 300e3, 0.0, 38000, 400, 90)
    res = simulate(Scenario(SITE, [near, far]), 2.4e6, 2.0, seed=6)
    rail = ((res.iq == 0) | (res.iq == 255)).reshape(-1, 2).any(axis=1)
    t = res.truth
    assert t["clipped"][t["icao"] == near.icao].all()
    far_alone = (t["icao"] == far.icao) & ~t["overlapped"]
    assert far_alone.sum() >= 8 and not t["clipped"][far_alone].any()
    for row in t:
        first, env = sampled_reply(bytes(row["msg"][: row["nbits"] // 8]), row["sample_idx"],
                                   2.4e6, 1.0, 0.0, 0.0)  # fmt: skip
        assert rail[max(first, 0) : first + len(env)].any() == row["clipped"]


@pytest.mark.parametrize("rate", [2.0e6, 2.4e6])
def test_noiseless_recording_has_ppm_pulses_at_the_bit_centres(rate):
    res = simulate(random_scenario(4, SITE, seed=11), rate, 2.0, seed=11, noise=False)
    mag = (
        np.abs(
            (res.iq[0::2].astype(np.float64) - 127.4)
            + 1j * (res.iq[1::2].astype(np.float64) - 127.4)
        )
        / 127.5
    )
    sps = rate / 1e6
    clean = res.truth[~res.truth["overlapped"] & ~res.truth["clipped"]]
    if rate == 2.0e6:  # half-bit centres fall at x.5 samples: keep those sampled within 0.15 us
        frac = (clean["sample_idx"] + 0.5) % 1.0
        clean = clean[np.minimum(frac, 1 - frac) <= 0.3]
    assert len(clean) > 15
    for row in clean:
        peak = 10 ** (row["signal_dbfs"] / 20)
        bits = np.unpackbits(row["msg"][: row["nbits"] // 8])
        start = row["sample_idx"] + 8 * sps
        first_half = np.rint(start + (np.arange(len(bits)) + 0.25) * sps).astype(int)
        second_half = np.rint(start + (np.arange(len(bits)) + 0.75) * sps).astype(int)
        on = np.where(bits == 1, mag[first_half], mag[second_half])
        off = np.where(bits == 1, mag[second_half], mag[first_half])
        assert on.min() > 0.55 * peak and off.max() < 0.45 * peak
        preamble = np.rint(row["sample_idx"] + np.array([0.25, 1.25, 3.75, 4.75]) * sps)
        assert mag[preamble.astype(int)].min() > 0.55 * peak


def test_random_faulty_aircraft_send_marked_wrong_positions():
    plain = random_scenario(5, SITE, seed=3)
    scenario = random_scenario(5, SITE, seed=3, n_faulty=2)
    faulty = [a for a in scenario.aircraft if a.faults]
    assert len(faulty) == 2
    for a, b in zip(plain.aircraft, scenario.aircraft, strict=True):
        assert (a.icao, a.east_m, a.legs) == (b.icao, b.east_m, b.legs)
    res = simulate(scenario, 2.4e6, 9.0, seed=3)
    bad = res.truth[res.truth["bad_position"]]
    assert sorted(int(i) for i in bad["icao"]) == sorted(a.icao for a in faulty for _ in range(2))
    aircraft = {a.icao: a for a in scenario.aircraft}
    for row in bad:
        d = pms.decode(_hex(row))
        st = aircraft[int(row["icao"])].state_at(float(row["t_s"]))
        pos = cpr.decode_local(d["cpr_lat"], d["cpr_lon"], d["cpr_format"], st.lat_deg, st.lon_deg)
        assert 19e3 < great_circle_m(pos[0], pos[1], st.lat_deg, st.lon_deg) < 51e3
