"""Recorded IQ files as a source: cu8, cs8, cs16, cf32 and SigMF, streamed in fixed blocks.

Memory is bounded by the block size whatever the file's size, and the last partial
block is delivered. Format and rate come from the arguments, else from SigMF metadata,
else from the file name (``.cu8``/``.cs16``/..., and a rate hint such as ``_2400k``,
``_2.4M`` or ``_2000000``). Every fault is a ``SourceError`` with a one-line reason.

UTC: blocks carry the UTC of their first sample. The start comes from ``start_utc`` (the
user's ``--start-utc``), else SigMF ``core:datetime``, else the file's mtime minus its
duration (a recording is written as it is made); ``utc_source`` says which.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sensord.errors import SourceError
from sensord.source import sigmf
from sensord.source.base import SAMPLE_FORMATS, IQBlock, IQSource

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SAMPLES = 1 << 18
EXTENSIONS = {
    ".cu8": "cu8",
    ".cs8": "cs8",
    ".cs16": "cs16",
    ".sc16": "cs16",
    ".cf32": "cf32",
    ".fc32": "cf32",
}
AMBIGUOUS_EXTENSIONS = (".bin", ".iq", ".raw", ".dat")
RATE_MIN_HZ, RATE_MAX_HZ = 2.0e6, 3.0e6  # the rates the demodulator supports
DEFAULT_RATE_HZ = 2.4e6  # a file that names no rate
_RATE_HINT = re.compile(r"(?<![0-9.])(\d+(?:\.\d+)?)\s*([kKmM]?)(?:s(?:ps)?)?(?![0-9a-zA-Z])")


def parse_rate(text: str) -> float:
    """A sample rate from '2.4e6', '2400000', '2.4M', '2400k' (case-insensitive)."""
    t = text.strip().lower().removesuffix("sps").removesuffix("s")
    scale = 1.0
    if t.endswith("m"):
        scale, t = 1e6, t[:-1]
    elif t.endswith("k"):
        scale, t = 1e3, t[:-1]
    try:
        rate = float(t) * scale
    except ValueError:
        raise SourceError(f"cannot read sample rate {text!r} (try 2.4e6, 2400k or 2.4M)") from None
    if not math.isfinite(rate) or rate <= 0:
        raise SourceError(f"sample rate must be a positive number, got {text!r}")
    return rate


def rate_argument(text: str) -> float:
    """``--rate``: a sample rate the demodulator supports (argparse's one-line error if not)."""
    try:
        rate = parse_rate(text)
    except SourceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not RATE_MIN_HZ <= rate <= RATE_MAX_HZ:
        raise argparse.ArgumentTypeError(
            f"{text!r} is {rate / 1e6:g} MS/s; supported: "
            f"{RATE_MIN_HZ / 1e6:g} to {RATE_MAX_HZ / 1e6:g} MS/s"
        )
    return rate


def rate_from_name(name: str) -> float | None:
    """A rate hint in a file name (``_2400k``, ``_2.4M``, ``_2000000``) between 1 and 10 MS/s."""
    for number, unit in _RATE_HINT.findall(Path(name).stem.replace("_", " ").replace("-", " ")):
        rate = float(number) * {"": 1.0, "k": 1e3, "m": 1e6}[unit.lower()]
        if 1e6 <= rate <= 10e6:
            return rate
    return None


class IQFileSource(IQSource):
    """Blocks of a recorded IQ file; see the module docstring for inference rules.

    ``iq_order="qi"`` reads files that store Q before I (the blocks handed on are I first).
    """

    def __init__(
        self,
        path: str | Path,
        fmt: str | None = None,
        rate_hz: float | None = None,
        iq_order: str = "iq",
        block_samples: int = DEFAULT_BLOCK_SAMPLES,
        default_rate_hz: float = DEFAULT_RATE_HZ,
        start_utc: float | None = None,
    ) -> None:
        """``rate_hz`` overrides the file's own rate (SigMF metadata, name); a file that
        carries none is read at ``default_rate_hz``."""
        if iq_order not in ("iq", "qi"):
            raise SourceError(f"iq_order must be 'iq' or 'qi', got {iq_order!r}")
        if block_samples <= 0:
            raise SourceError("block_samples must be positive")
        self.path = Path(path)
        if self.path.is_dir():
            raise SourceError(f"{self.path}: is a directory, not an IQ file")
        self.iq_order = iq_order
        self.block_samples = int(block_samples)
        self.default_rate_hz = default_rate_hz
        self.rate_assumed = False  # the file names no rate: default_rate_hz is a guess
        self._meta_start_utc: float | None = None
        self.data_path, self.fmt, self.rate_hz = self._resolve(fmt, rate_hz)
        if not RATE_MIN_HZ <= self.rate_hz <= RATE_MAX_HZ:
            raise SourceError(
                f"{self.path}: sample rate {self.rate_hz / 1e6:g} MS/s is not supported "
                f"({RATE_MIN_HZ / 1e6:g} to {RATE_MAX_HZ / 1e6:g} MS/s)"
            )
        self._closed = False
        self.dtype = SAMPLE_FORMATS[self.fmt]
        size = self._size(self.data_path)
        frame_bytes = 2 * self.dtype.itemsize
        self.n_samples = size // frame_bytes
        trailing = size - self.n_samples * frame_bytes
        if self.n_samples == 0:
            raise SourceError(f"{self.data_path}: no complete IQ sample in {size} bytes")
        if self.rate_assumed:
            log.info(
                "%s: no rate given or in the name; assuming %g MS/s (--rate, or _2000k in the "
                "name, if not)",
                self.path,
                self.rate_hz / 1e6,
            )
        if trailing:
            log.warning(
                "%s: %d trailing bytes ignored (not a whole %s sample)",
                self.data_path,
                trailing,
                self.fmt,
            )
        self.start_utc, self.utc_source = self._start(start_utc)

    def _start(self, start_utc: float | None) -> tuple[float, str]:
        """The UTC of the first sample and where it came from."""
        meta = self._meta_start_utc
        if start_utc is not None:
            if meta is not None and abs(meta - start_utc) > 1e-6:
                log.warning("%s: --start-utc overrides core:datetime", self.path)
            return float(start_utc), "start-utc"
        if meta is not None:
            return meta, "sigmf"
        mtime = self.data_path.stat().st_mtime
        log.debug("%s: start time from its mtime minus its duration", self.data_path)
        return mtime - self.n_samples / self.rate_hz, "mtime"

    def _resolve(self, fmt: str | None, rate_hz: float | None) -> tuple[Path, str, float]:
        path = self.path
        is_sigmf = fmt == "sigmf" or path.suffix in (".sigmf-meta", ".sigmf-data")
        if is_sigmf:
            meta = sigmf.read_meta(path)
            self._meta_start_utc = meta.start_utc
            if fmt not in (None, "sigmf", meta.fmt):
                log.warning("%s: --format %s overrides core:datatype (%s)", path, fmt, meta.fmt)
            data_fmt = meta.fmt if fmt in (None, "sigmf") else fmt
            if data_fmt not in SAMPLE_FORMATS:
                raise SourceError(f"unknown format {fmt!r} (one of {', '.join(SAMPLE_FORMATS)})")
            if rate_hz is not None and abs(rate_hz - meta.rate_hz) > 1e-3:
                log.warning(
                    "%s: --rate %.0f overrides core:sample_rate %.0f", path, rate_hz, meta.rate_hz
                )
            return meta.data_path, data_fmt, rate_hz or meta.rate_hz
        if fmt is not None and fmt not in SAMPLE_FORMATS:
            raise SourceError(
                f"unknown format {fmt!r} (one of {', '.join([*SAMPLE_FORMATS, 'sigmf'])})"
            )
        if fmt is None:
            fmt = EXTENSIONS.get(path.suffix.lower())
            if fmt is None:
                kind = "ambiguous" if path.suffix.lower() in AMBIGUOUS_EXTENSIONS else "unknown"
                raise SourceError(
                    f"{path}: {kind} extension {path.suffix or '(none)'!r}: give --format "
                    f"({', '.join([*SAMPLE_FORMATS, 'sigmf'])})"
                )
        if rate_hz is None:
            rate_hz = rate_from_name(path.name)
            if rate_hz is None:
                rate_hz = self.default_rate_hz
                self.rate_assumed = True
        return path, fmt, float(rate_hz)

    @staticmethod
    def _size(path: Path) -> int:
        try:
            size = path.stat().st_size
            with path.open("rb"):
                pass
        except FileNotFoundError:
            raise SourceError(f"{path}: no such file") from None
        except PermissionError:
            raise SourceError(f"{path}: permission denied") from None
        except OSError as exc:
            raise SourceError(f"{path}: cannot open: {exc.strerror or exc}") from None
        if size == 0:
            raise SourceError(f"{path}: file is empty")
        return size

    def blocks(self) -> Iterator[IQBlock]:
        """Blocks of ``block_samples`` complex samples; the last one may be shorter."""
        values = 2 * self.block_samples
        start = 0
        try:
            with self.data_path.open("rb") as fh:
                while not self._closed and start < self.n_samples:
                    count = min(values, 2 * (self.n_samples - start))
                    data = np.fromfile(fh, dtype=self.dtype, count=count)
                    if data.shape[0] < count:
                        log.warning("%s: file shrank while reading", self.data_path)
                        count = data.shape[0] - data.shape[0] % 2
                        data = data[:count]
                        if not count:
                            return
                    if self.iq_order == "qi":
                        data = data.reshape(-1, 2)[:, ::-1].reshape(-1)
                    utc = self.start_utc + start / self.rate_hz
                    yield IQBlock(data, self.fmt, start, self.rate_hz, utc)
                    start += count // 2
        except OSError as exc:
            raise SourceError(f"{self.data_path}: read error: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Stop ``blocks`` after the current block."""
        self._closed = True


def open_source(spec: str, **options) -> IQSource:
    """A source from a spec: PATH or ``file:PATH``, ``rtltcp://HOST:PORT``, ``rtlsdr[:DEV]``."""
    if spec.startswith(("rtltcp://", "rtlsdr:")) or spec == "rtlsdr":
        fmt, iq_order = options.pop("fmt", None), options.pop("iq_order", "iq")
        if fmt is not None or iq_order != "iq" or options.pop("start_utc", None) is not None:
            raise SourceError(
                f"{spec}: --format, --iq-order and --start-utc apply to recorded files only"
            )
    if spec.startswith("rtltcp://"):
        try:
            from sensord.source.rtltcp import RtlTcpSource
        except ImportError:
            raise SourceError("rtl_tcp source is not available in this version") from None
        return RtlTcpSource(spec, **options)
    if spec == "rtlsdr" or spec.startswith("rtlsdr:"):
        try:
            from sensord.source.rtlsdr import RtlSdrSource
        except ImportError:
            raise SourceError("RTL-SDR source is not available in this version") from None
        return RtlSdrSource(spec, **options)
    path = spec.removeprefix("file:")
    allowed = {"fmt", "rate_hz", "iq_order", "block_samples", "default_rate_hz", "start_utc"}
    return IQFileSource(path, **{k: v for k, v in options.items() if k in allowed})
