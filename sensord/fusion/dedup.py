"""Copies of one Mode S reply heard by several receivers: one measurement, every timestamp.

A reply is recognised by its bytes and by UTC within ``window_s`` of the first copy (the
propagation window plus the nodes' clock disagreement). The first copy goes to the
tracker; later ones are counted as duplicates and appended to the record, which keeps
every receiver's UTC and signal level (multilateration reads them). The fusion node
expires records (``expire``) once they are ``window_s`` older than what it still accepts
(its reorder horizon): a copy from a node that lags the others by up to the reorder window
is still recognised, and memory is bounded by the two windows.
Identical bytes sent again later (a velocity message repeats while nothing changes, at
about 2 Hz) fall outside the window and are new replies.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Copy:
    """One receiver's copy of a reply."""

    node: str
    utc: float
    signal_dbfs: float | None


@dataclass(slots=True)
class Reply:
    """A reply and every copy of it heard so far. ``kinematic``: a copy that measures
    something has been taken (a first copy that could not be resolved, identity only,
    leaves room for a later copy that carries the position)."""

    copies: list[Copy] = field(default_factory=list)
    kinematic: bool = False


class Deduplicator:
    """Recognises copies; ``offer`` returns the Reply, and whether this copy is the first."""

    def __init__(self, window_s: float = 0.2) -> None:
        self.window_s = window_s
        self._by_frame: dict[bytes, Reply] = {}
        self._order: deque[tuple[float, bytes]] = deque()
        self.duplicates = 0

    def offer(
        self, frame: bytes | None, utc: float, node: str, signal_dbfs: float | None = None
    ) -> tuple[Reply, bool]:
        """Register a copy of ``frame`` heard by ``node`` at ``utc``."""
        copy = Copy(node, utc, signal_dbfs)
        if frame is None:
            return Reply([copy]), True
        reply = self._by_frame.get(frame)
        if (
            reply is not None
            and abs(utc - reply.copies[0].utc) <= self.window_s
            and all(c.node != node for c in reply.copies)  # one node twice: a new reply
        ):
            reply.copies.append(copy)
            self.duplicates += 1
            return reply, False
        reply = Reply([copy])
        self._by_frame[frame] = reply
        self._order.append((utc, frame))
        return reply, True

    def forget(self, frame: bytes) -> None:
        """The first copy was unusable: let the next copy stand for the reply."""
        self._by_frame.pop(frame, None)

    def expire(self, accepted_from_utc: float) -> None:
        """Forget replies that no acceptable copy can match any more."""
        horizon = accepted_from_utc - self.window_s
        while self._order and self._order[0][0] < horizon:
            _, frame = self._order.popleft()
            reply = self._by_frame.get(frame)
            if reply is not None and reply.copies[0].utc < horizon:
                del self._by_frame[frame]

    def __len__(self) -> int:
        return len(self._by_frame)
