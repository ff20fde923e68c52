"""Demodulator throughput: mega-samples per CPU-second, with and without 1-bit correction.

Runs ``Demodulator.feed`` over the real recordings in ../shared/iq (repeated so each
measurement covers enough samples), over modes1 resampled 6/5 to 2.4 MS/s (how the
reference figures in ../shared/iq/README.md were taken) and over a simulated recording,
in 256k-sample blocks as a live source delivers them, and prints one row per case plus
peak memory. A 2.4 MS/s stream costs 2.4 / (MS per CPU-second) of one core.

Where ``dump1090-mutability`` (Debian's package of the C decoder dump1090-fa grew from)
is installed, it decodes every 2.4 MS/s cu8 case (the resampled modes1 and the simulated
recording) in the same run, for a same-machine, same-moment comparison with a C
demodulator (``--fix``; its CPU time includes reading the file), and the ratios of
sensord's MS per CPU-second (1-bit correction) to its are printed side by side.

    python benchmarks/bench_demod.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from scipy.signal import resample_poly

from sensord.demod import Demodulator
from sensord.sim import random_scenario, simulate
from sensord.source.iqfile import IQFileSource

# the real recordings beside the repository (a worktree elsewhere: set SENSORD_SHARED_IQ)
SHARED_IQ = Path(
    os.environ.get("SENSORD_SHARED_IQ")
    or Path(__file__).resolve().parents[1].parent / "shared" / "iq"
)
BLOCK = 1 << 18


def load(path: Path) -> tuple[np.ndarray, str, float]:
    src = IQFileSource(
        path, iq_order="qi" if path.suffix == ".sc16" else "iq", block_samples=1 << 30
    )
    block = next(iter(src.blocks()))
    return block.samples, block.fmt, src.rate_hz


def resample_cu8(samples: np.ndarray, up: int, down: int) -> np.ndarray:
    """cu8 IQ resampled by up/down (polyphase filter), back to cu8."""
    x = samples.astype(np.float32) - 127.4
    y = resample_poly(x[0::2] + 1j * x[1::2], up, down)
    out = np.empty(2 * len(y), dtype=np.float32)
    out[0::2], out[1::2] = y.real, y.imag
    return np.clip(np.round(out + 127.4), 0, 255).astype(np.uint8)


def measure_c_reference(samples: np.ndarray) -> tuple[float, float] | None:
    """(MS per CPU-second, frames per pass) of dump1090-mutability on 2.4 MS/s cu8."""
    exe = shutil.which("dump1090-mutability")
    if exe is None:
        return None
    passes = max(1, int(50e6 / (len(samples) // 2)))  # about 50 M samples, 100 MB of file
    with tempfile.NamedTemporaryFile(suffix=".cu8") as f:
        for _ in range(passes):
            f.write(samples.tobytes())
        f.flush()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(
            [exe, "--ifile", f.name, "--quiet", "--stats", "--fix"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    usable = next(int(line.split()[0]) for line in out.splitlines() if "total usable" in line)
    return len(samples) // 2 * passes / max(cpu_s, 1e-3) / 1e6, usable / passes


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
        samples, _, _ = load(SHARED_IQ / "antirez_dump1090_modes1_2000k.cu8")
        cases.append(("modes1 resampled to 2.4 MS/s", resample_cu8(samples, 6, 5), "cu8", 2.4e6))
    else:
        print(f"note: {SHARED_IQ} missing, real recordings skipped", file=sys.stderr)
    for rate in (2.4e6, 2.0e6):
        res = simulate(random_scenario(60, seed=11), rate_hz=rate, duration_s=4.0, seed=11)
        cases.append((f"simulated 60 aircraft {rate / 1e6:g} MS/s", res.iq, "cu8", rate))
    print(
        f"{'recording':48} {'fix':>3} {'MS/cpu-s':>9} {'core % @2.4MS/s':>16} {'frames/pass':>12}"
    )
    ratios = []
    for name, samples, fmt, rate in cases:
        for fix in (1, 0):
            msps, frames = measure(samples, fmt, rate, fix, args.seconds)
            print(f"{name:48} {fix:>3} {msps:9.1f} {240 / msps:15.2f}% {frames:12.0f}")
            if fix != 1 or fmt != "cu8" or rate != 2.4e6:
                continue
            ref = measure_c_reference(samples)
            if ref is None:
                print("dump1090-mutability not installed: no same-run C comparison")
                continue
            c_name = "  dump1090-mutability --fix, same file"
            print(f"{c_name:48} {1:>3} {ref[0]:9.1f} {240 / ref[0]:15.2f}% {ref[1]:12.0f}")
            ratios.append((name, msps, ref[0]))
    if ratios:
        print("\nsensord / dump1090-mutability, MS per CPU-second, 1-bit correction, same run:")
        for name, ours, theirs in ratios:
            print(f"  {name:46} {ours:7.1f} / {theirs:7.1f} = {ours / theirs:.2f}x")
    name, samples, fmt, rate = cases[-2]
    print(f"demodulator peak allocation on {name}: {peak_alloc_mb(samples, fmt, rate):.1f} MB")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB (includes the simulated recordings held in memory)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
