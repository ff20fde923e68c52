"""Radar in the fusion node: association with transponder tracks, geolocation, cost.

One sky recorded by a Mode S receiver and by two passive radars on one FM transmitter
(the simulator's IQ, as in tests/test_fusion_radar_mqtt.py), replayed through
``fuse_recordings`` (the receiver's chain, both radar processors, one ``Fuser``).
Prints, per radar, the share of its echoes of aircraft with a confirmed ADS-B track
with a measured velocity that updated that track, the bias report; then every located
radar-only track's distance to the nearest real target over its life (ghosts: farther
than 1 km), how long after the start each target was located, and the fusion node's
CPU per radar CPI.

    python benchmarks/bench_radar_fusion.py [--seconds 20] [--seeds 11 12]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from sensord.fusion.fuser import Fuser, FusionConfig
from sensord.fusion.radar import RadarFusion
from sensord.fusion.recordings import RadarRecordingSpec, RecordingSpec, fuse_recordings
from sensord.geo import Site, great_circle_m
from sensord.radar.detections import RadarDetection
from sensord.radar.geometry import Bistatic
from sensord.sim import random_scenario, record
from sensord.sim.radar import load_radar_truth, radar_scene, record_radar

CENTER = Site(52.0, 4.5, 10.0)
TX = Site(52.2, 4.6, 100.0)
RX2 = Site(51.93, 4.78, 5.0)
START_UTC = 1.75e9


def run(seed: int, seconds: float, d: Path) -> dict:
    scenario = random_scenario(8, CENTER, 30e3, seed=seed, min_range_m=5e3)
    adsb, _ = record(scenario, d / "adsb", 2.4e6, seconds + 1, seed=seed, fmt="sigmf",
                     start_utc=START_UTC)  # fmt: skip
    scene1 = radar_scene(CENTER, TX, scenario=scenario, n_dark=3, n_drones=1, seed=seed)
    scene2 = replace(scene1, bistatic=Bistatic(TX, RX2, scene1.bistatic.carrier_hz))
    radars, truth = [], {}
    for node, scene in (("r1", scene1), ("r2", scene2)):
        paths = record_radar(scene, d / node, seconds, seed=seed, sigmf=True, start_utc=START_UTC)
        radars.append(RadarRecordingSpec(node, paths[0], scene.bistatic))
        truth[node] = load_radar_truth(d / node)
    fuser = Fuser(FusionConfig(site=CENTER, reorder_window_s=1.0))
    leftover: list[tuple[str, float, RadarDetection]] = []
    original = RadarFusion._range_doppler

    def keep_leftover(self, node, utc, dets):  # what no track took, for scoring
        leftover.extend((node.name, utc, d) for d in dets)
        return original(self, node, utc, dets)

    RadarFusion._range_doppler = keep_leftover  # type: ignore[method-assign]
    updates = []
    cpu0 = time.process_time()
    for batch in fuse_recordings([RecordingSpec("adsb1", adsb[0], CENTER)], fuser, radars=radars):
        updates += batch
    cpu_s = time.process_time() - cpu0
    RadarFusion._range_doppler = original  # type: ignore[method-assign]
    confirmed_from: dict[int, float] = {}
    for u in updates:
        # confirmed, with a measured velocity (a track's state has none before its first
        # velocity message: ground speed 0, and bistatic echoes are withheld until then)
        if u.icao and u.status.value == "confirmed" and (u.gs_kt or 0.0) > 1.0:
            confirmed_from.setdefault(int(u.icao, 16), u.utc)
    status = fuser.statistics()["radar"]
    out: dict = {"seed": seed, "radar": status, "cpu_s": cpu_s}
    for node in ("r1", "r2"):  # echoes of tracked aircraft that no track took
        rows = truth[node][truth[node]["kind"] == "aircraft"]
        missed = 0
        for name, utc, d in leftover:
            k = round((utc - START_UTC) / 0.5 - 0.5)
            near = rows[(rows["cpi"] == k)
                        & (np.abs(rows["bistatic_range_m"] - d.bistatic_range_m) < 300.0)
                        & (np.abs(rows["doppler_hz"] - d.doppler_hz) < 2.0)]  # fmt: skip
            missed += name == node and any(
                confirmed_from.get(int(i), np.inf) <= utc for i in near["icao"]
            )
        out[f"{node}_missed"] = missed
    targets = scene1.targets
    located = [u for u in updates if u.track_id.startswith("R") and u.lat_deg is not None]
    errors, ghosts, first = [], set(), {}
    for u in located:
        t = u.utc - START_UTC
        dist = [great_circle_m(u.lat_deg, u.lon_deg, s.lat_deg, s.lon_deg)
                for s in (tg.aircraft.state_at(t) for tg in targets)]  # fmt: skip
        k = int(np.argmin(dist))
        errors.append(dist[k])
        if dist[k] > 1000.0:
            ghosts.add(u.track_id)
        else:
            first.setdefault(k, t)
    out.update(errors=errors, ghosts=ghosts, first=first,
               kinds={k: targets[k].kind for k in first})  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 12])
    args = ap.parse_args()
    all_errors = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            r = run(seed, args.seconds, Path(tmp))
        print(f"seed {seed}:")
        cpis = 0
        for node, s in r["radar"]["nodes"].items():
            cpis += s["cpis"]
            print(f"  {node}: {s['detections']} detections in {s['cpis']} CPIs; "
                  f"{s['cooperative']} updated transponder tracks, "
                  f"{r[f'{node}_missed']} echoes of tracked aircraft left over "
                  f"({s['cooperative'] / max(1, s['cooperative'] + r[f'{node}_missed']):.1%} "
                  "associated); "
                  f"{s['range_doppler']} to range-Doppler tracks; bias {s['bias']}")  # fmt: skip
        e = np.array(r["errors"])
        all_errors += r["errors"]
        print(
            f"  located tracks: {len(e)} states, error median {np.median(e):.0f} m, "
            f"p95 {np.percentile(e, 95):.0f} m; ghosts {sorted(r['ghosts']) or 'none'}"
        )
        print(
            "  first located (s after start): "
            + ", ".join(f"{r['kinds'][k]}#{k} {t:.1f}" for k, t in sorted(r["first"].items()))
        )
        print(
            f"  fusion CPU {r['cpu_s']:.1f} s for {args.seconds:.0f} s of data with "
            f"{cpis} radar CPIs (includes the receiver chain and both radar processors)"
        )
    e = np.array(all_errors)
    print(
        f"all seeds: located-state error median {np.median(e):.0f} m, p95 "
        f"{np.percentile(e, 95):.0f} m, {len(e)} states"
    )


if __name__ == "__main__":
    main()
