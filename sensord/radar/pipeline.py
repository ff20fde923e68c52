"""A two-channel source through the radar, CPI by CPI, with the counts a user sees."""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sensord.errors import UserError
from sensord.radar import align
from sensord.radar.processor import CpiResult, RadarParams, RadarProcessor
from sensord.radar.source import CpiFramer, TwoChannelBlock

log = logging.getLogger(__name__)

MAX_SKEW = 64


@dataclass
class RunStats:
    """What a run counted: CPIs, discards by reason, detections and CPU per stage."""

    cpis: int = 0
    processed: int = 0
    discarded: collections.Counter = field(default_factory=collections.Counter)
    detections: int = 0
    cpu_s: collections.Counter = field(default_factory=collections.Counter)
    alignment: align.Alignment | None = None

    def summary(self) -> str:
        parts = [f"{self.processed} of {self.cpis} CPIs processed", f"{self.detections} detections"]
        for reason, n in self.discarded.most_common():
            parts.append(f"{n} discarded: {reason}")
        if self.processed:
            ms = ", ".join(
                f"{k} {1e3 * v / self.processed:.1f} ms" for k, v in sorted(self.cpu_s.items())
            )
            parts.append(f"CPU per CPI: {ms}")
        return "; ".join(parts)


def check_length(n_samples: int, params: RadarParams) -> None:
    """A clear error when the recording cannot hold one CPI."""
    need = params.n_samples + params.history + 2 * MAX_SKEW
    if n_samples < need:
        raise UserError(
            f"the recording holds {n_samples / params.rate_hz:.3f} s; one CPI of "
            f"{params.cpi_s:g} s needs {need / params.rate_hz:.4f} s with its lag history "
            "(give a shorter --cpi)"
        )


def results(
    blocks: Iterator[TwoChannelBlock],
    params: RadarParams,
    stats: RunStats,
    utc0: float = 0.0,
    skew: int | None = None,
    keep_map: bool | Callable[[], bool] = False,
) -> Iterator[CpiResult]:
    """Every CPI's result, discarded ones included (``discarded`` says why). ``keep_map``
    keeps every CPI's map, or, as a callable, is asked before each CPI whether to."""
    processor = RadarProcessor(params)

    def measure(ref, surv):
        a = align.measure(ref, surv, params.rate_hz, max_lag=MAX_SKEW)
        stats.alignment = a
        if skew is not None:
            return skew, 0.0
        if a.problem():
            return 0, 0.0  # every CPI will be discarded with the reason
        whole = round(a.skew)
        return whole, a.skew - whole

    framer = CpiFramer(params.n_samples, params.history, measure, params.rate_hz, MAX_SKEW)
    for cpi in framer.cpis(blocks):
        keep = keep_map() if callable(keep_map) else keep_map
        res = processor.process(cpi, utc0, keep)
        stats.cpis += 1
        if res.discarded:
            stats.discarded[res.discarded] += 1
            if stats.discarded[res.discarded] == 1:
                log.warning("CPI %d discarded: %s", cpi.index, res.discarded)
        else:
            stats.processed += 1
            stats.detections += len(res.detections)
            stats.cpu_s.update(res.timings_s)
        yield res
    if framer.stats.discarded_gap:
        stats.discarded["a drop on either channel"] += framer.stats.discarded_gap
        stats.cpis += framer.stats.discarded_gap
