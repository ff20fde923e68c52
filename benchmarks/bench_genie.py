"""How much of the simulated 10-15 dB bucket any magnitude decoder could recover.

A *genie* decoder is told, for every non-overlapped 10-15 dB reply, what no real decoder
knows: its exact sub-sample start, its amplitude, the noise level and the pulse shape.
It then finds the most likely bit sequence from the recording's magnitudes: a Viterbi
search over bits (state: the last two bits; per-survivor history for any older bit a
sample still depends on) whose branch metric is the exact Rician log-likelihood of each
magnitude sample given the noise-free envelope the hypothesised bits produce
(``sensord.sim.modulate``, the same waveform the simulator drew). Nothing a real
decoder does can beat it on average, so its yield bounds what the samples hold.

Printed per sample rate, by where the reply starts within a sample (tenths): replies;
the share whose most likely sequence has no bit error, at most 3 (what correction could
repair at best); the share a CRC-aided list search gets right (the first of the
LIST_SIZE most likely sequences whose CRC agrees with the reply's parity, which a
decoder knows: zero, or an address it has heard); the same list search *estimated*: the
start given with ``--start-error-ns`` rms of error and the amplitude fitted to the
preamble, as a real decoder would have them (the pulse shape still known); and sensord's
yield on the same replies (1-bit fix, as ``bench_sensitivity.py``). Replies sent with
injected bit errors, and clipped ones, are left out.

    python benchmarks/bench_genie.py [--seed 1] [--duration 20] [--band-fraction 0]
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sensitivity import decode_sensord, score

from sensord._crc import syndrome
from sensord.sim import (
    Channel,
    modulate,
    random_scenario,
    simulate,
)

CU8_DC = 127.4
CU8_SCALE = 127.5
STATE_BITS = 5  # Viterbi state: the last five bits (older ones barely move a sample)
INFLUENCE = 0.01  # a bit moves a sample if by this much of the plateau
# sensord's arrival error at 10-15 dB (BENCHMARKS.md, bench_toa.py), ns rms, by rate
START_ERROR_NS = {2.4e6: 20.0, 2.0e6: 70.0}
LIST_SIZE = 64  # paths kept per state by the list search


def _margin(rate_hz: float, band_hz: float | None) -> int:
    """Samples before a reply's start that its filtered envelope can reach."""
    return math.ceil(modulate.pad(band_hz) * rate_hz / modulate.FINE_HZ) + 2


def _levels(msg: bytes, start: float, rate_hz: float, band_hz: float | None) -> np.ndarray:
    """Noise-free signed envelope (plateau 1) of ``msg`` at the recording's samples from
    ``floor(start) - _margin`` on (a fixed window, so that messages line up)."""
    first, wave = modulate.sampled_reply(msg, start, rate_hz, 1.0, 0.0, 0.0, band_hz)
    margin = _margin(rate_hz, band_hz)
    out = np.zeros(int((8 + 112) * 1e-6 * rate_hz) + 2 * margin + 4)
    a = first - (math.floor(start) - margin)
    out[a : a + len(wave)] = wave.real[: len(out) - a]  # signed: the low-pass rings
    return out


def _rician_ll(r: np.ndarray, s: np.ndarray, sigma: float) -> np.ndarray:
    """log p(magnitude r | envelope s) up to terms free of s (sigma per I/Q component)."""
    from scipy.special import i0e

    z = r * s / sigma**2
    return -(s**2) / (2 * sigma**2) + np.log(i0e(z)) + z


@dataclass
class ReplyModel:
    """A reply's noise-free envelope as a function of its bits: ``base`` (all bits 0) plus
    ``delta[i]`` for bit i set; ``last_bit[k]``: the latest bit that moves sample k."""

    base: np.ndarray
    delta: np.ndarray
    last_bit: np.ndarray
    margin: int  # samples before floor(start) where ``base`` begins
    state_bits: int = STATE_BITS  # the search's state: bits before a sample's latest

    @classmethod
    def of(
        cls, nbits: int, start: float, rate_hz: float, band_hz: float | None,
        state_bits: int = STATE_BITS,
    ) -> ReplyModel:  # fmt: skip
        nbytes = nbits // 8
        base = _levels(bytes(nbytes), start, rate_hz, band_hz)
        delta = np.empty((nbits, len(base)))
        for i in range(nbits):
            one = bytearray(nbytes)
            one[i // 8] = 0x80 >> (i % 8)
            delta[i] = _levels(bytes(one), start, rate_hz, band_hz) - base
        touches = np.abs(delta) > INFLUENCE
        last = np.where(touches.any(axis=0), nbits - 1 - np.argmax(touches[::-1], axis=0), -1)
        return cls(base, delta, last, _margin(rate_hz, band_hz), state_bits)

    def truncated(self, bits: np.ndarray) -> np.ndarray:
        """The envelope of ``bits`` as the search sees it: each sample moved only by its
        latest bit and the ``state_bits`` before."""
        out = self.base.copy()
        for k in np.flatnonzero(self.last_bit >= 0):
            i = self.last_bit[k]
            lo = max(0, i - self.state_bits)
            out[k] += bits[lo : i + 1] @ self.delta[lo : i + 1, k]
        return out

    def exact(self, bits: np.ndarray) -> np.ndarray:
        return self.base + bits @ self.delta

    def window(self, mags: np.ndarray, start: float) -> np.ndarray:
        """The recording's magnitudes on this model's samples (reply starting at start)."""
        origin = math.floor(start) - self.margin
        return mags[origin : origin + len(self.base)]

    def preamble_amplitude(self, window: np.ndarray) -> float:
        """The reply's amplitude fitted (least squares) to its preamble's pulses, where no
        data bit reaches: what a decoder can estimate before it has any bit."""
        k = np.flatnonzero((self.last_bit < 0) & (self.base > 0.2))
        return float(window[k] @ self.base[k] / (self.base[k] @ self.base[k]))


def branch_metrics(model: ReplyModel, mags: np.ndarray, amp: float, sigma: float) -> np.ndarray:
    """``[bit, state, new bit]`` log-likelihood of the samples whose latest moving bit is
    ``bit``, given the ``model.state_bits`` bits before it (``state``, newest in bit 0) and the bit
    itself (``mags``: the recording's magnitudes on ``_levels``' window)."""
    nbits = len(model.delta)
    r = mags[: len(model.base)]
    n_states = 1 << model.state_bits
    state_bits = (np.arange(n_states)[:, None] >> np.arange(model.state_bits)[None, :]) & 1
    out = np.zeros((nbits, n_states, 2))
    for i in range(nbits):
        k = np.flatnonzero(model.last_bit == i)  # samples no bit moves favour all paths alike
        if not len(k):
            continue
        older = np.zeros((model.state_bits, len(k)))
        for back in range(min(model.state_bits, i)):
            older[back] = model.delta[i - 1 - back, k]
        level = model.base[k] + state_bits @ older  # [state, sample]
        for bit in (0, 1):
            s = amp * np.abs(level + bit * model.delta[i, k])
            out[i, :, bit] = _rician_ll(r[k], s, sigma).sum(axis=1)
    return out


def list_viterbi(metrics: np.ndarray, list_size: int = LIST_SIZE) -> list[np.ndarray]:
    """The ``list_size`` most likely bit sequences, best first (parallel list Viterbi)."""
    nbits, n_states, _ = metrics.shape
    score = np.full((n_states, list_size), -np.inf)
    score[0, 0] = 0.0  # no bit before the first: state 0
    back_state = np.zeros((nbits, n_states, list_size), dtype=np.int16)
    back_rank = np.zeros((nbits, n_states, list_size), dtype=np.int16)
    for i in range(nbits):
        new = np.full_like(score, -np.inf)
        for ns in range(n_states):
            bit = ns & 1
            preds = ((ns >> 1), (ns >> 1) | (n_states >> 1))
            cand = np.concatenate([score[p] + metrics[i, p, bit] for p in preds])
            top = np.argsort(cand)[::-1][:list_size]
            new[ns] = cand[top]
            back_state[i, ns] = np.take(preds, top // list_size)
            back_rank[i, ns] = top % list_size
        score = new
    flat = np.argsort(score.ravel())[::-1][:list_size]
    paths = []
    for f in flat:
        if not np.isfinite(score.ravel()[f]):
            break
        state, rank = divmod(int(f), list_size)
        bits = np.zeros(nbits, dtype=np.uint8)
        for i in range(nbits - 1, -1, -1):
            bits[i] = state & 1
            state, rank = int(back_state[i, state, rank]), int(back_rank[i, state, rank])
        paths.append(bits)
    return paths


def crc_first(paths: list[np.ndarray], sent: np.ndarray) -> bool:
    """Whether the first path whose CRC agrees with the reply's parity (what a decoder
    knows: zero, or an address it has heard) is the reply itself."""
    for bits in paths:
        if syndrome(np.packbits(bits ^ sent).tobytes(), len(sent)) == 0:
            return bool(np.array_equal(bits, sent))
    return False


def run_rate(args: argparse.Namespace, rate_hz: float) -> None:
    channel = Channel(band_fraction=args.band_fraction)
    res = simulate(
        random_scenario(args.aircraft, seed=args.seed, max_range_m=args.max_range_km * 1e3),
        rate_hz=rate_hz, duration_s=args.duration, seed=args.seed, channel=channel,
        rx_gain_db=args.rx_gain_db,
    )  # fmt: skip
    truth = res.truth
    ours = score(truth, decode_sensord(res.iq, rate_hz))
    snr = truth["snr_db"]
    rows = np.flatnonzero(
        ~truth["overlapped"] & (snr >= 10) & (snr < 15) & (truth["injected_error_bits"] == 0)
        & ~truth["clipped"]
    )  # fmt: skip
    iq = (res.iq.astype(np.float32) - CU8_DC) / CU8_SCALE
    mag = np.hypot(iq[0::2], iq[1::2])
    sigma = channel.noise_sigma
    band_hz = args.band_fraction * rate_hz or None
    errors = np.zeros(len(rows), dtype=int)  # bit errors of the most likely sequence
    by_crc = np.zeros(len(rows), dtype=bool)  # the list's first CRC-consistent path is right
    worst = 0.0  # largest envelope error the search's truncated model makes (plateau 1)
    start_error_ns = args.start_error_ns
    if start_error_ns is None:
        start_error_ns = START_ERROR_NS[rate_hz]
    estimated = np.zeros(len(rows), dtype=bool)  # the same with timing and amplitude estimated
    rng = np.random.default_rng(args.seed)
    for n, j in enumerate(rows):
        t = truth[j]
        nbits = int(t["nbits"])
        sent = modulate.message_bits(bytes(t["msg"][: nbits // 8]))
        start = float(t["sample_idx"])
        amp = sigma * math.sqrt(2) * 10 ** (float(t["snr_db"]) / 20)
        model = ReplyModel.of(nbits, start, rate_hz, band_hz, args.state_bits)
        worst = max(worst, float(np.abs(model.truncated(sent) - model.exact(sent)).max()))
        metrics = branch_metrics(model, model.window(mag, start), amp, sigma)
        paths = list_viterbi(metrics, args.list_size)
        errors[n] = int(np.count_nonzero(paths[0] != sent))
        by_crc[n] = crc_first(paths, sent)
        start_hat = start + rng.normal(0.0, start_error_ns * 1e-9 * rate_hz)
        model_hat = ReplyModel.of(nbits, start_hat, rate_hz, band_hz, args.state_bits)
        window_hat = model_hat.window(mag, start_hat)
        amp_hat = model_hat.preamble_amplitude(window_hat)
        paths = list_viterbi(branch_metrics(model_hat, window_hat, amp_hat, sigma), args.list_size)
        estimated[n] = crc_first(paths, sent)
    decile = np.minimum((truth["sample_idx"][rows] % 1.0 * 10).astype(int), 9)
    got_ours = ours.matched[rows] >= 0
    print(
        f"\n{rate_hz / 1e6:g} MS/s, seed {args.seed}, {args.duration:g} s, band "
        f"{args.band_fraction:g} x rate: {len(rows)} non-overlapped 10-15 dB replies "
        f"(search: {1 << args.state_bits} states, {args.list_size} paths each, model off by at "
        f"most {worst:.3f} of the plateau; 'estimated': start "
        f"{start_error_ns:g} ns rms off, amplitude from the preamble)"
    )
    print(
        f"  {'start in sample':16} {'replies':>8} {'ML 0 err':>9} {'ML <=3':>7} "
        f"{'list+CRC':>9} {'estimated':>10} {'sensord':>8}"
    )
    for d in [*range(10), None]:
        sel = np.ones(len(rows), dtype=bool) if d is None else decile == d
        label = "all" if d is None else f"{d / 10:.1f}-{(d + 1) / 10:.1f}"
        if sel.any():
            print(
                f"  {label:16} {int(sel.sum()):8d} {np.mean(errors[sel] == 0):9.3f} "
                f"{np.mean(errors[sel] <= 3):7.3f} {np.mean(by_crc[sel]):9.3f} "
                f"{np.mean(estimated[sel]):10.3f} "
                f"{np.mean(got_ours[sel]):8.3f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aircraft", type=int, default=25)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds simulated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-range-km", type=float, default=350.0)
    parser.add_argument("--rx-gain-db", type=float, default=-6.0)
    parser.add_argument("--rates", type=float, nargs="+", default=[2.4e6, 2.0e6])
    parser.add_argument("--state-bits", type=int, default=STATE_BITS)
    parser.add_argument("--list-size", type=int, default=LIST_SIZE)
    parser.add_argument(
        "--start-error-ns", type=float, default=None,
        help="rms error of the start the 'estimated' column is given (default: sensord's "
        "arrival estimate at 10-15 dB, bench_toa.py: 20 ns at 2.4 MS/s, 70 ns at 2.0)",
    )  # fmt: skip
    parser.add_argument(
        "--band-fraction", type=float, default=0.0,
        help="the dongle's low-pass as a fraction of the rate (0.475: real pulses)",
    )  # fmt: skip
    args = parser.parse_args()
    for rate_hz in args.rates:
        run_rate(args, rate_hz)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
