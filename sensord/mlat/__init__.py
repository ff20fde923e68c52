"""Multilateration: locate Mode S replies from several receivers' timestamps (see docs/mlat.md)."""

from sensord.mlat.engine import MlatConfig, MlatEngine, Receiver
from sensord.mlat.payload import (
    FrameBatch,
    batch_from_frames,
    frames_payload,
    parse_frames_payload,
)

__all__ = [
    "FrameBatch",
    "MlatConfig",
    "MlatEngine",
    "Receiver",
    "batch_from_frames",
    "frames_payload",
    "parse_frames_payload",
]
