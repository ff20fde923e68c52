"""The one track table: the latest ``TrackUpdate`` of every live track, shared by the sinks.

The fan-out applies each step's updates here before handing the step to the sinks, so
every sink reads the same newest state (aircraft.json, the live table, the metrics'
track counts, the MQTT republish after a reconnection). A DROPPED update removes its
track. ``apply`` returns the status changes it saw (new, confirmed, lost, ...), which the
publisher turns into events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sensord.tracker.update import TrackStatus, TrackUpdate


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A track whose status changed in one step; ``previous`` is None for a new track."""

    previous: TrackStatus | None
    update: TrackUpdate


class TrackTable:
    """``track_id -> latest TrackUpdate`` of the live tracks."""

    def __init__(self) -> None:
        self.tracks: dict[str, TrackUpdate] = {}

    def apply(self, updates: list[TrackUpdate]) -> list[StatusChange]:
        """Take the newest state of each track (a DROPPED one leaves); return status changes."""
        changes: list[StatusChange] = []
        for u in updates:
            previous = self.tracks.get(u.track_id)
            if u.status is TrackStatus.DROPPED:
                if self.tracks.pop(u.track_id, None) is not None:
                    changes.append(StatusChange(previous.status if previous else None, u))
                continue
            self.tracks[u.track_id] = u
            if previous is None or previous.status is not u.status:
                changes.append(StatusChange(previous.status if previous else None, u))
        return changes

    def drop(self, track_id: str) -> None:
        """Forget a track (e.g. an empty retained message seen by ``watch``)."""
        self.tracks.pop(track_id, None)

    def get(self, track_id: str) -> TrackUpdate | None:
        return self.tracks.get(track_id)

    def values(self) -> Iterator[TrackUpdate]:
        return iter(list(self.tracks.values()))

    def count_by_status(self) -> dict[TrackStatus, int]:
        """Live tracks per status."""
        counts: dict[TrackStatus, int] = {}
        for u in self.tracks.values():
            counts[u.status] = counts.get(u.status, 0) + 1
        return counts

    def __len__(self) -> int:
        return len(self.tracks)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self.tracks
