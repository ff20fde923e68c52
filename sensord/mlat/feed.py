"""MLAT inside the fusion node: nodes' frames in, MLAT detections into the ``Fuser``.

``MlatFeed`` owns an ``MlatEngine`` in the fusion frame (the Fuser's site). Each node's
position and counter rate come from its ``info`` (``node_info``); each block's frames
(``frames`` for a FRAME_DTYPE array, ``batch`` for a parsed frames-topic payload) go to
the engine, and the MLAT detections it returns enter the Fuser as the detections of a
pseudo-node (``"mlat"`` by default) whose ``info`` puts it at the fusion site, so they
take the same path as every other detection (reorder window, tracker, counters). The
track's prediction seeds the solver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from sensord import __version__
from sensord.detections import Detection
from sensord.errors import UserError
from sensord.frames import TICKS_PER_S
from sensord.fusion.fuser import Fuser
from sensord.fusion.wire import NodeInfo, PayloadError, batch_json, parse_info
from sensord.mlat.engine import MlatConfig, MlatEngine
from sensord.mlat.payload import FrameBatch, batch_from_frames, parse_frames_payload

log = logging.getLogger(__name__)

NOMINAL_HEIGHT_M = 9000.0  # the predicted position's height: the solver fixes it


class MlatFeed:
    """Connects an MlatEngine to a Fuser (created once the Fuser has its site)."""

    def __init__(self, fuser: Fuser, config: MlatConfig | None = None, node: str = "mlat"):
        self.fuser = fuser
        self.config = config
        self.node = node
        self.engine: MlatEngine | None = None
        self._pending: list[tuple[str, float, float, float, float]] = []
        self.detections = 0
        self.invalid: dict[str, int] = {}  # unusable frames payloads per node
        # (node, UTC) -> whether its frames may be used (the fusion node's clock check)
        self.admit: Callable[[str, float], bool] | None = None
        self.refused: dict[str, int] = {}  # frames batches refused by ``admit`` per node

    def _start(self) -> MlatEngine | None:
        if self.engine is None and self.fuser.site is not None:
            site = self.fuser.site
            self.engine = MlatEngine(site, self.config, self._predict)
            info = NodeInfo(self.node, site.lat_deg, site.lon_deg, site.alt_m, "mlat", TICKS_PER_S,
                            TICKS_PER_S, "fusion", __version__)  # fmt: skip
            self.fuser.node_info(self.node, info.to_dict())
            for args in self._pending:
                self.engine.receiver(*args)
            self._pending.clear()
        return self.engine

    def _predict(self, icao: int, utc: float) -> np.ndarray | None:
        """The track's predicted position (ENU of the fusion site; height nominal)."""
        tracker, site = self.fuser.tracker, self.fuser.site
        where = tracker.predicted_position(icao, utc) if tracker is not None else None
        if where is None or site is None:
            return None
        return site.to_enu(where[0], where[1], NOMINAL_HEIGHT_M)

    def node_info(
        self, node: str, lat_deg: float, lon_deg: float, alt_m: float, counter_hz: float
    ) -> None:
        """A receiver node's position and counter rate (from its ``info``)."""
        engine = self._start()
        if engine is None:
            self._pending.append((node, lat_deg, lon_deg, alt_m, counter_hz))
        else:
            engine.receiver(node, lat_deg, lon_deg, alt_m, counter_hz)

    def node_info_payload(self, node: str, payload: bytes | str) -> None:
        """A node's retained ``info`` message (the Fuser counts a bad one; ignored here)."""
        try:
            info = parse_info(payload)
            self.node_info(node, info.lat_deg, info.lon_deg, info.alt_m, info.counter_hz)
        except (PayloadError, UserError):
            return

    def frames_payload(self, node: str, payload: bytes | str) -> int:
        """A node's frames-topic message (schema 2); a bad one is counted, logged once."""
        try:
            batch = parse_frames_payload(payload)
        except UserError as exc:
            self.invalid[node] = self.invalid.get(node, 0) + 1
            if self.invalid[node] == 1:
                log.warning("mlat: node %s: %s (counted, logged once)", node, exc)
            return 0
        return self.batch(node, batch)

    def frames(self, node: str, frames: np.ndarray, end_utc: float, end_s: float) -> int:
        """One block's frames (FRAME_DTYPE) ending at sample-clock ``end_s`` = ``end_utc``."""
        return self.batch(
            node, batch_from_frames(frames, end_utc, round(end_s * TICKS_PER_S), node)
        )

    def batch(self, node: str, batch: FrameBatch) -> int:
        """One block's frames as parsed from the frames topic; returns MLAT detections made."""
        engine = self._start()
        if engine is None:
            return 0
        if self.admit is not None and not self.admit(node, batch.utc):
            self.refused[node] = self.refused.get(node, 0) + 1
            return 0
        return self._ingest(engine.add_frames(node, batch), batch.utc)

    def flush(self) -> int:
        """End of input: solve what the engine still holds."""
        if self.engine is None:
            return 0
        return self._ingest(self.engine.flush(), self.engine.now_utc)

    def _ingest(self, dets: list[Detection], utc: float) -> int:
        if not dets:
            return 0
        for d in dets:
            d.utc = d.t_s
        self.detections += len(dets)
        return self.fuser.ingest(self.node, batch_json(self.node, utc, dets))

    def status(self) -> dict:
        status = self.engine.status() if self.engine is not None else {}
        return {
            **status,
            "invalid_payloads": dict(self.invalid),
            "clock_refused": dict(self.refused),
        }
