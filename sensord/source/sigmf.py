"""SigMF metadata (``.sigmf-meta`` JSON beside ``.sigmf-data``): read and write.

Only what an IQ recording of Mode S needs: ``core:datatype``, ``core:sample_rate``,
the capture's centre frequency, and annotations. Datatypes map to sensord's sample
formats: cu8, ci8 -> cs8, ci16_le -> cs16, cf32_le -> cf32.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sensord.errors import SourceError
from sensord.source.utc import format_utc, parse_utc

SIGMF_VERSION = "1.2.0"
DATATYPE_TO_FMT = {"cu8": "cu8", "ci8": "cs8", "ci16_le": "cs16", "cf32_le": "cf32"}
FMT_TO_DATATYPE = {v: k for k, v in DATATYPE_TO_FMT.items()}


@dataclass(frozen=True)
class SigMFMeta:
    """What sensord reads from a SigMF recording."""

    data_path: Path
    fmt: str
    rate_hz: float
    center_hz: float | None
    start_utc: float | None = None  # the first capture's core:datetime


def paths(path: str | Path) -> tuple[Path, Path]:
    """(meta, data) paths of a recording given either file or the common stem."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".sigmf-meta", ".sigmf-data") else p
    return stem.with_suffix(".sigmf-meta"), stem.with_suffix(".sigmf-data")


def read_meta(path: str | Path) -> SigMFMeta:
    """Parse a recording's metadata; SourceError with the reason when it is unusable."""
    meta_path, data_path = paths(path)
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"{meta_path}: SigMF metadata file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{meta_path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SourceError(f"{meta_path}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    glob = doc.get("global") if isinstance(doc, dict) else None
    if not isinstance(glob, dict):
        raise SourceError(f"{meta_path}: no 'global' object")
    datatype = glob.get("core:datatype")
    if datatype not in DATATYPE_TO_FMT:
        raise SourceError(
            f"{meta_path}: core:datatype {datatype!r} not supported "
            f"(supported: {', '.join(DATATYPE_TO_FMT)})"
        )
    rate = glob.get("core:sample_rate")
    if not isinstance(rate, (int, float)) or rate <= 0:
        raise SourceError(f"{meta_path}: core:sample_rate missing or not a positive number")
    if not data_path.exists():
        raise SourceError(f"{data_path}: SigMF data file not found (metadata is {meta_path})")
    captures = doc.get("captures") or [{}]
    first = captures[0] if isinstance(captures[0], dict) else {}
    center = first.get("core:frequency")
    start_utc = None
    if first.get("core:datetime") is not None:
        try:
            start_utc = parse_utc(str(first["core:datetime"]))
        except ValueError as exc:
            raise SourceError(f"{meta_path}: captures[0] core:datetime: {exc}") from None
    return SigMFMeta(data_path, DATATYPE_TO_FMT[datatype], float(rate), center, start_utc)


def write_meta(
    data_path: str | Path,
    datatype: str,
    rate_hz: float,
    center_hz: float = 1090e6,
    description: str = "",
    extra_global: dict | None = None,
    annotations: list[dict] | None = None,
    start_utc: float | None = None,
) -> Path:
    """Write ``<stem>.sigmf-meta`` for ``data_path``; datatype is a SigMF name or a sensord fmt."""
    datatype = FMT_TO_DATATYPE.get(datatype, datatype)
    if datatype not in DATATYPE_TO_FMT:
        raise ValueError(f"unsupported SigMF datatype {datatype!r}")
    meta_path, _ = paths(data_path)
    glob = {
        "core:datatype": datatype,
        "core:sample_rate": rate_hz,
        "core:version": SIGMF_VERSION,
        "core:recorder": "sensord",
    }
    if description:
        glob["core:description"] = description
    glob.update(extra_global or {})
    capture: dict = {"core:sample_start": 0, "core:frequency": center_hz}
    if start_utc is not None:
        capture["core:datetime"] = format_utc(start_utc)
    doc = {
        "global": glob,
        "captures": [capture],
        "annotations": annotations or [],
    }
    meta_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return meta_path
