"""Demodulator throughput: mega-samples per CPU-second, with and without 1-bit correction.

Runs ``Demodulator.feed`` over the real recordings in ../shared/iq (repeated so each
measurement covers enough samples) and over a simulated recording, in 256k-sample
blocks as a live source delivers them, and prints one row per case plus peak memory.
A 2.4 MS/s stream costs 2.4 / (MS per CPU-second) of one core.

    python benchmarks/bench_demod.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from sensord.demod import Demodulator
from sensord.sim import random_scenario, simulate
from sensord.source.iqfile import IQFileSource

SHARED_IQ = Path(__file__).resolve().parents[1].parent / "shared" / "iq"
BLOCK = 1 << 18


def load(path: Path) -> tuple[np.ndarray, str, float]:
    src = IQFileSource(
        path, iq_order="qi" if path.suffix == ".sc16" else "iq", block_samples=1 << 30
    )
    block = next(iter(src.blocks()))
    return block.samples, block.fmt, src.rate_hz


def measure(samples: np.ndarray, fmt: str, rate_hz: float, fix_bits: int, seconds: float):
    """(MS per CPU-second, frames per pass) over repeated passes of the recording."""
    demod = Demodulator(rate_hz, fix_bits=fix_bits)
    step = 2 * BLOCK
    n = samples.shape[0] // 2
    passes = 0
    t0 = time.process_time()
    while True:
        for k in range(0, samples.shape[0], step):
            demod.feed(samples[k : k + step], fmt)
        passes += 1
        elapsed = time.process_time() - t0
        if elapsed >= seconds:
            break
    return n * passes / elapsed / 1e6, demod.stats.frames / passes


def peak_alloc_mb(samples: np.ndarray, fmt: str, rate_hz: float) -> float:
    """Peak Python/numpy allocation (tracemalloc) of one pass, beyond the recording itself."""
    demod = Demodulator(rate_hz)
    tracemalloc.start()
    for k in range(0, samples.shape[0], 2 * BLOCK):
        demod.feed(samples[k : k + 2 * BLOCK], fmt)
    demod.flush()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per case")
    args = parser.parse_args()
    cases = []
    if SHARED_IQ.is_dir():
        for path in sorted(SHARED_IQ.glob("*.cu8")) + sorted(SHARED_IQ.glob("*.sc16"))[:1]:
            cases.append((path.name, *load(path)))
    else:
        print(f"note: {SHARED_IQ} missing, real recordings skipped", file=sys.stderr)
    for rate in (2.4e6, 2.0e6):
        res = simulate(random_scenario(60, seed=11), rate_hz=rate, duration_s=4.0, seed=11)
        cases.append((f"simulated 60 aircraft {rate / 1e6:g} MS/s", res.iq, "cu8", rate))
    print(
        f"{'recording':48} {'fix':>3} {'MS/cpu-s':>9} {'core % @2.4MS/s':>16} {'frames/pass':>12}"
    )
    for name, samples, fmt, rate in cases:
        for fix in (1, 0):
            msps, frames = measure(samples, fmt, rate, fix, args.seconds)
            print(f"{name:48} {fix:>3} {msps:9.1f} {240 / msps:15.2f}% {frames:12.0f}")
    name, samples, fmt, rate = cases[-2]
    print(f"demodulator peak allocation on {name}: {peak_alloc_mb(samples, fmt, rate):.1f} MB")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB (includes the simulated recordings held in memory)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
