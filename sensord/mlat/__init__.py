"""Multilateration: locate Mode S replies from several receivers' timestamps (see docs/mlat.md).

The names below load on first use (PEP 562): a receiver node imports only
``sensord.mlat.payload`` to publish its frames, not the engine and its solver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sensord.mlat.engine import MlatConfig, MlatEngine, Receiver
    from sensord.mlat.payload import (
        FrameBatch,
        batch_from_frames,
        frames_payload,
        parse_frames_payload,
    )

_WHERE = {
    "MlatConfig": "engine",
    "MlatEngine": "engine",
    "Receiver": "engine",
    "FrameBatch": "payload",
    "batch_from_frames": "payload",
    "frames_payload": "payload",
    "parse_frames_payload": "payload",
}

__all__ = [
    "FrameBatch",
    "MlatConfig",
    "MlatEngine",
    "Receiver",
    "batch_from_frames",
    "frames_payload",
    "parse_frames_payload",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
