"""The DSP stage: raw IQ blocks in, verified Mode S frames (``FRAME_DTYPE``) out.

``Demodulator`` wraps the Cython core (``sensord._demod``) with the stream bookkeeping:
it converts each block to magnitudes, carries the tail of the previous block so that a
reply straddling a block boundary is found exactly once, tracks the noise floor, keeps
the sample clock across gaps, and counts what it did.

Address handling (the ICAO filter, on the sample clock):
- an address is *confirmed* by an uncorrected DF11 (IID 0), DF17 or DF18;
- a corrected DF17/18 from an unknown address is reported with ``addr_confirmed`` False
  and makes the address *pending*; a second sighting within the TTL confirms it;
- address/parity replies (DF0/4/5/16/20/21) are reported only for confirmed addresses,
  and DF11 with an interrogator id or a correction only for known ones;
- soft-decision (Chase) corrections of a reply's least confident bits are accepted only
  for addresses already heard (address/parity: confirmed), and a preamble missing its
  first pulse only for replies that check without correction.

Each frame carries ``toa_12mhz``, its sub-sample arrival for multilateration (see
``sensord.frames``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from sensord._demod import DemodCore, magnitude, median_u16
from sensord.frames import FRAME_DTYPE, TICKS_PER_S
from sensord.source.base import SAMPLE_FORMATS, IQBlock

log = logging.getLogger(__name__)

NOISE_WINDOW = 1 << 16  # samples per noise-floor window, aligned on the sample clock
NOISE_STRIDE = 31  # magnitudes at absolute indices divisible by this feed the window median
NOISE_EMA = 0.25  # weight of a new window in the noise-floor estimate
FIX_BITS_DEFAULT = 1  # as [demod] fix_bits (sensord.config.DemodConfig), without importing it


@dataclass
class DemodStats:
    """Counters since start; the daemon publishes them."""

    samples: int = 0
    blocks: int = 0
    gaps: int = 0
    gap_samples: int = 0
    candidates: int = 0
    frames: int = 0
    corrected: int = 0
    frames_by_df: dict[int, int] = field(default_factory=dict)
    noise_dbfs: float = float("nan")
    last_signal_dbfs: float = float("nan")


class _Output:
    """Preallocated arrays the Cython core writes accepted replies into."""

    def __init__(self, cap: int) -> None:
        self.msg = np.zeros((cap, 14), dtype=np.uint8)
        self.nbits = np.zeros(cap, dtype=np.int32)
        self.addr = np.zeros(cap, dtype=np.uint32)
        self.pos = np.zeros(cap, dtype=np.float64)
        self.toa = np.zeros(cap, dtype=np.float64)
        self.power = np.zeros(cap, dtype=np.float32)
        self.fixed = np.zeros(cap, dtype=np.uint8)
        self.confirmed = np.zeros(cap, dtype=np.uint8)

    def views(self, start: int) -> tuple[np.ndarray, ...]:
        """The arrays from row ``start`` on, in the order ``DemodCore.process`` takes them."""
        arrays = (
            self.msg,
            self.nbits,
            self.addr,
            self.pos,
            self.toa,
            self.power,
            self.fixed,
            self.confirmed,
        )
        return tuple(a[start:] for a in arrays)


class Demodulator:
    """A stream demodulator for one source at ``rate_hz`` (2.0 to 3.0 MS/s).

    ``fix_bits``: 1 corrects single-bit errors in DF11/17/18 (the default), 2 also
    corrects two-bit errors (off by default: it invents aircraft), 0 disables it.

    Soft-decision correction (``chase_*``, see ``DemodCore._chase``): a reply failing
    its parity check is retried with up to ``chase_flips`` (DF11/17/18) or
    ``chase_flips_ap`` (address/parity) of its ``chase_bits`` least confident bits
    flipped, each at most ``chase_max_soft`` times the mean bit confidence; accepted only
    for addresses already heard, so it recovers weak replies without inventing aircraft.
    ``fix_bits=0`` disables it too.
    """

    def __init__(
        self,
        rate_hz: float,
        fix_bits: int = FIX_BITS_DEFAULT,
        icao_ttl_s: float = 60.0,
        thresh_pulse: float = 2.0,
        thresh_quiet: float = 1.0,
        nphase: int = 6,
        max_phases: int = 3,
        min_clarity: float = 0.2,
        edge_max_residual: float = 0.1,
        chase_bits: int = 12,
        chase_flips: int = 3,
        chase_flips_ap: int = 2,
        chase_max_soft: float = 0.5,
    ) -> None:
        if fix_bits not in (0, 1, 2):
            raise ValueError("fix_bits must be 0, 1 or 2")
        self.rate_hz = float(rate_hz)
        if fix_bits == 0:
            chase_flips = chase_flips_ap = 0
        self.core = DemodCore(
            self.rate_hz,
            fix_bits=fix_bits,
            icao_ttl_s=icao_ttl_s,
            thresh_pulse=thresh_pulse,
            thresh_quiet=thresh_quiet,
            nphase=nphase,
            max_phases=max_phases,
            min_clarity=min_clarity,
            edge_max_residual=edge_max_residual,
            chase_bits=chase_bits,
            chase_flips=chase_flips,
            chase_flips_ap=chase_flips_ap,
            chase_max_soft=chase_max_soft,
        )
        self._tail = np.zeros(0, dtype=np.uint16)
        self._tail_start = 0  # absolute sample index of _tail[0]
        self._next = 0  # absolute sample where the preamble search resumes
        self._noise_mag = 0.0  # smoothed over the windows completed so far
        self._noise_for: dict[int, float] = {}  # window index -> floor its search uses
        self._noise_acc: list[np.ndarray] = []  # subsample of the window being filled
        self._noise_window = 0  # index of that window
        self.stats = DemodStats()

    @property
    def next_sample(self) -> int:
        """Absolute index of the sample the next block is expected to start at."""
        return self._tail_start + len(self._tail)

    def feed_block(self, block: IQBlock) -> np.ndarray:
        """Demodulate one IQ block (see ``feed``)."""
        return self.feed(block.samples, block.fmt, block.start_sample)

    def feed(self, samples: np.ndarray, fmt: str, start_sample: int | None = None) -> np.ndarray:
        """Demodulate interleaved IQ ``samples`` continuing the stream; return new frames.

        ``start_sample`` larger than expected marks a gap: the carried tail is dropped
        (a reply cannot span a gap) and the clock jumps. An odd trailing value is ignored.
        """
        if fmt not in SAMPLE_FORMATS:
            raise ValueError(f"unknown sample format {fmt!r}")
        n = samples.shape[0] // 2
        expected = self.next_sample
        if start_sample is not None and start_sample != expected and self.stats.samples:
            if start_sample < expected:
                raise ValueError(
                    f"block starts at sample {start_sample}, before the stream's {expected}"
                )
            self.stats.gaps += 1
            self.stats.gap_samples += start_sample - expected
            self._tail = np.zeros(0, dtype=np.uint16)
            self._tail_start = start_sample
            self._next = start_sample
            # the window resumed in has no floor from the one before it: the latest estimate
            self._close_noise_window()
            if self._noise_mag:
                self._noise_for.setdefault(start_sample // NOISE_WINDOW, self._noise_mag)
        elif start_sample is not None and not self.stats.samples:
            self._tail_start = self._next = start_sample
        if n == 0:
            return np.zeros(0, dtype=FRAME_DTYPE)
        mag = np.empty(len(self._tail) + n, dtype=np.uint16)
        mag[: len(self._tail)] = self._tail
        new = mag[len(self._tail) :]
        magnitude(samples, fmt, new)
        self._track_noise(new, self.next_sample)
        self.stats.samples += n
        self.stats.blocks += 1
        return self._search(mag, final=False)

    def flush(self) -> np.ndarray:
        """End of stream: search the carried tail (zero-padded) for the last short replies."""
        if not len(self._tail):
            return np.zeros(0, dtype=FRAME_DTYPE)
        self._close_noise_window()
        mag = np.concatenate([self._tail, np.zeros(self.core.frame_len, dtype=np.uint16)])
        frames = self._search(mag, final=True)
        self._tail_start += len(self._tail)
        self._tail = np.zeros(0, dtype=np.uint16)
        return frames

    # The noise floor is the median magnitude (replies are rare, so the median is noise)
    # of fixed windows on the sample clock, smoothed across windows. A window's search
    # uses the floor of the windows before it (the first window uses its own), so the
    # frames found do not depend on how the stream is cut into blocks.
    def _track_noise(self, new: np.ndarray, first_abs: int) -> None:
        off = (-first_abs) % NOISE_STRIDE
        sub = new[off::NOISE_STRIDE]
        sub_abs = first_abs + off  # absolute sample of sub[0]; sub[i] is at sub_abs + STRIDE * i
        if len(sub):
            last_abs = sub_abs + NOISE_STRIDE * (len(sub) - 1)
            for w in range(sub_abs // NOISE_WINDOW, last_abs // NOISE_WINDOW + 1):
                if w != self._noise_window:
                    self._close_noise_window()
                    self._noise_window = w
                i0 = max(0, -((sub_abs - w * NOISE_WINDOW) // NOISE_STRIDE))
                i1 = -((sub_abs - (w + 1) * NOISE_WINDOW) // NOISE_STRIDE)
                self._noise_acc.append(sub[i0:i1])
        if first_abs + len(new) >= (self._noise_window + 1) * NOISE_WINDOW:
            self._close_noise_window()
            self._noise_window += 1

    def _close_noise_window(self) -> None:
        if not self._noise_acc:
            return
        level = median_u16(np.concatenate(self._noise_acc))
        self._noise_acc = []
        w = self._noise_window
        if self._noise_mag == 0.0:
            self._noise_mag = level
            self._noise_for[w] = level
        else:
            self._noise_mag += NOISE_EMA * (level - self._noise_mag)
        self._noise_for[w + 1] = self._noise_mag
        self.stats.noise_dbfs = 20 * np.log10(max(self._noise_mag, 1.0) / 65535.0)

    def _search(self, mag: np.ndarray, final: bool) -> np.ndarray:
        base = self._tail_start
        stop = len(mag) - self.core.frame_len
        start = max(0, self._next - base)
        cap = max(16, (stop - start) // int(64 * self.core.sps) + 16)
        out = _Output(cap)
        n = 0
        searched_to = start
        cand_before = self.core.n_candidates
        for w in range(
            (base + start) // NOISE_WINDOW, (base + max(stop, start)) // NOISE_WINDOW + 1
        ):
            seg0 = max(searched_to, w * NOISE_WINDOW - base)
            seg1 = min(stop, (w + 1) * NOISE_WINDOW - base)
            if seg1 <= seg0:
                continue
            floor = self._noise_for.get(w)
            if floor is None:
                break  # the first window's floor is known once the window is complete
            k, next_abs = self.core.process(mag, base, seg0, seg1, floor, *out.views(n))
            n += k
            searched_to = max(seg1, next_abs - base)
        self.stats.candidates += self.core.n_candidates - cand_before
        self._next = base + searched_to
        for old in [k for k in self._noise_for if k < self._next // NOISE_WINDOW]:
            del self._noise_for[old]
        if not final:
            self._carry(mag, base, min(searched_to, max(stop, 0)))
        return self._frames(out, n)

    def _frames(self, out: _Output, n: int) -> np.ndarray:
        frames = np.zeros(n, dtype=FRAME_DTYPE)
        frames["msg"] = out.msg[:n]
        frames["nbits"] = out.nbits[:n]
        frames["df"] = out.msg[:n, 0] >> 3
        frames["icao"] = out.addr[:n]
        pos = out.pos[:n]
        frames["sample_idx"] = np.floor(pos).astype(np.int64)
        frames["ts_12mhz"] = np.round(pos * (TICKS_PER_S / self.rate_hz)).astype(np.uint64)
        frames["t_s"] = pos / self.rate_hz
        frames["toa_12mhz"] = out.toa[:n] * (TICKS_PER_S / self.rate_hz)
        with np.errstate(divide="ignore"):
            frames["signal_dbfs"] = 10 * np.log10(np.maximum(out.power[:n], 1.0) / 65535.0**2)
        frames["corrected_bits"] = out.fixed[:n]
        frames["addr_confirmed"] = out.confirmed[:n].astype(bool)
        self._count(frames)
        return frames

    def _carry(self, mag: np.ndarray, base: int, keep_from: int) -> None:
        self._tail = mag[keep_from:].copy()
        self._tail_start = base + keep_from

    def _count(self, frames: np.ndarray) -> None:
        s = self.stats
        s.frames += len(frames)
        s.corrected += int(np.count_nonzero(frames["corrected_bits"]))
        for df in np.flatnonzero(counts := np.bincount(frames["df"], minlength=32)):
            s.frames_by_df[int(df)] = s.frames_by_df.get(int(df), 0) + int(counts[df])
        if len(frames):
            s.last_signal_dbfs = float(frames["signal_dbfs"][-1])
