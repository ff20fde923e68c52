"""Sub-sample arrival times (``toa_12mhz``) against the simulator's true arrivals, by SNR.

Simulates random scenarios (``sensord.sim``) at 2.4 and 2.0 MS/s, at two receiver gains
so that replies span about 8 to 35 dB SNR, decodes them, matches every frame to the
transmitted reply (same bytes, nearest in time) and compares the frame's arrival with
the true arrival of the preamble's first pulse leading edge. Printed per SNR bin: frames,
rms, bias and 95th percentile of the error in ns, for ``toa_12mhz`` and, for contrast, for
``ts_12mhz`` (the preamble start on the demodulator's phase grid, whole 12 MHz ticks).
Overlapped replies are left out. The sample period is 417 ns at 2.4 MS/s, 500 ns at 2.0.

    python benchmarks/bench_toa.py [--duration 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from bench_sensitivity import Decoded, match

from sensord.demod import Demodulator
from sensord.frames import TICKS_PER_S
from sensord.sim import random_scenario, simulate

SNR_BINS_DB = (8, 10, 12, 14, 16, 18, 22, 26, 30, 40)
GAINS_DB = (-6.0, 2.0)
BLOCK = 1 << 18


def arrival_errors_ns(rate_hz: float, gain_db: float, args: argparse.Namespace):
    """(true SNR dB, toa error ns, ts error ns) of every decoded non-overlapped reply."""
    res = simulate(
        random_scenario(args.aircraft, seed=args.seed),
        rate_hz=rate_hz,
        duration_s=args.duration,
        seed=args.seed,
        rx_gain_db=gain_db,
    )
    demod = Demodulator(rate_hz)
    iq = res.iq
    parts = [demod.feed(iq[k : k + 2 * BLOCK], "cu8") for k in range(0, len(iq), 2 * BLOCK)]
    frames = np.concatenate([*parts, demod.flush()])
    hexes = [bytes(f["msg"][: f["nbits"] // 8]).hex().upper() for f in frames]
    matched = match(res.truth, Decoded("sensord", hexes, frames["t_s"].astype(float), 0.0))
    rows = np.flatnonzero((matched >= 0) & ~res.truth["overlapped"])
    got = frames[matched[rows]]
    true_ticks = res.truth["sample_idx"][rows] * (TICKS_PER_S / rate_hz)
    ns_per_tick = 1e9 / TICKS_PER_S
    toa_err = (got["toa_12mhz"] - true_ticks) * ns_per_tick
    ts_err = (got["ts_12mhz"].astype(np.float64) - true_ticks) * ns_per_tick
    return res.truth["snr_db"][rows], toa_err, ts_err


def summary(err: np.ndarray) -> str:
    rms = float(np.sqrt(np.mean(err**2)))
    p95 = float(np.percentile(np.abs(err), 95))
    return f"{rms:7.1f} {float(np.mean(err)):+7.1f} {p95:7.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aircraft", type=int, default=25)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per recording")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rates", type=float, nargs="+", default=[2.4e6, 2.0e6])
    args = parser.parse_args()
    for rate_hz in args.rates:
        parts = [arrival_errors_ns(rate_hz, g, args) for g in GAINS_DB]
        snr, toa, ts = (np.concatenate(x) for x in zip(*parts, strict=True))
        print(
            f"\n{rate_hz / 1e6:g} MS/s (sample period {1e9 / rate_hz:.0f} ns), "
            f"{len(snr)} non-overlapped frames; errors in ns"
        )
        print(
            f"  {'SNR dB':>9} {'frames':>7}   {'toa_12mhz rms bias p95':>24}"
            f"   {'ts_12mhz rms bias p95':>23}"
        )
        for lo, hi in itertools.pairwise(SNR_BINS_DB):
            sel = (snr >= lo) & (snr < hi)
            if sel.sum() < 5:
                continue
            print(
                f"  {lo:3d} - {hi:<3d} {int(sel.sum()):7d}   {summary(toa[sel])}"
                f"   {summary(ts[sel])}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
