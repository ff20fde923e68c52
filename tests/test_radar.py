"""Passive radar: simulator, alignment, clutter cancellation, CAF, CFAR and the targets of
issue 14 on simulated FM illumination (tolerant bounds; figures in benchmarks/bench_radar.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensord.geo import Site
from sensord.radar import align, caf, cfar, clutter
from sensord.radar.processor import RadarParams, RadarProcessor
from sensord.radar.source import Cpi, CpiFramer, TwoChannelBlock
from sensord.sim.fm import FMBroadcast
from sensord.sim.radar import RadarLink, radar_scene, simulate_radar

RX = Site(52.0, 4.5, 10.0)
TX = Site(52.2, 4.6, 100.0)
RATE = 2.0e6


def cpis(sim, params: RadarParams, skew: int):
    """CPIs of an in-memory simulation, aligned with the known skew."""
    h, n = params.history, params.n_samples
    ref, surv = sim.ref, sim.surv[skew:]
    k = 0
    while h + (k + 1) * n <= len(surv):
        s0 = h + k * n
        yield Cpi(k, s0, params.rate_hz, ref[s0 - h : s0 + n], surv[s0 : s0 + n], h, 0, 0.0)
        k += 1


# ---------------------------------------------------------------- illuminator


def test_fm_illuminator_is_broadcast_like_not_a_tone():
    gen = FMBroadcast(RATE, seed=4)
    x = np.concatenate([gen.next(500_000) for _ in range(8)])  # 2 s
    inst_hz = np.diff(np.unwrap(np.angle(x))) * RATE / (2 * math.pi)
    assert 70e3 < np.abs(inst_hz).max() < 80e3  # 75 kHz peak deviation
    assert 20e3 < inst_hz.std() < 60e3  # loud, compressed programme
    # the 19 kHz stereo pilot is a line in the multiplex
    spec = np.abs(np.fft.rfft(inst_hz[: 1 << 20])) ** 2
    f = np.fft.rfftfreq(1 << 20, 1 / RATE)
    pilot = spec[(f > 18.9e3) & (f < 19.1e3)].max()
    around = np.median(spec[(f > 17e3) & (f < 18.5e3)])
    assert pilot > 100 * around
    # noise-like: the autocorrelation falls to its first null within about 20 samples
    ac = np.abs(np.fft.ifft(np.abs(np.fft.fft(x[: 1 << 20])) ** 2)[:40])
    assert ac[25] / ac[0] < 0.5


def test_fm_programme_has_pauses():
    gen = FMBroadcast(RATE, seed=2)
    shares = []
    for _ in range(120):  # 12 s in 0.1 s chunks
        gen.next(200_000)
        shares.append(gen.last_programme)
    assert min(shares) < 0.5 and max(shares) == 1.0


# ---------------------------------------------------------------- alignment


@pytest.fixture(scope="module")
def channels():
    scene = radar_scene(RX, TX, n_aircraft=0, n_dark=0, n_drones=0, seed=5)
    return simulate_radar(scene, 0.3, seed=5)


@pytest.mark.parametrize("skew", [-7, 0, 5])
def test_alignment_finds_the_skew_between_channels(channels, skew):
    ref, surv = channels.ref, channels.surv
    surv = np.concatenate([np.zeros(skew, np.complex64), surv]) if skew > 0 else surv[-skew:]
    n = min(len(ref), len(surv))
    a = align.measure(ref[:n], surv[:n], RATE)
    assert round(a.skew) == 3 + skew  # the simulator's own 3 samples plus ours
    assert a.problem() is None and a.coherence > 0.5


def test_alignment_reports_a_one_channel_file_read_as_two(channels):
    x = channels.ref
    assert "one-channel" in align.measure(x[0::2], x[1::2], RATE).problem()


def test_alignment_reports_a_dead_channel(channels):
    dead = np.full_like(channels.surv, (127 - 127.5) / 127.5)
    assert (
        "surveillance channel carries no signal"
        in align.measure(channels.ref, dead, RATE).problem()
    )


def test_alignment_reports_channels_not_on_one_clock():
    scene = radar_scene(RX, TX, n_aircraft=0, n_dark=0, n_drones=0, seed=5,
                        link=RadarLink(freq_offset_hz=3.0))  # fmt: skip
    sim = simulate_radar(scene, 0.3, seed=5)
    assert "not coherent" in align.measure(sim.ref, sim.surv, RATE).problem()
    scene = radar_scene(RX, TX, n_aircraft=0, n_dark=0, n_drones=0, seed=5,
                        link=RadarLink(independent_surveillance=True))  # fmt: skip
    sim = simulate_radar(scene, 0.3, seed=5)
    assert "not coherent" in align.measure(sim.ref, sim.surv, RATE).problem()


# ---------------------------------------------------------------- framing


def test_framer_discards_cpis_touched_by_a_drop_and_realigns():
    rng = np.random.default_rng(1)
    n_cpi, hist = 4000, 99
    total = 40_000
    x = (rng.standard_normal(total) + 1j * rng.standard_normal(total)).astype(np.complex64)
    calls = []

    def measure(ref, surv):
        calls.append(len(ref))
        return 0, 0.0

    def blocks():
        for start in range(0, total, 1000):
            if 13_000 <= start < 15_000:  # 2,000 samples lost on one channel
                continue
            yield TwoChannelBlock(x[start : start + 1000], x[start : start + 1000], start)

    framer = CpiFramer(n_cpi, hist, measure, RATE, max_skew=16)
    got = list(framer.cpis(blocks()))
    starts = [c.start_sample for c in got]
    assert framer.stats.gaps == 1 and framer.stats.gap_samples == 2000
    assert framer.stats.discarded_gap >= 1 and framer.stats.realignments == 1
    assert len(calls) == 2
    for c in got:  # no CPI (with its history) overlaps the lost samples
        assert c.start_sample - hist >= 15_000 or c.start_sample + n_cpi <= 13_000
        assert np.array_equal(c.surv, x[c.start_sample : c.start_sample + n_cpi])
        assert np.array_equal(c.ref, x[c.start_sample - hist : c.start_sample + n_cpi])
    # slots stay on the clock's grid
    assert all((s - starts[0]) % n_cpi == 0 for s in starts)
    assert len(got) + framer.stats.discarded_gap == (starts[-1] - starts[0]) // n_cpi + 1


# ---------------------------------------------------------------- CAF and ECA


def test_batched_caf_matches_the_direct_sum():
    rng = np.random.default_rng(2)
    n, lags, batches = 4000, 16, 40
    ref = (rng.standard_normal(n + lags) + 1j * rng.standard_normal(n + lags)).astype(np.complex64)
    surv = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    plan = caf.BatchPlan.make(n, lags, batches)
    hist = lags - 1 + 1  # one extra sample of history
    corr = caf.lag_correlations(caf.ref_spectra(ref, hist, plan), caf.segment_spectra(surv, plan),
                                lags)  # fmt: skip
    length = n // batches
    for m in (0, 17, 39):
        for k in (0, 5, 15):
            seg = np.arange(m * length, (m + 1) * length)
            direct = np.sum(np.conj(ref[hist + seg - k]) * surv[seg])
            assert abs(corr[m, k] - direct) < 1e-3 * abs(direct) + 1e-2
    cmap = caf.doppler_map(corr, 20)
    want = np.fft.fft(corr, axis=0)[(np.arange(20) - 10) % batches].T
    np.testing.assert_allclose(cmap, want, rtol=1e-4, atol=1e-3)


def test_eca_cancels_direct_path_and_multipath_by_40_db():
    # a strong station (noise 70 dB under the direct path) without quantisation, so what
    # is left is the cancellation's own residual, not the receiver's noise
    link = RadarLink(erp_w=1e6, quantise=False, clutter_scatterers=8)
    scene = radar_scene(RX, TX, n_aircraft=0, n_dark=0, n_drones=0, seed=6, link=link)
    sim = simulate_radar(scene, 0.6, seed=6)
    params = RadarParams()
    cpi = next(cpis(sim, params, 3))
    plan = caf.BatchPlan.make(params.n_samples, params.n_range, 2 * params.n_doppler)
    spec = caf.ref_spectra(cpi.ref, cpi.history, plan)
    res = clutter.cancel(spec, cpi.ref, cpi.history, cpi.surv, plan, 64)
    attenuation_db = 10 * math.log10(res.power_before / res.power_after)
    assert attenuation_db >= 40.0, attenuation_db


# ---------------------------------------------------------------- CFAR


def test_cfar_false_alarms_within_twice_the_design_rate():
    scene = radar_scene(RX, TX, n_aircraft=0, n_dark=0, n_drones=0, seed=3)
    sim = simulate_radar(scene, 2.01, seed=3)
    for pfa in (1e-3, 1e-4):
        params = RadarParams(cfar=cfar.CfarParams(pfa=pfa))
        proc = RadarProcessor(params)
        results = [proc.process(c) for c in cpis(sim, params, 3)]
        cells = sum(r.exceed_cells for r in results)
        design = pfa * sum(r.searched_cells for r in results)
        assert design / 2 <= cells <= 2 * design, (pfa, cells, design)


# ---------------------------------------------------------------- detection on the simulator


def match(results, truth, range_gate_m=600.0, doppler_gate_hz=3.0):
    """(truth row, detection or None) for targets in the map and out of the clutter notch;
    and the detections no target explains."""
    pairs, false = [], 0
    for res in results:
        rows = truth[(truth["cpi"] == res.cpi) & truth["in_map"] & ~truth["in_notch"]]
        used = set()
        for row in rows:
            best = None
            for j, d in enumerate(res.detections):
                dr = d.bistatic_range_m - row["bistatic_range_m"]
                dd = d.doppler_hz - row["doppler_hz"]
                if (
                    abs(dr) < range_gate_m
                    and abs(dd) < doppler_gate_hz
                    and (best is None or abs(dd) < abs(best[1].doppler_hz - row["doppler_hz"]))
                ):
                    best = (j, d)
            if best:
                used.add(best[0])
            pairs.append((row, best[1] if best else None))
        false += len(res.detections) - len(used)
    return pairs, false


@pytest.fixture(scope="module")
def detection_run():
    pairs, false, maps = [], 0, 0
    for seed in (1, 2):
        scene = radar_scene(RX, TX, n_aircraft=9, n_dark=3, n_drones=3, seed=seed)
        sim = simulate_radar(scene, 2.01, seed=seed)
        params = RadarParams(carrier_hz=scene.bistatic.carrier_hz)
        proc = RadarProcessor(params)
        results = [proc.process(c) for c in cpis(sim, params, 3)]
        assert all(r.discarded is None for r in results)
        p, f = match(results, sim.truth)
        pairs += p
        false += f
        maps += len(results)
    return pairs, false, maps


def test_detection_probability_above_15_db(detection_run):
    pairs, _, _ = detection_run
    strong = [d is not None for row, d in pairs if row["map_snr_db"] >= 15]
    assert len(strong) >= 40
    assert np.mean(strong) >= 0.9, np.mean(strong)


def test_bistatic_range_and_doppler_accuracy(detection_run):
    pairs, _, _ = detection_run
    dr = [d.bistatic_range_m - r["bistatic_range_m"] for r, d in pairs
          if d is not None and r["map_snr_db"] >= 15]  # fmt: skip
    dd = [d.doppler_hz - r["doppler_hz"] for r, d in pairs
          if d is not None and r["map_snr_db"] >= 15]  # fmt: skip
    assert math.sqrt(np.mean(np.square(dr))) <= 150.0
    assert math.sqrt(np.mean(np.square(dd))) <= 0.5
    for _row, d in pairs:
        if d is not None:
            assert d.range_rate_mps == pytest.approx(-d.doppler_hz * 299_792_458.0 / 98e6)
            assert d.bistatic_range_var_m2 > 0 and d.doppler_var_hz2 > 0


def test_few_detections_no_target_explains(detection_run):
    _, false, maps = detection_run
    assert false / maps <= 2.0  # ghosts (sidelobes) and false alarms together


# ---------------------------------------------------------------- two dongles in lockstep


def test_pairer_aligns_free_running_channels_and_realigns_after_a_drop(channels):
    from sensord.radar.pair import ChannelPairer
    from sensord.radar.pipeline import RunStats, results

    scene = radar_scene(RX, TX, n_aircraft=3, n_dark=0, n_drones=0, seed=8)
    sim = simulate_radar(scene, 2.6, seed=8)
    offset = 4321  # the surveillance dongle started 4321 samples after the reference
    ref, surv = sim.ref, sim.surv[offset:]
    block = 1 << 16

    def stream(x, drop_at=None):
        for i, start in enumerate(range(0, len(x) - block, block)):
            if i == drop_at:
                continue  # a USB buffer lost
            yield start, x[start : start + block]

    pairer = ChannelPairer(max_offset=8192, align_samples=1 << 16)
    blocks = list(pairer.blocks(stream(ref), stream(surv, drop_at=12)))
    assert pairer.stats.alignments == 2 and pairer.stats.gaps == 1
    # each alignment finds the start offset plus the simulator's own 3-sample skew
    assert pairer.stats.last_offset == 3 - offset and pairer.stats.last_peak > 0.5
    stats = RunStats()
    params = RadarParams(carrier_hz=scene.bistatic.carrier_hz)
    res = list(results(iter(blocks), params, stats))
    assert stats.discarded["a drop on either channel"] >= 1
    assert stats.processed >= 2
    assert all(r.alignment is None or round(r.alignment.skew) == 0 for r in res if not r.discarded)


# ---------------------------------------------------------------- KrakenSDR DAQ stream


def test_kraken_daq_client_reads_frames_and_counts_gaps(channels):
    """A local server speaking heimdall's IQ frame protocol (docs/radar.md) sends data
    frames of 5 channels, a calibration frame and skips a CPI index."""
    import socket
    import threading

    from sensord.radar.kraken import SYNC_WORD, DaqHeader, KrakenDaqSource

    cpi = 20_000
    ref, surv = channels.ref, channels.surv
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    sent = []

    def serve():
        conn, _ = server.accept()
        with conn:
            assert conn.recv(64) == b"streaming"
            for i, (ftype, cpi_index) in enumerate([(0, 0), (0, 1), (3, 2), (0, 3), (0, 5)]):
                iq = np.zeros((5, cpi), np.complex64)
                iq[0], iq[2] = ref[i * cpi : (i + 1) * cpi], surv[i * cpi : (i + 1) * cpi]
                head = DaqHeader(SYNC_WORD, ftype, "K1", 0, 5, 98_000_000, 2_400_000, 2_000_000,
                                 cpi, 1_700_000_000_000, i, cpi_index, 3, 32, 1, 1)  # fmt: skip
                conn.sendall(head.pack() + iq.tobytes())
                sent.append(i)
                if conn.recv(64) != b"IQDownload":
                    return

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    src = KrakenDaqSource("127.0.0.1", port, ref_channel=0, surv_channel=2)
    blocks = list(src.blocks())
    t.join(5)
    server.close()
    assert [b.start_sample for b in blocks] == [0, cpi, 3 * cpi, 5 * cpi]
    assert np.array_equal(blocks[0].ref, ref[:cpi])
    assert np.array_equal(blocks[1].surv, surv[cpi : 2 * cpi])
    assert src.stats.skipped_frames == 1 and src.stats.lost_cpis == 1
    assert src.rate_hz == 2e6 and src.center_hz == 98e6
