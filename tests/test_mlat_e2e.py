"""MLAT end to end from IQ: six simulated receivers' recordings through ``sensord fuse --mlat``.

The network (``sensord.sim.network``): six sites on a 35 km ring, each recording rendered
through its own ``ReceiverClock`` (random ppm; one at +100 ppm; one with a 100k-sample
jump half-way), twelve Mode S-only aircraft inside the ring, ADS-B aircraft around it.
One node's position is given 500 m off. Every recording runs through its own receive
chain (demodulator: ``ts_12mhz``), the fusion node groups the frames, syncs the clocks on
the ADS-B positions and feeds MLAT fixes into the fusion tracker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from sensord.fusion.fuser import Fuser, FusionConfig
from sensord.fusion.recordings import RecordingSpec, fuse_recordings
from sensord.geo import Site, great_circle_m
from sensord.mlat.engine import MlatConfig
from sensord.mlat.feed import MlatFeed
from sensord.mlat.synth import modes_only_scenario
from sensord.sim.clock import ReceiverClock
from sensord.sim.network import network_sites, record_network
from sensord.sim.scenario import surveyed_site

CENTER = Site(52.0, 5.0, 10.0)
SECONDS = 20.0
JUMPER, FAST, MISPLACED = 1, 3, 4  # site indices: rx2 jumps, rx4 at +100 ppm, rx5 500 m off


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    rng = np.random.default_rng(5)
    scenario = modes_only_scenario(
        CENTER, 35e3, rng, n_adsb=30, n_modes=12, n_adsb_inside=8, seed=3, adsb_range_m=90e3
    )
    sites = []
    for k, s in enumerate(network_sites(CENTER, 6, seed=3, ring_km=35)):
        clock = ReceiverClock(
            offset_s=-s.start_s,  # the recording starts at sample 0
            ppm=100.0 if k == FAST else float(rng.uniform(-100, 100)),
            wander_ppm_per_sqrt_s=2e-3,
            duration_s=SECONDS + 5,
            seed=k,
            jump_at_s=SECONDS / 2 if k == JUMPER else None,
            jump_samples=100_000,
        )
        sites.append(replace(s, local_s=clock.local_s))
    rec = record_network(
        scenario, tmp_path_factory.mktemp("mlat") / "net", sites, duration_s=SECONDS, seed=3
    )
    args = rec.recording_args()
    wrong = surveyed_site(sites[MISPLACED].site, 500.0, rng)
    name = sites[MISPLACED].name
    args[MISPLACED] = (
        f"{name}={rec.paths[name]}@{wrong.lat_deg:.6f},{wrong.lon_deg:.6f},{wrong.alt_m:.1f}"
    )
    return scenario, rec, args


@pytest.fixture(scope="module")
def fused(network):
    _, _, args = network
    fuser = Fuser(FusionConfig(site=CENTER))
    feed = MlatFeed(fuser, MlatConfig(hold_s=0.5))
    updates = [
        u
        for batch in fuse_recordings([RecordingSpec.parse(a) for a in args], fuser, mlat=feed)
        for u in batch
    ]
    return updates, feed


def _mlat_errors(network, updates) -> dict[str, list[float]]:
    scenario, rec, _ = network
    modes_only = {ac.icao: ac for ac in scenario.aircraft if not ac.adsb}
    errs: dict[str, list[float]] = {}
    for u in updates:
        if u.icao is None or int(u.icao, 16) not in modes_only or u.lat_deg is None:
            continue
        if "mlat" not in u.sensors or u.utc - rec.epoch_utc < 5.0:
            continue
        truth = modes_only[int(u.icao, 16)].state_at(u.utc - rec.epoch_utc)
        errs.setdefault(u.icao, []).append(
            float(great_circle_m(u.lat_deg, u.lon_deg, truth.lat_deg, truth.lon_deg))
        )
    return errs


def test_mode_s_only_aircraft_appear_as_tracks(network, fused) -> None:
    scenario, rec, _ = network
    updates, feed = fused
    errs = _mlat_errors(network, updates)
    modes_only = {ac.icao for ac in scenario.aircraft if not ac.adsb}
    heard_by = {icao: 0 for icao in modes_only}
    for frames in rec.truth.values():
        strong = frames[frames["snr_db"] >= 10.0]
        for icao in set(strong["icao"].tolist()) & modes_only:
            heard_by[icao] += 1
    heard4 = {f"{icao:06X}" for icao, n in heard_by.items() if n >= 4}
    assert len(heard4) >= 8
    assert len(set(errs) & heard4) >= 0.9 * len(heard4)
    assert np.median(np.concatenate([np.array(v) for v in errs.values()])) <= 60.0
    assert feed.detections > 50


def test_status_names_the_faults_and_the_self_check_agrees(fused) -> None:
    _, feed = fused
    st = feed.status()
    json.dumps(st)
    receivers = st["receivers"]
    assert receivers["rx5"]["state"] == "excluded" and "position" in receivers["rx5"]["reason"]
    for node in ("rx1", "rx2", "rx3", "rx4", "rx6"):
        assert receivers[node]["state"] == "synced", node
    # the jump: a step on rx2's pairs (not involving the misplaced node), re-synced
    jumper_pairs = [v for k, v in st["pairs"].items() if "rx2" in k and "rx5" not in k]
    assert all(v["steps"] >= 1 and v["state"] == "synced" for v in jumper_pairs)
    assert abs(st["pairs"]["rx4~rx6"]["drift_ppm"]) > 0  # +100 ppm tracked like any drift
    for k, v in st["pairs"].items():
        if "rx5" not in k:
            assert v["error_ns_rms"] <= 150.0, k
    inside = st["selfcheck"]["disagreement_inside"]
    assert inside["n"] >= 5 and inside["median_m"] <= 60.0


def test_cli_gives_the_same_mlat_tracks(network, fused) -> None:
    _, _, args = network
    updates, _ = fused
    cmd = [sys.executable, "-m", "sensord", "fuse", "--mlat", "--jsonl",
           "--site", f"{CENTER.lat_deg},{CENTER.lon_deg},{CENTER.alt_m}"]  # fmt: skip
    for a in args:
        cmd += ["--recording", a]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    cli = {
        doc["icao"]
        for doc in map(json.loads, out.stdout.splitlines())
        if "mlat" in doc["sensors"] and doc["icao"]
    }
    assert cli == {u.icao for u in updates if "mlat" in u.sensors and u.icao}
