"""The lifecycle role (Stone Soup's deleter, and confirmation).

tentative -> confirmed after ``confirm_m`` accepted measurements among the last
``confirm_n`` -> coasting when no kinematic measurement arrived for ``coast_after_s`` ->
dropped after ``drop_after_s`` (``tentative_drop_after_s`` for a tentative track)
without any detection. A coasting track that takes a measurement is confirmed again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sensord.tracker.track import Track
from sensord.tracker.update import TrackStatus

if TYPE_CHECKING:
    from sensord.tracker.tracker import TrackerConfig


class Lifecycle:
    """Status changes of tracks as measurements arrive and time passes."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config

    def accepted(self, track: Track) -> None:
        """The filter took a measurement: confirm a tentative track that has enough hits."""
        cfg = self.config
        if track.status == TrackStatus.COASTING or (
            track.status == TrackStatus.TENTATIVE
            and sum(list(track.hits)[-cfg.confirm_n :]) >= cfg.confirm_m
        ):
            track.status = TrackStatus.CONFIRMED

    def due(self, tracks: list[Track], t_s: float) -> list[tuple[Track, bool]]:
        """Tracks whose status changes at t_s: (track, True) to drop, (track, False) coasting."""
        cfg = self.config
        changed = []
        for track in tracks:
            silent = t_s - track.last_seen_s
            if (
                track.status == TrackStatus.TENTATIVE and silent > cfg.tentative_drop_after_s
            ) or silent > cfg.drop_after_s:
                changed.append((track, True))
            elif (
                track.status == TrackStatus.CONFIRMED
                and t_s - track.last_update_s > cfg.coast_after_s
            ):
                track.status = TrackStatus.COASTING
                changed.append((track, False))
        return changed
