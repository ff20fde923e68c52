"""Passive radar figures (issue 14): detection, accuracy, false alarms, CPU and memory per CPI.

    python benchmarks/bench_radar.py [--scenes 4] [--seconds 3]

Everything runs on the simulator (sensord.sim.radar): FM illumination, 8-bit channels,
direct path, static multipath, aircraft, dark aircraft and drones. Detection figures are
for targets in the map and outside the zero-Doppler notch; ``map SNR`` is the truth's
ideal coherent SNR (no window, straddle or CFAR loss; other targets' pedestal included).
CPU is process time on one thread (scipy.fft workers=1, BLAS pinned to one thread); the
machine is shared, so the same run also times one 2^20-point complex FFT as a yardstick.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
import tracemalloc

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from sensord.geo import Site
from sensord.radar import cfar
from sensord.radar.processor import RadarParams, RadarProcessor
from sensord.radar.source import Cpi
from sensord.sim.radar import radar_scene, simulate_radar

RX = Site(52.0, 4.5, 10.0)
TX = Site(52.2, 4.6, 100.0)


def cpis(sim, params: RadarParams, skew: int = 3):
    h, n = params.history, params.n_samples
    ref, surv = sim.ref, sim.surv[skew:]
    k = 0
    while h + (k + 1) * n <= len(surv):
        s0 = h + k * n
        yield Cpi(k, s0, params.rate_hz, ref[s0 - h : s0 + n], surv[s0 : s0 + n], h, 0, 0.0)
        k += 1


def match(res, truth):
    rows = truth[(truth["cpi"] == res.cpi) & truth["in_map"] & ~truth["in_notch"]]
    used, pairs = set(), []
    for row in rows:
        best = None
        for j, d in enumerate(res.detections):
            dr = d.bistatic_range_m - row["bistatic_range_m"]
            dd = d.doppler_hz - row["doppler_hz"]
            if abs(dr) < 600 and abs(dd) < 3 and (best is None or abs(dd) < abs(best[2])):
                best = (j, dr, dd)
        if best:
            used.add(best[0])
        pairs.append((float(row["map_snr_db"]), best))
    return pairs, len(res.detections) - len(used)


def fft_yardstick_ms() -> float:
    from scipy import fft

    x = (np.random.default_rng(0).standard_normal(2 << 20)).astype(np.float32).view(np.complex64)
    fft.fft(x, workers=1)
    t = time.process_time()
    for _ in range(5):
        fft.fft(x, workers=1)
    return (time.process_time() - t) / 5 * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--pfa", type=float, default=1e-4)
    args = ap.parse_args()
    params = RadarParams(cfar=cfar.CfarParams(pfa=args.pfa))
    proc = RadarProcessor(params)
    pairs, false, maps = [], 0, 0
    stage: dict[str, list[float]] = {}
    mem_peak = []
    for seed in range(1, args.scenes + 1):
        scene = radar_scene(RX, TX, n_aircraft=9, n_dark=3, n_drones=3, seed=seed)
        sim = simulate_radar(scene, args.seconds + 0.01, seed=seed)
        for cpi in cpis(sim, params):
            tracemalloc.start()
            res = proc.process(cpi)
            mem_peak.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            res = proc.process(cpi)  # timed without tracemalloc's overhead
            for k, v in res.timings_s.items():
                stage.setdefault(k, []).append(v)
            p, f = match(res, sim.truth)
            pairs += p
            false += f
            maps += 1
    snr = np.array([s for s, _ in pairs])
    hit = np.array([b is not None for _, b in pairs])
    print(f"targets x CPIs in map (outside the notch): {len(pairs)} over {maps} maps")
    for lo, hi in ((5, 10), (10, 15), (15, 20), (20, 30), (30, 80)):
        m = (snr >= lo) & (snr < hi)
        if m.any():
            print(f"  map SNR {lo:>2}-{hi:<2} dB: n={m.sum():4d}  Pd={hit[m].mean():.3f}")
    strong = snr >= 15
    dr = np.array([b[1] for s, b in pairs if b is not None and s >= 15])
    dd = np.array([b[2] for s, b in pairs if b is not None and s >= 15])
    print(f"Pd at map SNR >= 15 dB: {hit[strong].mean():.3f} at Pfa {args.pfa:g} (target >= 0.9)")
    print(f"bistatic range error >= 15 dB: rms {math.sqrt(np.mean(dr**2)):.1f} m, "
          f"bias {dr.mean():+.1f} m (target <= 150 m rms)")  # fmt: skip
    print(f"Doppler error >= 15 dB: rms {math.sqrt(np.mean(dd**2)):.3f} Hz, "
          f"bias {dd.mean():+.3f} Hz (target <= 0.5 Hz rms)")  # fmt: skip
    print(f"detections no target explains (ghosts + false alarms): {false / maps:.2f} per map")
    # false alarms on maps without targets: exceeding cells against pfa x searched cells
    scene = radar_scene(RX, TX, n_aircraft=0, n_dark=0, n_drones=0, seed=99)
    sim = simulate_radar(scene, args.seconds + 0.01, seed=99)
    for pfa in (1e-3, 1e-4, 1e-5):
        pp = RadarParams(cfar=cfar.CfarParams(pfa=pfa))
        pr = RadarProcessor(pp)
        res = [pr.process(c) for c in cpis(sim, pp)]
        cells = sum(r.exceed_cells for r in res) / len(res)
        design = pfa * res[0].searched_cells
        print(f"false alarms, no targets, Pfa {pfa:g}: {cells:.2f} cells/map, design "
              f"{design:.2f} (ratio {cells / design:.2f}; target within 2x)")  # fmt: skip
    cpi_ms = params.cpi_s * 1e3
    med = {k: statistics.median(v) * 1e3 for k, v in stage.items()}
    total = med["clutter"] + med["caf"] + med["cfar"]
    print(f"CPU per CPI ({params.cpi_s:g} s at {params.rate_hz / 1e6:g} MS/s, "
          f"{params.n_range} x {params.n_doppler}), median of {maps}:")  # fmt: skip
    for k in ("check", "clutter", "caf", "cfar"):
        print(f"  {k:8s} {med[k]:7.1f} ms")
    print(
        f"  clutter+CAF+CFAR {total:.1f} ms = {100 * total / cpi_ms:.1f}% of the CPI "
        f"(target <= 25%); with the coherence check {100 * (total + med['check']) / cpi_ms:.1f}%"
    )
    fft_ms = fft_yardstick_ms()
    print(f"yardstick: one 2^20-point complex64 FFT {fft_ms:.1f} ms in this run "
          f"(the CPI costs {total / fft_ms:.1f} of them)")  # fmt: skip
    print(f"memory per CPI: peak {max(mem_peak) / 2**20:.0f} MiB of numpy allocations "
          f"(input CPI {2 * params.n_samples * 8 / 2**20:.0f} MiB complex64)")  # fmt: skip


if __name__ == "__main__":
    main()
