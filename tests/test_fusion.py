"""The fusion node without a broker: payloads, frames, de-duplication, bad input, and the
fused picture of a simulated receiver network against truth."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fusion_net import CENTER, fused_grid, make_network

from sensord.detections import POSITION, Detection
from sensord.fusion.dedup import Deduplicator
from sensord.fusion.fuser import Fuser, FusionConfig
from sensord.fusion.recordings import RecordingSpec, fuse_recordings
from sensord.fusion.transform import FrameMapper
from sensord.fusion.wire import NodeInfo, PayloadError, batch_json, parse_detections, parse_info
from sensord.geo import Site

UTC0 = 1_796_040_000.0


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    return make_network(tmp_path_factory.mktemp("net"))


def fused(network, **config):
    fuser, updates, _ = fused_with_grid(network, **config)
    return fuser, updates


def fused_with_grid(network, **config):
    specs = [RecordingSpec.parse(a) for a in network.rec.recording_args()]
    fuser = Fuser(FusionConfig(site=CENTER, **config))
    updates, grid = fused_grid(fuser, fuse_recordings(specs, fuser), network.epoch_utc)
    return fuser, updates, grid


def position(site: Site, lat: float, lon: float, h: float, icao: int, utc: float, frame: bytes):
    z = site.to_enu(lat, lon, h)
    return Detection(
        utc - UTC0, "x", POSITION, z, np.diag([100.0, 100.0, 100.0]), icao=icao, source="adsb-pos",
        utc=utc, frame=frame, signal_dbfs=-10.0,
    )  # fmt: skip


def test_batch_round_trip_keeps_every_field():
    d = position(CENTER, 52.1, 4.6, 9000.0, 0xABCDEF, UTC0 + 1.5, bytes(range(14)))
    d.callsign, d.alt_baro_ft = "KLM123", 29500.0
    node, (got,) = parse_detections(batch_json("rx1", UTC0 + 2, [d]))
    assert node == "rx1" and got.sensor_id == "rx1"
    assert got.icao == 0xABCDEF and got.frame == bytes(range(14)) and got.callsign == "KLM123"
    assert got.utc == pytest.approx(UTC0 + 1.5) and got.z == pytest.approx(d.z, abs=1e-3)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe garbage", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"schema": 7, "node": "a", "detections": []}', "unknown detections schema"),
        (
            b'{"schema": 2, "node": "a", "utc": 1, "detections": [{"t_s": 1, "utc": 1, '
            b'"observes": ["e"], "z": [NaN], "R": [[1]]}]}',
            "not finite",
        ),
        (
            b'{"schema": 2, "node": "a", "utc": 1, "detections": [{"t_s": 1, "utc": 1, '
            b'"observes": ["e", "n"], "z": [1], "R": [[1]]}]}',
            "do not match",
        ),
        (
            b'{"schema": 2, "node": "a", "utc": 1, "detections": [{"t_s": 1, "utc": 1, '
            b'"icao": "XYZ"}]}',
            "not hex",
        ),
        (
            b'{"schema": 2, "node": "a", "utc": 1, "detections": [{"t_s": 1, "utc": 1, '
            b'"observes": ["e"], "z": [1], "R": [[-4]]}]}',
            "not a covariance",
        ),
    ],
)
def test_malformed_batches_are_refused_with_a_reason(payload, reason):
    with pytest.raises(PayloadError, match=reason):
        parse_detections(payload)


def test_info_out_of_range_is_refused():
    good = NodeInfo("rx1", 52.0, 4.5, 10.0).to_dict()
    assert parse_info(good).lat_deg == 52.0
    for key, value in (("lat_deg", 95.0), ("lon_deg", float("inf")), ("alt_m", 1e6)):
        with pytest.raises(PayloadError):
            parse_info({**good, key: value})


def test_positions_carried_into_the_fusion_frame_are_exact_at_500_km():
    """ENU is a rotated ECEF: a node 500 km away maps its measurement with no error."""
    far = Site(56.4, 1.0, 30.0)  # about 530 km from CENTER
    d = position(far, 56.0, 2.0, 11000.0, 1, UTC0, b"x" * 7)
    assert FrameMapper(CENTER).to_fusion(d, far)
    mapped = d
    assert mapped.z == pytest.approx(CENTER.to_enu(56.0, 2.0, 11000.0), abs=1e-6)
    # a circular horizontal covariance stays a covariance (rotated, not distorted)
    assert np.linalg.eigvalsh(mapped.R) == pytest.approx([100.0, 100.0, 100.0])


def test_copies_of_one_reply_are_one_measurement_with_every_timestamp():
    dedup = Deduplicator(window_s=0.2)
    reply, first = dedup.offer(b"A" * 14, UTC0, "rx1", -10.0)
    assert first
    again, first = dedup.offer(b"A" * 14, UTC0 + 0.0004, "rx2", -20.0)
    assert not first and again is reply
    assert [(c.node, c.utc, c.signal_dbfs) for c in reply.copies] == [
        ("rx1", UTC0, -10.0),
        ("rx2", UTC0 + 0.0004, -20.0),
    ]
    # the same bytes half a second later (a repeated velocity message): a new reply
    _, first = dedup.offer(b"A" * 14, UTC0 + 0.5, "rx2")
    assert first
    for k in range(1000):  # memory bounded by the window
        utc = UTC0 + 1 + k * 0.01
        dedup.offer(bytes([k % 256]) * 7, utc, "r")
        dedup.expire(utc - 1.0)  # the fusion node accepts a second back
    assert len(dedup) < 150


def test_a_copy_with_the_position_stands_in_for_an_unresolved_first_copy():
    """rx1 could not resolve the CPR position yet (identity only); rx2's copy of the same
    reply carries it: the position is used, once."""
    fuser = Fuser(FusionConfig(site=CENTER, reorder_window_s=0.0))
    for node in ("rx1", "rx2"):
        fuser.node_info(node, NodeInfo(node, 52.0, 4.5, 10.0).to_dict())
    d = position(CENTER, 52.1, 4.6, 9000, 0xAAAAAA, UTC0, b"P" * 14)
    unresolved = Detection(
        0.0, "rx1", icao=0xAAAAAA, source="adsb-pos-unresolved", utc=UTC0, frame=b"P" * 14
    )
    assert fuser.ingest("rx1", batch_json("rx1", UTC0, [unresolved])) == 1
    assert fuser.ingest("rx2", batch_json("rx2", UTC0, [d])) == 1
    assert fuser.ingest("rx2", batch_json("rx2", UTC0, [d])) == 1  # rx2 again: a new reply
    third = Fuser(FusionConfig(site=CENTER, reorder_window_s=0.0))
    for node in ("rx1", "rx2", "rx3"):
        third.node_info(node, NodeInfo(node, 52.0, 4.5, 10.0).to_dict())
    assert third.ingest("rx1", batch_json("rx1", UTC0, [d])) == 1
    assert third.ingest("rx2", batch_json("rx2", UTC0, [unresolved])) == 0
    assert third.ingest("rx3", batch_json("rx3", UTC0, [d])) == 0
    assert third.statistics()["nodes"]["rx3"]["duplicates"] == 1


def test_bad_input_is_counted_per_node_and_spares_the_others():
    fuser = Fuser(FusionConfig(site=CENTER, reorder_window_s=0.0))
    fuser.node_info("good", NodeInfo("good", 52.0, 4.5, 10.0).to_dict())
    good = [
        position(CENTER, 52.1, 4.6, 9000, 0xAAAAAA, UTC0 + k, bytes([k]) * 14) for k in range(6)
    ]
    fuser.ingest("good", batch_json("good", UTC0 + 6, good))
    fuser.step(UTC0 + 6)
    before = {t: (tr.x.copy(), tr.n_updates) for t, tr in fuser.tracker.tracks.items()}
    fuser.ingest("junk", b"{{{")  # garbage
    fuser.ingest("junk", json.dumps({"schema": 99, "node": "junk", "detections": []}))
    fuser.ingest("nobody", batch_json("nobody", UTC0 + 7, good))  # no info yet
    fuser.node_info("far", NodeInfo("far", -52.0, -175.5, 10.0).to_dict())  # far side of earth
    fuser.ingest("far", batch_json("far", UTC0 + 7, good))
    fuser.node_info("junk", NodeInfo("junk", 52.0, 4.6, 10.0).to_dict())
    fresh = [position(CENTER, 52.1, 4.6, 9000, 0xBBBBBB, UTC0 + 6.5, b"N" * 14)]
    nan = batch_json("junk", UTC0 + 7, fresh).replace('"z":[', '"z":[NaN,', 1)
    fuser.ingest("junk", nan)
    fuser.ingest("impostor", batch_json("someone-else", UTC0 + 7, good))
    fuser.step(UTC0 + 7)
    nodes = fuser.statistics()["nodes"]
    assert nodes["junk"]["invalid"] == 3
    assert nodes["nobody"]["waiting_info"] == 6 and nodes["nobody"]["used"] == 0
    assert nodes["far"]["bad_info"] == 1 and nodes["far"]["waiting_info"] == 6
    assert nodes["impostor"]["invalid"] == 6
    assert nodes["good"]["used"] == 6
    after = {t: (tr.x, tr.n_updates) for t, tr in fuser.tracker.tracks.items()}
    assert after.keys() == before.keys()
    for t, (x, n) in before.items():
        assert after[t][1] == n and np.allclose(after[t][0], x)


def test_late_detections_are_dropped_and_counted():
    fuser = Fuser(FusionConfig(site=CENTER, reorder_window_s=1.0))
    fuser.node_info("a", NodeInfo("a", 52.0, 4.5, 10.0).to_dict())
    dets = [
        position(CENTER, 52.1, 4.6, 9000, 0xAAAAAA, UTC0 + k, bytes([k]) * 14) for k in range(5)
    ]
    fuser.ingest("a", batch_json("a", UTC0 + 4, dets[2:]))
    fuser.step(UTC0 + 5.5)  # released up to UTC0 + 4.5
    fuser.ingest("a", batch_json("a", UTC0 + 4, dets[:2]))  # 3.5 s late
    assert fuser.statistics()["nodes"]["a"]["late"] == 2


def test_fused_picture_covers_every_aircraft_once_and_beats_each_receiver(network):
    fuser, updates, grid = fused_with_grid(network)
    score = network.score(updates)
    alone = network.tracked_alone()
    covered = {i for i, a in score.aircraft.items() if a.errors_m}
    assert len(covered & alone) >= 0.98 * len(alone)
    assert score.id_swaps == 0 and not score.unknown_tracks
    assert all(len(a.track_ids) == 1 for a in score.aircraft.values())
    # aircraft heard by several receivers: the fused track is at least as good as each
    # receiver's own track of the same aircraft (RMS error of the published state, on a
    # common clock: each picture's every track every 0.5 s; at each picture's own publish
    # instants the two would be sampled at different moments of the filter cycle)
    shared = {i for i in alone if len(network.heard_by(i)) >= 2}
    assert shared
    grid_score = network.score(grid)
    for name, own in network.alone_grid.items():
        mine = [i for i in shared if i in own.aircraft and own.aircraft[i].errors_m]
        if not mine:
            continue
        rms_own = math.sqrt(np.mean(np.concatenate([own.aircraft[i].errors_m for i in mine]) ** 2))
        rms_fused = math.sqrt(
            np.mean(np.concatenate([grid_score.aircraft[i].errors_m for i in mine]) ** 2)
        )
        assert rms_fused <= rms_own, (name, rms_fused, rms_own)
    # the reported 95% radius holds the truth about 95% of the time
    assert 0.90 <= score.inside95_fraction() <= 0.99
    stats = fuser.statistics()
    assert sum(n["duplicates"] for n in stats["nodes"].values()) > 0
    assert all(u.utc == u.t_s for u in updates)
    # a replay's clock is its progress: every node's UTC was checked against it, and agreed
    for node in stats["nodes"].values():
        assert node["clock"] == node["late"] == node["overflow"] == 0
        assert node["clock_offset_s"] is not None and abs(node["clock_offset_s"]) < 0.5


def test_copies_fused_as_independent_corrupt_the_picture(network):
    """Without de-duplication the same reply counts once per receiver: a second copy a
    fraction of a millisecond after the first is no new information, yet the tracker must
    take it as a measurement. Here the copies fail the speed gate (the same position
    again, metres from the just-updated estimate, after no time at all), two agreeing
    "outliers" re-initialise the track, and the reported radius no longer holds the truth.
    """
    fuser_dedup, _, with_dedup = fused_with_grid(network)
    fuser_raw, _, without = fused_with_grid(network, dedup_window_s=0.0)
    good, bad = network.score(with_dedup), network.score(without)
    assert fuser_raw.tracker.stats.reinitialised > 5 * max(
        fuser_dedup.tracker.stats.reinitialised, 1
    )
    assert bad.inside95_fraction() < 0.9 <= good.inside95_fraction()
    rms = lambda score: math.sqrt(np.mean(score.errors_m() ** 2))  # noqa: E731
    assert rms(good) < rms(bad)


def test_delayed_out_of_order_input_gives_the_same_picture(network):
    """Batches reach the fusion node 0-1.5 s late, out of order: with a 2 s window the
    picture is the same; with a 1 s window the later ones are dropped and counted."""
    specs = [RecordingSpec.parse(a) for a in network.rec.recording_args()]
    reference = Fuser(FusionConfig(site=CENTER, reorder_window_s=2.0))
    batches = []
    original = reference.ingest

    def record(node, payload):  # capture what the nodes send, in send order
        batches.append((node, payload))
        return original(node, payload)

    reference.ingest = record  # type: ignore[method-assign]
    ref_updates = [u for b in fuse_recordings(specs, reference) for u in b]
    rng = np.random.default_rng(3)
    for window_s, expect_late in ((2.0, False), (1.0, True)):
        fuser = Fuser(FusionConfig(site=CENTER, reorder_window_s=window_s))
        for spec in specs:
            fuser.node_info(
                spec.node,
                NodeInfo(
                    spec.node, spec.site.lat_deg, spec.site.lon_deg, spec.site.alt_m
                ).to_dict(),
            )
        arrivals = []
        for node, payload in batches:
            sent = json.loads(payload)["utc"]
            arrivals.append((sent + rng.uniform(0, 1.5), node, payload))
        arrivals.sort()
        updates = []
        for arrival_utc, node, payload in arrivals:
            fuser.ingest(node, payload)
            updates += fuser.step(arrival_utc)
        updates += fuser.flush()
        late = sum(n["late"] for n in fuser.statistics()["nodes"].values())
        assert (late > 0) == expect_late
        got, ref = network.score(updates), network.score(ref_updates)
        assert got.id_swaps == 0
        assert set(got.aircraft) == set(ref.aircraft)
        assert np.median(got.errors_m()) <= np.median(ref.errors_m()) * 1.3 + 1.0


def test_fuse_command_prints_the_fused_track_payload(network):
    args = [f"--recording={a}" for a in network.rec.recording_args()]
    site = f"--site={CENTER.lat_deg},{CENTER.lon_deg},{CENTER.alt_m}"
    proc = subprocess.run(
        [sys.executable, "-m", "sensord", "fuse", *args, site, "--jsonl"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    _, in_process = fused(network)
    assert len(lines) == len(in_process)
    assert lines[-1]["track_id"] == in_process[-1].track_id
    assert all("utc" in d and d["schema"] == 1 for d in lines)
    bad = subprocess.run(
        [sys.executable, "-m", "sensord", "fuse", "--recording", "rx1=/nonexistent.cu8@52,4,0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "no such file" in bad.stderr


def test_fuzzed_subscriptions_neither_crash_nor_invent_tracks():
    """A slice of benchmarks/fuzz_fusion.py: random and mutated payloads on every topic,
    between a real node's batches."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from fuzz_fusion import fuzz

    crashes, unexplained, real, nodes = fuzz(5000, seed=7)
    assert crashes == 0 and unexplained == 0 and real > 0
    assert nodes["fuzz"]["invalid"] > 0 and nodes["rx3"]["used"] > 0
