"""The contract between the chain (or the fusion node) and its consumers: ``Step`` and ``Sink``.

Every consumer of track updates (MQTT, aircraft.json, SBS, Beast, metrics, Home
Assistant, the live table, the web picture) is a ``Sink``. One fan-out hands each
``Step`` to every sink through the sink's own bounded queue, in the sink's own task:
a slow sink drops its oldest steps (counted), a failing one is logged once, counted and
retried or disabled. No sink can stall the chain or another sink.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from sensord.detections import Detection
from sensord.frames import FRAME_DTYPE
from sensord.sinks.table import StatusChange
from sensord.tracker.update import TrackUpdate


@dataclass(frozen=True, slots=True)
class Step:
    """What one block of a receiver, or one batch of the fusion node, produced."""

    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=FRAME_DTYPE))
    detections: list[Detection] = field(default_factory=list)
    updates: list[TrackUpdate] = field(default_factory=list)
    samples: int = 0  # samples through the chain so far (a receiver); 0 in the fusion node
    utc: float | None = None  # UTC at the end of the step, when known
    # filled by the fan-out from its track table: the status changes these updates made
    changes: list[StatusChange] = field(default_factory=list)
    end_s: float = 0.0  # sample-clock time at the end of the step (a receiver)

    @property
    def end_utc(self) -> float | None:
        """``utc``, by the name the chain's output had."""
        return self.utc


class Sink(Protocol):
    """A consumer of steps. ``handle`` runs in the sink's own task and may await I/O."""

    name: str  # for logs and the status counters: "mqtt", "aircraft_json", "web", ...
    queue_max: int  # steps held for this sink before the oldest is dropped (counted)

    async def start(self) -> None:
        """Open sockets, files, servers. An error here is fatal at start (a permanent fault)."""
        ...

    async def handle(self, step: Step) -> None:
        """Consume one step. An exception is counted and logged once by the fan-out."""
        ...

    async def close(self) -> None:
        """Flush and release; called once at shutdown, after the last step."""
        ...
