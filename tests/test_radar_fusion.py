"""Radar detections against ADS-B tracks of the same scenario (the real decode and track
chain), the bias report, and a transponder-off aircraft tracked in range-Doppler."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from sensord.geo import Site
from sensord.radar.association import CooperativeRadar
from sensord.radar.processor import RadarParams, RadarProcessor
from sensord.radar.source import Cpi
from sensord.sim import random_scenario, record
from sensord.sim.radar import radar_scene, simulate_radar
from sensord.ui.table import update_from_payload

RX = Site(52.0, 4.5, 10.0)
TX = Site(52.2, 4.6, 100.0)
SECONDS = 12.0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    scenario = random_scenario(6, RX, 30e3, seed=11, min_range_m=5e3)
    stem = tmp_path_factory.mktemp("coop") / "adsb"
    record(scenario, stem, 2.4e6, SECONDS + 1, seed=11)
    proc = subprocess.run(
        [sys.executable, "-m", "sensord", "track", str(stem.with_suffix(".cu8")),
         "--lat", "52.0", "--lon", "4.5", "--alt-m", "10"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    updates = [update_from_payload(json.loads(line)) for line in proc.stdout.splitlines()]
    scene = radar_scene(RX, TX, scenario=scenario, n_dark=2, n_drones=1, seed=11)
    sim = simulate_radar(scene, SECONDS + 0.01, seed=11)
    params = RadarParams(carrier_hz=scene.bistatic.carrier_hz)
    proc_ = RadarProcessor(params)
    fusion = CooperativeRadar(scene.bistatic, node="r1")
    h, n = params.history, params.n_samples
    ref, surv = sim.ref, sim.surv[3:]
    outcomes = []
    k = 0
    pending = sorted(updates, key=lambda u: u.t_s)
    while h + (k + 1) * n <= len(surv):
        s0 = h + k * n
        res = proc_.process(Cpi(k, s0, 2e6, ref[s0 - h : s0 + n], surv[s0 : s0 + n], h, 0, 0.0))
        while pending and pending[0].t_s <= res.t_s:
            fusion.track_update(pending.pop(0))
        outcomes.append((res, fusion.cpi(res.t_s, res.detections)))
        k += 1
    return scene, sim.truth, outcomes, fusion


def _truth_of(det, rows):
    for row in rows:
        if (
            abs(det.bistatic_range_m - row["bistatic_range_m"]) < 600
            and abs(det.doppler_hz - row["doppler_hz"]) < 3
        ):
            return row
    return None


def test_cooperative_detections_pair_with_their_adsb_tracks(run):
    """Every radar detection of an aircraft whose ADS-B track has a position and a
    velocity by then pairs with that track (95 %)."""
    _, truth, outcomes, _ = run
    paired = total = 0
    for res, fused in outcomes:
        rows = truth[(truth["cpi"] == res.cpi) & (truth["kind"] == "aircraft")]
        by_det = {id(p.detection): p for p in fused.pairs}
        for det in res.detections:
            row = _truth_of(det, rows)
            if row is None or int(row["icao"]) not in fused.cooperative_icaos:
                continue
            total += 1
            pair = by_det.get(id(det))
            if pair is not None and pair.icao and int(pair.icao, 16) == int(row["icao"]):
                paired += 1
    assert total >= 20
    assert paired / total >= 0.95, (paired, total)


def test_bias_report_from_pairs(run):
    _, _, _, fusion = run
    report = fusion.bias.to_dict()
    assert report["pairs"] >= 20
    assert abs(report["range_bias_m"]) < 100 and report["range_spread_m"] < 300
    assert abs(report["doppler_bias_hz"]) < 0.5 and report["doppler_spread_hz"] < 1.5


def test_transponder_off_aircraft_is_tracked_in_range_doppler(run):
    scene, truth, outcomes, _ = run
    dark = [i for i, t in enumerate(scene.targets) if t.kind == "dark"]
    best = 0.0
    for target in dark:
        rows = truth[(truth["target"] == target) & truth["in_map"] & ~truth["in_notch"]]
        if (rows["map_snr_db"] < 18).any() or len(rows) < 10:
            continue  # only targets the radar sees all along
        ids = []
        for res, fused in outcomes:
            row = rows[rows["cpi"] == res.cpi]
            if not len(row):
                continue
            near = [
                tr.track_id for tr in fused.radar_tracks if tr.confirmed
                and abs(tr.x[0] - row["bistatic_range_m"][0]) < 600
                and abs(-tr.x[1] / scene.bistatic.wavelength_m - row["doppler_hz"][0]) < 3
            ]  # fmt: skip
            ids.append(near[0] if near else None)
        held = Counter(i for i in ids[3:] if i is not None)  # after confirmation (3 CPIs)
        if held:
            track_id, n = held.most_common(1)[0]
            assert track_id.startswith("radar:r1:")
            best = max(best, n / len(ids[3:]))
    assert best >= 0.8, best
    # a radar-only track is flagged non-cooperative
    _, fused = outcomes[-1]
    payload = fused.radar_tracks[0].to_dict(scene.bistatic.wavelength_m)
    assert payload["cooperative"] is False and payload["radar_only"] is True
    assert np.isfinite(payload["bistatic_range_m"])


def test_radar_detections_update_adsb_tracks_in_the_tracker(tmp_path):
    """ADS-B detections (the real demodulator and decoder) and radar detections (bistatic
    range and rate, the non-linear model) through one Tracker in time order: the
    cooperative aircraft's echoes update their ADS-B tracks."""
    from sensord.chain import Chain
    from sensord.radar.fusion import RadarMeasurements
    from sensord.source.iqfile import IQFileSource
    from sensord.tracker.track import TrackStatus

    scenario = random_scenario(6, RX, 30e3, seed=11, min_range_m=5e3)
    stem = tmp_path / "adsb"
    record(scenario, stem, 2.4e6, SECONDS + 1, seed=11)
    scene = radar_scene(RX, TX, scenario=scenario, n_dark=2, n_drones=1, seed=11)
    sim = simulate_radar(scene, SECONDS + 0.01, seed=11)
    params = RadarParams(carrier_hz=scene.bistatic.carrier_hz)
    processor = RadarProcessor(params)
    h, n = params.history, params.n_samples
    ref, surv = sim.ref, sim.surv[3:]
    radar = []
    k = 0
    while h + (k + 1) * n <= len(surv):
        s0 = h + k * n
        radar.append(processor.process(Cpi(k, s0, 2e6, ref[s0 - h : s0 + n], surv[s0 : s0 + n],
                                            h, 0, 0.0)))  # fmt: skip
        k += 1

    chain = Chain(2.4e6, RX)
    feed = RadarMeasurements(scene.bistatic, RX, "radar0")
    src = IQFileSource(str(stem.with_suffix(".cu8")), rate_hz=2.4e6)
    took = total = 0
    pending = list(radar)
    for block in src.blocks():
        dets = chain.detector.process(chain.demod.feed_block(block))
        end_s = (block.start_sample + block.n_samples) / block.rate_hz
        while pending and pending[0].t_s <= end_s:
            res = pending.pop(0)
            before = [d for d in dets if d.t_s <= res.t_s]
            dets = [d for d in dets if d.t_s > res.t_s]
            chain.tracker.process(before)
            # the cooperative aircraft that have a confirmed track by now
            live = {
                t.icao: t for t in chain.tracker.tracks.values()
                if t.icao is not None and t.status == TrackStatus.CONFIRMED
            }  # fmt: skip
            rows = sim.truth[(sim.truth["cpi"] == res.cpi) & (sim.truth["kind"] == "aircraft")]
            mine = []
            for det in res.detections:
                row = _truth_of(det, rows)
                if row is not None and int(row["icao"]) in live:
                    mine.append((det, int(row["icao"])))
            updates = chain.tracker.process(feed.detections(res.detections))
            took_now = {
                u.icao for u in updates if u.sensor_last_s.get("radar0") == pytest.approx(res.t_s)
            }
            for _, icao in mine:
                total += 1
                took += f"{icao:06X}" in took_now
        chain.tracker.process(dets)
        chain.tracker.clock(end_s)
    print(f"radar detections of tracked cooperative aircraft taken by their tracks: {took}/{total}")
    assert total >= 10
    assert took / total >= 0.95, (took, total)
