"""The contract between a source and the DSP core.

A source yields ``IQBlock``s: contiguous runs of raw interleaved samples exactly as the
hardware or file holds them (no conversion to complex float in Python; the Cython core
turns them into magnitudes). Consecutive blocks continue each other on the sample
clock; a gap (samples dropped by USB or the network) shows as a ``start_sample`` larger
than the previous block's end, so time never drifts from the sample count.

Each block also carries ``utc``, the UTC of its first sample: a file's from its start time,
a live stream's from a smoothed fit (``sensord.source.utc``). Sample-clock time orders one
receiver's frames; UTC orders several receivers' detections in the fusion node.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# format name -> numpy dtype of one I or Q value; samples are interleaved I, Q, I, Q, ...
SAMPLE_FORMATS: dict[str, np.dtype] = {
    "cu8": np.dtype("u1"),
    "cs8": np.dtype("i1"),
    "cs16": np.dtype("<i2"),
    "cf32": np.dtype("<f4"),
}


@dataclass(frozen=True, slots=True)
class IQBlock:
    """A run of samples: ``samples`` holds 2*n values, I first, of dtype SAMPLE_FORMATS[fmt]."""

    samples: np.ndarray
    fmt: str
    start_sample: int
    rate_hz: float
    utc: float = float("nan")  # UTC of the first sample (NaN: unknown)

    @property
    def n_samples(self) -> int:
        """Number of complex samples in the block."""
        return self.samples.shape[0] // 2

    @property
    def t_s(self) -> float:
        """Sample-clock time of the block's first sample, s."""
        return self.start_sample / self.rate_hz


class IQSource(Protocol):
    """Anything that yields IQ blocks: a file, a dongle, an rtl_tcp client."""

    rate_hz: float

    def blocks(self) -> Iterator[IQBlock]:
        """Blocks in sample-clock order until the source ends (files) or is closed."""
        ...

    def close(self) -> None:
        """Release the file, device or socket; ``blocks`` then ends."""
        ...
