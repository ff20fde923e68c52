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
  and DF11 with an interrogator id or a correction only for known ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from sensord._demod import DemodCore, magnitude
from sensord.frames import FRAME_DTYPE, TICKS_PER_S
from sensord.source.base import SAMPLE_FORMATS, IQBlock

log = logging.getLogger(__name__)

NOISE_EMA = 0.1  # weight of a new block in the noise-floor estimate
NOISE_STRIDE = 31  # every 31st magnitude feeds the median


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


class Demodulator:
    """A stream demodulator for one source at ``rate_hz`` (2.0 to 3.0 MS/s).

    ``fix_bits``: 1 corrects single-bit errors in DF11/17/18 (the default), 2 also
    corrects two-bit errors (off by default: it invents aircraft), 0 disables it.
    """

    def __init__(
        self,
        rate_hz: float,
        fix_bits: int = 1,
        icao_ttl_s: float = 60.0,
        thresh_pulse: float = 2.5,
        thresh_quiet: float = 1.0,
        nphase: int = 6,
        max_phases: int = 3,
    ) -> None:
        if fix_bits not in (0, 1, 2):
            raise ValueError("fix_bits must be 0, 1 or 2")
        self.rate_hz = float(rate_hz)
        self.core = DemodCore(
            self.rate_hz,
            fix_bits=fix_bits,
            icao_ttl_s=icao_ttl_s,
            thresh_pulse=thresh_pulse,
            thresh_quiet=thresh_quiet,
            nphase=nphase,
            max_phases=max_phases,
        )
        self._tail = np.zeros(0, dtype=np.uint16)
        self._tail_start = 0  # absolute sample index of _tail[0]
        self._next = 0  # absolute sample where the preamble search resumes
        self._noise_mag = 0.0
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
        elif start_sample is not None and not self.stats.samples:
            self._tail_start = self._next = start_sample
        if n == 0:
            return np.zeros(0, dtype=FRAME_DTYPE)
        mag = np.empty(len(self._tail) + n, dtype=np.uint16)
        mag[: len(self._tail)] = self._tail
        magnitude(samples, fmt, mag[len(self._tail) :])
        self._update_noise(mag[len(self._tail) :: NOISE_STRIDE])
        self.stats.samples += n
        self.stats.blocks += 1
        return self._search(mag, final=False)

    def flush(self) -> np.ndarray:
        """End of stream: search the carried tail (zero-padded) for the last short replies."""
        if not len(self._tail):
            return np.zeros(0, dtype=FRAME_DTYPE)
        mag = np.concatenate([self._tail, np.zeros(self.core.frame_len, dtype=np.uint16)])
        frames = self._search(mag, final=True)
        self._tail_start += len(self._tail)
        self._tail = np.zeros(0, dtype=np.uint16)
        return frames

    def _update_noise(self, mag_subsample: np.ndarray) -> None:
        """Noise floor: median magnitude (replies are rare, so the median is noise), smoothed."""
        level = float(np.median(mag_subsample))
        if self._noise_mag == 0.0:
            self._noise_mag = level
        else:
            self._noise_mag += NOISE_EMA * (level - self._noise_mag)
        self.stats.noise_dbfs = 20 * np.log10(max(self._noise_mag, 1.0) / 65535.0)

    def _search(self, mag: np.ndarray, final: bool) -> np.ndarray:
        base = self._tail_start
        usable = len(mag) - self.core.frame_len
        stop = usable if not final else len(mag) - self.core.frame_len
        start = max(0, self._next - base)
        if stop <= start:
            self._carry(mag, base, max(usable, 0))
            return np.zeros(0, dtype=FRAME_DTYPE)
        cap = max(16, (stop - start) // int(64 * self.core.sps) + 16)
        out_msg = np.zeros((cap, 14), dtype=np.uint8)
        out_nbits = np.zeros(cap, dtype=np.int32)
        out_addr = np.zeros(cap, dtype=np.uint32)
        out_pos = np.zeros(cap, dtype=np.float64)
        out_power = np.zeros(cap, dtype=np.float32)
        out_fixed = np.zeros(cap, dtype=np.uint8)
        out_conf = np.zeros(cap, dtype=np.uint8)
        cand_before = self.core.n_candidates
        n, next_abs = self.core.process(
            mag,
            base,
            start,
            stop,
            self._noise_mag,
            out_msg,
            out_nbits,
            out_addr,
            out_pos,
            out_power,
            out_fixed,
            out_conf,
        )
        self.stats.candidates += self.core.n_candidates - cand_before
        self._next = max(next_abs, base + stop)
        if not final:
            self._carry(mag, base, stop)
        frames = np.zeros(n, dtype=FRAME_DTYPE)
        frames["msg"] = out_msg[:n]
        frames["nbits"] = out_nbits[:n]
        frames["df"] = out_msg[:n, 0] >> 3
        frames["icao"] = out_addr[:n]
        pos = out_pos[:n]
        frames["sample_idx"] = np.floor(pos).astype(np.int64)
        frames["ts_12mhz"] = np.round(pos * (TICKS_PER_S / self.rate_hz)).astype(np.uint64)
        frames["t_s"] = pos / self.rate_hz
        with np.errstate(divide="ignore"):
            frames["signal_dbfs"] = 10 * np.log10(np.maximum(out_power[:n], 1.0) / 65535.0**2)
        frames["corrected_bits"] = out_fixed[:n]
        frames["addr_confirmed"] = out_conf[:n].astype(bool)
        self._count(frames)
        return frames

    def _carry(self, mag: np.ndarray, base: int, keep_from: int) -> None:
        self._tail = mag[keep_from:].copy()
        self._tail_start = base + keep_from

    def _count(self, frames: np.ndarray) -> None:
        s = self.stats
        s.frames += len(frames)
        s.corrected += int(np.count_nonzero(frames["corrected_bits"]))
        for df, count in zip(*np.unique(frames["df"], return_counts=True), strict=True):
            s.frames_by_df[int(df)] = s.frames_by_df.get(int(df), 0) + int(count)
        if len(frames):
            s.last_signal_dbfs = float(frames["signal_dbfs"][-1])
