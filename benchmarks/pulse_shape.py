"""Pulse shape of real and simulated 2.0 MS/s replies: is the simulator's filter realistic?

At 2.0 MS/s a 0.5 us chip is one sample long, so an isolated pulse (a preamble pulse, or
the first chip of a 1 bit after a 1 bit) is seen by two samples, and its peak sample
depends on where the pulse falls within the sampling grid: a sample on the pulse's centre
sees nearly the full amplitude, while a pulse starting on a sample boundary (the reply's
start ``frac`` near 0 or 1) puts both samples on edges and each sees about half. How far
that dip reaches into the other phases is set by the pulse's rise time (the transmitter's
edges through the receiver's filter): the wider the dip, the smoother the pulse.

For every clean reply (DF11/17/18 that checks without correction, no I/Q value near the
rails, above 24 dB SNR for the simulator), this prints the peak of each isolated pulse
relative to the reply's amplitude (the median peak of its 1 us double pulses, whose
centre is flat): its share under 0.8, its percentiles, and its median by the reply's start
within a sample (the decoder's arrival for a real recording, which at 2.0 MS/s assumes
the simulator's shape and so bunches; the truth for the simulator). Recordings: modes1
(2.0 MS/s), the rsadsb captures (2.4 MS/s, if ../shared/iq or SENSORD_SHARED_IQ has
them), and the simulator at both rates with its Gaussian filter alone and with the
dongle's low-pass at a few fractions of the sample rate (``Channel.band_fraction``).

    python benchmarks/pulse_shape.py [--seed 1] [--fractions 0.5,0.475,0.45]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from sensord.demod import Demodulator
from sensord.sim import modulate, random_scenario, simulate

REPO = Path(__file__).resolve().parents[1]
MODES1 = REPO / "tests" / "data" / "antirez_dump1090_modes1_2000k.cu8"
SHARED_IQ = Path(os.environ.get("SENSORD_SHARED_IQ") or REPO.parent / "shared" / "iq")
CLIP_MAG = 120.0  # magnitude (cu8 units) beyond which a reply may be clipped
FRAC_BINS = np.linspace(0.0, 1.0, 11)


def magnitudes(cu8: np.ndarray) -> np.ndarray:
    x = cu8.astype(np.float64) - 127.4
    return np.hypot(x[0::2], x[1::2])


def chips(msg: bytes, nbits: int) -> np.ndarray:
    """On/off 0.5 us chips of the preamble and the bits, with an off chip after."""
    c = np.zeros(16 + 2 * nbits + 1, dtype=np.int8)
    c[[0, 2, 7, 9]] = 1
    bits = np.unpackbits(np.frombuffer(msg, dtype=np.uint8))[:nbits]
    c[16 + 2 * np.arange(nbits) + (1 - bits)] = 1
    return c


def pulse_peaks(x: np.ndarray, t0: float, c: np.ndarray, sps: float) -> tuple[np.ndarray, float]:
    """(peak / amplitude of each isolated pulse, amplitude) of one reply at sps samples/us."""
    prev = np.concatenate([[0], c[:-1]])
    nxt = np.concatenate([c[1:], [0]])
    start = t0 + 0.5 * sps * np.arange(len(c))  # each chip's start, in samples
    single = np.flatnonzero((c == 1) & (prev == 0) & (nxt == 0))
    double = np.flatnonzero((c == 1) & (prev == 0) & (nxt == 1))
    if len(double) == 0 or len(single) == 0:
        return np.zeros(0), 0.0

    def peak(first: np.ndarray, chips_long: int) -> np.ndarray:
        """The largest sample whose interval overlaps chips_long chips from first."""
        lo = np.floor(start[first] + 0.5).astype(int)
        hi = np.ceil(start[first] + chips_long * 0.5 * sps - 0.5).astype(int)
        return np.array([x[a : b + 1].max() for a, b in zip(lo, hi, strict=True)])

    amp = float(np.median(peak(double, 2)))
    return peak(single, 1) / amp, amp


def survey(name: str, x: np.ndarray, replies, sps: float = 2.0) -> None:
    by_bin: list[list[float]] = [[] for _ in range(len(FRAC_BINS) - 1)]
    allp: list[float] = []
    used = 0
    for t0, msg, nbits in replies:
        if t0 < 2 or t0 + sps * (8 + nbits) + 3 >= len(x):
            continue
        if x[int(t0) : int(t0 + sps * (8 + nbits)) + 2].max() > CLIP_MAG:
            continue
        ratios, amp = pulse_peaks(x, t0, chips(msg, nbits), sps)
        if amp <= 0:
            continue
        used += 1
        frac = t0 % 1.0
        by_bin[min(int(frac * 10), 9)].extend(ratios)
        allp.extend(ratios)
    allp_a = np.array(allp)
    pct = " ".join(f"{v:5.2f}" for v in np.percentile(allp_a, (10, 25, 50, 75, 90)))
    row = " ".join(f"{np.median(b) if b else float('nan'):5.2f}" for b in by_bin)
    print(f"{name:46} {used:4d} {100 * np.mean(allp_a < 0.8):5.1f}%  {pct}   {row}")


def real_replies(
    samples: np.ndarray, rate_hz: float, fmt: str = "cu8"
) -> list[tuple[float, bytes, int]]:
    demod = Demodulator(rate_hz)
    frames = np.concatenate([demod.feed(samples, fmt), demod.flush()])
    keep = (frames["corrected_bits"] == 0) & np.isin(frames["df"], (11, 17, 18))
    return [
        (
            float(f["toa_12mhz"] * rate_hz / 12e6),
            bytes(f["msg"][: f["nbits"] // 8]),
            int(f["nbits"]),
        )
        for f in frames[keep]
    ]


def sim_replies(
    seed: int, band_fraction: float, rate_hz: float
) -> tuple[np.ndarray, list[tuple[float, bytes, int]]]:
    res = simulate(
        random_scenario(25, seed=seed),
        rate_hz=rate_hz,
        duration_s=10.0,
        seed=seed,
        band_fraction=band_fraction,
    )
    t = res.truth
    ok = (t["snr_db"] > 24) & ~t["overlapped"] & ~t["clipped"] & np.isin(t["df"], (11, 17, 18))
    reps = [
        (float(r["sample_idx"]), bytes(r["msg"][: r["nbits"] // 8]), int(r["nbits"])) for r in t[ok]
    ]
    return magnitudes(res.iq), reps


def simulated(seed: int, fractions: list[float], rate_hz: float) -> None:
    sps = rate_hz / 1e6
    for fraction in [0.0, *fractions]:
        x, reps = sim_replies(seed, fraction, rate_hz)
        what = (
            f"+ low-pass {fraction:g} x rate ({fraction * rate_hz / 1e6:.2f} MHz)"
            if fraction
            else f"Gaussian {modulate.FILTER_SIGMA_US:g} us alone"
        )
        survey(f"  simulator, {what}", x, reps, sps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--fractions",
        default=f"0.5,{modulate.BAND_FRACTION},0.45",
        help="dongle low-pass cutoffs tried, as fractions of the sample rate",
    )
    args = parser.parse_args()
    fractions = [float(f) for f in args.fractions.split(",") if f]
    bins = " ".join(f"{a:.1f}+ " for a in FRAC_BINS[:-1])
    print("peak of isolated pulses / reply amplitude: share under 0.8, percentiles, and median")
    print("by the reply's start within a sample (real: from the decoder's model-based arrival)")
    print(f"{'recording':46} {'n':>4} {'<0.8':>6}  {'p10   p25   p50   p75   p90':29}   {bins}")
    real = np.fromfile(MODES1, dtype=np.uint8)
    survey("modes1 (real, 2.0 MS/s)", magnitudes(real), real_replies(real, 2e6))
    simulated(args.seed, fractions, 2.0e6)
    rsadsb = sorted(SHARED_IQ.glob("rsadsb_*_2400k.sc16"))
    if not rsadsb:
        print(f"(no rsadsb recordings in {SHARED_IQ}: no 2.4 MS/s comparison)")
        return
    # 2.4 MS/s: the rsadsb captures (cs16, Q first; magnitudes in cu8 units)
    xs, reps = [], []
    offset = 0
    for path in rsadsb:
        raw = np.fromfile(path, dtype="<i2")
        reps += [(t + offset, m, n) for t, m, n in real_replies(raw, 2.4e6, "cs16")]
        xs.append(np.hypot(raw[0::2], raw[1::2]) * (128 / 32767))
        offset += len(xs[-1])
    survey("rsadsb x3 (real, 2.4 MS/s)", np.concatenate(xs), reps, 2.4)
    simulated(args.seed, fractions, 2.4e6)


if __name__ == "__main__":
    main()
