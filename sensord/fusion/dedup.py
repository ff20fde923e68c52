"""Copies of one Mode S reply heard by several receivers: one measurement, every timestamp.

A reply is recognised by its bytes and by UTC within ``window_s`` of the first copy (the
propagation window plus the nodes' clock disagreement). The first copy goes to the
tracker; later ones are counted as duplicates and appended to the record, which keeps
every receiver's UTC and signal level (multilateration reads them). Records expire once
they are ``window_s`` older than the newest UTC seen, so memory is bounded by the window.
Identical bytes sent again later (a velocity message repeats while nothing changes, at
about 2 Hz) fall outside the window and are new replies.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sensord.detections import Detection


@dataclass(frozen=True, slots=True)
class Copy:
    """One receiver's copy of a reply."""

    node: str
    utc: float
    signal_dbfs: float | None


@dataclass(slots=True)
class Reply:
    """A reply and every copy of it heard so far; ``detection`` is the first copy's."""

    detection: Detection
    copies: list[Copy] = field(default_factory=list)


class Deduplicator:
    """Recognises copies; ``offer`` returns the Reply, and whether it is new."""

    def __init__(self, window_s: float = 0.2) -> None:
        self.window_s = window_s
        self._by_frame: dict[bytes, Reply] = {}
        self._order: deque[tuple[float, bytes]] = deque()
        self._newest_utc = float("-inf")
        self.duplicates = 0

    def offer(self, d: Detection, node: str) -> tuple[Reply, bool]:
        """Register ``d`` from ``node``; (its reply, True if this is the first copy)."""
        utc = d.utc if d.utc is not None else d.t_s
        copy = Copy(node, utc, d.signal_dbfs)
        if d.frame is None:
            return Reply(d, [copy]), True
        self._expire(utc)
        reply = self._by_frame.get(d.frame)
        if (
            reply is not None
            and abs(utc - reply.copies[0].utc) <= self.window_s
            and all(c.node != node for c in reply.copies)  # one node twice: a new reply
        ):
            reply.copies.append(copy)
            self.duplicates += 1
            return reply, False
        reply = Reply(d, [copy])
        self._by_frame[d.frame] = reply
        self._order.append((utc, d.frame))
        return reply, True

    def _expire(self, utc: float) -> None:
        self._newest_utc = max(self._newest_utc, utc)
        horizon = self._newest_utc - 2 * self.window_s
        while self._order and self._order[0][0] < horizon:
            _, frame = self._order.popleft()
            reply = self._by_frame.get(frame)
            if reply is not None and reply.copies[0].utc < horizon:
                del self._by_frame[frame]

    def __len__(self) -> int:
        return len(self._by_frame)
