"""Demodulator sensitivity against exact truth, beside Debian's dump1090-mutability ``--fix``.

Simulates the project's scenarios (``sensord.sim``: random aircraft out to
``--max-range-km``, link budget with fading, overlapping replies) at 2.4 and 2.0 MS/s,
decodes each with ``sensord.demod.Demodulator`` (1-bit correction) and, at 2.4 MS/s,
with ``dump1090-mutability --fix`` on the same cu8 file (its raw output with 12 MHz
timestamps, ``--raw --mlat``). Every decoded frame is matched to the transmitted reply
with the same bytes nearest in time (within ``MATCH_US``); a frame matching nothing is
a false frame. SNR is the simulator's: pulse-top amplitude squared over the complex
noise power per sample.

Printed per decoder: the fraction of transmitted replies recovered overall, of
non-overlapped replies at 10-15 dB, of replies under 10 dB, and the false frames.

    python benchmarks/bench_sensitivity.py [--aircraft 25] [--duration 30] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from sensord.demod import Demodulator
from sensord.frames import TICKS_PER_S
from sensord.sim import random_scenario, simulate

# A decoded frame names the transmitted reply with its bytes nearest in time, after the
# decoder's constant clock offset is removed (dump1090-mutability's timestamps run about
# 136 us late, and 85 us less in its first buffer); one aircraft repeats a reply's bytes
# at the earliest milliseconds later, so the window cannot pick the wrong one.
MATCH_US = 100.0
BLOCK = 1 << 18


@dataclass
class Decoded:
    """One decoder's output on a recording: reply hex and arrival time (s, sample clock)."""

    name: str
    hexes: list[str]
    t_s: np.ndarray
    cpu_s: float


@dataclass
class Scores:
    """Fractions of the truth recovered, by bucket, and the frames matching no reply."""

    overall: float
    clean_10_15: float
    under_10: float
    false_frames: int
    matched: np.ndarray  # per truth row: index of the decoded frame, -1 if missed


def truth_hexes(truth: np.ndarray) -> list[str]:
    return [bytes(r["msg"][: r["nbits"] // 8]).hex().upper() for r in truth]


def match(truth: np.ndarray, dec: Decoded, tol_s: float = MATCH_US * 1e-6) -> np.ndarray:
    """Per truth row, the index of the decoded frame carrying it (same bytes, nearest in
    time within tol_s after removing the decoder's constant time offset), or -1."""
    by_hex: dict[str, list[int]] = {}
    for i, h in enumerate(truth_hexes(truth)):
        by_hex.setdefault(h, []).append(i)
    t_true = truth["t_s"]
    # the decoder's clock convention (e.g. a timestamp a few samples into the preamble)
    diffs = [
        dec.t_s[k] - t_true[i]
        for k, h in enumerate(dec.hexes)
        for i in by_hex.get(h, [])
        if abs(dec.t_s[k] - t_true[i]) < 1e-3
    ]
    offset = float(np.median(diffs)) if diffs else 0.0
    matched = np.full(len(truth), -1, dtype=np.int64)
    for k, h in enumerate(dec.hexes):
        rows = [i for i in by_hex.get(h, []) if matched[i] < 0]
        if not rows:
            continue
        err = np.abs(t_true[rows] - (dec.t_s[k] - offset))
        best = int(np.argmin(err))
        if err[best] <= tol_s:
            matched[rows[best]] = k
    return matched


def score(truth: np.ndarray, dec: Decoded) -> Scores:
    matched = match(truth, dec)
    got = matched >= 0
    snr = truth["snr_db"]
    clean = ~truth["overlapped"] & (snr >= 10) & (snr < 15)
    weak = snr < 10
    n_matched = int(got.sum())
    return Scores(
        overall=n_matched / len(truth),
        clean_10_15=float(got[clean].mean()) if clean.any() else float("nan"),
        under_10=float(got[weak].mean()) if weak.any() else float("nan"),
        false_frames=len(dec.hexes) - n_matched,
        matched=matched,
    )


def decode_sensord(iq: np.ndarray, rate_hz: float) -> Decoded:
    demod = Demodulator(rate_hz, fix_bits=1)
    t0 = time.process_time()
    parts = [demod.feed(iq[k : k + 2 * BLOCK], "cu8") for k in range(0, len(iq), 2 * BLOCK)]
    frames = np.concatenate([*parts, demod.flush()])
    cpu = time.process_time() - t0
    hexes = [bytes(f["msg"][: f["nbits"] // 8]).hex().upper() for f in frames]
    return Decoded("sensord", hexes, frames["t_s"].astype(np.float64), cpu)


def decode_mutability(path: Path) -> Decoded | None:
    """dump1090-mutability --fix on a 2.4 MS/s cu8 file, or None if it is not installed."""
    exe = shutil.which("dump1090-mutability")
    if exe is None:
        return None
    proc = subprocess.run(
        [exe, "--ifile", str(path), "--raw", "--mlat", "--fix"],
        capture_output=True,
        text=True,
        check=True,
    )
    hexes, ticks = [], []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("@") and line.endswith(";"):
            ticks.append(int(line[1:13], 16))
            hexes.append(line[13:-1].upper())
    return Decoded("dump1090-mutability --fix", hexes, np.array(ticks) / TICKS_PER_S, 0.0)


def bucket_sizes(truth: np.ndarray) -> str:
    snr = truth["snr_db"]
    clean = ~truth["overlapped"] & (snr >= 10) & (snr < 15)
    return (
        f"{len(truth)} replies, {int(truth['overlapped'].sum())} overlapped, "
        f"{int(clean.sum())} non-overlapped at 10-15 dB, {int((snr < 10).sum())} under 10 dB"
    )


def print_row(name: str, s: Scores) -> None:
    print(
        f"  {name:30} {s.overall:8.3f} {s.clean_10_15:10.3f} {s.under_10:10.3f} {s.false_frames:8d}"
    )


def run_rate(args: argparse.Namespace, rate_hz: float, workdir: Path) -> None:
    res = simulate(
        random_scenario(args.aircraft, seed=args.seed, max_range_m=args.max_range_km * 1e3),
        rate_hz=rate_hz,
        duration_s=args.duration,
        seed=args.seed,
        rx_gain_db=args.rx_gain_db,
        band_fraction=args.band_fraction,
    )
    truth = res.truth
    print(
        f"\n{rate_hz / 1e6:g} MS/s, {args.aircraft} aircraft to {args.max_range_km:g} km,"
        f" rx gain {args.rx_gain_db:g} dB, {args.duration:g} s, seed {args.seed},"
        f" band {args.band_fraction:g} x rate:"
        f" {bucket_sizes(truth)}"
    )
    print(f"  {'decoder':30} {'overall':>8} {'10-15 dB':>10} {'<10 dB':>10} {'false':>8}")
    ours = score(truth, decode_sensord(res.iq, rate_hz))
    print_row("sensord", ours)
    if rate_hz != 2.4e6 or args.no_c:
        return
    path = workdir / "sim.cu8"
    res.iq.tofile(path)
    ref_dec = decode_mutability(path)
    if ref_dec is None:
        print("  dump1090-mutability not installed: no same-run comparison")
        return
    ref = score(truth, ref_dec)
    print_row(ref_dec.name, ref)
    print(
        f"  ratio sensord / mutability: overall {ours.overall / ref.overall:.3f}x, "
        f"10-15 dB {ours.clean_10_15 / max(ref.clean_10_15, 1e-9):.3f}x, "
        f"under 10 dB {ours.under_10 / max(ref.under_10, 1e-9):.3f}x, "
        f"false frames {ours.false_frames} vs {ref.false_frames}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aircraft", type=int, default=25)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds simulated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-range-km", type=float, default=350.0)
    parser.add_argument(
        "--rx-gain-db",
        type=float,
        default=-6.0,
        help="antenna gain minus losses (default -6: replies from 350 km arrive at 5-15 dB)",
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[2.4e6, 2.0e6])
    parser.add_argument("--no-c", action="store_true", help="skip dump1090-mutability")
    parser.add_argument(
        "--band-fraction",
        type=float,
        default=0.0,
        help="the dongle's low-pass as a fraction of the rate (0.475 matches real pulses, "
        "benchmarks/pulse_shape.py; default 0: the simulator's Gaussian alone, sharper)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for rate_hz in args.rates:
            run_rate(args, rate_hz, Path(tmp))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
