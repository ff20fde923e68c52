"""Two free-running channels -> one coherent two-channel stream.

Two RTL-SDR dongles on a shared clock sample together, but each starts its stream when
its USB transfer starts: their sample counters differ by thousands of samples, and
nothing but the signal says by how much. ``ChannelPairer`` reads both streams in
lockstep (block for block), measures the offset by cross-correlating a long stretch of
the two (the direct path both hear), drops the leading channel's extra samples, and
yields ``TwoChannelBlock``s whose sample counts agree. A drop on either channel (its
``start_sample`` jumps) restarts that: the pair emits a gap (the CPI framer discards and
counts every CPI it touches) and is aligned again before samples flow.

``DualRtlSdrSource`` is the pair over two ``RtlSdrSource``s (pyrtlsdr, async reads in
their own threads), tuned alike; the dongles must share one clock (a daisy-chained
reference or a common TCXO), else ``align`` reports the channels not coherent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from sensord.radar.source import TwoChannelBlock, to_complex
from sensord.source.base import IQBlock

log = logging.getLogger(__name__)


def coarse_offset(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[int, float]:
    """(lag, normalised peak) with b[n] ~ a[n - lag], |lag| <= max_lag, by one FFT xcorr."""
    from scipy import fft

    n = min(len(a), len(b))
    nfft = fft.next_fast_len(n + 2 * max_lag)
    a = a[:n] - np.mean(a[:n])
    b = b[:n] - np.mean(b[:n])
    c = fft.ifft(np.conj(fft.fft(a, nfft)) * fft.fft(b, nfft))
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    vals = np.abs(np.concatenate([c[: max_lag + 1], c[nfft - max_lag :]]))
    # a lag l sums over n - |l| products: normalise so that long lags are not favoured
    vals = vals / np.maximum(n - np.abs(lags), 1)
    i = int(np.argmax(vals))
    norm = math.sqrt(float(np.mean(np.abs(a) ** 2)) * float(np.mean(np.abs(b) ** 2)))
    return int(lags[i]), float(vals[i] / norm) if norm > 0 else 0.0


@dataclass
class PairStats:
    """What the pairer counted."""

    alignments: int = 0
    gaps: int = 0  # drops on either channel
    dropped_samples: int = 0  # samples thrown away to line the channels up
    last_offset: int = 0
    last_peak: float = 0.0


@dataclass
class ChannelPairer:
    """Lockstep pairing of two streams of (start_sample, complex64 samples)."""

    max_offset: int = 1 << 16  # how far apart the streams may start, samples
    align_samples: int = 1 << 17  # stretch correlated to find the offset
    stats: PairStats = field(default_factory=PairStats)

    def blocks(
        self,
        ref_stream: Iterator[tuple[int, np.ndarray]],
        surv_stream: Iterator[tuple[int, np.ndarray]],
    ) -> Iterator[TwoChannelBlock]:
        out_n = 0  # samples emitted on the paired clock
        ref_buf: list[np.ndarray] = []
        surv_buf: list[np.ndarray] = []
        ref_next: int | None = None
        surv_next: int | None = None
        skip_ref = skip_surv = 0
        aligned = False
        while True:
            try:
                r_start, r = next(ref_stream)
                s_start, s = next(surv_stream)
            except StopIteration:
                return
            exp_r, exp_s = ref_next, surv_next
            ref_next, surv_next = r_start + len(r), s_start + len(s)
            if exp_r is not None and exp_s is not None and (r_start != exp_r or s_start != exp_s):
                self.stats.gaps += 1
                lost_r, lost_s = r_start - exp_r, s_start - exp_s
                out_n += max(lost_r, lost_s, 1)  # the paired clock jumps: the framer sees a gap
                # the channel that lost more is ahead in the signal by the difference:
                # the other skips as much before the two are correlated again
                skip_ref, skip_surv = max(0, lost_s - lost_r), max(0, lost_r - lost_s)
                ref_buf, surv_buf, aligned = [], [], False
            ref_buf.append(r)
            surv_buf.append(s)
            if skip_ref or skip_surv:
                ref, surv = np.concatenate(ref_buf), np.concatenate(surv_buf)
                k_r, k_s = min(skip_ref, len(ref)), min(skip_surv, len(surv))
                ref_buf, surv_buf = [ref[k_r:]], [surv[k_s:]]
                skip_ref, skip_surv = skip_ref - k_r, skip_surv - k_s
                self.stats.dropped_samples += k_r + k_s
            if not aligned:
                ref = np.concatenate(ref_buf)
                surv = np.concatenate(surv_buf)
                if min(len(ref), len(surv)) < self.align_samples + 2 * self.max_offset:
                    continue
                lag, peak = coarse_offset(
                    ref[: self.align_samples + 2 * self.max_offset],
                    surv[: self.align_samples + 2 * self.max_offset],
                    self.max_offset,
                )
                self.stats.alignments += 1
                self.stats.last_offset, self.stats.last_peak = lag, peak
                log.info("channels paired: surveillance %+d samples, peak %.3f", lag, peak)
                # surv[n] ~ ref[n - lag]: drop lag samples of surv (or -lag of ref)
                if lag > 0:
                    surv = surv[lag:]
                elif lag < 0:
                    ref = ref[-lag:]
                self.stats.dropped_samples += abs(lag)
                ref_buf, surv_buf, aligned = [ref], [surv], True
            ref = np.concatenate(ref_buf) if len(ref_buf) > 1 else ref_buf[0]
            surv = np.concatenate(surv_buf) if len(surv_buf) > 1 else surv_buf[0]
            n = min(len(ref), len(surv))
            if n:
                yield TwoChannelBlock(ref[:n], surv[:n], out_n)
                out_n += n
            ref_buf, surv_buf = [ref[n:]], [surv[n:]]


def iq_stream(blocks: Iterator[IQBlock]) -> Iterator[tuple[int, np.ndarray]]:
    """IQ blocks (any raw format) -> (start_sample, complex64)."""
    for b in blocks:
        yield b.start_sample, to_complex(b.samples, b.fmt)


class DualRtlSdrSource:
    """Two RTL-SDRs on a shared clock as one two-channel source (see the module doc)."""

    def __init__(
        self,
        ref_spec: str = "rtlsdr:0",
        surv_spec: str = "rtlsdr:1",
        center_hz: float = 98.0e6,
        rate_hz: float = 2.0e6,
        gain_db: float | str | None = None,
        ppm: int = 0,
    ) -> None:
        from sensord.source.rtlsdr import RtlSdrSource

        self.rate_hz = float(rate_hz)
        self.center_hz = float(center_hz)
        self.ref = RtlSdrSource(ref_spec, center_hz, rate_hz, gain_db, ppm)
        self.surv = RtlSdrSource(surv_spec, center_hz, rate_hz, gain_db, ppm)
        self.pairer = ChannelPairer()

    def blocks(self) -> Iterator[TwoChannelBlock]:
        return self.pairer.blocks(iq_stream(self.ref.blocks()), iq_stream(self.surv.blocks()))

    def close(self) -> None:
        self.ref.close()
        self.surv.close()
