"""Two-channel coherent IQ for the radar: files, and the framing of CPIs from any source.

File layouts (docs/radar.md): one file, samples interleaved per instant as
``[ref I, ref Q, surv I, surv Q]`` in ``cu8`` (RTL-SDR bytes, 127.5 is zero), ``cs16``
(little-endian int16) or ``cf32`` (little-endian float32); or SigMF with
``core:num_channels = 2`` and the same interleaving (channel 0 = reference). Names:
``STEM.2ch.cu8`` / ``.2ch.cs16`` / ``.2ch.cf32``; the format also comes from ``--format``
or the SigMF ``core:datatype``.

A source yields ``TwoChannelBlock``s; ``CpiFramer`` turns them into ``Cpi``s of a fixed
length, with the reference's history before each CPI (the CAF's longest lag), and with
the surveillance channel shifted by the skew that ``align`` measured. A gap on either
channel (``start_sample`` jump) discards every CPI it touches, counted, and the channels
are aligned again after it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from sensord.errors import SourceError, UserError
from sensord.source import sigmf

log = logging.getLogger(__name__)

TWO_CHANNEL_DTYPES: dict[str, np.dtype] = {
    "cu8": np.dtype("u1"),
    "cs16": np.dtype("<i2"),
    "cf32": np.dtype("<f4"),
}
SIGMF_DATATYPES = {"cu8": "cu8", "cs16": "ci16_le", "cf32": "cf32_le"}
_SIGMF_TO_FMT = {v: k for k, v in SIGMF_DATATYPES.items()}


def two_channel_suffix(fmt: str) -> str:
    """The file suffix of a two-channel recording in ``fmt``."""
    if fmt not in TWO_CHANNEL_DTYPES:
        raise UserError(f"two-channel format must be one of {', '.join(TWO_CHANNEL_DTYPES)}")
    return f".2ch.{fmt}"


def to_complex(raw: np.ndarray, fmt: str) -> np.ndarray:
    """Interleaved I, Q values of one channel -> complex64 (full scale about 1.0)."""
    v = raw.astype(np.float32)
    if fmt == "cu8":
        v = (v - 127.5) / 127.5
    elif fmt == "cs16":
        v /= 32768.0
    elif fmt == "cs8":
        v /= 128.0
    return (
        v.view(np.complex64) if v.flags.c_contiguous else np.ascontiguousarray(v).view(np.complex64)
    )


@dataclass(frozen=True, slots=True)
class TwoChannelBlock:
    """A run of samples of both channels, complex64, on one sample clock."""

    ref: np.ndarray
    surv: np.ndarray
    start_sample: int

    @property
    def n_samples(self) -> int:
        return len(self.ref)


def write_two_channel_meta(
    data_path: str | Path,
    fmt: str,
    rate_hz: float,
    center_hz: float,
    start_utc: float | None = None,
    description: str = "",
) -> Path:
    """``.sigmf-meta`` for a two-channel recording (channel 0 reference, 1 surveillance)."""
    meta_path, _ = sigmf.paths(data_path)
    capture: dict = {"core:sample_start": 0, "core:frequency": center_hz}
    if start_utc is not None:
        capture["core:datetime"] = (
            datetime.fromtimestamp(start_utc, timezone.utc).isoformat().replace("+00:00", "Z")
        )
    doc = {
        "global": {
            "core:datatype": SIGMF_DATATYPES[fmt],
            "core:sample_rate": rate_hz,
            "core:num_channels": 2,
            "core:version": sigmf.SIGMF_VERSION,
            "core:recorder": "sensord",
            "core:description": description or "passive radar: channel 0 reference, 1 surveillance",
        },
        "captures": [capture],
        "annotations": [],
    }
    meta_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return meta_path


def _parse_utc(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


class TwoChannelFile:
    """A two-channel recording read in blocks (memory bounded by the block size).

    ``start_utc``/``start_utc_from`` say when the first sample was taken and how that
    was known: the SigMF ``core:datetime``, the caller (``--start-utc``), or the file's
    modification time minus its duration.
    """

    def __init__(
        self,
        path: str | Path,
        fmt: str | None = None,
        rate_hz: float | None = None,
        start_utc: float | None = None,
        block_samples: int = 1 << 18,
        default_rate_hz: float = 2.0e6,
    ) -> None:
        p = Path(path)
        self.block_samples = block_samples
        center_hz = None
        meta_utc = None
        if p.suffix in (".sigmf-meta", ".sigmf-data") or p.with_suffix(".sigmf-meta").exists():
            meta_path, data_path = sigmf.paths(p)
            doc = self._read_sigmf(meta_path)
            glob = doc["global"]
            if glob.get("core:num_channels", 1) != 2:
                raise SourceError(
                    f"{meta_path}: core:num_channels is {glob.get('core:num_channels', 1)}; "
                    "the radar needs a two-channel recording (reference, surveillance)"
                )
            dt = glob.get("core:datatype")
            if dt not in _SIGMF_TO_FMT:
                raise SourceError(
                    f"{meta_path}: core:datatype {dt!r} not supported for two channels "
                    f"(supported: {', '.join(_SIGMF_TO_FMT)})"
                )
            fmt = fmt or _SIGMF_TO_FMT[dt]
            rate_hz = rate_hz or glob.get("core:sample_rate")
            capture = (doc.get("captures") or [{}])[0]
            if isinstance(capture, dict):
                center_hz = capture.get("core:frequency")
                meta_utc = _parse_utc(capture.get("core:datetime", ""))
            p = data_path
        else:
            rate_hz = rate_hz or default_rate_hz
        if fmt is None:
            suffix = p.suffix.lstrip(".")
            fmt = suffix if suffix in TWO_CHANNEL_DTYPES else None
            if fmt is None:
                raise SourceError(
                    f"{p}: cannot tell the sample format from the name; give --format "
                    f"({', '.join(TWO_CHANNEL_DTYPES)})"
                )
        if fmt not in TWO_CHANNEL_DTYPES:
            raise SourceError(
                f"two-channel format must be one of {', '.join(TWO_CHANNEL_DTYPES)}, not {fmt!r}"
            )
        if not isinstance(rate_hz, (int, float)) or not np.isfinite(rate_hz) or rate_hz <= 0:
            raise SourceError(f"{p}: sample rate unknown or not positive: give --rate")
        try:
            st = p.stat()
        except FileNotFoundError:
            raise SourceError(f"{p}: no such file") from None
        except OSError as exc:
            raise SourceError(f"{p}: cannot read: {exc.strerror or exc}") from None
        if not p.is_file():
            raise SourceError(f"{p}: not a regular file")
        self.path = p
        self.fmt = fmt
        self.rate_hz = float(rate_hz)
        self.center_hz = center_hz
        self.dtype = TWO_CHANNEL_DTYPES[fmt]
        frame_bytes = 4 * self.dtype.itemsize
        self.n_samples = st.st_size // frame_bytes
        self.trailing_bytes = st.st_size % frame_bytes
        if self.trailing_bytes:
            log.warning(
                "%s: %d trailing bytes are not a whole [ref I, ref Q, surv I, surv Q] sample; "
                "ignored",
                p,
                self.trailing_bytes,
            )
        self.duration_s = self.n_samples / self.rate_hz
        if meta_utc is not None:
            self.start_utc, self.start_utc_from = meta_utc, "sigmf core:datetime"
        elif start_utc is not None:
            self.start_utc, self.start_utc_from = float(start_utc), "--start-utc"
        else:
            self.start_utc = st.st_mtime - self.duration_s
            self.start_utc_from = "file mtime minus duration"

    @staticmethod
    def _read_sigmf(meta_path: Path) -> dict:
        try:
            doc = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SourceError(f"{meta_path}: SigMF metadata file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SourceError(f"{meta_path}: not readable SigMF metadata: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("global"), dict):
            raise SourceError(f"{meta_path}: no 'global' object")
        return doc

    def blocks(self) -> Iterator[TwoChannelBlock]:
        """Blocks of both channels, in order, to the end of the file."""
        per = 4 * self.block_samples
        with self.path.open("rb") as fh:
            start = 0
            while start < self.n_samples:
                n = min(self.block_samples, self.n_samples - start)
                raw = np.fromfile(fh, dtype=self.dtype, count=min(per, 4 * n))
                if len(raw) < 4:
                    return
                raw = raw[: len(raw) // 4 * 4].reshape(-1, 4)
                yield TwoChannelBlock(
                    to_complex(raw[:, 0:2].reshape(-1), self.fmt),
                    to_complex(raw[:, 2:4].reshape(-1), self.fmt),
                    start,
                )
                start += len(raw)

    def close(self) -> None:
        """Nothing held open between reads."""


@dataclass(frozen=True)
class Cpi:
    """One coherent processing interval, channels aligned.

    ``ref`` holds ``history`` samples before the CPI then the CPI's ``n`` samples;
    ``surv`` the CPI's samples, shifted by the integer skew. ``skew_frac`` is the rest of
    the skew as measured at alignment (the direct-path peak's lag after the shift; near
    multipath biases it, so ranges are not corrected by it: docs/radar.md), against
    which later CPIs are checked for a slipped sample.
    """

    index: int
    start_sample: int
    rate_hz: float
    ref: np.ndarray
    surv: np.ndarray
    history: int
    skew_samples: int
    skew_frac: float

    @property
    def n_samples(self) -> int:
        return len(self.surv)

    @property
    def t_centre_s(self) -> float:
        return (self.start_sample + self.n_samples / 2) / self.rate_hz


@dataclass
class FramerStats:
    """What the framer counted."""

    cpis: int = 0
    discarded_gap: int = 0  # CPIs that a drop on either channel touched
    gaps: int = 0
    gap_samples: int = 0
    realignments: int = 0


@dataclass
class CpiFramer:
    """Blocks -> CPIs of ``n_samples`` with ``history`` reference samples before each.

    ``align(ref, surv)`` returns (integer skew, fractional skew) measured on a stretch of
    both channels; it is called at the start and after every gap. A CPI is cut every
    ``n_samples`` on the reference's clock, starting ``history`` samples into the stream.
    """

    n_samples: int
    history: int
    align: Callable[[np.ndarray, np.ndarray], tuple[int, float]]
    rate_hz: float
    max_skew: int = 64
    stats: FramerStats = field(default_factory=FramerStats)

    def cpis(self, blocks: Iterator[TwoChannelBlock]) -> Iterator[Cpi]:
        """CPIs in order; indices count every CPI slot of the clock, discarded or not."""
        ref_buf: list[np.ndarray] = []
        surv_buf: list[np.ndarray] = []
        buf_start: int | None = None  # sample index of the buffers' first sample
        buffered = 0
        skew: tuple[int, float] | None = None
        next_start: int | None = None  # first sample of the next CPI
        expected: int | None = None
        for block in blocks:
            if expected is not None and block.start_sample != expected:
                lost = block.start_sample - expected
                self.stats.gaps += 1
                self.stats.gap_samples += max(lost, 0)
                if next_start is not None:
                    # CPI slots stay on the clock's grid; every slot the gap touched is lost
                    first_ok = block.start_sample + self.history + self.max_skew
                    skip = max(0, -(-(first_ok - next_start) // self.n_samples))
                    self.stats.discarded_gap += skip
                    next_start += skip * self.n_samples
                ref_buf, surv_buf, buffered = [], [], 0
                buf_start = block.start_sample
                skew = None
            if buf_start is None:
                buf_start = block.start_sample
            if next_start is None:
                next_start = origin = block.start_sample + self.history + self.max_skew
            expected = block.start_sample + block.n_samples
            ref_buf.append(block.ref)
            surv_buf.append(block.surv)
            buffered += block.n_samples
            assert next_start is not None
            while buf_start + buffered >= next_start + self.n_samples + self.max_skew:
                ref = np.concatenate(ref_buf) if len(ref_buf) > 1 else ref_buf[0]
                surv = np.concatenate(surv_buf) if len(surv_buf) > 1 else surv_buf[0]
                ref_buf, surv_buf = [ref], [surv]
                if skew is None:
                    a = next_start - buf_start
                    skew = self.align(ref[a : a + self.n_samples], surv[a : a + self.n_samples])
                    if skew[0] != 0 or skew[1] != 0.0:
                        log.info("channels aligned: surveillance skew %+.2f samples",
                                 skew[0] + skew[1])  # fmt: skip
                    if self.stats.cpis or self.stats.gaps:
                        self.stats.realignments += 1
                k = next_start - buf_start
                s0 = k + skew[0]
                if s0 < 0 or s0 + self.n_samples > len(surv) or k - self.history < 0:
                    raise SourceError(
                        f"channel skew {skew[0]} samples exceeds the {self.max_skew} allowed"
                    )
                index = (next_start - origin) // self.n_samples
                yield Cpi(
                    index=index,
                    start_sample=next_start,
                    rate_hz=self.rate_hz,
                    ref=ref[k - self.history : k + self.n_samples],
                    surv=surv[s0 : s0 + self.n_samples],
                    history=self.history,
                    skew_samples=skew[0],
                    skew_frac=skew[1],
                )
                self.stats.cpis += 1
                next_start += self.n_samples
                drop = max(0, next_start - self.history - self.max_skew - buf_start)
                if drop:
                    ref_buf = [ref[drop:]]
                    surv_buf = [surv[drop:]]
                    buf_start += drop
                    buffered -= drop
